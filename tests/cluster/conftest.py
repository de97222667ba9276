"""A real Redis Cluster on loopback ports for the cluster tests.

Each `Cluster` starts its own redis-server processes (3 primaries with a replica each by
default, cluster mode, the module loaded on every one), in a temporary directory of its
own, on free loopback ports, joins them with CLUSTER ADDSLOTSRANGE / MEET / REPLICATE, waits
until every node says `cluster_state:ok` and every replica is in sync, and stops every
process it started, by pid, at the end.

Environment: REDIS_SERVER (default `redis-server`), REDIS_SESSION_MODULE (default
target/release/libredis_session.so).
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = os.environ.get("REDIS_SERVER", "redis-server")
MODULE = os.environ.get(
    "REDIS_SESSION_MODULE", os.path.join(ROOT, "target", "release", "libredis_session.so")
)


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Ports handed out in this run: the kernel may offer a port again once its probe socket is
# closed, before the server started on it has bound it.
HANDED_OUT = set()


def free_port():
    """A port that is free, and whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        taken = {port, port + 10000} & {q for p in HANDED_OUT for q in (p, p + 10000)}
        if port < 55000 and not taken and port_is_free(port + 10000):
            HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port pair found")


def wait_for(what, check, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (redis.RedisError, OSError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Node:
    def __init__(self, cluster_dir, module_args):
        self.port = free_port()
        self.dir = os.path.join(cluster_dir, str(self.port))
        os.makedirs(self.dir)
        args = [
            SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.dir,
            "--logfile", os.path.join(self.dir, "redis.log"),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000",
            "--save", "",
            "--appendonly", "no",
            "--enable-debug-command", "local",
            "--loadmodule", MODULE, *module_args,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)
        self.id = None

    def alive(self):
        return self.proc.poll() is None

    def wait_up(self):
        def up():
            if not self.alive():
                raise AssertionError(f"redis-server on {self.port} exited; log: {self.log()}")
            return self.client.ping()

        wait_for(f"node {self.port}", up)
        self.id = self.client.execute_command("CLUSTER", "MYID")

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()

    def kill(self):
        """SIGKILL: a primary that dies without a word."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def info(self, section):
        return self.client.info(section)


class Cluster:
    def __init__(self, primaries=3, replicas=1, module_args=("indexes", "user_id")):
        self.dir = tempfile.mkdtemp(prefix="redis-session-cluster.")
        self.primaries = []
        self.replicas = []
        try:
            self.primaries = [Node(self.dir, module_args) for _ in range(primaries)]
            self.replicas = [Node(self.dir, module_args) for _ in range(primaries * replicas)]
            for node in self.nodes:
                node.wait_up()
            self._join(replicas)
        except BaseException:
            self.stop()
            raise

    @property
    def nodes(self):
        return self.primaries + self.replicas

    def _join(self, replicas):
        n = len(self.primaries)
        per = 16384 // n
        for i, node in enumerate(self.primaries):
            start = i * per
            end = 16383 if i == n - 1 else start + per - 1
            node.client.execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
        first = self.primaries[0]
        for node in self.nodes[1:]:
            node.client.execute_command("CLUSTER", "MEET", "127.0.0.1", first.port)
        ids = {node.id for node in self.nodes}

        def everyone_known():
            for node in self.nodes:
                known = {
                    line.split()[0]
                    for line in node.client.execute_command("CLUSTER", "NODES").splitlines()
                }
                if not ids <= known:
                    return False
            return True

        wait_for("every node to know every other", everyone_known)
        for i, replica in enumerate(self.replicas):
            primary = self.primaries[i // replicas]
            replica.client.execute_command("CLUSTER", "REPLICATE", primary.id)
        self.wait_ok()

    def wait_ok(self, timeout=30.0):
        """Every live node says cluster_state:ok and agrees on every slot; replicas in sync."""

        def ok():
            for node in self.nodes:
                if not node.alive():
                    continue
                info = node.client.execute_command("CLUSTER", "INFO")
                if "cluster_state:ok" not in info:
                    return False
            for replica in self.replicas:
                if not replica.alive():
                    continue
                role = replica.client.info("replication")
                if role.get("role") == "slave" and role.get("master_link_status") != "up":
                    return False
            return True

        wait_for("cluster_state:ok", ok, timeout=timeout)

    def wait_replicas_synced(self, timeout=30.0):
        """Every live replica has applied everything its primary has written so far, by
        replication offsets. (`WAIT` is no barrier here: it waits for the writes of its own
        connection only, and a fresh connection has made none.)"""
        by_port = {n.port: n for n in self.nodes}

        def synced():
            for replica in self.replicas:
                if not replica.alive():
                    continue
                info = replica.client.info("replication")
                if info.get("role") != "slave":
                    continue
                primary = by_port.get(int(info["master_port"]))
                if primary is None or not primary.alive():
                    continue
                target = primary.client.info("replication")["master_repl_offset"]
                if info.get("master_link_status") != "up" or info["slave_repl_offset"] < target:
                    return False
            return True

        wait_for("replicas in sync with their primaries", synced, timeout=timeout)

    def client(self, **kwargs):
        live = [n for n in self.nodes if n.alive()]
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in live],
            decode_responses=True,
            **kwargs,
        )

    def owner_map(self):
        """slot -> the primary Node serving it, by CLUSTER SLOTS of a live primary."""
        by_port = {n.port: n for n in self.nodes}
        node = next(n for n in self.primaries if n.alive())
        owners = {}
        for entry in node.client.execute_command("CLUSTER", "SLOTS"):
            start, end, primary = entry[0], entry[1], entry[2]
            for slot in range(start, end + 1):
                owners[slot] = by_port[int(primary[1])]
        return owners

    def live_primaries(self):
        """The nodes that are primaries now (a replica may have been promoted)."""
        out = []
        for node in self.nodes:
            if node.alive() and node.client.info("replication").get("role") == "master":
                out.append(node)
        return out

    def stop(self):
        for node in self.nodes:
            try:
                node.stop()
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.stop()


@pytest.fixture
def own_cluster():
    """A cluster for one test (resharding, failover)."""
    made = []

    def make(**kwargs):
        c = Cluster(**kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()
