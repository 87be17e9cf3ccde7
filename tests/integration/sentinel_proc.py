"""Redis Sentinel for tests: a primary, its replicas and the sentinels that
watch them, each a redis-server process on a free port of 127.0.0.1 with its
own directory under the test's (the sentinels' generated sentinel.conf is
there too, as they rewrite it). Processes are ended by PID only.

With tls (the CA, certificate and key files), every node and sentinel also
has a TLS port, which is the one they announce and use among themselves
(tls-replication): the plain port stays for the harness's own commands."""

import pathlib

from netutil import free_port, wait_until
from redis_proc import RedisServer

MASTER = "mymaster"
QUORUM = 2


def _quoted(value):
    """A value for a Redis configuration file, where spaces separate."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SentinelServer(RedisServer):
    """One sentinel (`redis-server sentinel.conf --sentinel`) watching
    MASTER at 127.0.0.1:primary_port.

    password: the sentinel's own requirepass (also what it gives the other
    sentinels); data_password: the data nodes' (sentinel auth-pass);
    down_after_ms: how long a silent primary takes to be declared down;
    tls: (ca, cert, key) to listen on a TLS port too (tls_port) and speak
    TLS to the nodes and the other sentinels."""

    def __init__(self, workdir, primary_port, password=None, data_password=None,
                 down_after_ms=1000, failover_timeout_ms=5000, tls=None):
        super().__init__(workdir, password=password)
        self.primary_port = primary_port
        self.data_password = data_password
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.tls = tls
        self.tls_port = None
        self.conf = self.workdir / "sentinel.conf"
        self.conf_port = None

    @property
    def announced_port(self):
        return self.tls_port or self.port

    def argv(self):
        # A restart on the same port keeps what the sentinel wrote to its
        # configuration (the primary it knows now, its peers, its epoch),
        # as a real one would; a new port starts from a fresh file.
        if self.conf_port != self.port:
            lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.workdir}",
                     f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} {QUORUM}",
                     f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}",
                     f"sentinel failover-timeout {MASTER} {self.failover_timeout_ms}",
                     f"sentinel parallel-syncs {MASTER} 1"]
            if self.data_password is not None:
                lines.append(f"sentinel auth-pass {MASTER} {_quoted(self.data_password)}")
            if self.password is not None:
                lines += [f"requirepass {_quoted(self.password)}",
                          f"sentinel sentinel-pass {_quoted(self.password)}"]
            if self.tls:
                self.tls_port = free_port()
                lines += [f"tls-port {self.tls_port}", *tls_conf(self.tls)]
            self.conf.write_text("\n".join(lines) + "\n")
            self.conf_port = self.port
        return [self.binary, self.conf, "--sentinel"]

    def master_state(self):
        """SENTINEL MASTER's fields as a dict."""
        flat = self.command("SENTINEL", "MASTER", MASTER)
        return dict(zip(flat[0::2], flat[1::2]))

    def primary(self):
        """The primary's port as this sentinel names it (None: none)."""
        answer = self.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return int(answer[1]) if answer else None


def tls_conf(tls):
    """The configuration lines of a TLS node or sentinel, as in a
    configuration file (a flag each with -- in front)."""
    ca, cert, key = tls
    return [f"tls-cert-file {cert}", f"tls-key-file {key}", f"tls-ca-cert-file {ca}",
            "tls-auth-clients no", "tls-replication yes"]


def _info(server, section):
    text = server.command("INFO", section)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


class SentinelSetup:
    """A primary, `replicas` replicas of it and `sentinels` sentinels
    (quorum 2) that know all of them and each other once start() returns.

    data_password: requirepass of the data nodes (and the replicas'
    masterauth, the sentinels' auth-pass); sentinel_password: the
    sentinels' own requirepass. tls: (ca, cert, key), see the module's
    description."""

    def __init__(self, workdir, replicas=1, sentinels=3, data_password=None,
                 sentinel_password=None, tls=None):
        self.workdir = pathlib.Path(workdir)
        self.n_replicas = replicas
        self.n_sentinels = sentinels
        self.data_password = data_password
        self.sentinel_password = sentinel_password
        self.tls = tls
        self.nodes = []       # data nodes, the first started as the primary
        self.sentinels = []

    def _node(self, name, replica_of=None):
        # A replica's first sync starts at once (Redis waits 5 s by default
        # for more replicas to share a diskless transfer).
        extra = ["--repl-diskless-sync-delay", "0"]
        tls_port = free_port() if self.tls else None
        if self.tls:
            extra += ["--tls-port", tls_port]
            for line in tls_conf(self.tls):
                name_, value = line.split(" ", 1)
                extra += [f"--{name_}", value]
        if replica_of is not None:
            extra += ["--replicaof", "127.0.0.1", replica_of.announced_port]
        node = RedisServer(self.workdir / name, extra=extra, password=self.data_password)
        node.start()
        # The port the node gives the others, and the sentinels the gateways.
        node.announced_port = tls_port or node.port
        return node

    def start(self, timeout=30.0):
        try:
            self._start(timeout)
        except BaseException:
            self.stop_all()
            raise
        return self

    def _start(self, timeout):
        primary = self._node("node0")
        self.nodes.append(primary)
        for i in range(self.n_replicas):
            self.nodes.append(self._node(f"node{i + 1}", replica_of=primary))
        for replica in self.nodes[1:]:
            wait_until(lambda r=replica: _info(r, "replication").get("master_link_status") == "up",
                       timeout, what=f"replica on port {replica.port} in sync")
        for i in range(self.n_sentinels):
            self.sentinels.append(SentinelServer(
                self.workdir / f"sentinel{i}", primary.announced_port,
                password=self.sentinel_password, data_password=self.data_password,
                tls=self.tls).start())
        # A failover needs a quorum of sentinels that know each other (they
        # meet through the primary's hello channel, every 2 s) and a replica
        # to promote.
        for s in self.sentinels:
            wait_until(lambda s=s: self._knows_all(s), timeout,
                       what=f"sentinel on port {s.port} knowing the replicas and the others")

    def _knows_all(self, sentinel):
        state = sentinel.master_state()
        return (int(state["num-other-sentinels"]) == self.n_sentinels - 1
                and int(state["num-slaves"]) == self.n_replicas)

    @property
    def primary(self):
        """The data node the sentinels name the primary now."""
        return self.node_at(self.primary_port())

    def node_at(self, port):
        """The data node that announces port."""
        return next(n for n in self.nodes if n.announced_port == port)

    def primary_port(self):
        for s in self.sentinels:
            try:
                if s.running():
                    return s.primary()
            except OSError:
                continue
        raise AssertionError("no sentinel answers")

    def url(self, scheme=None, userinfo="", master=MASTER, sentinels=None):
        scheme = scheme or ("rediss+sentinel" if self.tls else "redis+sentinel")
        ports = sentinels if sentinels is not None else [s.announced_port
                                                         for s in self.sentinels]
        hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
        return f"{scheme}://{userinfo}{hosts}/{master}"

    def wait_failover(self, old_port, timeout=30.0):
        """Until every running sentinel names another primary than old_port
        and that one says it is a primary; returns its port."""
        def moved():
            ports = {s.primary() for s in self.sentinels if s.running()}
            if len(ports) != 1 or old_port in ports:
                return None
            port = ports.pop()
            return port if self.node_at(port).command("ROLE")[0] == "master" else None
        return wait_until(moved, timeout, what=f"a failover away from port {old_port}")

    def stop_all(self):
        for p in self.sentinels + self.nodes:
            p.stop(timeout=5)

    def log_tails(self, lines=40):
        return "\n".join(f"----- {kind} port {p.port} log tail:\n{p.log_tail(lines)}"
                         for kind, group in (("sentinel", self.sentinels), ("redis", self.nodes))
                         for p in group)
