"""The package itself: installed and typed, the README's snippets as printed, the pieces
that need no server (slot tags, number texts, error translation), full memory and a server
without the module."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from typing import Any, List

import pytest
import redis
import redis.asyncio
import redis.crc
import redis.exceptions

import redis_session
from redis_session import (
    AsyncSessionStore,
    ModuleNotLoadedError,
    OutOfMemoryError,
    SessionError,
    SessionStore,
    WrongTypeError,
    cluster_index_key,
    key_slot,
    session_id,
    slot_tag,
)
from redis_session._codec import decimal_text, dumps, value_argument
from redis_session.errors import translate

from conftest import ROOT, Harness, Server

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(os.path.dirname(HERE), "README.md")


def test_the_installed_package_is_typed_and_not_the_source_tree() -> None:
    where = os.path.dirname(os.path.abspath(redis_session.__file__))
    assert not where.startswith(os.path.join(ROOT, "clients")), (
        f"tests must run against the installed package (pip install ./clients/python), not {where}"
    )
    assert os.path.isfile(os.path.join(where, "py.typed"))
    assert importlib.metadata.version("redis-session") == redis_session.__version__
    requires = importlib.metadata.requires("redis-session") or []
    assert any(re.match(r"^redis\s*>=\s*5", r) for r in requires), requires


def snippets() -> List[str]:
    with open(README, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_the_readme_snippets_work_as_printed(server: Any, cluster: Any) -> None:
    blocks = snippets()
    assert len(blocks) == 3
    # The snippets use users 150, 151 and 152: none of them has a session before.
    plain = redis.Redis(host="127.0.0.1", port=server.port)
    for user in (150, 151):
        plain.execute_command("SESSION.REVOKEINDEX", "user_id", user)
    plain.close()
    outputs = []
    for block in blocks:
        # As printed, but for the port: 6379 for a server, 7000 for a cluster node.
        code = block.replace("port=6379", f"port={server.port}").replace(
            "port=7000", f"port={cluster.primaries[0].port}"
        )
        assert code != block, "each snippet names a port"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, f"snippet failed:\n{block}\n{out.stderr}"
        outputs.append(out.stdout.splitlines())
    sync, aio, clustered = outputs
    assert sync[0] == "150 10.50"
    assert sorted(line.split()[1] for line in sync[1:3]) == ["browser", "phone"]
    assert all(re.match(r"^[0-9a-f]{12} ", line) for line in sync[1:3])
    assert sync[3:] == [
        "MAXSESSIONS 2 DENY: index 'user_id:150' already has 2 live sessions; nothing was written",
        "1",
        "None",
    ]
    assert aio == ["['admin']", "1"]
    assert clustered == ["152", "1"]


def test_slot_tags_and_index_keys_are_the_modules() -> None:
    # README "Cluster": {WJ} for slot 16038 (user_id:{150}), {06S} for "" (slot 0).
    assert slot_tag(16038) == "WJ" and key_slot("user_id:{150}") == 16038
    assert slot_tag(0) == "06S"
    for slot in range(16384):
        tag = slot_tag(slot)
        assert 1 <= len(tag) <= 3 and tag.isalnum() and key_slot(tag) == slot, slot
    for key in ["", "a", "{a}b", "a{}b", "{}{b}", "a{b{c}d}", "Zoë", "x" * 300, "{06S}x"]:
        assert key_slot(key) == redis.crc.key_slot(key.encode()), key
    assert cluster_index_key("", "user_id", "150") == "user_id:{150}"
    assert cluster_index_key("", "user_id", "") == "user_id:{06S}:"
    assert cluster_index_key("ix:", "user_id", "a{b}c") == "ix:user_id:{b}:a{b}c"
    assert key_slot(cluster_index_key("", "user_id", "}{")) == key_slot("}{")


def test_session_ids() -> None:
    import hashlib

    plain = "ab" * 24
    assert session_id(plain) == hashlib.sha256(plain.encode()).hexdigest()
    tagged = "{WJ}" + plain
    assert session_id(tagged) == "{WJ}" + hashlib.sha256(tagged.encode()).hexdigest()
    assert session_id(tagged.encode()) == session_id(tagged)
    assert session_id("{toolong}x") == hashlib.sha256(b"{toolong}x").hexdigest()


def test_numbers_are_written_with_their_digits() -> None:
    assert decimal_text(Decimal("0.10")) == "0.10"
    assert decimal_text(Decimal("1E+5")) == "1e+5"
    assert decimal_text(Decimal("-2.5E-30")) == "-2.5e-30"
    assert decimal_text(Decimal("-0")) == "-0"
    text = dumps({"a": Decimal("0.10"), "b": [Decimal("1E+400"), 2**70, 1.0, 1e16], "c": "é"})
    assert text == '{"a":0.10,"b":[1e+400,1180591620717411303424,1.0,1e+16],"c":"é"}'
    # A string that looks like the placeholder of a Decimal stays a string.
    sly = "\x01redis-session-decimal-0000000000000000:1:0000000000000000\x01"
    back = json.loads(dumps({"s": sly, "d": Decimal("1.0")}), parse_float=Decimal)
    assert back == {"s": sly, "d": Decimal("1.0")}
    assert value_argument(True) == "true" and value_argument(150) == "150"
    assert value_argument(Decimal("1.50")) == "1.50" and value_argument(b"\xff") == b"\xff"


def test_error_translation_keeps_other_errors() -> None:
    for other in ["NOPERM this user has no permissions", "READONLY You can't write", "odd"]:
        assert translate(redis.exceptions.ResponseError(other)) is None
    typed = translate(redis.exceptions.ResponseError("WRONGTYPE index key 'a:b' holds a value that is not a set"))
    assert isinstance(typed, WrongTypeError) and typed.key == "a:b"
    oom = translate(redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."))
    assert isinstance(oom, OutOfMemoryError) and isinstance(oom, redis.exceptions.OutOfMemoryError)


def test_stores_refuse_the_wrong_client() -> None:
    with pytest.raises(TypeError, match="AsyncSessionStore"):
        SessionStore(redis.asyncio.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SessionStore"):
        AsyncSessionStore(redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SessionStore("redis://127.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence"):
        SessionStore(redis.Redis(), indexes="user_id")


def test_full_memory_refuses_create_but_serves_sessions(standalone_run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        made = await s.create({"user_id": u})
        h.config_set("maxmemory", "1")
        try:
            with pytest.raises(OutOfMemoryError) as e:
                await s.create({"user_id": u})
            assert e.value.message == "command not allowed when used memory > 'maxmemory'."
            assert isinstance(e.value, redis.exceptions.OutOfMemoryError)
            with pytest.raises(OutOfMemoryError):
                await s.update(made["token"], {"x": 1})
            with pytest.raises(OutOfMemoryError):
                await s.rotate(made["token"])
            assert await s.validate(made["token"]) is not None
            assert len(await s.list("user_id", u)) == 1
            assert await s.destroy(made["token"]) is True
        finally:
            h.config_set("maxmemory", "0")

    standalone_run(scenario)


def test_a_server_without_the_module() -> None:
    bare = Server(module_args=None)
    try:
        store = SessionStore(redis.Redis(host="127.0.0.1", port=bare.port))
        with pytest.raises(ModuleNotLoadedError) as e:
            store.validate("0" * 48)
        assert e.value.message.startswith("unknown command 'SESSION.VALIDATE'")
        assert isinstance(e.value, SessionError)

        async def main() -> None:
            client = redis.asyncio.Redis(host="127.0.0.1", port=bare.port)
            try:
                with pytest.raises(ModuleNotLoadedError):
                    await AsyncSessionStore(client).create({"user_id": 1})
            finally:
                await client.aclose()

        asyncio.run(main())
    finally:
        bare.stop()
