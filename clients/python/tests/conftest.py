"""Real servers for the client's tests: a standalone redis-server with the module, and a
Redis Cluster of 3 primaries with a replica each (the harness of tests/cluster/conftest.py,
loaded from there, not copied), every one on free loopback ports in a temporary directory
of its own, stopped by pid at the end.

Each scenario is written once, as a coroutine over a `Harness`, and runs in every mode:
SessionStore and AsyncSessionStore, standalone and cluster, decode_responses True and False.

Environment: REDIS_SERVER (default `redis-server`), REDIS_SESSION_MODULE (default
target/release/libredis_session.so of this checkout).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

import redis_session
from redis_session import AsyncSessionStore, SessionStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _load_harness() -> Any:
    path = os.path.join(ROOT, "tests", "cluster", "conftest.py")
    spec = importlib.util.spec_from_file_location("_redis_session_cluster_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load_harness()
SERVER = harness.SERVER
MODULE = harness.MODULE
wait_for = harness.wait_for


class Server:
    """One standalone redis-server, the module loaded with `module_args` (or none)."""

    def __init__(self, module_args: Optional[Sequence[str]] = ("indexes", "user_id")) -> None:
        self.port = harness.free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-session-python.")
        args = [
            SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.dir,
            "--logfile", os.path.join(self.dir, "redis.log"),
            "--save", "",
            "--appendonly", "no",
        ]
        if module_args is not None:
            args += ["--loadmodule", MODULE, *module_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server on {self.port} exited: {self.log()}")
            return bool(self.client.ping())

        try:
            wait_for(f"redis-server on {self.port}", up)
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server() -> Any:
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def cluster() -> Any:
    c = harness.Cluster(primaries=3, replicas=1, module_args=("indexes", "user_id"))
    yield c
    c.stop()


def every_key_where_it_belongs(cluster: Any) -> int:
    """Every key on every primary is in a slot that primary serves, and every replica holds
    only keys of its primary's slots. Returns the number of keys seen on primaries."""
    owners = cluster.owner_map()
    by_port = {n.port: n for n in cluster.nodes}
    seen = 0
    for node in cluster.nodes:
        if not node.alive():
            continue
        info = node.client.info("replication")
        primary = node if info.get("role") == "master" else by_port[int(info["master_port"])]
        if node is not primary:
            node.client.execute_command("READONLY")
        for key in node.client.scan_iter(count=1000):
            slot = redis_session.key_slot(key)
            assert owners[slot] is primary, (
                f"{key!r} (slot {slot}) is on {node.port}, slot served by {owners[slot].port}"
            )
            if node is primary:
                seen += 1
    return seen


class AwaitableSync:
    """A SessionStore whose methods can be awaited, so that one scenario runs both stores."""

    def __init__(self, store: SessionStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return attr(*args, **kwargs)

        return call


class Harness:
    """What a scenario gets: `store` (methods awaited whatever the store), `raw` (a plain
    sync client, decode_responses=True, to look at keys), and helpers."""

    def __init__(self, mode: str, topology: str, decode: bool, target: Any) -> None:
        self.mode = mode
        self.topology = topology
        self.decode = decode
        self.target = target
        self.cluster = topology == "cluster"
        self._closers: List[Callable[[], Awaitable[None]]] = []
        if self.cluster:
            self.raw: Any = target.client()
        else:
            self.raw = redis.Redis(host="127.0.0.1", port=target.port, decode_responses=True)
        self.store: Any = None

    def client(self, decode: Optional[bool] = None) -> Any:
        """A new redis-py client of this mode (closed at the end)."""
        decode = self.decode if decode is None else decode
        if self.mode == "sync":
            if self.cluster:
                nodes = [redis.cluster.ClusterNode("127.0.0.1", n.port) for n in self.target.nodes if n.alive()]
                c: Any = redis.cluster.RedisCluster(startup_nodes=nodes, decode_responses=decode)
            else:
                c = redis.Redis(host="127.0.0.1", port=self.target.port, decode_responses=decode)

            async def close() -> None:
                c.close()

        else:
            if self.cluster:
                anodes = [
                    redis.asyncio.cluster.ClusterNode("127.0.0.1", n.port)
                    for n in self.target.nodes
                    if n.alive()
                ]
                c = redis.asyncio.cluster.RedisCluster(startup_nodes=anodes, decode_responses=decode)
            else:
                c = redis.asyncio.Redis(host="127.0.0.1", port=self.target.port, decode_responses=decode)

            async def close() -> None:
                await c.aclose()

        self._closers.append(close)
        return c

    def make_store(self, **kwargs: Any) -> Any:
        """A store of this mode on a new client, methods awaitable."""
        c = self.client(kwargs.pop("decode", None))
        if self.mode == "sync":
            return AwaitableSync(SessionStore(c, **kwargs))
        return AsyncSessionStore(c, **kwargs)

    def index_key(self, value: str, prop: str = "user_id") -> str:
        """The name the module gives the index key of `prop` = `value` here."""
        if self.cluster:
            return redis_session.cluster_index_key("", prop, value)
        return f"{prop}:{value}"

    def nodes(self) -> List[Any]:
        """Plain clients of every node (a standalone server is one node)."""
        if self.cluster:
            return [n.client for n in self.target.nodes if n.alive()]
        return [self.raw]

    def config_set(self, name: str, value: str) -> None:
        for node in self.nodes():
            node.config_set(name, value)

    def user(self) -> str:
        """A value of user_id no other test uses."""
        return f"u-{self.mode}-{self.topology}-{secrets.token_hex(4)}"

    async def close(self) -> None:
        for close in self._closers:
            await close()
        self.raw.close()


MODES = [
    pytest.param(("sync", "standalone", True), id="sync-standalone"),
    pytest.param(("async", "standalone", True), id="async-standalone"),
    pytest.param(("sync", "standalone", False), id="sync-standalone-bytes"),
    pytest.param(("async", "standalone", False), id="async-standalone-bytes"),
    pytest.param(("sync", "cluster", True), id="sync-cluster"),
    pytest.param(("async", "cluster", True), id="async-cluster"),
    pytest.param(("sync", "cluster", False), id="sync-cluster-bytes"),
    pytest.param(("async", "cluster", False), id="async-cluster-bytes"),
]


@pytest.fixture(params=MODES)
def run(request: Any) -> Callable[..., None]:
    """`run(scenario)`: runs `async def scenario(h)` in this mode. After a cluster scenario,
    every key on every node must be in a slot that node serves."""
    return _runner(request)


@pytest.fixture(params=MODES[4:])
def cluster_run(request: Any) -> Callable[..., None]:
    """`run` in the cluster modes only."""
    return _runner(request)


@pytest.fixture(params=MODES[:4])
def standalone_run(request: Any) -> Callable[..., None]:
    """`run` in the standalone modes only."""
    return _runner(request)


def _runner(request: Any) -> Callable[..., None]:
    mode, topology, decode = request.param
    target = request.getfixturevalue("cluster" if topology == "cluster" else "server")

    def go(scenario: Callable[[Harness], Awaitable[None]], **store_kwargs: Any) -> None:
        async def main() -> None:
            h = Harness(mode, topology, decode, target)
            try:
                h.store = h.make_store(**store_kwargs)
                await scenario(h)
            finally:
                await h.close()

        asyncio.run(main())
        if topology == "cluster":
            every_key_where_it_belongs(target)

    return go


def pytest_report_header(config: Any) -> str:
    out = subprocess.run([SERVER, "--version"], capture_output=True, text=True)
    return (
        f"redis-server: {out.stdout.strip()}\nmodule: {MODULE}\n"
        f"redis-py {redis.__version__}, redis_session {redis_session.__version__} from "
        f"{os.path.dirname(redis_session.__file__)}\npython {sys.version.split()[0]}"
    )


def session_data(reply: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in reply.items() if k not in ("token", "sessionId")}
