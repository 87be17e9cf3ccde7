"""A private Redis Cluster for tests: 3 primaries and 3 replicas of the
machine's redis-server on free loopback ports, each in its own directory,
joined with `redis-cli --cluster create ... --cluster-replicas 1`."""

import shutil
import subprocess

from netutil import free_port, wait_until
from redis_proc import RedisServer

CLUSTER_FLAGS = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                 # A replica takes over whatever its data's age: the tests
                 # kill primaries under traffic on purpose.
                 "--cluster-replica-validity-factor", "0"]


class RedisCluster:
    def __init__(self, workdir, primaries=3, replicas=1, tls=None):
        """tls: (cert, key, ca) to give every node a TLS port too (tls_ports),
        with the cluster bus and replication over TLS; the plain ports stay
        for the tests' own commands."""
        self.workdir = workdir
        self.tls = tls
        self.tls_ports = []
        self.count = primaries * (1 + replicas)
        self.replicas = replicas
        self.nodes = []
        self.announced = {}   # port announced -> the node (see announce)
        self.cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"

    def start(self, timeout=30.0):
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        for i in range(self.count):
            # The nodes file is per directory: each node has its own. The
            # bus port is chosen too: the default (port + 10000) may be
            # past 65535 or taken.
            extra = [*CLUSTER_FLAGS, "--cluster-port", free_port()]
            if self.tls:
                self.tls_ports.append(free_port())
                cert, key, ca = self.tls
                extra += ["--tls-port", self.tls_ports[-1], "--tls-cert-file", cert,
                          "--tls-key-file", key, "--tls-ca-cert-file", ca,
                          "--tls-auth-clients", "no", "--tls-cluster", "yes",
                          "--tls-replication", "yes"]
            node = RedisServer(self.workdir / f"node{i}", extra=extra)
            self.nodes.append(node.start())
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        tls = ["--tls", "--cacert", self.tls[2]] if self.tls else []
        if self.tls:
            addrs = [f"127.0.0.1:{p}" for p in self.tls_ports]
        run = subprocess.run([self.cli, *tls, "--cluster", "create", *addrs,
                              "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                             capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0:
            raise AssertionError(f"redis-cli --cluster create failed:\n{run.stdout}{run.stderr}")
        wait_until(self._settled, timeout, interval=0.2, what="cluster state ok on every node")
        return self

    def _settled(self):
        """Every node says ok and knows every other node."""
        for n in self.nodes:
            info = n.command("CLUSTER", "INFO")
            if "cluster_state:ok" not in info or \
                    f"cluster_known_nodes:{self.count}" not in info:
                return False
        return True

    def primaries(self):
        """The running nodes that are primaries now, as RedisServer."""
        return [n for n in self.nodes if n.running() and
                n.command("ROLE")[0] == "master"]

    def node_at(self, port):
        """The node a client reaches at port: its own, or the one it announces."""
        return self.announced.get(port) or next(n for n in self.nodes if n.port == port)

    def announce(self, node, port=None):
        """node tells clients (CLUSTER SLOTS, redirections) that it is at port, a
        proxy's say, as `cluster-announce-port` does; None: at its own port
        again. Returns when every running node says so."""
        node.command("CONFIG", "SET", "cluster-announce-port", port or 0)
        self.announced = {p: n for p, n in self.announced.items() if n is not node}
        if port:
            self.announced[port] = node
        node_id, shown = node.command("CLUSTER", "MYID"), port or node.port

        def everywhere():
            return all(entry[1] == shown
                       for n in self.nodes if n.running()
                       for _, _, *entries in n.command("CLUSTER", "SLOTS")
                       for entry in entries if entry[2] == node_id)
        wait_until(everywhere, 15, interval=0.1, what=f"every node to show {node_id} at {shown}")

    @property
    def seeds(self):
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def owner_of(self, key):
        """The primary that serves key's slot now, as RedisServer."""
        return self.owner_of_slot(self.primaries()[0].command("CLUSTER", "KEYSLOT", key))

    def owner_of_slot(self, slot, asked=None):
        """The primary that serves slot according to asked (default: a primary)."""
        asked = asked or self.primaries()[0]
        for first, last, primary, *_ in asked.command("CLUSTER", "SLOTS"):
            if first <= slot <= last:
                return self.node_at(primary[1])
        raise AssertionError(f"no primary serves slot {slot}")

    def stop(self):
        for n in self.nodes:
            n.stop(timeout=5)

    def log_tails(self):
        return "\n".join(f"----- redis-server (cluster node, port {n.port}) log tail:\n"
                         f"{n.log_tail(30)}" for n in self.nodes)


def open_slot(slot, src, dst):
    """The first step of moving slot from primary src to dst: dst IMPORTING,
    src MIGRATING. Keys not on src any more are answered ASK from now on."""
    dst.command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.command("CLUSTER", "MYID"))
    src.command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.command("CLUSTER", "MYID"))


def migrate_keys(slot, src, dst, keys=None):
    """MIGRATEs keys (default: all of slot's on src) to dst in one step."""
    keys = src.command("CLUSTER", "GETKEYSINSLOT", slot, 1000) if keys is None else keys
    if keys:
        src.command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)


def close_slot(cluster, slot, src, dst):
    """The last step: slot is dst's (src answers MOVED from now on), once
    every primary says so."""
    dst_id = dst.command("CLUSTER", "MYID")
    dst.command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    src.command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    wait_until(lambda: all(cluster.owner_of_slot(slot, n) is dst for n in cluster.primaries()),
               10, interval=0.1, what=f"every primary to see slot {slot} on {dst.port}")


def move_slot(cluster, slot, src, dst):
    """Moves a slot from primary src to primary dst the way
    `redis-cli --cluster reshard` does, step by step."""
    open_slot(slot, src, dst)
    migrate_keys(slot, src, dst)
    close_slot(cluster, slot, src, dst)


def crc16(data):
    """Redis Cluster's key hash (CRC16-CCITT, XModem), as cluster_slots.c
    computes it."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def room_key(kind, room):
    """A room's key or channel under Redis Cluster (kind "room" is its shard
    channel): its hash tag is the room name's CRC16 in hex."""
    return f"chat:{kind}:{{{crc16(room.encode()):04x}}}{room}"


def shard_channels(node, pattern="chat:room:*"):
    """{shard channel: subscribers} of the channels matching pattern that
    node holds."""
    chans = node.command("PUBSUB", "SHARDCHANNELS", pattern)
    if not chans:
        return {}
    counts = node.command("PUBSUB", "SHARDNUMSUB", *chans)
    return dict(zip(counts[::2], counts[1::2]))
