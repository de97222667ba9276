"""redis-session on a real Redis Cluster (3 primaries, a replica each), through redis-py's
RedisCluster and redis-cli -c: placement, routing, redirections, resharding and failover.
docs/cluster.md is the contract these hold to."""

import hashlib
import json
import subprocess
import threading
import time

import pytest
import redis
from redis.crc import key_slot

from conftest import Cluster, wait_for


def index_key(value):
    """`user_id:{<value>}`: the index key of a plain value in cluster mode (README)."""
    return f"user_id:{{{value}}}"


def create(rc, data, *options, route=None):
    """SESSION.CREATE through RedisCluster, routed by ROUTE (the primary index key)."""
    args = ["SESSION.CREATE", json.dumps(data), *options]
    if route is not None:
        args += ["ROUTE", route]
    return json.loads(rc.execute_command(*args))


def token_slot(token):
    return key_slot(token.encode())


def session_id(token):
    """LIST's sessionId (docs/security.md "Hashed tokens"): the token's slot tag, then the hex
    SHA-256 of the whole token."""
    tag = token[: token.index("}") + 1] if token.startswith("{") else ""
    return tag + hashlib.sha256(token.encode()).hexdigest()


def every_key_where_it_belongs(cluster):
    """Every key on every primary is in a slot that primary serves (and replicas hold their
    primary's keys only). Returns the number of keys seen."""
    owners = cluster.owner_map()
    seen = 0
    for node in cluster.live_primaries():
        for key in node.client.scan_iter(count=1000):
            slot = key_slot(key.encode())
            assert owners[slot] is node, (
                f"{key!r} (slot {slot}) is on {node.port}, served by {owners[slot].port}"
            )
            seen += 1
    return seen


def test_every_command_through_redis_py(cluster):
    rc = cluster.client()
    try:
        a = create(rc, {"user_id": 150, "role": "admin"}, "TTL", "300", route=index_key(150))
        b = create(rc, {"user_id": 150}, route=index_key(150))
        token = a["token"]
        # The token carries the slot tag of the user's index key, not the value.
        assert token.startswith("{") and "150" not in token.split("}")[0]
        assert token_slot(token) == key_slot(index_key(150).encode())
        assert token_slot(b["token"]) == token_slot(token)

        assert json.loads(rc.execute_command("SESSION.VALIDATE", token))["role"] == "admin"
        assert json.loads(rc.execute_command("SESSION.GET", token))["user_id"] == 150
        updated = json.loads(rc.execute_command("SESSION.UPDATE", token, '{"role":"user"}'))
        assert updated["role"] == "user"

        listed = rc.execute_command("SESSION.LIST", "user_id", "150")
        assert sorted(json.loads(s)["token"] for s in listed) == sorted([token, b["token"]])

        rotated = json.loads(rc.execute_command("SESSION.ROTATE", token))
        new = rotated["token"]
        assert new != token and token_slot(new) == token_slot(token), "a rotated token keeps its slot tag"
        assert rc.execute_command("SESSION.VALIDATE", token) is None
        assert rc.execute_command("SESSION.VALIDATE", new) is not None

        assert rc.execute_command("SESSION.REVOKEINDEX", "user_id", "150", "EXCEPT", new) == 1
        assert rc.execute_command("SESSION.VALIDATE", b["token"]) is None
        assert rc.execute_command("SESSION.DESTROY", new) == 1
        assert rc.execute_command("SESSION.LIST", "user_id", "150") == []
        every_key_where_it_belongs(cluster)
    finally:
        rc.close()


def test_a_hundred_users_with_three_sessions_each_spread_over_every_shard(cluster):
    rc = cluster.client()
    try:
        tokens = {}
        for user in range(1000, 1100):
            tokens[user] = [
                create(rc, {"user_id": user, "n": i}, route=index_key(user))["token"]
                for i in range(3)
            ]
        holding = [n for n in cluster.primaries if n.client.dbsize() > 0]
        assert len(holding) == 3, "sessions on every primary"
        assert every_key_where_it_belongs(cluster) >= 300
        for user, ts in tokens.items():
            assert len(rc.execute_command("SESSION.LIST", "user_id", str(user))) == 3
            for t in ts:
                assert rc.execute_command("SESSION.VALIDATE", t) is not None
        # Log out every other user everywhere: one atomic step on the node of the user's slot.
        for user in range(1000, 1100, 2):
            assert rc.execute_command("SESSION.REVOKEINDEX", "user_id", str(user)) == 3
        for user, ts in tokens.items():
            gone = user % 2 == 0
            for t in ts:
                assert (rc.execute_command("SESSION.VALIDATE", t) is None) == gone, (user, t)
        every_key_where_it_belongs(cluster)
    finally:
        rc.close()


def test_create_sent_to_the_wrong_node_writes_nothing_and_is_redirected(cluster):
    rc = cluster.client()
    try:
        route = index_key("wrong-node")
        slot = key_slot(route.encode())
        owners = cluster.owner_map()
        owner = owners[slot]
        other = next(n for n in cluster.primaries if n is not owner)
        before = other.client.dbsize()
        data = json.dumps({"user_id": "wrong-node"})

        def moved(*command):
            with pytest.raises(redis.exceptions.MovedError) as e:
                other.client.execute_command(*command)
            assert (e.value.slot_id, e.value.port) == (slot, owner.port), command

        # With ROUTE, and without (redis-cli -c follows either).
        moved("SESSION.CREATE", data, "ROUTE", route)
        moved("SESSION.CREATE", data)
        moved("SESSION.CREATE", data, "TTL", "60", "MAXSESSIONS", "3")
        # A ROUTE in another slot than the session's: CROSSSLOT, nothing written.
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            owner.client.execute_command("SESSION.CREATE", data, "ROUTE", "elsewhere")
        # REVOKEINDEX and LIST are routed by their value (Redis redirects by the key spec).
        moved("SESSION.LIST", "user_id", "wrong-node")
        moved("SESSION.REVOKEINDEX", "user_id", "wrong-node")
        assert other.client.dbsize() == before
        assert owner.client.exists(route) == 0
        every_key_where_it_belongs(cluster)
    finally:
        rc.close()


def test_redis_cli_follows_the_redirections(cluster):
    node = cluster.primaries[0]

    def cli(*args):
        out = subprocess.run(
            ["redis-cli", "-c", "-p", str(node.port), *args],
            capture_output=True, text=True, timeout=30, check=True,
        )
        return out.stdout.strip()

    users = [f"cli-{i}" for i in range(12)]
    tokens = []
    for user in users:
        # No ROUTE: redis-cli -c follows the module's MOVED to the node of the user's slot.
        reply = cli("SESSION.CREATE", json.dumps({"user_id": user}))
        tokens.append(json.loads(reply)["token"])
    for token in tokens:
        assert json.loads(cli("SESSION.VALIDATE", token))["user_id"].startswith("cli-")
    for user in users:
        assert cli("SESSION.REVOKEINDEX", "user_id", user) == "1"
    for token in tokens:
        assert cli("SESSION.VALIDATE", token) == ""
    every_key_where_it_belongs(cluster)


def test_a_session_without_a_primary_value_lives_on_the_node_that_made_it(cluster):
    owners = cluster.owner_map()
    for node in cluster.primaries:
        token = json.loads(node.client.execute_command("SESSION.CREATE", '{"guest":true}'))["token"]
        assert owners[token_slot(token)] is node
        assert node.client.execute_command("SESSION.VALIDATE", token) is not None
    every_key_where_it_belongs(cluster)


def test_update_cannot_move_a_session_to_another_slot(cluster):
    rc = cluster.client()
    try:
        token = create(rc, {"user_id": "mover"}, route=index_key("mover"))["token"]
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            rc.execute_command("SESSION.UPDATE", token, '{"user_id":"someone-else"}')
        assert json.loads(rc.execute_command("SESSION.GET", token))["user_id"] == "mover"
        # A patch that leaves the value alone works; one that removes it leaves the index.
        rc.execute_command("SESSION.UPDATE", token, '{"x":1}')
        rc.execute_command("SESSION.UPDATE", token, '{"user_id":null}')
        assert rc.execute_command("SESSION.LIST", "user_id", "mover") == []
        assert rc.execute_command("SESSION.VALIDATE", token) is not None
    finally:
        rc.close()


def test_maxsessions_counts_the_primary_index_in_its_slot(cluster):
    rc = cluster.client()
    try:
        # Longer TTLs later: the sessions that would expire soonest are the first ones.
        made = [
            create(rc, {"user_id": "limited", "n": i}, "TTL", str(100 + i), "MAXSESSIONS", "2",
                   route=index_key("limited"))
            for i in range(5)
        ]
        listed = rc.execute_command("SESSION.LIST", "user_id", "limited")
        assert sorted(json.loads(s)["n"] for s in listed) == [3, 4]
        with pytest.raises(redis.ResponseError, match="DENY"):
            create(rc, {"user_id": "limited"}, "MAXSESSIONS", "2", "DENY", route=index_key("limited"))
        assert all(token_slot(m["token"]) == token_slot(made[0]["token"]) for m in made)
    finally:
        rc.close()


def test_odd_values_live_in_the_slot_of_their_value(cluster):
    """An empty value or one with braces gets the tagged index key form; either way the
    session lives in the slot of the value itself, so REVOKEINDEX and LIST route by it."""
    rc = cluster.client()
    try:
        for value in ["", "a{b}c", "}{", "Zoë", "x y", "{06S}"]:
            slot = key_slot(value.encode())
            node = cluster.owner_map()[slot]
            # No ROUTE, sent to the node of the value's slot directly.
            token = json.loads(node.client.execute_command(
                "SESSION.CREATE", json.dumps({"user_id": value})))["token"]
            assert token_slot(token) == slot, value
            listed = node.client.execute_command("SESSION.LIST", "user_id", value)
            assert [json.loads(s)["token"] for s in listed] == [token], value
            if value:
                # Through RedisCluster, routed by the value argument.
                assert len(rc.execute_command("SESSION.LIST", "user_id", value)) == 1
        every_key_where_it_belongs(cluster)
    finally:
        rc.close()


def test_replicas_are_identical_to_their_primaries(cluster):
    rc = cluster.client()
    try:
        for user in range(20):
            t = create(rc, {"user_id": f"r{user}"}, route=index_key(f"r{user}"))["token"]
            rc.execute_command("SESSION.VALIDATE", t)
            if user % 3 == 0:
                rc.execute_command("SESSION.ROTATE", t, "GRACE", "30")
            if user % 5 == 0:
                rc.execute_command("SESSION.REVOKEINDEX", "user_id", f"r{user}")
    finally:
        rc.close()
    for replica in cluster.replicas:
        replica.client.execute_command("READONLY")
    time.sleep(0.5)
    for i, primary in enumerate(cluster.primaries):
        replica = cluster.replicas[i]
        offset = primary.client.info("replication")["master_repl_offset"]
        wait_for("replica caught up", lambda: replica.client.info("replication").get(
            "slave_repl_offset", 0) >= offset)
        keys = sorted(primary.client.scan_iter(count=1000))
        assert sorted(replica.client.scan_iter(count=1000)) == keys
        for key in keys:
            kind = primary.client.type(key)
            assert replica.client.type(key) == kind, key
            if kind == "string":
                assert replica.client.get(key) == primary.client.get(key), key
            elif kind == "set":
                assert replica.client.smembers(key) == primary.client.smembers(key), key
            assert replica.client.pexpiretime(key) == primary.client.pexpiretime(key), key


def test_secondary_indexes_are_refused_in_cluster_mode(own_cluster):
    c = own_cluster(replicas=0, module_args=("indexes", "user_id,tenant_id"))
    rc = c.client()
    try:
        token = create(rc, {"user_id": 7, "tenant_id": "acme"}, route=index_key(7))["token"]
        with pytest.raises(redis.ResponseError, match="only the first property"):
            rc.execute_command("SESSION.REVOKEINDEX", "tenant_id", "acme")
        with pytest.raises(redis.ResponseError, match="only the first property"):
            rc.execute_command("SESSION.LIST", "tenant_id", "acme")
        assert rc.execute_command("SESSION.VALIDATE", token) is not None
        # A brace in a name would move the hash tag: refused at run time as at load.
        node = c.primaries[0]
        with pytest.raises(redis.ResponseError, match="cluster mode"):
            node.client.config_set("session.indexes", "user_id,a{b}")
    finally:
        rc.close()


def test_hashed_tokens_keep_their_slot_and_revokeid_routes(cluster):
    """token-hash sha256 on every node: keys and index members are hashes that keep the
    token's slot tag, no key or member holds a token, and LIST's sessionId ends one session
    through SESSION.REVOKEID, routed by its value like REVOKEINDEX."""
    for node in cluster.nodes:
        node.client.config_set("session.token-hash", "sha256")
    rc = cluster.client()
    try:
        tokens = {}
        for user in range(2000, 2030):
            tokens[user] = [
                create(rc, {"user_id": user, "n": i}, route=index_key(user))["token"]
                for i in range(2)
            ]
        assert every_key_where_it_belongs(cluster) >= 60
        issued = [t for ts in tokens.values() for t in ts]
        for node in cluster.live_primaries():
            for key in node.client.scan_iter(count=1000):
                assert not any(t in key for t in issued), key
                if node.client.type(key) == "set":
                    for member in node.client.smembers(key):
                        assert not any(t in member for t in issued), (key, member)
        for user, ts in tokens.items():
            listed = [json.loads(s) for s in rc.execute_command("SESSION.LIST", "user_id", str(user))]
            assert all("token" not in s for s in listed), listed
            assert sorted(s["sessionId"] for s in listed) == sorted(session_id(t) for t in ts)
            # End the first session by its identifier; the other stays.
            assert rc.execute_command("SESSION.REVOKEID", "user_id", str(user), session_id(ts[0])) == 1
            assert rc.execute_command("SESSION.VALIDATE", ts[0]) is None
            assert rc.execute_command("SESSION.VALIDATE", ts[1]) is not None
            rotated = json.loads(rc.execute_command("SESSION.ROTATE", ts[1]))
            assert token_slot(rotated["token"]) == token_slot(ts[1])
            assert rc.execute_command("SESSION.VALIDATE", rotated["token"]) is not None
        every_key_where_it_belongs(cluster)
        for user in tokens:
            assert rc.execute_command("SESSION.REVOKEINDEX", "user_id", str(user)) == 1
    finally:
        rc.close()
        for node in cluster.nodes:
            if node.alive():
                node.client.config_set("session.token-hash", "none")
