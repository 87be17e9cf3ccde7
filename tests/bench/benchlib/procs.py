"""Starting and stopping the processes under test: Redis and gateways.

Everything listens on 127.0.0.1 on a port the kernel picked as free, and is
stopped by the PID we started, never by name.
"""
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0


class StartError(RuntimeError):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One process we started, with its log file."""

    def __init__(self, name, argv, log_dir):
        self.name = name
        self.log_path = os.path.join(log_dir, name + ".log")
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(argv, stdout=self._log,
                                      stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def runqueue_wait_s(self):
        """Seconds its threads have waited, runnable, for a CPU (the second
        field of /proc/PID/task/*/schedstat); None once it is gone."""
        total = 0
        try:
            tasks = os.listdir("/proc/%d/task" % self.pid)
        except OSError:
            return None
        for tid in tasks:
            try:
                with open("/proc/%d/task/%s/schedstat" % (self.pid, tid)) as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # a thread that ended meanwhile
        return total / 1e9

    def cpu_s(self):
        """CPU-seconds (user + system) used so far; None once it is gone."""
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines=5):
        with open(self.log_path, "rb") as f:
            tail = f.read().decode(errors="replace").splitlines()[-lines:]
        return "\n".join(tail)

    def signal_term(self):
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def terminate(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
        self.signal_term()
        try:
            self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._log.close()


def _wait(check, what, proc):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartError("%s exited at start (status %s):\n%s" % (
                what, proc.popen.returncode, proc.log_tail()))
        if check():
            return
        time.sleep(0.05)
    raise StartError("%s not ready after %.0f s:\n%s" % (
        what, START_TIMEOUT_S, proc.log_tail()))


def _redis_pong(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_info(port, *words):
    """The raw answer to an inline command (e.g. CLUSTER INFO), b"" on error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(" ".join(words).encode() + b"\r\n")
            return s.recv(65536)
    except OSError:
        return b""


# cgroup v1's cpu controller, where CpuQuota puts a process in a group of
# its own; CFS bandwidth control gives the group QUOTA of every PERIOD.
CPU_CGROUP = "/sys/fs/cgroup/cpu"
CPU_PERIOD_US = 100000


def cpu_quota_problem():
    """Why CpuQuota cannot work here, or None."""
    if os.geteuid() != 0:
        return "needs root (it writes to %s)" % CPU_CGROUP
    if not os.path.exists(os.path.join(CPU_CGROUP, "cpu.cfs_quota_us")):
        return "no cgroup v1 cpu controller with CFS bandwidth at %s" % \
            CPU_CGROUP
    return None


class CpuQuota:
    """Process pid alone in the cpu cgroup chatbench-NAME, held to pct % of
    one core; close() takes it out and removes the group."""

    def __init__(self, name, pid, pct):
        self.path = os.path.join(CPU_CGROUP, "chatbench-" + name)
        os.mkdir(self.path)
        try:
            self._write("cpu.cfs_period_us", CPU_PERIOD_US)
            self._write("cpu.cfs_quota_us", round(CPU_PERIOD_US * pct / 100))
            # cgroup.procs, not tasks: every thread of the process moves.
            self._write("cgroup.procs", pid)
        except BaseException:
            self.close()
            raise

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write("%d\n" % value)

    def periods(self):
        """(periods, periods throttled) so far: a process throttled in
        nearly every period is at its quota."""
        with open(os.path.join(self.path, "cpu.stat")) as f:
            stat = dict(line.split() for line in f)
        return int(stat["nr_periods"]), int(stat["nr_throttled"])

    def close(self):
        # A group that still holds a process cannot be removed: one not
        # stopped yet (an error at start) goes back to the root group.
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                pids = f.read().split()
        except FileNotFoundError:
            return
        for pid in pids:
            try:
                with open(os.path.join(CPU_CGROUP, "cgroup.procs"), "w") as f:
                    f.write(pid + "\n")
            except ProcessLookupError:
                pass  # it exited meanwhile
        os.rmdir(self.path)


def _http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


# Gateway counters the storm and reconnect scenarios report (from /metrics,
# without the gateway_ prefix and _total suffix).
METRICS = ("keepalive_timeouts", "slow_consumer_drops", "rate_limited",
           "rejected_upgrades", "incomplete_requests", "oversize_closes")


def _scrape(port):
    """METRICS of the gateway on port; those it does not answer are 0."""
    found = {}
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=5) as r:
            text = r.read().decode(errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or not parts[0].startswith("gateway_"):
            continue
        name = parts[0][len("gateway_"):]
        if name.endswith("_total"):
            name = name[:-len("_total")]
        if name in METRICS:
            found[name] = int(float(parts[1]))
    return found


class Cluster:
    """Redis (unless single node) and N gateways, stopped on close().
    redis_primaries > 0: a Redis Cluster of that many primaries (no
    replicas) instead of one Redis, reached with redis+cluster://.
    redis_cpu_quota > 0: every redis-server held to that % of one core
    (CpuQuota), so that Redis can be the bottleneck on a small machine."""

    def __init__(self, gateway_bin, gateways, log_dir, redis=True,
                 gateway_args=(), redis_primaries=0, redis_cpu_quota=0):
        self.procs = []
        self.redis = None
        self.redis_nodes = []  # every redis-server (one, or the primaries)
        self.redis_cpu_quota = redis_cpu_quota
        self.quotas = []  # CpuQuota of each redis-server, when limited
        self.gateways = []  # (Proc, port)
        try:
            if redis and redis_primaries:
                self._start_redis_cluster(redis_primaries, log_dir)
            elif redis:
                port = self._start_redis("redis", [], log_dir)
                self.redis_url = "redis://127.0.0.1:%d" % port
            for i in range(gateways):
                self._start_gateway(gateway_bin, i + 1, log_dir, gateway_args)
        except BaseException:
            self.close()
            raise

    def _start(self, name, argv, log_dir):
        proc = Proc(name, argv, log_dir)
        self.procs.append(proc)
        return proc

    def _start_redis(self, name, flags, log_dir):
        port = free_port()
        proc = self._start(name, [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", *flags], log_dir)
        _wait(lambda: _redis_pong(port), name, proc)
        if self.redis_cpu_quota:
            self.quotas.append(CpuQuota("redis-%d" % port, proc.pid,
                                        self.redis_cpu_quota))
        self.redis_nodes.append(proc)
        self.redis = self.redis or proc
        return port

    def _start_redis_cluster(self, primaries, log_dir):
        # The cluster bus port is chosen too: port + 10000 may be past 65535.
        addrs = ["127.0.0.1:%d" % self._start_redis(
            "redis%d" % i, ["--cluster-enabled", "yes",
                            "--cluster-port", str(free_port()),
                            "--cluster-config-file",
                            os.path.join(str(log_dir), "nodes-redis%d.conf" % i)],
            log_dir)
            for i in range(primaries)]
        subprocess.run(["redis-cli", "--cluster", "create", *addrs,
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        ports = [int(a.rsplit(":", 1)[1]) for a in addrs]
        _wait(lambda: all(b"cluster_state:ok" in _redis_info(p, "CLUSTER", "INFO")
                          for p in ports), "redis cluster state ok", self.redis)
        self.redis_url = "redis+cluster://" + ",".join(addrs)

    def redis_cpu_s(self):
        """CPU-seconds used so far by each redis-server."""
        return [proc.cpu_s() for proc in self.redis_nodes]

    def redis_periods(self):
        """CpuQuota.periods() of each redis-server ([] when not limited)."""
        return [q.periods() for q in self.quotas]

    def _start_gateway(self, gateway_bin, n, log_dir, extra):
        port = free_port()
        argv = [gateway_bin, "--listen", "127.0.0.1:%d" % port,
                "--id", "gw%d" % n, "--log-level", "warn"]
        if self.redis:
            argv += ["--redis", self.redis_url]
        proc = self._start("gw%d" % n, argv + list(extra), log_dir)
        _wait(lambda: _http_ok("http://127.0.0.1:%d/readyz" % port),
              "gateway gw%d" % n, proc)
        self.gateways.append((proc, port))

    def chatbench_args(self, gateways=None):
        """--gateway for each of gateways (default: all) and --redis-pid."""
        args = []
        for proc, port in self.gateways if gateways is None else gateways:
            args += ["--gateway", "127.0.0.1:%d@%d" % (port, proc.pid)]
        if self.redis:
            args += ["--redis-pid", str(self.redis.pid)]
        return args

    def runqueue_waits(self):
        """{name: seconds waited for a CPU so far} of Redis and the gateways
        still running."""
        return {proc.name: proc.runqueue_wait_s() for proc in self.procs
                if proc.alive()}

    def metrics(self):
        """The gateways' counters in METRICS, summed over those still
        running (a killed one is left out)."""
        total = dict.fromkeys(METRICS, 0)
        for proc, port in self.gateways:
            if not proc.alive():
                continue
            for name, value in _scrape(port).items():
                total[name] += value
        return total

    def stop_gateways(self):
        """SIGTERM every gateway at once. Returns the seconds each took to
        exit (None: still running after STOP_TIMEOUT_S, then killed)."""
        start = time.monotonic()
        for proc, _ in self.gateways:
            proc.signal_term()
        took = [None] * len(self.gateways)
        while time.monotonic() - start < STOP_TIMEOUT_S:
            for i, (proc, _) in enumerate(self.gateways):
                if took[i] is None and not proc.alive():
                    took[i] = round(time.monotonic() - start, 3)
            if None not in took:
                break
            time.sleep(0.01)
        return took

    def close(self):
        for proc in reversed(self.procs):
            proc.terminate()
        self.procs = []
        for quota in self.quotas:
            try:
                quota.close()
            except OSError as e:  # the others are still removed
                print("bench: cannot remove %s: %s" % (quota.path, e),
                      file=sys.stderr)
        self.quotas = []


class BareServer:
    """chatfloor, the benchmark's bare server, in the place of the gateways
    (one process, no Redis), stopped on close()."""

    def __init__(self, floor_bin, writer, log_dir):
        self.redis = None
        self.port = free_port()
        self.proc = Proc("chatfloor-" + writer, [
            floor_bin, "--listen", "127.0.0.1:%d" % self.port,
            "--writer", writer], log_dir)
        try:
            _wait(lambda: _http_ok("http://127.0.0.1:%d/" % self.port),
                  "chatfloor", self.proc)
        except BaseException:
            self.close()
            raise

    def chatbench_args(self):
        return ["--gateway", "127.0.0.1:%d@%d" % (self.port, self.proc.pid)]

    def close(self):
        self.proc.terminate()


# One HAProxy process holds two descriptors per WebSocket (client and
# gateway side) and the open-file limit here is 20,000 per process, so the
# load balancer is several HAProxy processes on one port (HAProxy binds with
# SO_REUSEPORT, and the kernel spreads the connections over them).
LB_CONNS_PER_PROCESS = 7000

HAPROXY_CFG = """\
global
    maxconn %(maxconn)d
    nbthread 1
    hard-stop-after 5s

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    # Longer than the gateways' default 54 s pings, so an idle but healthy
    # WebSocket is never cut.
    timeout tunnel 1h
    timeout client-fin 5s
    timeout http-request 10s
    # A refused connection (the killed gateway) is retried on another.
    retries 3
    option redispatch 1

frontend chat
    bind 127.0.0.1:%(port)d
    maxconn %(maxconn)d
    default_backend gateways

backend gateways
    balance %(balance)s
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 1s fall 2 rise 2 observe layer4 error-limit 3 on-error mark-down
%(servers)s
"""


# HAProxy's warning when a server changes state, e.g. "Server gateways/gw2
# is DOWN, reason: Layer7 timeout, check duration: 1001ms. ...".
_SERVER_EVENT = re.compile(
    r"Server gateways/(gw\d+) is (DOWN|UP)(?:, reason: ([^,]+))?")


class Haproxy:
    """Debian's haproxy in front of the gateways of a Cluster, as enough
    processes on one free port for conns WebSockets; stopped on close()."""

    def __init__(self, cluster, conns, balance, log_dir):
        # Debian puts it in /usr/sbin, which a user's PATH may lack.
        binary = shutil.which("haproxy") or shutil.which(
            "haproxy", path="/usr/sbin:/sbin")
        if not binary:
            raise StartError("haproxy is not installed (Debian package "
                             "haproxy, see deploy/install-deps.sh)")
        self.port = free_port()
        self.procs = []
        n = max(1, -(-conns // LB_CONNS_PER_PROCESS))
        servers = "\n".join("    server gw%d 127.0.0.1:%d" % (i + 1, port)
                             for i, (_, port) in enumerate(cluster.gateways))
        cfg = os.path.join(log_dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG % dict(port=self.port, balance=balance,
                                       maxconn=LB_CONNS_PER_PROCESS + 2000,
                                       servers=servers))
        try:
            for i in range(n):
                self.procs.append(Proc("haproxy%d" % (i + 1), [
                    binary, "-db", "-f", cfg], log_dir))
            for proc in self.procs:
                _wait(lambda: _http_ok("http://127.0.0.1:%d/readyz"
                                       % self.port), "haproxy", proc)
        except BaseException:
            self.close()
            raise

    def events(self):
        """How often each process saw each server go DOWN or UP, and why:
        {"gw2 DOWN (Layer7 timeout)": 3, ...}, over all processes."""
        seen = collections.Counter()
        for proc in self.procs:
            with open(proc.log_path, errors="replace") as f:
                for m in _SERVER_EVENT.finditer(f.read()):
                    why = " (%s)" % m.group(3) if m.group(3) else ""
                    seen["%s %s%s" % (m.group(1), m.group(2), why)] += 1
        return dict(seen)

    def cpu_s(self):
        """CPU-seconds of all its processes so far."""
        return sum(proc.cpu_s() or 0 for proc in self.procs)

    def close(self):
        for proc in self.procs:
            proc.terminate()
        self.procs = []
