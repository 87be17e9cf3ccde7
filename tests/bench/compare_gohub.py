#!/usr/bin/python3
"""Connect-and-join CPU of our cluster against a Go gorilla hub, in one harness.

Runs the same storm, interleaved (ours, gohub, ours, gohub, ...), against
  A) two of our gateways (build/gateway, default flags) and a fresh Redis,
  B) two gohub processes (tests/bench/peers/gohub) and a fresh Redis:
CONNS clients over ROOMS rooms, each joining its room right after its
welcome, driven by chatbench's fanout (its connect phase opens and joins every
client; the fan-out after it is 1 message in 1 s).

CPU-seconds (utime+stime of all threads, /proc/PID/stat) of the two servers
and of Redis are sampled every 20 ms from just before chatbench starts. The
main figure is up to the moment every client has joined (chatbench's setup_s
after its start); the figure up to chatbench's exit is shown too: it adds
chatbench's settle (>= 1 s without frames), the 1 s fan-out and the drain.

  tests/bench/compare_gohub.py                       # 20,000 / 1,000, 3 pairs
  tests/bench/compare_gohub.py --conns 2000 --rooms 100 --repeat 1
  tests/bench/compare_gohub.py --ours-args '--log-level warn'

How to read it: tests/bench/README.md, "Go hub comparison".
"""
import argparse
import json
import os
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GOHUB_SRC = os.path.join(REPO, "tests", "bench", "peers", "gohub")
TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
SAMPLE_S = 0.02
PROGRESS = re.compile(r"joined (\d+) .* frames (\d+) ")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=20000)
    ap.add_argument("--rooms", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="pairs of runs (ours then gohub), default 3")
    ap.add_argument("--only", choices=("ours", "gohub"),
                    help="run one side only")
    ap.add_argument("--gateway-bin", default=os.environ.get(
        "GATEWAY_BIN", os.path.join(REPO, "build", "gateway")))
    ap.add_argument("--chatbench-bin", default=os.environ.get(
        "CHATBENCH_BIN",
        os.path.join(REPO, "build", "tests", "bench", "chatbench")))
    ap.add_argument("--gohub-bin", default=os.environ.get("GOHUB_BIN"),
                    help="default: built from %s into build/gohub"
                    % os.path.relpath(GOHUB_SRC, REPO))
    ap.add_argument("--ours-args", default="",
                    help="extra flags for our gateways (default none)")
    ap.add_argument("--timeout", type=float, default=300,
                    help="longest chatbench run in seconds (300)")
    ap.add_argument("--pause", type=float, default=2,
                    help="seconds between runs, for TIME_WAIT and the "
                    "previous run's exit (2)")
    ap.add_argument("--log-dir", help="keep the processes' logs here")
    ap.add_argument("--json-out", help="append one JSON line per run here")
    return ap.parse_args(argv)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    """utime+stime of every thread of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def build_gohub(out):
    """Builds gohub offline in GOPATH mode from Debian's Go packages."""
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="",
               GOPATH="/usr/share/gocode")
    env.setdefault("GOCACHE", os.path.join(tempfile.gettempdir(),
                                           "gohub-gocache-%d" % os.getuid()))
    subprocess.run(["go", "build", "-o", out, "."], cwd=GOHUB_SRC, env=env,
                   check=True)
    return out


def terminate(p):
    """SIGTERM, then SIGKILL if p has not exited within STOP_TIMEOUT_S."""
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


class Procs:
    """Every process this script starts, stopped by PID in stop_all()."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.running = []

    def start(self, name, argv):
        log = open(os.path.join(self.log_dir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        log.close()
        p.name = name
        self.running.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            terminate(p)
        if p in self.running:
            self.running.remove(p)

    def stop_all(self):
        for p in list(reversed(self.running)):
            self.stop(p)


def wait_ready(check, what, proc):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s not ready after %.0f s" % (what, START_TIMEOUT_S))


def redis_pong(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def http_ok(url):
    with urllib.request.urlopen(url, timeout=1) as r:
        return r.status == 200


def start_cluster(kind, procs, a, gohub_bin, run):
    """Fresh Redis and two servers; returns (redis proc, [(proc, port)])."""
    rport = free_port()
    redis = procs.start("%s%d-redis" % (kind, run), [
        "redis-server", "--port", str(rport), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no"])
    wait_ready(lambda: redis_pong(rport), "redis-server", redis)
    servers = []
    for n in (1, 2):
        port = free_port()
        if kind == "ours":
            argv = [a.gateway_bin, "--listen", "127.0.0.1:%d" % port,
                    "--redis", "redis://127.0.0.1:%d" % rport,
                    "--id", "gw%d" % n] + shlex.split(a.ours_args)
            ready = "http://127.0.0.1:%d/readyz" % port
        else:
            argv = [gohub_bin, "-listen", "127.0.0.1:%d" % port,
                    "-redis", "127.0.0.1:%d" % rport, "-id", "hub%d" % n]
            ready = "http://127.0.0.1:%d/healthz" % port
        p = procs.start("%s%d-%d" % (kind, run, n), argv)
        wait_ready(lambda: http_ok(ready), "%s server %d" % (kind, n), p)
        servers.append((p, port))
    return redis, servers


class Sampler(threading.Thread):
    """(time, servers' CPU-s, Redis CPU-s) every SAMPLE_S until stopped."""

    def __init__(self, server_pids, redis_pid):
        super().__init__(daemon=True)
        self.server_pids, self.redis_pid = server_pids, redis_pid
        self.samples = []
        self.done = threading.Event()

    def take(self):
        self.samples.append((time.monotonic(),
                             sum(cpu_s(p) for p in self.server_pids),
                             cpu_s(self.redis_pid)))

    def run(self):
        while not self.done.wait(SAMPLE_S):
            self.take()

    def stop(self):
        self.done.set()
        self.join()
        self.take()

    def at(self, t):
        """The first sample at or after t (else the last)."""
        for s in self.samples:
            if s[0] >= t:
                return s
        return self.samples[-1]


def run_chatbench(a, servers, redis, deadline_s):
    """Runs chatbench; returns (result dict, start time, progress lines)."""
    argv = [a.chatbench_bin, "fanout"]
    for p, port in servers:
        argv += ["--gateway", "127.0.0.1:%d@%d" % (port, p.pid)]
    argv += ["--redis-pid", str(redis.pid), "--conns", str(a.conns),
             "--rooms", str(a.rooms), "--publishers", "1", "--rate", "1",
             "--warmup", "0", "--duration", "1", "--drain", "1",
             "--progress", "0.1"]
    t0 = time.monotonic()
    cb = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True)
    try:
        out, err = cb.communicate(timeout=deadline_s)
    except BaseException:
        # chatbench stops its workers on SIGTERM (they also die with it).
        terminate(cb)
        raise
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if cb.returncode != 0 or not lines:
        raise RuntimeError("chatbench failed (%s): %s" % (
            cb.returncode, err.strip().splitlines()[-3:]))
    return json.loads(lines[-1]), t0, err.splitlines()


def frames_when_joined(progress, conns):
    """Frames received by all clients at the first progress line where all
    had joined, and at the last progress line."""
    first = last = None
    for line in progress:
        m = PROGRESS.search(line)
        if not m:
            continue
        last = int(m.group(2))
        if first is None and int(m.group(1)) >= conns:
            first = last
    return first, last


def one_run(kind, a, procs, gohub_bin, run):
    redis, servers = start_cluster(kind, procs, a, gohub_bin, run)
    load_before = loadavg()
    sampler = Sampler([p.pid for p, _ in servers], redis.pid)
    sampler.take()
    sampler.start()
    try:
        r, t0, progress = run_chatbench(a, servers, redis, a.timeout)
    finally:
        sampler.stop()
    base = sampler.samples[0]
    joined = sampler.at(t0 + r["setup_s"])
    end = sampler.samples[-1]
    f_joined, f_last = frames_when_joined(progress, a.conns)
    k = 1000.0 / a.conns
    row = dict(
        kind=kind, run=run, conns=a.conns, rooms=a.rooms,
        connected=r["connected"], setup_s=r["setup_s"],
        handshakes_per_s=r["handshakes_per_s"],
        handshake_p50_ms=r["handshake_us"]["p50"] / 1000,
        server_cpu_s=round(joined[1] - base[1], 3),
        redis_cpu_s=round(joined[2] - base[2], 3),
        server_cpu_s_to_exit=round(end[1] - base[1], 3),
        redis_cpu_s_to_exit=round(end[2] - base[2], 3),
        wall_to_exit_s=round(end[0] - base[0], 3),
        settle_s=r["settle_s"],
        frames_per_client_joined=(round(f_joined / a.conns, 2)
                                  if f_joined is not None else None),
        frames_per_client_end=(round(f_last / a.conns, 2)
                               if f_last is not None else None),
        fanout_delivered=r["delivered"], lost_connections=r["lost_connections"],
        first_error=r["first_error"],
        loadavg_before=load_before, loadavg_after=loadavg())
    row["total_cpu_s"] = round(row["server_cpu_s"] + row["redis_cpu_s"], 3)
    row["per_1k_conns"] = round(row["total_cpu_s"] * k, 4)
    row["per_1k_conns_to_exit"] = round(
        (row["server_cpu_s_to_exit"] + row["redis_cpu_s_to_exit"]) * k, 4)
    for p, _ in servers:
        procs.stop(p)
    procs.stop(redis)
    return row


COLS = [("kind", "%-6s"), ("run", "%3s"), ("setup_s", "%7.2f"),
        ("handshakes_per_s", "%8.0f"), ("server_cpu_s", "%7.2f"),
        ("redis_cpu_s", "%6.2f"), ("total_cpu_s", "%6.2f"),
        ("per_1k_conns", "%7.3f"), ("server_cpu_s_to_exit", "%7.2f"),
        ("redis_cpu_s_to_exit", "%6.2f"), ("per_1k_conns_to_exit", "%7.3f"),
        ("frames_per_client_joined", "%6s"), ("frames_per_client_end", "%6s"),
        ("loadavg_before", "%s")]
HEAD = ("kind   run   setup  hs/s    srvCPU  redis  total  /1k     "
        "| to exit: srv  redis  /1k     | frames/client joined end | load")


def fmt(row):
    out = []
    for name, spec in COLS:
        v = row.get(name)
        out.append("-" if v is None else spec % (v,))
        if name in ("per_1k_conns", "per_1k_conns_to_exit"):
            out.append("|")
    return " ".join(out)


def summary(rows):
    med = {}
    for kind in ("ours", "gohub"):
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        med[kind] = {k: round(statistics.median(r[k] for r in rs), 4)
                     for k in ("setup_s", "handshakes_per_s", "server_cpu_s",
                               "redis_cpu_s", "total_cpu_s", "per_1k_conns",
                               "server_cpu_s_to_exit", "redis_cpu_s_to_exit",
                               "per_1k_conns_to_exit")}
        print("median %-6s setup %.2f s, servers %.2f + Redis %.2f = %.2f "
              "CPU-s, %.3f per 1k connections (to exit %.3f)" % (
                  kind, med[kind]["setup_s"], med[kind]["server_cpu_s"],
                  med[kind]["redis_cpu_s"], med[kind]["total_cpu_s"],
                  med[kind]["per_1k_conns"], med[kind]["per_1k_conns_to_exit"]))
    if "ours" in med and "gohub" in med:
        o, g = med["ours"], med["gohub"]
        ratio = dict(
            total=round(o["total_cpu_s"] / g["total_cpu_s"], 2),
            servers=round(o["server_cpu_s"] / g["server_cpu_s"], 2),
            to_exit=round(o["per_1k_conns_to_exit"]
                          / g["per_1k_conns_to_exit"], 2))
        print("ratio ours/gohub (medians): total %.2f, servers only %.2f, "
              "to exit %.2f (target of issue #13: <= 0.33)" % (
                  ratio["total"], ratio["servers"], ratio["to_exit"]))
        med["ratio"] = ratio
    return med


def main(argv):
    a = parse_args(argv)
    nofile = raise_nofile()
    if nofile < min(a.conns, 19000) + 100:
        print("WARNING: open-files limit %d is low for %d connections"
              % (nofile, a.conns), file=sys.stderr)
    log_dir = a.log_dir or tempfile.mkdtemp(prefix="compare-gohub-")
    os.makedirs(log_dir, exist_ok=True)
    gohub_bin = a.gohub_bin or build_gohub(os.path.join(REPO, "build",
                                                        "gohub"))
    procs = Procs(log_dir)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    kinds = [a.only] if a.only else ["ours", "gohub"]
    rows = []
    print("# %s, %d connections over %d rooms, 2 servers each, load %s, "
          "%d cores, logs in %s" % (time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                    a.conns, a.rooms, loadavg(),
                                    os.cpu_count(), log_dir))
    print(HEAD)
    try:
        for run in range(1, a.repeat + 1):
            for kind in kinds:
                row = one_run(kind, a, procs, gohub_bin, run)
                rows.append(row)
                print(fmt(row), flush=True)
                if row["first_error"]:
                    print("  first error: %s" % row["first_error"])
                if a.json_out:
                    with open(a.json_out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                time.sleep(a.pause)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
    med = summary(rows)
    print(json.dumps(dict(summary=med, load_after=loadavg())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
