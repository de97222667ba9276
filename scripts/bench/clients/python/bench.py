"""One repetition of the end-to-end workload (issue 14) through Python, then a check of what it
left in Redis. Run by ../run.sh (in its venv: redis==8.1.0 and ./clients/python), which starts
the server and passes its port; prints one JSON line on stdout.

    python bench.py STORE PORT

STORE is one of:
  package  the redis-session package's AsyncSessionStore on redis.asyncio.Redis:
           create() = SESSION.CREATE, validate() = SESSION.VALIDATE
  raw      the same two commands through redis.asyncio.Redis.execute_command, with json.dumps
           and json.loads by hand (the reference the package's row is compared with)

The workload is bench.js's: SESSIONS sessions for users drawn (seeded) from USERS users, the
same payload, each created then validated 10 times in order, CONCURRENCY such sequences at
once as asyncio tasks. redis-py's asyncio client does not pipeline concurrent commands on one
connection: each command in flight takes a connection of the pool, so up to CONCURRENCY
connections.
"""

import asyncio
import json
import os
import random
import sys
import time

import redis.asyncio

from redis_session import AsyncSessionStore

STORE, PORT = sys.argv[1], int(sys.argv[2])
SESSIONS = int(os.environ.get("BENCH_CLIENTS_SESSIONS", 20000))
USERS = int(os.environ.get("BENCH_CLIENTS_USERS", 10000))
CONCURRENCY = int(os.environ.get("BENCH_CLIENTS_CONCURRENCY", 50))
VALIDATIONS = int(os.environ.get("BENCH_CLIENTS_VALIDATIONS", 10))
WARMUP = int(os.environ.get("BENCH_CLIENTS_WARMUP", 1000))
SERVER_PID = int(os.environ.get("BENCH_SERVER_PID", 0))
CLK_TCK = int(os.environ.get("BENCH_CLK_TCK", 100))
TTL = 7200


def fail(msg):
    print("bench.py %s: %s" % (STORE, msg), file=sys.stderr)
    sys.exit(1)


def payload(uid):
    return {
        "user_id": uid,
        "ip": "10.%d.%d.7" % ((uid >> 8) & 255, uid & 255),
        "role": "member",
        "plan": "pro",
        "lang": "en-US",
        "ua": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    }


def server_ticks():
    if not SERVER_PID:
        return None
    with open("/proc/%d/stat" % SERVER_PID) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_ticks():
    """The machine's CPU time (all cores) from /proc/stat: busy ticks, steal ticks."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], v[7] if len(v) > 7 else 0


def make_adapter(client):
    if STORE == "package":
        store = AsyncSessionStore(client)

        async def create(data):
            return (await store.create(data, ttl=TTL))["token"]

        async def validate(token, uid):
            s = await store.validate(token)
            return s is not None and s["user_id"] == uid

    elif STORE == "raw":

        async def create(data):
            reply = await client.execute_command("SESSION.CREATE", json.dumps(data), "TTL", TTL)
            return json.loads(reply)["token"]

        async def validate(token, uid):
            reply = await client.execute_command("SESSION.VALIDATE", token)
            return reply is not None and json.loads(reply)["user_id"] == uid

    else:
        fail("unknown store")
    return create, validate


async def batched(client, keys, command):
    """command(pipe, key) for each key, in pipelines of 1000 (the check is not timed)."""
    out = []
    for i in range(0, len(keys), 1000):
        pipe = client.pipeline(transaction=False)
        for k in keys[i:i + 1000]:
            command(pipe, k)
        out.extend(await pipe.execute())
    return out


async def check(client, n, users, tokens):
    """The server holds n sessions, each with its expiry, in `users` index sets."""
    keys = list({k: None async for k in client.scan_iter(count=1000)})
    types = dict(zip(keys, await batched(client, keys, lambda p, k: p.type(k))))
    sets = [k for k, t in types.items() if t == "set" and k.startswith("user_id:")]
    if len(sets) != users:
        raise AssertionError("%d index sets, expected %d" % (len(sets), users))
    members = sum(await batched(client, sets, lambda p, k: p.scard(k)))
    if members != n:
        raise AssertionError("%d index members, expected %d" % (members, n))
    strings = len(types) - len(sets) - (1 if "session-secret" in types else 0)
    if strings != n:
        raise AssertionError("%d session keys, expected %d" % (strings, n))
    floor = TTL - int(time.time() - RUN_STARTED[0]) - 5
    for tok, ttl in zip(tokens, await batched(client, tokens, lambda p, k: p.ttl(k))):
        if not (floor <= ttl <= TTL):
            raise AssertionError("TTL of %s is %s" % (tok, ttl))


RUN_STARTED = [time.time()]


async def run(create, validate, n, seed):
    RUN_STARTED[0] = time.time()
    rnd = random.Random(seed)
    uids = [rnd.randint(1, USERS) for _ in range(n)]
    tokens = [None] * n
    lat = []
    state = {"next": 0, "failed": 0}

    async def worker():
        while True:
            i = state["next"]
            state["next"] += 1
            if i >= n:
                return
            token = await create(payload(uids[i]))
            tokens[i] = token
            for _ in range(VALIDATIONS):
                t0 = time.perf_counter()
                if not await validate(token, uids[i]):
                    state["failed"] += 1
                lat.append((time.perf_counter() - t0) * 1e6)

    ticks0 = server_ticks()
    m0 = machine_ticks()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, n))))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    ticks1 = server_ticks()
    m1 = machine_ticks()
    lat.sort()
    return {
        "tokens": tokens, "failed": state["failed"], "users": len(set(uids)), "wall": wall,
        "client_cpu_s": cpu,
        "machine_busy_s": (m1[0] - m0[0]) / CLK_TCK, "steal_s": (m1[1] - m0[1]) / CLK_TCK,
        "server_cpu_s": None if ticks0 is None else (ticks1 - ticks0) / CLK_TCK,
        "validate_p50_us": lat[len(lat) // 2], "validate_p99_us": lat[int(len(lat) * 0.99)],
    }


async def main():
    client = redis.asyncio.Redis(host="127.0.0.1", port=PORT, decode_responses=True)
    create, validate = make_adapter(client)
    seed = int(os.environ.get("BENCH_CLIENTS_SEED", 14))
    if WARMUP > 0:
        await client.flushall()
        w = await run(create, validate, WARMUP, seed + 1)
        if w["failed"]:
            fail("%d validations failed in the warm-up" % w["failed"])
        await check(client, WARMUP, w["users"], w["tokens"])
    await client.flushall()
    r = await run(create, validate, SESSIONS, seed)
    if r["failed"]:
        fail("%d of %d validations failed" % (r["failed"], SESSIONS * VALIDATIONS))
    try:
        await check(client, SESSIONS, r["users"], r["tokens"])
    except AssertionError as e:
        fail("check after the run: %s" % e)
    await client.flushall()
    await client.aclose()
    ops = SESSIONS * (1 + VALIDATIONS)
    print(json.dumps({
        "store": "py-" + STORE, "sessions": SESSIONS, "validations": SESSIONS * VALIDATIONS,
        "ops": ops, "users": r["users"], "concurrency": CONCURRENCY, "wall_s": r["wall"],
        "ops_per_s": ops / r["wall"], "client_cpu_s": r["client_cpu_s"],
        "server_cpu_s": r["server_cpu_s"], "machine_busy_s": r["machine_busy_s"],
        "steal_s": r["steal_s"], "validate_p50_us": r["validate_p50_us"],
        "validate_p99_us": r["validate_p99_us"], "checked": True,
    }))


asyncio.run(main())
