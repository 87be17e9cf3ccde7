"""Starting and stopping the real gateway binary for a test."""

import contextlib
import os
import pathlib
import signal
import subprocess

from netutil import GiveUp, free_port, http_get, metrics, port_is_free, wait_until
from process import Process

REPO = pathlib.Path(__file__).resolve().parents[2]

# For tests whose one connection sends hundreds of frames on purpose (load,
# ordering, churn): the default per-connection rate limit would refuse them.
NO_RATE_LIMIT = ("--rate-limit", "0")


def gateway_bin():
    """The binary under test: $GATEWAY_BIN (e.g. a sanitizer build) or build/gateway."""
    return os.environ.get("GATEWAY_BIN") or str(REPO / "build" / "gateway")


def clean_env(extra=None):
    """The test's environment without GATEWAY_* variables (so a developer's
    shell settings cannot change what a test sees), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra or {})
    return env


def run_gateway(args, env=None, timeout=5.0):
    """Run the binary to completion (flag parsing tests); CompletedProcess."""
    return subprocess.run([gateway_bin(), *args], capture_output=True, text=True,
                          env=clean_env(env), timeout=timeout, stdin=subprocess.DEVNULL)


class Gateway:
    """One gateway process on a free 127.0.0.1 port.

    name       -> --id NAME (None: no --id, the gateway picks its default)
    redis_port -> --redis redis://127.0.0.1:PORT (None: single node)
    extra      -> more flags, e.g. ["--history", "5"]
    env        -> extra environment variables
    listen_via_env -> pass the address as GATEWAY_LISTEN instead of --listen
    tls        -> (cert_path, key_path): --tls-cert/--tls-key, and this
                  wrapper's own HTTP requests go over HTTPS
    """

    START_ATTEMPTS = 3

    def __init__(self, workdir, name="gw1", redis_port=None, extra=(), env=None,
                 listen_via_env=False, tls=None):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.redis_port = redis_port
        self.extra = list(extra)
        self.env = dict(env or {})
        self.listen_via_env = listen_via_env
        self.tls = tls
        self.port = None
        self.process = None
        self.killed = False   # SIGKILLed on purpose: no clean exit expected

    def _argv_env(self):
        argv = [gateway_bin()]
        env = dict(self.env)
        listen = f"127.0.0.1:{self.port}"
        if self.listen_via_env:
            env["GATEWAY_LISTEN"] = listen
        else:
            argv += ["--listen", listen]
        if self.name is not None:
            argv += ["--id", self.name]
        if self.redis_port is not None:
            argv += ["--redis", f"redis://127.0.0.1:{self.redis_port}"]
        if self.tls is not None:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        return argv + self.extra, clean_env(env)

    def start(self, timeout=10.0, wait_ready=False):
        """Start and wait until /healthz answers 200 (and /readyz too if wait_ready).

        Retries on a fresh port when the chosen one was taken meanwhile by
        another process on this shared machine."""
        binary = gateway_bin()
        assert os.access(binary, os.X_OK), \
            f"gateway binary {binary} is missing or not executable (set GATEWAY_BIN)"
        for _ in range(self.START_ATTEMPTS):
            self.port = free_port()
            argv, env = self._argv_env()
            self.process = Process(argv, self.workdir / "gateway.log", env).start()
            try:
                wait_until(self._healthy, timeout, what=f"{self.name} /healthz")
                break
            except AssertionError:
                exited = not self.process.running()
                self.process.kill()
                if exited and not port_is_free(self.port):
                    continue
                raise AssertionError(
                    f"gateway {self.name} did not become healthy on port {self.port} "
                    f"(exit status {self.process.exit_code()}); log:\n{self.log_tail()}")
        else:
            raise AssertionError(f"gateway {self.name}: no free port after "
                                 f"{self.START_ATTEMPTS} attempts")
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def restart(self, timeout=15.0):
        """Start again on the same port (after stop or kill), so that clients
        find it where they left it; waits until /readyz answers 200."""
        assert not self.running(), "restart() of a running gateway"
        argv, env = self._argv_env()
        self.process = Process(argv, self.workdir / "gateway.log", env).start()
        self.killed = False
        self.wait_ready(timeout)
        return self

    def _answers_200(self, path):
        if not self.process.running():
            raise GiveUp(f"gateway exited with status {self.process.exit_code()}")
        return self.http(path, timeout=1.0)[0] == 200

    def _healthy(self):
        return self._answers_200("/healthz")

    def wait_ready(self, timeout=10.0):
        wait_until(lambda: self._answers_200("/readyz"), timeout,
                   what=f"{self.name} /readyz 200")

    def readyz_status(self):
        return self.http("/readyz", timeout=2.0)[0]

    def http(self, path, headers=None, timeout=5.0):
        return http_get(self.port, path, headers, timeout, tls=self.tls is not None)

    def metrics(self):
        return metrics(self.port, tls=self.tls is not None)

    def rss_kb(self):
        """Resident memory of the running process, from /proc (Linux)."""
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError(f"no VmRSS in /proc/{self.process.pid}/status")

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit status (negative: it had to be killed)."""
        return self.process.stop(timeout) if self.process else None

    def kill(self):
        self.killed = True
        return self.process.kill() if self.process else None

    @contextlib.contextmanager
    def paused(self):
        """Frozen (SIGSTOP) for the block, whatever happens in it: the process
        keeps its sockets but reads, writes and times nothing meanwhile."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield self
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def wait_exit(self, timeout):
        return self.process.wait(timeout)

    def running(self):
        return self.process is not None and self.process.running()

    def log_text(self):
        return self.process.log_text() if self.process else ""

    def log_tail(self, lines=200):
        return self.process.log_tail(lines) if self.process else ""
