"""Slots migrated under live traffic (CLUSTER SETSLOT + MIGRATE, as redis-cli --cluster
reshard does) and replicas promoted (CLUSTER FAILOVER, and a primary killed): no session
and no index entry is lost, and no VALIDATE of a live session replies nil."""

import json
import threading
import time

import redis
from redis.crc import key_slot

from conftest import wait_for
from test_cluster import create, every_key_where_it_belongs, index_key


class Traffic:
    """Validates every token in a loop on its own RedisCluster client, until stopped, and
    records every reply that is not the session's data."""

    def __init__(self, cluster, tokens):
        self.rc = cluster.client(cluster_error_retry_attempts=10)
        self.tokens = list(tokens)
        self.nil = []
        self.errors = []
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for token in self.tokens:
                if self._stop.is_set():
                    break
                try:
                    reply = self.rc.execute_command("SESSION.VALIDATE", token)
                    self.calls += 1
                    if reply is None:
                        self.nil.append(token)
                except (redis.RedisError, OSError) as e:
                    self.errors.append(repr(e))
                    time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        self.rc.close()


def migrate_slot(cluster, slot, source, target, batch=3):
    """Moves one slot from source to target the way redis-cli --cluster reshard does."""
    target.client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id)
    source.client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id)
    while True:
        keys = source.client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
        if not keys:
            break
        source.client.execute_command(
            "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys
        )
        time.sleep(0.02)  # room for the traffic between batches
    for node in cluster.primaries:
        node.client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.id)


def whole(rc, tokens_by_user):
    """Every user's index lists exactly its sessions, and each validates."""
    for user, tokens in tokens_by_user.items():
        listed = rc.execute_command("SESSION.LIST", "user_id", str(user))
        assert sorted(json.loads(s)["token"] for s in listed) == sorted(tokens), user
        for t in tokens:
            assert rc.execute_command("SESSION.VALIDATE", t) is not None, (user, t)


def test_slots_migrated_under_traffic_lose_nothing(own_cluster):
    c = own_cluster(replicas=0)
    rc = c.client()
    try:
        source, target = c.primaries[0], c.primaries[1]
        owners = c.owner_map()
        users = {}
        user = 0
        while len(users) < 12:
            user += 1
            if owners[key_slot(index_key(f"m{user}").encode())] is source:
                users[f"m{user}"] = [
                    create(rc, {"user_id": f"m{user}", "n": i}, route=index_key(f"m{user}"))["token"]
                    for i in range(3)
                ]
        # A session without a primary value on the source too.
        guest = json.loads(source.client.execute_command("SESSION.CREATE", '{"guest":1}'))["token"]
        slots = sorted({key_slot(index_key(u).encode()) for u in users} | {key_slot(guest.encode())})
        tokens = [t for ts in users.values() for t in ts] + [guest]
        with Traffic(c, tokens) as traffic:
            time.sleep(0.2)
            for slot in slots:
                migrate_slot(c, slot, source, target)
            time.sleep(0.3)
        assert traffic.calls > len(tokens), traffic.calls
        assert traffic.nil == [], f"nil for live sessions: {traffic.nil[:5]}"
        assert traffic.errors == [], traffic.errors[:5]
        c.wait_ok()
        for slot in slots:
            assert c.owner_map()[slot] is target
            assert source.client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        rc2 = c.client()
        try:
            whole(rc2, {u: ts for u, ts in users.items()})
            assert rc2.execute_command("SESSION.VALIDATE", guest) is not None
            # Revocation after the move is whole and atomic on the new node.
            some = next(iter(users))
            assert rc2.execute_command("SESSION.REVOKEINDEX", "user_id", some) == 3
        finally:
            rc2.close()
        every_key_where_it_belongs(c)
    finally:
        rc.close()


def test_creates_and_revocations_during_a_migration_land_whole(own_cluster):
    """Writes while a slot moves: each either lands whole (on one node, with its index) or is
    answered TRYAGAIN and retried by the client; afterwards every index is whole."""
    c = own_cluster(replicas=0)
    rc = c.client(cluster_error_retry_attempts=10)
    try:
        source, target = c.primaries[0], c.primaries[1]
        owners = c.owner_map()
        user = next(f"w{i}" for i in range(1000)
                    if owners[key_slot(index_key(f"w{i}").encode())] is source)
        first = [create(rc, {"user_id": user}, route=index_key(user))["token"] for _ in range(20)]
        made = []
        errors = []
        retried = []
        stop = threading.Event()

        def writer():
            w = c.client(cluster_error_retry_attempts=10)
            try:
                while not stop.is_set():
                    try:
                        made.append(create(w, {"user_id": user}, route=index_key(user))["token"])
                    except (redis.exceptions.TryAgainError, redis.exceptions.ClusterError):
                        # Redis's answer to a new key in a slot being migrated (redis-py
                        # says ClusterError once its own TRYAGAIN retries ran out): later.
                        retried.append(1)
                        time.sleep(0.02)
                    except (redis.RedisError, OSError) as e:
                        errors.append(repr(e))
                    time.sleep(0.005)
            finally:
                w.close()

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        time.sleep(0.1)
        migrate_slot(c, key_slot(index_key(user).encode()), source, target, batch=2)
        time.sleep(0.2)
        stop.set()
        t.join(timeout=30)
        assert errors == [], errors[:5]
        assert made, "the writer made sessions"
        c.wait_ok()
        rc2 = c.client()
        try:
            whole(rc2, {user: first + made})
            assert rc2.execute_command("SESSION.REVOKEINDEX", "user_id", user) == len(first + made)
            for tok in first + made:
                assert rc2.execute_command("SESSION.VALIDATE", tok) is None
        finally:
            rc2.close()
        every_key_where_it_belongs(c)
    finally:
        rc.close()


def test_failover_under_traffic_loses_nothing(own_cluster):
    c = own_cluster()
    rc = c.client()
    try:
        users = {}
        for u in range(30):
            users[f"f{u}"] = [
                create(rc, {"user_id": f"f{u}"}, route=index_key(f"f{u}"))["token"] for _ in range(2)
            ]
        # Applied by the replicas before anything fails (Redis replicates asynchronously, and a
        # failover loses what a replica has not received).
        c.wait_replicas_synced()
        tokens = [t for ts in users.values() for t in ts]
        with Traffic(c, tokens) as traffic:
            # A manual failover: the replica of the first primary takes over.
            replica = c.replicas[0]
            replica.client.execute_command("CLUSTER", "FAILOVER")
            wait_for("the replica promoted",
                     lambda: replica.client.info("replication")["role"] == "master")
            c.wait_ok()
            # A primary killed: its replica is elected after the node timeout.
            dead, heir = c.primaries[1], c.replicas[1]
            dead.kill()
            wait_for("the replica of the killed primary promoted",
                     lambda: heir.client.info("replication")["role"] == "master", timeout=60)
            c.wait_ok(timeout=60)
            time.sleep(0.5)
        assert traffic.nil == [], f"nil for live sessions: {traffic.nil[:5]}"
        rc2 = c.client()
        try:
            whole(rc2, users)
        finally:
            rc2.close()
        every_key_where_it_belongs(c)
    finally:
        rc.close()
