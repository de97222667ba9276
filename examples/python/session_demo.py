#!/usr/bin/env python3
"""Login, validate, list, log out everywhere: redis-session from Python with redis-py.

Needs a redis-server with the module loaded and `user_id` as an index:
    redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
Run:  REDIS_PORT=6379 python3 session_demo.py   (exits non-zero if anything is unexpected)
"""

import json
import os
import random
import sys

import redis


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main():
    port = int(os.environ.get("REDIS_PORT", "6379"))
    # decode_responses: replies come back as str; every SESSION.* reply with data is JSON text.
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5)
    user_id = random.randrange(1, 10**9)  # one no other run is using

    # Login, twice: a laptop and a phone. The reply is the data plus token and createdAt.
    laptop = json.loads(r.execute_command(
        "SESSION.CREATE", json.dumps({"user_id": user_id, "device": "laptop", "roles": ["admin"]})))
    phone = json.loads(r.execute_command(
        "SESSION.CREATE", json.dumps({"user_id": user_id, "device": "phone"}), "TTL", "600"))
    print(f"login:    user {user_id} on the laptop -> token {laptop['token'][:12]}...")
    print(f"login:    user {user_id} on the phone  -> token {phone['token'][:12]}...")

    # Validate: every request does this; it returns the data and prolongs the session.
    data = json.loads(r.execute_command("SESSION.VALIDATE", laptop["token"]))
    print(f"validate: {data}")
    check(data["user_id"] == user_id and data["roles"] == ["admin"], "validate returns the data, types intact")
    check("token" not in data and "createdAt" in data, "validate returns the data without the token")

    # List: every live session of the user.
    sessions = [json.loads(s) for s in r.execute_command("SESSION.LIST", "user_id", user_id)]
    print(f"list:     {sorted(s['device'] for s in sessions)}")
    check(sorted(s["token"] for s in sessions) == sorted([laptop["token"], phone["token"]]),
          "list shows both sessions")

    # Log out everywhere.
    revoked = r.execute_command("SESSION.REVOKEINDEX", "user_id", user_id)
    print(f"revoke:   {revoked} sessions ended")
    check(revoked == 2, "log out everywhere ends both sessions")

    # The tokens are now invalid.
    after = r.execute_command("SESSION.VALIDATE", laptop["token"])
    print(f"validate: {after!r} (the token is no longer valid)")
    check(after is None, "a revoked token validates to nil")
    check(r.execute_command("SESSION.LIST", "user_id", user_id) == [], "the user has no sessions left")

    print("ok")


if __name__ == "__main__":
    try:
        main()
    except redis.RedisError as err:
        print(f"FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
