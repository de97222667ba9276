#!/usr/bin/env python3
"""Login, validate, list, log out everywhere: redis-session from Python with its package.

The package is the one in this repository, clients/python (the distribution `redis-session`,
imported as `redis_session`), on redis-py:
    pip install ./clients/python        # from the top of the repository
Needs a redis-server with the module loaded and `user_id` as an index:
    redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
Run:  REDIS_PORT=6379 python3 session_demo.py   (exits non-zero if anything is unexpected)

On a Redis Cluster (the module on every node), give it the port of one node instead:
    REDIS_CLUSTER_PORT=7000 python3 session_demo.py
The store is then given a redis-py RedisCluster, and nothing else changes: it routes every
call by its key (CREATE with `ROUTE user_id:{<value>}`, which it works out itself).
"""

import os
import random
import sys

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis_session import SessionStore, session_id


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def connect():
    """A RedisCluster when REDIS_CLUSTER_PORT is set, else a Redis on REDIS_PORT."""
    cluster_port = os.environ.get("REDIS_CLUSTER_PORT")
    if cluster_port:
        print(f"mode:     cluster, through 127.0.0.1:{cluster_port} (SessionStore on RedisCluster)")
        return RedisCluster(host="127.0.0.1", port=int(cluster_port), socket_timeout=5), True
    port = int(os.environ.get("REDIS_PORT", "6379"))
    print(f"mode:     standalone, 127.0.0.1:{port} (SessionStore on Redis)")
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5), False


def main():
    client, cluster = connect()
    store = SessionStore(client)
    user_id = random.randrange(1, 10**9)  # one no other run is using

    # Login, twice: a laptop and a phone. Each is the data plus its token and createdAt.
    laptop = store.create({"user_id": user_id, "device": "laptop", "roles": ["admin"]})
    phone = store.create({"user_id": user_id, "device": "phone"}, ttl=600)
    print(f"login:    user {user_id} on the laptop -> token {laptop['token'][:16]}...")
    print(f"login:    user {user_id} on the phone  -> token {phone['token'][:16]}...")
    if cluster:
        # The token starts with the slot tag of the user's slot; both are on that slot's node.
        slot = client.keyslot(f"user_id:{{{user_id}}}")
        check(laptop["token"].startswith("{"), "a cluster token starts with its slot tag")
        check(client.keyslot(laptop["token"]) == slot == client.keyslot(phone["token"]),
              "both tokens are in the user's slot")
        print(f"cluster:  both sessions in slot {slot}, on {client.get_node_from_key(laptop['token']).name}")

    # Validate: every request does this; the data (prolonged), or None when not logged in.
    data = store.validate(laptop["token"])
    print(f"validate: {data}")
    check(data is not None, "a fresh token validates")
    check(data["user_id"] == user_id and data["roles"] == ["admin"], "validate returns the data, types intact")
    check("token" not in data and "createdAt" in data, "validate returns the data without the token")

    # List: every live session of the user, each with its sessionId (not a secret: it names
    # the session for revoke_id, an "active devices" page).
    sessions = store.list("user_id", user_id)
    for s in sorted(sessions, key=lambda s: s["device"]):
        print(f"list:     {s['device']:6}  sessionId {s['sessionId'][:16]}...")
    check(sorted(s["token"] for s in sessions) == sorted([laptop["token"], phone["token"]]),
          "list shows both sessions")
    check(sorted(s["sessionId"] for s in sessions) == sorted(session_id(t["token"]) for t in (laptop, phone)),
          "each listed sessionId is the one session_id(token) computes")

    # Log out everywhere.
    revoked = store.revoke_index("user_id", user_id)
    print(f"revoke:   {revoked} sessions ended")
    check(revoked == 2, "log out everywhere ends both sessions")

    # The tokens are now invalid.
    after = store.validate(laptop["token"])
    print(f"validate: {after!r} (the token is no longer valid)")
    check(after is None, "a revoked token validates to None")
    check(store.validate(phone["token"]) is None, "the other device is logged out too")
    check(store.list("user_id", user_id) == [], "the user has no sessions left")

    client.close()
    print("ok")


if __name__ == "__main__":
    try:
        main()
    # The package's SessionError (an error reply of the module) is a redis.RedisError too.
    except (redis.RedisError, RedisClusterException) as err:
        print(f"FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
