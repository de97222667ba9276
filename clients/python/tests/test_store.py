"""Every method of SessionStore and AsyncSessionStore against real servers, in every mode
(sync and async, standalone and cluster, decode_responses True and False): see `run` in
conftest.py. The command pages in docs/commands/ are the contract."""

from __future__ import annotations

import asyncio
import json
import secrets
from decimal import Decimal
from typing import Any

import pytest
import redis
import redis.exceptions
from redis.exceptions import RedisClusterException

import redis_session
from redis_session import (
    CrossSlotError,
    DataTooDeepError,
    DataTooLargeError,
    InvalidDataError,
    InvalidIndexValueError,
    InvalidJSONError,
    InvalidOptionError,
    ReservedPropertyError,
    SecondaryIndexError,
    SessionError,
    SessionLimitError,
    UnknownIndexError,
    WrongTypeError,
    session_id,
)

from conftest import Harness, session_data

UNKNOWN = "0123456789abcdef0123456789abcdef"


def nested(levels: int) -> Any:
    data: Any = {}
    for _ in range(levels - 1):
        data = {"a": data}
    return data


def test_every_method(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        a = await s.create({"user_id": u, "role": "admin"}, ttl=300, max_lifetime=3600)
        token = a["token"]
        assert list(a) == ["token", "user_id", "role", "createdAt"]
        assert isinstance(token, str) and a["user_id"] == u and a["role"] == "admin"
        assert 295_000 <= h.raw.pttl(token) <= 300_000
        if h.cluster:
            # Routed by ROUTE user_id:{u}: the token carries the slot of the value.
            assert redis_session.key_slot(token) == redis_session.key_slot(u)
        b = await s.create({"user_id": u, "device": "phone"})
        data = {"user_id": u, "role": "admin", "createdAt": a["createdAt"]}
        assert await s.validate(token) == data
        assert await s.get(token) == data
        updated = await s.update(token, {"role": None, "lang": "en"})
        assert updated == {"user_id": u, "createdAt": a["createdAt"], "lang": "en"}
        assert await s.get(token) == updated

        listed = await s.list("user_id", u)
        assert sorted(x["token"] for x in listed) == sorted([token, b["token"]])
        for x in listed:
            assert list(x)[:2] == ["token", "sessionId"]
            assert x["sessionId"] == session_id(x["token"])
        assert h.raw.smembers(h.index_key(u)) == {token, b["token"]}

        rotated = await s.rotate(token)
        new = rotated["token"]
        assert new != token and session_data(rotated) == updated
        assert await s.validate(token) is None
        assert await s.validate(new) == updated

        assert await s.revoke_id("user_id", u, session_id(b["token"])) is True
        assert await s.revoke_id("user_id", u, session_id(b["token"])) is False
        assert await s.validate(b["token"]) is None

        c = await s.create({"user_id": u})
        assert await s.revoke_index("user_id", u, except_token=new) == 1
        assert await s.validate(c["token"]) is None
        assert await s.validate(new) == updated

        assert await s.destroy(new) is True
        assert await s.destroy(new) is False
        assert await s.list("user_id", u) == []
        assert await s.revoke_index("user_id", u) == 0
        assert h.raw.exists(h.index_key(u)) == 0

    run(scenario)


def test_unknown_tokens_are_none_not_errors(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s = h.store
        for token in [UNKNOWN, "hello", UNKNOWN * 2]:
            assert await s.validate(token) is None
            assert await s.get(token) is None
            assert await s.update(token, {"a": 1}) is None
            assert await s.rotate(token) is None
            assert await s.rotate(token, grace=10) is None
            assert await s.destroy(token) is False
        assert await s.list("user_id", h.user()) == []
        assert await s.revoke_id("user_id", h.user(), session_id(UNKNOWN)) is False

    run(scenario)


def test_numbers_and_values_round_trip_exactly(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        data = {
            "user_id": u,
            "big": 2**70,
            "negative": -(2**70),
            "dec": Decimal("0.10"),
            "one": 1.0,
            "f": 0.1,
            "exp": Decimal("1E+5"),
            "small": Decimal("-2.5E-30"),
            "nested": {"a": [Decimal("1.50"), [], {}], "e": []},
            "text": "Zoë 🦀 \"quoted\" \\ \n",
            "t": True,
            "n": None,
        }
        created = await s.create(data)
        token = created["token"]
        got = await s.validate(token)
        assert list(got) == list(data) + ["createdAt"]
        assert type(got["big"]) is int and got["big"] == 2**70
        assert got["negative"] == -(2**70)
        assert isinstance(got["dec"], Decimal) and str(got["dec"]) == "0.10"
        assert isinstance(got["one"], Decimal) and str(got["one"]) == "1.0"
        assert str(got["f"]) == "0.1"
        assert str(got["exp"]) == "1E+5" and str(got["small"]) == "-2.5E-30"
        assert got["nested"] == {"a": [Decimal("1.50"), [], {}], "e": []}
        assert str(got["nested"]["a"][0]) == "1.50"
        assert got["text"] == data["text"] and got["t"] is True and got["n"] is None
        # What the server stores is the exact text: digits, exponents as the module writes them.
        stored = h.raw.get(token)
        assert '"big":1180591620717411303424,' in stored
        assert '"dec":0.10,"one":1.0,"f":0.1,"exp":1e+5,"small":-2.5e-30,' in stored
        assert created == {"token": token, **got}

        patched = await s.update(token, {"dec": Decimal("2.500"), "big": 2**80 + 1})
        assert str(patched["dec"]) == "2.500" and patched["big"] == 2**80 + 1

        # Numbers as index values: the index key holds the number's text.
        n = secrets.randbelow(10**9)
        for value in [Decimal(f"{n}.50"), n + 0.25, 2**70 + n, True]:
            made = await s.create({"user_id": value, "k": 1})
            listed = await s.list("user_id", value)
            assert [x["token"] for x in listed] == [made["token"]], value
            text = redis_session._codec.value_argument(value)
            assert h.raw.smembers(h.index_key(str(text))) == {made["token"]}
            assert await s.revoke_index("user_id", value) == 1

        # JSON text is sent as it is (and routed by its primary value on a cluster).
        raw = await s.create('{"user_id":"%s","x":1E5,"y":12345678901234567890123}' % u)
        assert raw["x"] == Decimal("1e5") and raw["y"] == 12345678901234567890123
        assert '"x":1e+5,"y":12345678901234567890123,' in h.raw.get(raw["token"])
        assert len(await s.list("user_id", u)) == 2
        assert await s.revoke_index("user_id", u) == 2

    run(scenario)


def test_parse_float_can_be_float(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s = h.make_store(parse_float=float)
        made = await s.create({"user_id": h.user(), "x": Decimal("0.10"), "big": 2**70})
        got = await s.validate(made["token"])
        assert type(got["x"]) is float and got["x"] == 0.1 and got["big"] == 2**70
        assert await s.destroy(made["token"]) is True

    run(scenario)


def test_error_replies_are_typed_and_carry_the_message(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()

        async def fails(kind: type, coro: Any) -> Any:
            with pytest.raises(kind) as e:
                await coro
            assert isinstance(e.value, SessionError)
            assert isinstance(e.value, redis.exceptions.ResponseError)
            assert str(e.value) == e.value.message
            return e.value

        e = await fails(ReservedPropertyError, s.create({"user_id": u, "token": "x"}))
        assert e.message == "data must not contain the reserved property 'token'"
        assert e.property == "token" and isinstance(e, InvalidDataError) and isinstance(e, ValueError)
        e = await fails(ReservedPropertyError, s.create({"user_id": u, "sessionId": "x"}))
        assert e.property == "sessionId"
        e = await fails(DataTooLargeError, s.create({"user_id": u, "x": "a" * 70000}))
        assert e.message == "data is larger than max-data-bytes (65536 bytes)" and e.max_bytes == 65536
        e = await fails(DataTooDeepError, s.create({"user_id": u, "deep": nested(100)}))
        assert e.message == "data is nested more than 100 levels deep"
        e = await fails(InvalidJSONError, s.create("not json"))
        assert e.message == "data is not valid JSON: expected ident at line 1 column 2"
        e = await fails(InvalidDataError, s.create("[1,2]"))
        assert e.message == "data must be a JSON object"
        e = await fails(InvalidIndexValueError, s.create({"user_id": {"id": 1}}))
        assert e.message == "indexed property 'user_id' must be a string, number, boolean or null"
        assert e.property == "user_id"

        e = await fails(InvalidOptionError, s.create({"user_id": u}, ttl=0))
        assert e.message == "TTL must be a whole number from 1 to 315360000"
        e = await fails(InvalidOptionError, s.create({"user_id": u}, ttl="abc"))
        assert e.message == "TTL must be a whole number from 1 to 315360000"
        e = await fails(InvalidOptionError, s.create({"user_id": u}, max_lifetime=-1))
        assert e.message == "MAXLIFETIME must be a whole number from 0 to 315360000"
        e = await fails(InvalidOptionError, s.create({"user_id": u}, max_sessions=0))
        assert e.message == "MAXSESSIONS must be a whole number from 1 to 1000000"
        e = await fails(InvalidOptionError, s.create({"user_id": u}, deny=True))
        assert e.message.startswith("unknown option 'DENY'")
        e = await fails(InvalidOptionError, s.create({"guest": True}, max_sessions=2))
        assert e.message.startswith("MAXSESSIONS needs a value of an index")

        made = await s.create({"user_id": u})
        token = made["token"]
        e = await fails(InvalidOptionError, s.rotate(token, grace=301))
        assert e.message == "GRACE must be a whole number from 0 to 300"
        e = await fails(InvalidOptionError, s.rotate(token, grace="soon"))
        e = await fails(InvalidJSONError, s.update(token, "nope"))
        e = await fails(InvalidJSONError, s.update(UNKNOWN, "nope"))  # checked even then
        e = await fails(ReservedPropertyError, s.update(token, {"token": None}))
        e = await fails(InvalidIndexValueError, s.update(token, {"user_id": [1]}))
        e = await fails(DataTooLargeError, s.update(token, {"x": "a" * 70000}))

        for call in (s.list("email", "a@b.c"), s.revoke_index("email", "a@b.c"),
                     s.revoke_id("email", "a@b.c", session_id(token))):
            e = await fails(UnknownIndexError, call)
            assert e.message == "property 'email' is not a configured index (see session.indexes)"
            assert e.property == "email"

        # An index key of another type: WRONGTYPE, and nothing written.
        other = h.user()
        h.raw.set(h.index_key(other), "hello")
        try:
            e = await fails(WrongTypeError, s.create({"user_id": other}))
            assert e.message == f"WRONGTYPE index key '{h.index_key(other)}' holds a value that is not a set"
            assert e.key == h.index_key(other) and e.code == "WRONGTYPE"
            await fails(WrongTypeError, s.list("user_id", other))
            await fails(WrongTypeError, s.revoke_index("user_id", other))
            assert h.raw.get(h.index_key(other)) == "hello"
        finally:
            h.raw.delete(h.index_key(other))

        # Every refusal above wrote nothing: one session of u, still as it was.
        assert [x["token"] for x in await s.list("user_id", u)] == [token]
        assert await s.validate(token) == session_data(made)
        assert await s.destroy(token) is True

    run(scenario)


def test_values_the_client_cannot_send_are_refused_before_sending(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        for bad in [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity")]:
            with pytest.raises(InvalidDataError):
                await s.create({"user_id": u, "x": bad})
            with pytest.raises(InvalidDataError):
                await s.update(UNKNOWN, {"x": [bad]})
        with pytest.raises(InvalidDataError, match="too deep"):
            await s.create({"user_id": u, "deep": nested(5000)})
        with pytest.raises(TypeError):
            await s.create(5)
        with pytest.raises(TypeError):
            await s.create(["user_id", u])
        with pytest.raises(TypeError):
            await s.create({"user_id": u, "when": object()})
        with pytest.raises(TypeError):
            await s.create({"user_id": u}, ttl=True)
        with pytest.raises(TypeError):
            await s.create({"user_id": u}, ttl=1.5)
        with pytest.raises(TypeError):
            await s.list("user_id", None)
        with pytest.raises(TypeError):
            await s.list("user_id", {"a": 1})
        with pytest.raises(InvalidDataError):
            await s.revoke_index("user_id", float("nan"))
        assert await s.list("user_id", u) == []

    run(scenario)


def test_maxsessions_ends_the_nearest_and_deny_refuses(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        made = [await s.create({"user_id": u, "n": i}, ttl=100 + i, max_sessions=3) for i in range(3)]
        fourth = await s.create({"user_id": u, "n": 3}, ttl=200, max_sessions=3)
        listed = await s.list("user_id", u)
        assert sorted(x["n"] for x in listed) == [1, 2, 3]
        assert await s.validate(made[0]["token"]) is None
        with pytest.raises(SessionLimitError) as e:
            await s.create({"user_id": u, "n": 4}, max_sessions=3, deny=True)
        assert e.value.message == (
            f"MAXSESSIONS 3 DENY: index '{h.index_key(u)}' already has 3 live sessions; "
            "nothing was written"
        )
        assert (e.value.limit, e.value.index_key, e.value.live) == (3, h.index_key(u), 3)
        assert len(await s.list("user_id", u)) == 3
        fifth = await s.create({"user_id": u, "n": 5}, max_sessions=4, deny=True)
        assert len(await s.list("user_id", u)) == 4
        assert await s.validate(fourth["token"]) is not None
        assert await s.validate(fifth["token"]) is not None
        assert await s.revoke_index("user_id", u) == 4

    run(scenario)


def test_concurrent_logins_never_overshoot_maxsessions(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        u = h.user()
        if h.mode == "async":
            stores = [h.make_store() for _ in range(4)]
            made = await asyncio.gather(
                *(stores[i % 4].create({"user_id": u, "i": i}, max_sessions=3) for i in range(20))
            )
        else:
            made = [await h.store.create({"user_id": u, "i": i}, max_sessions=3) for i in range(20)]
        assert len({m["token"] for m in made}) == 20
        live = [m for m in made if await h.store.get(m["token"]) is not None]
        assert len(live) == 3
        assert len(await h.store.list("user_id", u)) == 3
        assert await h.store.revoke_index("user_id", u) == 3

    run(scenario)


def test_rotate_with_grace(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        made = await s.create({"user_id": u, "role": "user"})
        old = made["token"]
        rotated = await s.rotate(old, grace=30)
        new = rotated["token"]
        assert new != old and list(rotated)[0] == "token"
        assert session_data(rotated) == session_data(made)
        if h.cluster:
            assert redis_session.key_slot(new) == redis_session.key_slot(old)
        # The old token reads the current data, read-only, for at most 30 s.
        assert 0 < h.raw.pttl(old) <= 30_000
        assert await s.validate(old) == session_data(made)
        assert (await s.update(new, {"role": "admin"}))["role"] == "admin"
        assert (await s.validate(old))["role"] == "admin"
        assert (await s.get(old))["role"] == "admin"
        assert await s.update(old, {"role": "root"}) is None
        assert await s.rotate(old) is None
        assert [x["token"] for x in await s.list("user_id", u)] == [new]
        # A logout with the old cookie still logs out: both tokens end.
        assert await s.destroy(old) is True
        assert await s.validate(new) is None and await s.validate(old) is None

        again = await s.create({"user_id": u})
        moved = await s.rotate(again["token"], grace=0)
        assert await s.validate(again["token"]) is None
        assert await s.validate(moved["token"]) is not None
        assert h.raw.exists(again["token"]) == 0

        # The window closes: after GRACE 1, the old token is unknown (in one mode: it sleeps).
        if h.mode == "sync" and not h.cluster and h.decode:
            short = await s.rotate(moved["token"], grace=1)
            assert await s.validate(moved["token"]) is not None
            await asyncio.sleep(1.1)
            assert await s.validate(moved["token"]) is None
            assert await s.validate(short["token"]) is not None
        assert await s.revoke_index("user_id", u) == 1

    run(scenario)


def test_hashed_tokens_list_and_revoke_id(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        h.config_set("session.token-hash", "sha256")
        try:
            t1 = (await s.create({"user_id": u, "device": "laptop"}))["token"]
            t2 = (await s.create({"user_id": u, "device": "phone"}))["token"]
            # No key or index member holds a token: the index holds the identifiers.
            assert h.raw.exists(t1) == 0 and h.raw.exists(t2) == 0
            assert h.raw.smembers(h.index_key(u)) == {session_id(t1), session_id(t2)}
            listed = await s.list("user_id", u)
            assert all("token" not in x for x in listed)
            assert sorted(x["sessionId"] for x in listed) == sorted([session_id(t1), session_id(t2)])
            assert {x["device"] for x in listed} == {"laptop", "phone"}
            assert await s.revoke_id("user_id", u, session_id(t1)) is True
            assert await s.validate(t1) is None
            assert (await s.validate(t2))["device"] == "phone"
            assert await s.revoke_id("user_id", u, t2) is False  # a token is no identifier
            assert await s.revoke_id("user_id", u, session_id(t1)) is False
            assert await s.revoke_id("user_id", h.user(), session_id(t2)) is False
            rotated = (await s.rotate(t2, grace=5))["token"]
            assert (await s.validate(rotated))["device"] == "phone"
            assert (await s.validate(t2))["device"] == "phone"
            assert [x["sessionId"] for x in await s.list("user_id", u)] == [session_id(rotated)]
        finally:
            h.config_set("session.token-hash", "none")
        # Switching back loses nothing: the hashed session still validates and revokes.
        assert await s.validate(rotated) is not None
        assert await s.revoke_index("user_id", u) == 1
        assert await s.validate(t2) is None

    run(scenario)


HOSTILE_TOKENS: Any = [
    "", " ", "a" * 31, "A" * 48, "g" * 48, "0" * 48 + "\n", "0" * 48 + "\x00", "0" * 257,
    "é" * 24, b"\xff\xfe" * 24, "*", "user_id:1", "session-secret", "{", "{}", "}{",
    "{abc}" + "0" * 48, "{toolong}" + "0" * 48, "{WJ}" + "0" * 48, "x" * (1 << 20),
]


def test_hostile_arguments(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        a = await s.create({"user_id": u})
        b = await s.create({"user_id": u})
        for token in HOSTILE_TOKENS:
            assert await s.validate(token) is None, token
            assert await s.get(token) is None, token
            assert await s.update(token, {"x": 1}) is None, token
            assert await s.rotate(token, grace=10) is None, token
            assert await s.destroy(token) is False, token
            assert await s.revoke_index("user_id", h.user(), except_token=token) == 0
            assert await s.revoke_id("user_id", u, token) is False
        for value in ["", "a{b}c", "}{", "{06S}", "x" * 100_000, "\x00", "\n"]:
            assert await s.list("user_id", value) == [], value
            assert await s.revoke_index("user_id", value) == 0, value
        for prop in ["", "user_id\x00", "USER_ID", "user_id ", "x" * 10_000]:
            with pytest.raises(UnknownIndexError):
                await s.list(prop, u)
            with pytest.raises(UnknownIndexError):
                await s.revoke_index(prop, u)
        # Hostile data keeps its exact bytes; property names with braces, NUL, newlines.
        odd = {"user_id": u, "{x}": "}{", "\x00": "\n", "ROUTE": "TTL", "": [None]}
        c = await s.create(odd)
        assert session_data(await s.get(c["token"])) == {**odd, "createdAt": c["createdAt"]}
        # An EXCEPT token in capitals spares nothing: all three end.
        assert await s.revoke_index("user_id", u, except_token=a["token"].upper()) == 3
        assert await s.validate(b["token"]) is None
        for node in h.nodes():
            assert node.ping() is True

    run(scenario)


def test_odd_values_route_to_the_slot_of_the_value(run: Any) -> None:
    """An empty value or one holding braces: the index key takes the slot tag of the value
    (docs/cluster.md); the store computes that very key for ROUTE."""

    async def scenario(h: Harness) -> None:
        s = h.store
        for value in ["", "a{b}c", "}{", "{06S}", "{}", "Zoë", "x y", "{" + secrets.token_hex(3) + "}"]:
            await s.revoke_index("user_id", value)
            made = await s.create({"user_id": value, "v": value})
            token = made["token"]
            if h.cluster:
                assert redis_session.key_slot(token) == redis_session.key_slot(value), value
            assert h.raw.smembers(h.index_key(value)) == {token}, (value, h.index_key(value))
            assert [x["token"] for x in await s.list("user_id", value)] == [token]
            assert await s.revoke_index("user_id", value) == 1
            assert await s.validate(token) is None

    run(scenario)


def test_a_session_without_index_value(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s = h.store
        made = await s.create({"guest": True, "user_id": None})
        assert (await s.validate(made["token"]))["guest"] is True
        assert (await s.update(made["token"], {"cart": [1, 2]}))["cart"] == [1, 2]
        assert await s.destroy(made["token"]) is True

    run(scenario)


def test_given_indexes_need_no_config(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s = h.make_store(indexes=["user_id"], index_prefix="")
        u = h.user()
        made = await s.create({"user_id": u})
        assert [x["token"] for x in await s.list("user_id", u)] == [made["token"]]
        assert await s.revoke_index("user_id", u) == 1
        assert await s.refresh_indexes() == (("user_id",), "")

    run(scenario)


def test_a_changed_indexes_setting_is_read_again(run: Any) -> None:
    """The store read `indexes` (user_id) at its first CREATE; after CONFIG SET
    session.indexes device,user_id the primary index is device: the first CREATE routed by
    user_id answers CROSSSLOT (or cannot be routed), the store reads the setting again and
    creates in the slot of the device."""

    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        first = await s.create({"user_id": u})
        device = next(
            d for d in (f"d-{secrets.token_hex(4)}" for _ in range(100))
            if redis_session.key_slot(d) // 5462 != redis_session.key_slot(u) // 5462
        )
        h.config_set("session.indexes", "device,user_id")
        try:
            if h.cluster:
                # Without reading the setting again (indexes given), the CREATE fails.
                fixed = h.make_store(indexes=["user_id"])
                with pytest.raises((CrossSlotError, RedisClusterException)):
                    await fixed.create({"user_id": u, "device": device})
            made = await s.create({"user_id": u, "device": device})
            if h.cluster:
                assert redis_session.key_slot(made["token"]) == redis_session.key_slot(device)
            assert [x["token"] for x in await s.list("device", device)] == [made["token"]]
            guest = await s.create({"device": device + "x"})
            assert await s.destroy(guest["token"]) is True
            assert await s.destroy(made["token"]) is True
        finally:
            h.config_set("session.indexes", "user_id")
        assert await s.destroy(first["token"]) is True

    run(scenario)


def test_cluster_only_errors(cluster_run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        made = await s.create({"user_id": u})
        with pytest.raises(CrossSlotError) as e:
            await s.update(made["token"], {"user_id": u + "-moved"})
        assert isinstance(e.value, redis.exceptions.ClusterCrossSlotError)
        assert e.value.message.startswith("the patch moves the session to the primary index")
        assert (await s.get(made["token"]))["user_id"] == u
        h.config_set("session.indexes", "user_id,tenant_id")
        try:
            with pytest.raises(SecondaryIndexError) as e2:
                await s.list("tenant_id", "acme")
            assert e2.value.message.startswith(
                "in cluster mode only the first property of session.indexes ('user_id')"
            )
            assert isinstance(e2.value, UnknownIndexError)
            with pytest.raises(SecondaryIndexError):
                await s.revoke_index("tenant_id", "acme")
        finally:
            h.config_set("session.indexes", "user_id")
        assert await s.revoke_index("user_id", u) == 1

    cluster_run(scenario)


def test_sessions_spread_over_every_shard(run: Any) -> None:
    async def scenario(h: Harness) -> None:
        s = h.store
        users = [h.user() for _ in range(30)]
        tokens: Any = {}
        for u in users:
            tokens[u] = [(await s.create({"user_id": u, "n": i}))["token"] for i in range(2)]
        if h.cluster:
            owners = h.target.owner_map()
            holding = {owners[redis_session.key_slot(u)].port for u in users}
            for u in users:
                assert h.raw.scard(h.index_key(u)) == 2
            assert len(holding) == 3, "sessions on every primary"
        for u, ts in tokens.items():
            assert sorted(x["token"] for x in await s.list("user_id", u)) == sorted(ts)
            for t in ts:
                assert await s.validate(t) is not None
            assert await s.revoke_index("user_id", u) == 2

    run(scenario)


def test_json_of_replies_is_what_the_server_sent(run: Any) -> None:
    """The store's dicts are json.loads of the replies (Decimal for fractions): compare with
    a plain execute_command."""

    async def scenario(h: Harness) -> None:
        s, u = h.store, h.user()
        made = await s.create({"user_id": u, "x": Decimal("3.140"), "y": [1, {"z": None}]})
        plain = h.raw.execute_command("SESSION.GET", made["token"])
        assert await s.get(made["token"]) == json.loads(plain, parse_float=Decimal)
        assert await s.destroy(made["token"]) is True

    run(scenario)


def test_create_follows_moved_when_a_slot_has_moved(cluster_run: Any) -> None:
    """The store sends CREATE to the node its client believes serves the ROUTE key; after an
    (empty) slot moved to another primary, that node answers MOVED, which redis-py follows
    (finding the key again by COMMAND GETKEYS, which names the ROUTE key)."""

    async def scenario(h: Harness) -> None:
        s = h.store
        await s.create({"user_id": h.user()})  # the client's slot map and the indexes, cached
        while True:
            u = h.user()
            slot = redis_session.key_slot(u)
            owners = h.target.owner_map()
            src = owners[slot]
            if src.client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0:
                break
        dst = next(p for p in h.target.live_primaries() if p is not src)
        dst.client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
        src.client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.id)
        dst.client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst.id)
        src.client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst.id)

        def agreed() -> bool:
            for node in h.target.nodes:
                for start, end, primary, *_ in node.client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end and int(primary[1]) != dst.port:
                        return False
            return True

        h.target.wait_ok()
        from conftest import wait_for

        wait_for("every node to see the slot moved", agreed)

        def moved() -> int:
            stats = src.client.info("errorstats").get("errorstat_MOVED", {})
            return int(stats.get("count", 0)) if isinstance(stats, dict) else 0

        before = moved()
        made = await s.create({"user_id": u})
        assert moved() > before, "the CREATE went to the old owner first"
        assert h.target.owner_map()[redis_session.key_slot(made["token"])] is dst
        assert dst.client.smembers(h.index_key(u)) == {made["token"]}
        assert await s.validate(made["token"]) is not None
        assert await s.revoke_index("user_id", u) == 1

    cluster_run(scenario)
