#!/usr/bin/env python3
"""Login, validate, list, log out everywhere: redis-session from Python with redis-py.

Needs a redis-server with the module loaded and `user_id` as an index:
    redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
Run:  REDIS_PORT=6379 python3 session_demo.py   (exits non-zero if anything is unexpected)

On a Redis Cluster (the module on every node), give it the port of one node instead:
    REDIS_CLUSTER_PORT=7000 python3 session_demo.py
It then talks through redis-py's RedisCluster, which routes every command by its key:
VALIDATE by the token, LIST and REVOKEINDEX by the value argument (both found in COMMAND
INFO), and CREATE by its `ROUTE user_id:{<value>}` argument (found with COMMAND GETKEYS).
"""

import json
import os
import random
import re
import sys

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def connect():
    """A RedisCluster when REDIS_CLUSTER_PORT is set, else a Redis on REDIS_PORT."""
    # decode_responses: replies come back as str; every SESSION.* reply with data is JSON text.
    cluster_port = os.environ.get("REDIS_CLUSTER_PORT")
    if cluster_port:
        print(f"mode:     cluster, through 127.0.0.1:{cluster_port} (RedisCluster)")
        return RedisCluster(host="127.0.0.1", port=int(cluster_port), decode_responses=True,
                            socket_timeout=5), True
    port = int(os.environ.get("REDIS_PORT", "6379"))
    print(f"mode:     standalone, 127.0.0.1:{port}")
    return redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5), False


def main():
    r, cluster = connect()
    user_id = random.randrange(1, 10**9)  # one no other run is using
    # On a cluster, CREATE names the key it is routed by: the user's index key, whose hash tag
    # {<user_id>} puts the session in that user's slot. Elsewhere it is accepted and unused.
    route = ["ROUTE", f"user_id:{{{user_id}}}"] if cluster else []

    # Login, twice: a laptop and a phone. The reply is the data plus token and createdAt.
    laptop = json.loads(r.execute_command(
        "SESSION.CREATE", json.dumps({"user_id": user_id, "device": "laptop", "roles": ["admin"]}),
        *route))
    phone = json.loads(r.execute_command(
        "SESSION.CREATE", json.dumps({"user_id": user_id, "device": "phone"}), "TTL", "600", *route))
    print(f"login:    user {user_id} on the laptop -> token {laptop['token'][:16]}...")
    print(f"login:    user {user_id} on the phone  -> token {phone['token'][:16]}...")
    if cluster:
        # The token starts with the slot tag of the user's slot: cluster clients route by it.
        slot = r.keyslot(f"user_id:{{{user_id}}}")
        check(re.fullmatch(r"\{[0-9A-Za-z]+\}[0-9a-f]+", laptop["token"]) is not None,
              "a cluster token starts with its slot tag")
        check(r.keyslot(laptop["token"]) == slot == r.keyslot(phone["token"]),
              "both tokens are in the user's slot")
        print(f"cluster:  both sessions in slot {slot}, on {r.get_node_from_key(laptop['token']).name}")

    # Validate: every request does this; it returns the data and prolongs the session.
    data = json.loads(r.execute_command("SESSION.VALIDATE", laptop["token"]))
    print(f"validate: {data}")
    check(data["user_id"] == user_id and data["roles"] == ["admin"], "validate returns the data, types intact")
    check("token" not in data and "createdAt" in data, "validate returns the data without the token")

    # List: every live session of the user, each with its token and its sessionId.
    sessions = [json.loads(s) for s in r.execute_command("SESSION.LIST", "user_id", user_id)]
    for s in sorted(sessions, key=lambda s: s["device"]):
        print(f"list:     {s['device']:6}  sessionId {s['sessionId'][:16]}...")
    check(sorted(s["token"] for s in sessions) == sorted([laptop["token"], phone["token"]]),
          "list shows both sessions")
    check(all(s["sessionId"] and s["sessionId"] != s["token"] for s in sessions),
          "each listed session has its sessionId")

    # Log out everywhere.
    revoked = r.execute_command("SESSION.REVOKEINDEX", "user_id", user_id)
    print(f"revoke:   {revoked} sessions ended")
    check(revoked == 2, "log out everywhere ends both sessions")

    # The tokens are now invalid.
    after = r.execute_command("SESSION.VALIDATE", laptop["token"])
    print(f"validate: {after!r} (the token is no longer valid)")
    check(after is None, "a revoked token validates to nil")
    check(r.execute_command("SESSION.VALIDATE", phone["token"]) is None, "the other device is logged out too")
    check(r.execute_command("SESSION.LIST", "user_id", user_id) == [], "the user has no sessions left")

    r.close()
    print("ok")


if __name__ == "__main__":
    try:
        main()
    except (redis.RedisError, RedisClusterException) as err:
        print(f"FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
