#!/usr/bin/env python3
"""`make bench`: redis-session measured against the Redis primitives it is made of, against
what users write instead (Lua), and against its release 0.1.0, all in the same run.

Starts its own redis-server with the module (`indexes user_id`, `--save ""`,
`--appendonly no`, a free loopback port, a temporary directory), pins the server and
redis-benchmark to separate cores, preloads 10,000 sessions with SESSION.CREATE (users
1..10,000, each its own index set), 100 of one user for LIST, and one session of user 0 in
the 0.1.0 layout written with plain commands (`HSET <48 hex> data <JSON with createdAt> ttl
7200 deadline 0 indexes ["user_id:0"]`, its expiry, its index set), and measures, with
redis-benchmark at 50 clients, `-P 1` and `-P 32`, every run lasting at least
BENCH_SECONDS, BENCH_REPS repetitions interleaved (repetition 1 of everything, then 2, ...):

  reads   PING; HGETALL of the 0.1.0-layout hash (a session-sized hash: a session made by
          SESSION.CREATE is one string now, which HGETALL refuses); SESSION.VALIDATE and
          SESSION.GET of a preloaded session; a Lua script with VALIDATE's semantics on the
          0.1.0 layout (scripts/bench/validate.lua) on the hash, through EVALSHA; and
          SESSION.VALIDATE again with `CONFIG SET session.renew-interval 60` around its runs
          (set back to 0 after; one VALIDATE before each run puts the session a full TTL
          ahead, so that every call of the run is inside the interval and writes nothing);
  writes  SESSION.CREATE, a Lua create of the 0.1.0 hash layout (scripts/bench/create.lua,
          "what users write instead"), a Lua create of the module's current layout, one
          string `s2 <tag> <ttl> 0 [<index>]\n<data>` set with NX PX, plus the index set
          (scripts/bench/create_string.lua, a reference), and a plain HSET of the 0.1.0
          fields, each from an empty database with the same request count;
  index   SESSION.REVOKEINDEX of a user with 10,000 sessions and SESSION.LIST of a user
          with 100, timed from a client and by the server (INFO commandstats), on ours and on
          0.1.0 in each repetition;
  memory  bytes per session (INFO used_memory delta / BENCH_MEMORY_N, FLUSHALL SYNC
          between) for two data sets, each user its own index set: the example
          {"user_id":N,"foo":"bar","role":"admin"} and a realistic one of about 250 bytes (a
          nested profile, an array of roles, a CSRF token, a user agent); for each, ours
          and 0.1.0's (SESSION.CREATE on each server, the same data), and for the example the
          original npm library's flat layout written directly; with the TYPE/OBJECT
          ENCODING of one session key of each;
  replication  bytes per call to replicas and the AOF of every row's command, in a phase of
          its own after the rest (never during the throughput runs): a fresh server with
          the module, a plain redis-server replica attached (`--replicaof`, no module),
          the preload, then `master_repl_offset` before and after BENCH_REPL_CALLS calls sent
          pipelined from the script's client, the reads of sessions each on a different
          session; the same for VALIDATE, GET and CREATE on 0.1.0.

The 0.1.0 baseline runs on a second server of the same binary (REDIS_SERVER), flags and
core, started at the beginning and idle except for its own phases (REVOKEINDEX, LIST,
memory). Its module is 0.1.0, git commit 5ff25d8 of this repository, built the first time
into target/bench/baseline-0.1.0/ (`git archive 5ff25d8 | tar -x`, then `cargo build
--release --locked` with its own CARGO_TARGET_DIR) and reused after; BASELINE_MODULE=<.so>
names another build, BASELINE_MODULE=none leaves out every baseline figure.

Then the cluster phase (issue 12): SESSION.VALIDATE, SESSION.GET and HGETALL (Redis's own
command, for reference) on node 0 of a 3-primary cluster (`--cluster-enabled yes`, slots
split evenly, no replicas, node 0 on the server's core, the other two on the client's) and
on a fresh standalone server of the same binary, module and core, each preloaded with
10,000 sessions, interleaved in each repetition; the ratio cluster / standalone.

Finally it measures the cost of expiry: BENCH_EXPIRE_N sessions in the module's stored
layout, written with plain commands with a 1 s TTL, reaped by active expiry on a server
with the module (whose key events take each out of its index) and on one without.

It prints one table (medians; ratios are taken within one repetition, then the median of
those is shown; the targets are issue 11's, at -P 32; next to req/s, the server's CPU time
per request from /proc, the CPU the rest of the machine used meanwhile, and the bytes to
replicas per call) and writes it, with every raw figure, to target/bench/ (table.txt,
results.json). With BENCH_PROFILE=1 it profiles the server with `perf` under a
VALIDATE-only and a CREATE-only load instead.

Settings (environment):
  BENCH_SECONDS=3     the shortest a redis-benchmark run may last (calibrated per command)
  BENCH_REPS=3        repetitions
  BENCH_CLUSTER_REPS=7  repetitions of the cluster phase (at least BENCH_REPS)
  BENCH_TOKEN_HASH_REPS=7  repetitions of the token-hash phase (at least BENCH_REPS)
  BENCH_MAXSESSIONS_REPS=7  repetitions of the MAXSESSIONS phase (at least BENCH_REPS)
  BENCH_CLIENTS=50    redis-benchmark connections
  BENCH_MEMORY_N=100000  sessions for each memory figure
  BENCH_REPL_CALLS=10000  calls per command for the bytes to replicas
  BENCH_SERVER_CPU=0 BENCH_CLIENT_CPU=1  cores to pin to (pinning is skipped on one core)
  BENCH_PROFILE=1     profile instead of benchmarking (BENCH_PROFILE_SECONDS=5 each)
  REDIS_SESSION_MODULE, REDIS_SERVER, REDIS_BENCHMARK  what to run (REDIS_SERVER is the
                      binary of every server started: ours, the baseline's, the replica)
  BASELINE_MODULE     the 0.1.0 build to compare with, or `none` (default: built once)
  BENCH_OUT=target/bench  where results go
  BENCH_EXPIRE_N=1000000  sessions for the expiry cost (with against without the module)
  BENCH_ONLY=commands|memory|replication|expiry|cluster|token-hash|maxsessions
                      everything but the expiry cost, the cluster, token-hash and
                      MAXSESSIONS phases; only the memory per session (both data sets, with
                      the baseline); only the bytes to replicas; only the expiry cost; only
                      the cluster phase; only VALIDATE of sessions stored under their
                      token's hash against plain ones; only CREATE ... MAXSESSIONS 5 for a
                      user at the limit against a plain CREATE

Python 3.7+ standard library only.
"""

import contextlib
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts", "bench")


def env_number(name, default, kind=int):
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        sys.exit("bench: %s=%r is not a number" % (name, raw))
    if value <= 0:
        sys.exit("bench: %s must be positive" % name)
    return value


def env_cpu(name, default):
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    if not raw.isdigit():
        sys.exit("bench: %s=%r is not a CPU number" % (name, raw))
    return int(raw)


SECONDS = env_number("BENCH_SECONDS", 3.0, float)
REPS = env_number("BENCH_REPS", 3)
# The cluster phase's ratio spreads by 15% or more between repetitions on these machines
# (both sides are single-threaded servers on one shared core): it takes more of them.
CLUSTER_REPS = env_number("BENCH_CLUSTER_REPS", max(REPS, 7))
# The token-hash phase compares two runs on one server, as noisy: as many.
TOKEN_HASH_REPS = env_number("BENCH_TOKEN_HASH_REPS", max(REPS, 7))
# And the MAXSESSIONS phase: writes, from a fresh state each run.
MAXSESSIONS_REPS = env_number("BENCH_MAXSESSIONS_REPS", max(REPS, 7))
CLIENTS = env_number("BENCH_CLIENTS", 50)
MEMORY_N = env_number("BENCH_MEMORY_N", 100000)
PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")
PROFILE_SECONDS = env_number("BENCH_PROFILE_SECONDS", 5.0, float)
EXPIRE_N = env_number("BENCH_EXPIRE_N", 1000000)
REPL_CALLS = env_number("BENCH_REPL_CALLS", 10000)
# BENCH_ONLY=expiry: only the expiry cost; BENCH_ONLY=commands: everything but it;
# BENCH_ONLY=memory: only the memory per session; BENCH_ONLY=replication: only the bytes to
# replicas; BENCH_ONLY=cluster: only the cluster phase; BENCH_ONLY=token-hash: only VALIDATE
# of hashed sessions against plain ones; BENCH_ONLY=maxsessions: only CREATE at the limit.
ONLY = os.environ.get("BENCH_ONLY", "")
ONLY_CHOICES = ("", "commands", "memory", "expiry", "replication", "cluster", "token-hash",
                "maxsessions")
OUT_DIR = os.environ.get("BENCH_OUT") or os.path.join(ROOT, "target", "bench")
MODULE = os.environ.get("REDIS_SESSION_MODULE") or os.path.join(
    ROOT, "target", "release", "libredis_session.so")
REDIS_SERVER = os.environ.get("REDIS_SERVER") or "redis-server"
REDIS_BENCHMARK = os.environ.get("REDIS_BENCHMARK") or "redis-benchmark"
# The release the figures are compared with, built once from this repository's history
# unless BASELINE_MODULE names a build (or is `none`: no baseline figures).
BASELINE_COMMIT = "5ff25d8"
BASELINE_VERSION = "0.1.0"
BASELINE_DIR = os.path.join(ROOT, "target", "bench", "baseline-" + BASELINE_VERSION)

PIPELINES = (1, 32)
PRELOAD = 10000          # sessions preloaded for the read benchmarks, user_id 1..10000
REVOKE_N = 10000         # sessions of the user REVOKEINDEX logs out
REVOKE_USER = 424242
LIST_N = 100             # sessions of the user LIST lists
LIST_USER = 777777
LIST_CALLS = 50          # LIST calls timed per repetition
TTL = 7200               # the module's default, used by the Lua create and the original layout
RENEW_INTERVAL = 60      # session.renew-interval of the "renew-interval 60" row
HASH_USER = 0            # the user of the 0.1.0-layout hash that HGETALL and the Lua validate read
CREATED_AT = "2026-11-27 08:24:21"
# The tag create_string.lua and the expiry cost put in layout-2 strings written with plain
# commands: as long as a real one (only the module, which holds the secret, makes those).
FAKE_TAG = "0123456789abcdef"
# redis-benchmark parses -r as a C int and replaces each __rand_int__ with its own
# 12-digit zero-padded draw below it (two placeholders in one command differ).
RAND_RANGE = 2000000000
RAND = "__rand_int__"

# Fresh keys for the writes: 36 fixed hex digits and 12 random decimal ones, 48 characters,
# as long as a module token. JSON forbids leading zeros, hence the "1" before the draw.
RAND_KEY = "0123456789abcdef0123456789abcdef0123" + RAND
RAND_USER = "1" + RAND
CREATE_DATA = '{"user_id":%s,"foo":"bar","role":"admin"}' % RAND_USER
STORED_DATA = ('{"user_id":%s,"foo":"bar","role":"admin","createdAt":"%s"}'
               % (RAND_USER, CREATED_AT))

READS = ("ping", "hgetall", "validate", "get", "lua_validate", "validate_renew")
WRITES = ("create", "lua_create", "lua_create_string", "hset")
LABELS = {
    "ping": "PING",
    "hgetall": "HGETALL <0.1.0 session hash>",
    "validate": "SESSION.VALIDATE <token>",
    "get": "SESSION.GET <token>",
    "lua_validate": "EVALSHA validate.lua (Lua validate)",
    "validate_renew": "SESSION.VALIDATE <token>, renew-interval %d" % RENEW_INTERVAL,
    "create": "SESSION.CREATE <data>",
    "lua_create": "EVALSHA create.lua (Lua create)",
    "lua_create_string": "EVALSHA create_string.lua (string layout)",
    "hset": "HSET <fresh key> data ttl deadline indexes",
}
# (name, numerator, denominator, target: ("min", x) for >= x, ("max", x) for <= x, or None)
RATIOS = (
    ("SESSION.VALIDATE / HGETALL", "validate", "hgetall", ("min", 0.7)),
    ("SESSION.VALIDATE / Lua validate", "validate", "lua_validate", ("min", 3.5)),
    ("SESSION.GET / HGETALL", "get", "hgetall", ("min", 0.9)),
    ("VALIDATE renew-interval %d / GET" % RENEW_INTERVAL, "validate_renew", "get",
     ("min", 0.95)),
    ("SESSION.CREATE / Lua create", "create", "lua_create", ("min", 1.3)),
    ("SESSION.CREATE / Lua create (string layout)", "create", "lua_create_string", None),
    ("SESSION.CREATE / HSET", "create", "hset", None),
)
# The commands the replication phase also runs on the baseline (0.1.0 has no renew-interval).
BASELINE_REPLICATED = ("validate", "get", "create")
# Targets of ours / the baseline.
MEMORY_TARGET = ("max", 0.7)     # bytes per session
ORIGINAL_TARGET = ("max", 1.0)   # bytes per session against the original library's layout
INDEX_TARGET = ("max", 1.0)      # REVOKEINDEX and LIST time: no slower than 0.1.0

# The data sets of the memory figure: (name, description, the data of user N as sent).
REALISTIC_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/120.0 Safari/537.36")


def example_data(user):
    return '{"user_id":%d,"foo":"bar","role":"admin"}' % user


def realistic_data(user):
    """About 250 bytes as an application would send them: a nested object, an array of roles,
    a CSRF token (random per session) and a user agent."""
    return ('{"user_id":%d,"tenant":"acme","profile":{"name":"Alice Example","locale":"en-GB"},'
            '"roles":["admin","editor"],"csrf":"%032x","ua":"%s"}'
            % (user, random.getrandbits(128), REALISTIC_UA))


DATASETS = (
    ("example", '{"user_id":N,"foo":"bar","role":"admin"}', example_data),
    ("realistic", "nested profile, roles array, CSRF token, user agent", realistic_data),
)


def layout2_value(tag, ttl, index, data):
    """A session string of the module's layout 2, with no deadline and one index key."""
    return 's2 %s %d 0 ["%s"]\n%s' % (tag, ttl, index, data)


def log(message):
    print("bench: " + message, file=sys.stderr, flush=True)


def fail(message):
    log(message)
    sys.exit(1)


# ---------------------------------------------------------------------------------------
# A minimal RESP2 client: enough to preload, time single commands and read INFO.

class ReplyError(Exception):
    pass


class Conn:
    def __init__(self, port, timeout=300):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb", buffering=1 << 16)

    def close(self):
        self.reader.close()
        self.sock.close()

    @staticmethod
    def encode(args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            if not isinstance(arg, bytes):
                arg = str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        return b"".join(parts)

    def read(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed by the server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise ConnectionError("unexpected reply %r" % line[:40])

    def call(self, *args):
        self.sock.sendall(self.encode(args))
        reply = self.read()
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def pipeline(self, commands, batch=1000, tolerate=None):
        """Sends `commands` in batches and returns their replies; raises on the first error,
        except errors whose text starts with `tolerate`, which are returned as they are."""
        replies = []
        for start in range(0, len(commands), batch):
            chunk = commands[start:start + batch]
            self.sock.sendall(b"".join(self.encode(c) for c in chunk))
            replies.extend(self.read() for _ in chunk)
        for reply in replies:
            if isinstance(reply, ReplyError) and not (tolerate and str(reply).startswith(tolerate)):
                raise reply
        return replies

    def info(self, section):
        text = self.call("INFO", section).decode()
        fields = {}
        for line in text.splitlines():
            if ":" in line and not line.startswith("#"):
                name, value = line.split(":", 1)
                fields[name] = value
        return fields

    def used_memory(self):
        return int(self.info("memory")["used_memory"])

    def command_usec(self, name):
        """Total server-side microseconds spent in `name` since CONFIG RESETSTAT."""
        stats = self.info("commandstats").get("cmdstat_" + name, "")
        match = re.search(r"usec=(\d+)", stats)
        return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------
# The server.

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_port():
    """A free port a cluster node can take: its bus port (+10000) must be a port too."""
    while True:
        port = free_port()
        if port <= 55535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def pinned(cpu):
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


class Server:
    """A redis-server of REDIS_SERVER with `module` (a path, or None) loaded."""

    def __init__(self, tmp, cpu, module=MODULE, extra=(), port=None):
        self.port = port or free_port()
        self.log_path = os.path.join(tmp, "redis-%d.log" % self.port)
        # taskset execs redis-server, so the pid below is the server's own.
        args = pinned(cpu) + [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", tmp, "--logfile", self.log_path,
            "--daemonize", "no",
        ] + list(extra)
        if module:
            args += ["--loadmodule", module, "indexes", "user_id"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                fail("redis-server exited (status %s) before it was ready; its log:\n%s"
                     % (self.proc.returncode, self.read_log()))
            try:
                conn = Conn(self.port, timeout=2)
                if conn.call("PING") == "PONG":
                    conn.close()
                    break
                conn.close()
            except (OSError, ReplyError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                fail("redis-server did not answer PING within 20 s; its log:\n" + self.read_log())
            time.sleep(0.05)

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM to this server's pid only
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------
# redis-benchmark.

CSV_ROW = re.compile(r'"([0-9.]+)"(?:,"[0-9.]+"){6}\s*$')


class CpuMeter:
    """CPU the rest of the machine used while we measured, in cores (1.0 = one core busy).

    Busy time in /proc/stat (steal included) minus the server's own time and this
    process's and its children's (redis-benchmark's). Other work on the machine (a build, a
    test suite) takes cores from the server and redis-benchmark and lowers their figures."""

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, server_pid):
        self.server_pid = server_pid

    def snapshot(self):
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
            with open("/proc/%d/stat" % self.server_pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            server = int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            return None
        # user, nice, system and steal; not irq and softirq, which are mostly the loopback
        # traffic of the benchmark itself and are charged to no process.
        busy = ticks[0] + ticks[1] + ticks[2] + ticks[7]
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        return time.monotonic(), busy / self.TICK, server / self.TICK, ours

    @staticmethod
    def usage(before, after):
        """(other work in cores, the server's CPU seconds) between two snapshots."""
        if before is None or after is None or after[0] <= before[0]:
            return None, None
        server = after[2] - before[2]
        other = (after[1] - before[1]) - server - (after[3] - before[3])
        return max(0.0, other / (after[0] - before[0])), server


METER = None  # a CpuMeter once the server runs


class Run:
    """One redis-benchmark run: req/s, how long it lasted, the server's CPU time per request
    (user + system, microseconds) and the CPU other work on the machine took meanwhile."""

    def __init__(self, requests, rps, other, server_cpu):
        self.requests = requests
        self.rps = rps
        self.seconds = requests / rps
        self.other = other
        self.server_us = server_cpu * 1e6 / requests if server_cpu is not None else None
        self.server_busy = server_cpu / self.seconds if server_cpu is not None else None


def redis_benchmark(port, cpu, pipeline, requests, args, rand=False):
    """Runs one redis-benchmark and returns its Run."""
    cmd = pinned(cpu) + [
        REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-c", str(CLIENTS),
        "-n", str(requests), "-P", str(pipeline), "--csv",
    ]
    if rand:
        cmd += ["-r", str(RAND_RANGE)]
    cmd += [str(a) for a in args]
    before = METER.snapshot() if METER else None
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=600)
    except subprocess.TimeoutExpired:
        fail("redis-benchmark took over 10 minutes: %s" % " ".join(cmd[:12]))
    other, server_cpu = CpuMeter.usage(before, METER.snapshot() if METER else None)
    output = done.stdout + done.stderr
    # redis-benchmark 7 stops at the first error reply, so a wrong reply cannot pass as speed.
    if done.returncode != 0 or "Error" in output:
        fail("redis-benchmark failed (%s ...):\n%s" % (" ".join(args[:2]), output[-2000:]))
    # The test name (the command) is not escaped in the CSV, so read its row from the end:
    # "name","rps","avg","min","p50","p95","p99","max".
    rps = None
    for line in done.stdout.splitlines():
        match = CSV_ROW.search(line)
        if match:
            rps = float(match.group(1))
    if not rps:
        fail("no req/s in redis-benchmark's output:\n" + output[-2000:])
    return Run(requests, rps, other, server_cpu)


def round_up(n, step=1000):
    return int(math.ceil(n / step) * step)


def calibrate(port, cpu, pipeline, args, rand=False, flush=None, margin=1.2):
    """The request count that makes one run of `args` last about `margin` x SECONDS."""
    n = max(CLIENTS * pipeline * 4, 2000 if pipeline == 1 else 20000)
    while True:
        if flush:
            flush()
        run = redis_benchmark(port, cpu, pipeline, n, args, rand)
        rps, secs = run.rps, run.seconds
        if secs >= 0.3 or n >= 50000000:
            break
        n = int(n * min(16, max(2, 0.4 / max(secs, 0.001))))
    return max(round_up(rps * SECONDS * margin), CLIENTS * pipeline * 10)


# ---------------------------------------------------------------------------------------
# The database states the measurements start from.

def create_all(conn, data):
    """SESSION.CREATE of each data text (pipelined); returns the tokens."""
    commands = [("SESSION.CREATE", d) for d in data]
    return [json.loads(reply)["token"] for reply in conn.pipeline(commands)]


def create_sessions(conn, user_ids):
    """SESSION.CREATE one session of the example data per user id; returns their tokens."""
    return create_all(conn, [example_data(u) for u in user_ids])


def write_hash_sessions(conn, user_ids, key_start="", tolerate=None):
    """One session per user id in the 0.1.0 layout, written with plain commands: the hash of
    the example data that 0.1.0's SESSION.CREATE stores, its expiry, and the user's index set
    with the same expiry. Returns their keys (`key_start` and 48 random hex digits)."""
    commands, keys = [], []
    for user in user_ids:
        key = key_start + os.urandom(24).hex()
        keys.append(key)
        index = "user_id:%d" % user
        commands += [
            ("HSET", key, "data", STORED_DATA.replace(RAND_USER, str(user)), "ttl", TTL,
             "deadline", 0, "indexes", '["%s"]' % index),
            ("PEXPIRE", key, TTL * 1000),
            ("SADD", index, key),
            ("PEXPIRE", index, TTL * 1000),
        ]
    conn.pipeline(commands, tolerate=tolerate)
    return keys


def preload(conn):
    """FLUSHALL, then 10,000 sessions of users 1..10,000, 100 of the LIST user and the
    0.1.0-layout hash; returns the tokens of the 10,000 and the hash's key."""
    conn.call("FLUSHALL", "SYNC")
    tokens = create_sessions(conn, range(1, PRELOAD + 1))
    create_sessions(conn, [LIST_USER] * LIST_N)
    return tokens, write_hash_sessions(conn, [HASH_USER])[0]


def load_script(conn, name):
    with open(os.path.join(SCRIPTS, name)) as f:
        return conn.call("SCRIPT", "LOAD", f.read()).decode()


def load_scripts(conn):
    return {name: load_script(conn, name)
            for name in ("validate.lua", "create.lua", "create_string.lua")}


def read_commands(token, hash_key, shas):
    return {
        "ping": ["PING"],
        "hgetall": ["HGETALL", hash_key],
        "validate": ["SESSION.VALIDATE", token],
        "get": ["SESSION.GET", token],
        "lua_validate": ["EVALSHA", shas["validate.lua"], "1", hash_key],
        "validate_renew": ["SESSION.VALIDATE", token],
    }


def write_commands(shas):
    return {
        "create": ["SESSION.CREATE", CREATE_DATA],
        "lua_create": ["EVALSHA", shas["create.lua"], "2", RAND_KEY, "user_id:" + RAND_USER,
                       STORED_DATA, str(TTL)],
        "lua_create_string": ["EVALSHA", shas["create_string.lua"], "2", RAND_KEY,
                              "user_id:" + RAND_USER, STORED_DATA, str(TTL), FAKE_TAG],
        "hset": ["HSET", RAND_KEY, "data", STORED_DATA, "ttl", str(TTL), "deadline", "0",
                 "indexes", '["user_id:%s"]' % RAND_USER],
    }


# Keys one write leaves: a session and its (new) index set, or one hash.
KEYS_PER_WRITE = {"create": 2, "lua_create": 2, "lua_create_string": 2, "hset": 1}


def set_renew_interval(conn, seconds):
    conn.call("CONFIG", "SET", "session.renew-interval", str(seconds))


@contextlib.contextmanager
def setting_for(conn, name, reads):
    """The server setting a row runs under: session.renew-interval 60 for validate_renew, 0
    (the default) for every other row.

    Before it, one VALIDATE with the setting at 0 sets the session's expiry a full TTL ahead,
    so that every VALIDATE of the next minute finds more than TTL - 60 s left (inside the
    interval: no write, nothing replicated)."""
    if name != "validate_renew":
        yield
        return
    conn.call(*reads["validate"])
    set_renew_interval(conn, RENEW_INTERVAL)
    try:
        yield
    finally:
        set_renew_interval(conn, 0)


def concrete(args):
    """`args` with every __rand_int__ drawn, as redis-benchmark would."""
    return [a.replace(RAND, "%012d" % random.randrange(RAND_RANGE)) if RAND in a else a
            for a in args]


def sanity_check(conn, reads, writes):
    """One call of each command, so that a broken script or command fails loudly."""
    for name, args in reads.items():
        with setting_for(conn, name, reads):
            reply = conn.call(*args)
        if reply is None or reply == [] or isinstance(reply, ReplyError):
            fail("%s replied %r; expected data" % (name, reply))
    for name, args in writes.items():
        reply = conn.call(*concrete(args))
        if reply is None:
            fail("%s replied nil" % name)


def measure_revoke(conn):
    """(client ms, server ms) of REVOKEINDEX on a user with REVOKE_N fresh sessions."""
    create_sessions(conn, [REVOKE_USER] * REVOKE_N)
    conn.call("CONFIG", "RESETSTAT")
    start = time.perf_counter()
    revoked = conn.call("SESSION.REVOKEINDEX", "user_id", str(REVOKE_USER))
    client_ms = (time.perf_counter() - start) * 1000
    if revoked != REVOKE_N:
        fail("REVOKEINDEX revoked %r sessions, expected %d" % (revoked, REVOKE_N))
    usec = conn.command_usec("session.revokeindex")
    return client_ms, (usec / 1000 if usec is not None else None)


def measure_list(conn):
    """(client ms, server ms) per LIST of the user with LIST_N sessions: medians of calls."""
    conn.call("CONFIG", "RESETSTAT")
    times = []
    for _ in range(LIST_CALLS):
        start = time.perf_counter()
        reply = conn.call("SESSION.LIST", "user_id", str(LIST_USER))
        times.append((time.perf_counter() - start) * 1000)
        if len(reply) != LIST_N:
            fail("LIST replied %d sessions, expected %d" % (len(reply), LIST_N))
    usec = conn.command_usec("session.list")
    return statistics.median(times), (usec / LIST_CALLS / 1000 if usec is not None else None)


def key_kind(conn, key):
    """`type/encoding` of a key, e.g. string/raw or hash/hashtable."""
    return "%s/%s" % (conn.call("TYPE", key), conn.call("OBJECT", "ENCODING", key).decode())


def memory_of(conn, write):
    """Bytes per session that `write(conn)` adds to an empty database (INFO used_memory), the
    keys it leaves and the kind of one session key (`write` returns the session keys)."""
    conn.call("FLUSHALL", "SYNC")
    before = conn.used_memory()
    keys = write(conn)
    per_session = (conn.used_memory() - before) / len(keys)
    result = {"bytes": per_session, "keys": conn.call("DBSIZE"), "kind": key_kind(conn, keys[0])}
    conn.call("FLUSHALL", "SYNC")
    return result


def original_sessions(conn, user_ids):
    """The original npm library's layout, written directly: a flat hash of the data's fields
    with createdAt, its expiry, and the token in the user's index set (no expiry)."""
    commands, tokens = [], []
    for user in user_ids:
        token = os.urandom(24).hex()
        tokens.append(token)
        commands.append(("HSET", token, "user_id", str(user), "foo", "bar", "role", "admin",
                         "createdAt", CREATED_AT))
        commands.append(("EXPIRE", token, str(TTL)))
        commands.append(("SADD", "user_id:%d" % user, token))
    conn.pipeline(commands, batch=3000)
    return tokens


def measure_memory(conn, base):
    """Bytes per session for each data set: ours and the baseline's (SESSION.CREATE on each
    server, the same data), and for the example data the original library's layout."""
    users = range(1, MEMORY_N + 1)
    results = {"n": MEMORY_N, "baseline": base is not None, "datasets": {}}
    for name, _, make in DATASETS:
        data = [make(u) for u in users]
        write = lambda c: create_all(c, data)  # noqa: E731
        log("memory per session, %s data: ours" % name)
        entry = {"json_bytes": statistics.mean(len(d) for d in data),
                 "ours": memory_of(conn, write)}
        if base is not None:
            log("memory per session, %s data: %s" % (name, BASELINE_VERSION))
            entry["baseline"] = memory_of(base, write)
            entry["ratio_baseline"] = entry["ours"]["bytes"] / entry["baseline"]["bytes"]
        if name == "example":
            log("memory per session, example data: the original library's layout")
            entry["original"] = memory_of(conn, lambda c: original_sessions(c, users))
            entry["ratio_original"] = entry["ours"]["bytes"] / entry["original"]["bytes"]
        results["datasets"][name] = entry
    return results


# ---------------------------------------------------------------------------------------
# Bytes to replicas and the AOF: what each command adds to the replication stream.

def offset(conn):
    return int(conn.info("replication")["master_repl_offset"])


def stream_bytes(conn, commands):
    """Bytes the replication stream grows by per command of `commands`, sent pipelined."""
    before = offset(conn)
    conn.pipeline(commands)
    return (offset(conn) - before) / len(commands)


def measure_replication(tmp, module, names, server_cpu, client_cpu):
    """Bytes per call to replicas and the AOF of each command in `names`, on a server of its
    own with `module` loaded and a replica (no module) attached: `master_repl_offset` before
    and after REPL_CALLS calls sent pipelined (the preload has put the stream's SELECT in).

    The reads go to a different preloaded session in each call, as a server's reads do:
    VALIDATE writes an expiry only when it moves, by at least a millisecond, so thousands of
    pipelined calls on one session would replicate a few expiries in all (and the Lua
    validate would raise its index's expiry about once per millisecond, not once per call).
    HGETALL and the Lua validate read 0.1.0-layout hashes of users of their own."""
    master = Server(tmp, server_cpu, module=module,
                    extra=["--repl-diskless-sync-delay", "0",
                           # A PING to the replicas every 10 s would land in the stream.
                           "--repl-ping-replica-period", "3600"])
    replica = None
    try:
        conn = Conn(master.port)
        # A directory of its own: the replica keeps the RDB of its full sync as dump.rdb,
        # which a later server started in `tmp` would load.
        replica_dir = tempfile.mkdtemp(prefix="replica-", dir=tmp)
        replica = Server(replica_dir, client_cpu, module=None,
                         extra=["--replicaof", "127.0.0.1", str(master.port)])
        replica_conn = Conn(replica.port)
        deadline = time.monotonic() + 30
        while replica_conn.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                fail("the replica did not connect within 30 s; its log:\n" + replica.read_log())
            time.sleep(0.05)
        replica_conn.close()
        tokens, _ = preload(conn)
        hashes = write_hash_sessions(conn, range(PRELOAD + 1, PRELOAD + 1 + len(tokens)))
        shas = load_scripts(conn)
        writes = write_commands(shas)
        calls = [read_commands(tokens[i % len(tokens)], hashes[i % len(hashes)], shas)
                 for i in range(REPL_CALLS)]
        results = {}
        for name in names:
            with setting_for(conn, name, calls[0]):
                if name in calls[0]:
                    commands = [c[name] for c in calls]
                else:
                    commands = [concrete(writes[name]) for _ in range(REPL_CALLS)]
                results[name] = stream_bytes(conn, commands)
        conn.close()
        return results
    finally:
        if replica is not None:
            replica.stop()
        master.stop()


def measure_replications(tmp, baseline, server_cpu, client_cpu):
    log("bytes to replicas per call, %d calls each: ours" % REPL_CALLS)
    results = {"calls": REPL_CALLS,
               "ours": measure_replication(tmp, MODULE, READS + WRITES, server_cpu, client_cpu)}
    if baseline is not None:
        log("bytes to replicas per call: %s" % BASELINE_VERSION)
        results["baseline"] = measure_replication(tmp, baseline, BASELINE_REPLICATED,
                                                  server_cpu, client_cpu)
    return results


# ---------------------------------------------------------------------------------------
# The environment, for the record.

def command_output(args):
    try:
        return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine(conn, baseline=None):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    server = conn.info("server")
    commit = command_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "-C", ROOT, "status", "--porcelain", "--", "src"])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "redis": server.get("redis_version", "?"),
        "redis_benchmark": command_output([REDIS_BENCHMARK, "--version"]),
        "rustc": command_output(["rustc", "--version"]),
        "server": shutil.which(REDIS_SERVER) or REDIS_SERVER,
        "module": MODULE,
        "baseline": baseline,
        "baseline_commit": (BASELINE_COMMIT if baseline and baseline.startswith(BASELINE_DIR)
                            else None),
        "commit": commit + (" (src/ modified)" if dirty else ""),
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------------------------------
# The table.

def fmt_rps(value):
    return "{:,.0f}".format(value) if value is not None else "-"


def count_range(counts):
    low, high = min(counts), max(counts)
    return "{:,}".format(low) if low == high else "{:,} to {:,}".format(low, high)


def median(values):
    return statistics.median(values) if values else None


def spread(values):
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.median(values)


def verdict(value, target):
    if target is None:
        return "", ""
    kind, limit = target
    if kind == "min":
        return ">= %gx" % limit, ("holds" if value >= limit else
                                  "misses (%.0f%% of target)" % (100 * value / limit))
    return "<= %gx" % limit, ("holds" if value <= limit else
                              "misses (%.0f%% over)" % (100 * (value / limit - 1)))


def fmt_bytes(value):
    return "%.1f" % value if value is not None else "-"


def render(results):
    runs, ratios = results["runs"], results["ratios"]
    lines = []
    m = results["machine"]
    lines.append("redis-session benchmark: redis %s, %d clients, %d repetition(s) interleaved, "
                 "medians; runs >= %gs" % (m["redis"], CLIENTS, results["reps"], SECONDS))
    lines.append("server on CPU %s, redis-benchmark on CPU %s; %s; %s cores, %s GiB; "
                 "load average %s before, %s after"
                 % (results["pinning"]["server"], results["pinning"]["client"], m["cpu"],
                    m["nproc"], m["memory_gib"], results["load_before"], results["load_after"]))
    lines.append(describe_modules(m))
    other = [o for p in runs.values() for r in p.values() for o in r["other"] if o is not None]
    if other:
        lines.append("other work on the machine during the runs: %.2f cores on average, "
                     "%.2f at most" % (statistics.mean(other), max(other)))
    lines.append("")
    repl = results.get("replication", {})
    ours_bytes, base_bytes = repl.get("ours", {}), repl.get("baseline", {})
    row = "%-44s %11s %12s %8s %8s %5s %5s %5s %7s %7s"
    head = row % ("command", "-P 1 req/s", "-P 32 req/s", "spread", "srv us", "busy", "min s",
                  "other", "repl B", BASELINE_VERSION)
    lines.append(head)
    lines.append("-" * len(head))
    for name in READS + WRITES:
        if name == WRITES[0]:
            lines.append("writes, each from an empty database, n = %s at -P 1 and %s at -P 32:"
                         % (count_range(runs["1"]["hset"]["requests"]),
                            count_range(runs["32"]["hset"]["requests"])))
        p32 = runs["32"][name]
        s = spread(p32["rps"])
        secs = [d for p in ("1", "32") for d in runs[p][name]["seconds"]]
        other = [o for p in ("1", "32") for o in runs[p][name]["other"] if o is not None]
        us = [u for u in p32["server_us"] if u is not None]
        busy = [u for u in p32["server_busy"] if u is not None]
        lines.append(row % (
            LABELS[name], fmt_rps(median(runs["1"][name]["rps"])), fmt_rps(median(p32["rps"])),
            ("%.0f%%" % (100 * s)) if s is not None else "-",
            "%.2f" % median(us) if us else "?", "%.2f" % median(busy) if busy else "?",
            "%.1f" % min(secs), "%.2f" % max(other) if other else "?",
            fmt_bytes(ours_bytes.get(name)), fmt_bytes(base_bytes.get(name))))
    lines.append("spread: (max - min) / median of the -P 32 req/s; srv us: the server's CPU time "
                 "(user + sys)")
    lines.append("per request at -P 32, median; busy: the share of one core the server used "
                 "(below ~0.95")
    lines.append("the server was not the bottleneck); min s: the shortest run; other: the most "
                 "CPU (cores)")
    lines.append("the rest of the machine used during one of the row's runs; repl B: bytes per "
                 "call to replicas")
    lines.append("and the AOF (master_repl_offset over %s calls, in a phase of its own), ours "
                 "and %s's."
                 % ("{:,}".format(repl["calls"]) if repl else "-", BASELINE_VERSION))
    lines.append("")
    row = "%-44s %9s %9s  %-26s %12s"
    head = row % ("ratio at -P 32 (same repetition)", "req/s", "target", "", "server CPU")
    lines.append(head)
    lines.append("-" * len(head))
    for label, _, _, target in RATIOS:
        value = median(ratios["32"][label])
        cost = median(results["cost_ratios"]["32"][label])
        want, result = verdict(value, target)
        lines.append(row % (label, "%.2fx" % value, want, result,
                            "%.2fx" % cost if cost is not None else "?"))
    lines.append("req/s: the median of the ratios of req/s within each repetition; server CPU: "
                 "the same")
    lines.append("with the server's CPU time per request (the second's over the first's), the "
                 "ratio the")
    lines.append("req/s would show if the server alone were the bottleneck.")
    lines.append("")
    lines += render_index(results)
    lines.append("")
    lines += render_memory(results["memory"]).split("\n")
    return "\n".join(lines)


def describe_modules(m):
    if m.get("baseline") is None:
        base = "no baseline (BASELINE_MODULE=none)"
    elif m.get("baseline_commit"):
        base = "baseline %s built from commit %s" % (BASELINE_VERSION, m["baseline_commit"])
    else:
        base = "baseline %s from %s" % (BASELINE_VERSION, m["baseline"])
    return "module %s (commit %s); %s; every server is %s" % (
        m["module"], m["commit"], base, m.get("server", REDIS_SERVER))


def render_index(results):
    row = "%-48s %10s %10s  %s"
    head = row % ("index commands (from a client)", "client ms", "server ms", "")
    lines = [head, "-" * 86]
    for key, label, digits in (
            ("revoke", "SESSION.REVOKEINDEX, user with %s sessions" % "{:,}".format(REVOKE_N),
             2),
            ("list", "SESSION.LIST, user with %d sessions" % LIST_N, 3)):
        r = results[key]
        number = "%%.%df" % digits

        def show(values):
            values = [v for v in values if v is not None]
            return number % median(values) if values else "-"

        lines.append(row % (label, show(r["client_ms"]), show(r["server_ms"]), ""))
        if r["baseline_client_ms"]:
            lines.append(row % ("  " + BASELINE_VERSION, show(r["baseline_client_ms"]),
                                show(r["baseline_server_ms"]), ""))
            client, server = median(r["ratio_client"]), median(r["ratio_server"])
            # The target is on the server's time, the command's own cost.
            judged = server if server is not None else client
            want, result = verdict(judged, INDEX_TARGET)
            lines.append(row % ("  ours / %s (same repetition)" % BASELINE_VERSION,
                                "%.2fx" % client,
                                "%.2fx" % server if server is not None else "-",
                                "%s  %s" % (want, result)))
    return [line.rstrip() for line in lines]


def render_memory(mem):
    lines = []
    lines.append("memory per session (%s sessions, each user its own index set; used_memory "
                 "delta / N)" % "{:,}".format(mem["n"]))
    lines.append("-" * 86)
    row = "%-44s %10s  %s"
    for name, description, _ in DATASETS:
        d = mem["datasets"][name]
        lines.append("%s data, %s: %.0f B of JSON as sent"
                     % (name, description, d["json_bytes"]))
        lines.append(row % ("  ours (SESSION.CREATE)", "%.0f B" % d["ours"]["bytes"],
                            d["ours"]["kind"]))
        if "baseline" in d:
            lines.append(row % ("  %s (SESSION.CREATE)" % BASELINE_VERSION,
                                "%.0f B" % d["baseline"]["bytes"], d["baseline"]["kind"]))
            want, result = verdict(d["ratio_baseline"], MEMORY_TARGET)
            lines.append(row % ("  ours / %s" % BASELINE_VERSION, "%.2fx" % d["ratio_baseline"],
                                "%s  %s" % (want, result)))
        if "original" in d:
            lines.append(row % ("  original layout (HSET + EXPIRE + SADD)",
                                "%.0f B" % d["original"]["bytes"], d["original"]["kind"]))
            want, result = verdict(d["ratio_original"], ORIGINAL_TARGET)
            lines.append(row % ("  ours / original", "%.2fx" % d["ratio_original"],
                                "%s  %s" % (want, result)))
    lines.append("the JSON as sent, without createdAt, which CREATE adds (34 bytes); the "
                 "kind: TYPE/OBJECT ENCODING")
    lines.append("of one session key.")
    return "\n".join(lines)


def render_replication(repl):
    lines = ["bytes per call to replicas and the AOF (master_repl_offset over %s calls)"
             % "{:,}".format(repl["calls"]), "-" * 86]
    row = "%-44s %10s %10s"
    lines.append(row % ("command", "ours", BASELINE_VERSION))
    for name in READS + WRITES:
        lines.append(row % (LABELS[name], fmt_bytes(repl["ours"].get(name)),
                            fmt_bytes(repl.get("baseline", {}).get(name))))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Runs.

def loadavg():
    try:
        return "%.2f" % os.getloadavg()[0]
    except OSError:
        return "?"


def write_run(conn, port, client_cpu, pipeline, name, requests, writes):
    """One write benchmark from an empty database; checks that the writes happened."""
    conn.call("FLUSHALL", "SYNC")
    run = redis_benchmark(port, client_cpu, pipeline, requests, writes[name], rand=True)
    run.keys = conn.call("DBSIZE")
    expected = KEYS_PER_WRITE[name] * requests
    # Draws repeat now and then (n draws below RAND_RANGE): a few keys fewer is fine.
    if run.keys < 0.98 * expected:
        fail("%s at -P %d left %d keys, expected about %d" % (name, pipeline, run.keys, expected))
    return run


def record(results, pipeline, name, run):
    runs = results["runs"][str(pipeline)][name]
    for field in RUN_FIELDS:
        runs[field].append(getattr(run, field))


RUN_FIELDS = ("rps", "seconds", "requests", "server_us", "server_busy", "other")


def benchmark(server, conn, base, baseline, server_cpu, client_cpu, tmp):
    """Everything but the expiry cost. `base`: a connection to the server with the baseline
    module `baseline` loaded, or None."""
    port = server.port
    shas = load_scripts(conn)
    writes = write_commands(shas)
    started = time.monotonic()
    results = {
        "machine": machine(conn, baseline),
        "reps": REPS,
        "seconds": SECONDS,
        "clients": CLIENTS,
        "pinning": {"server": server_cpu, "client": client_cpu},
        "load_before": loadavg(),
        "plan": {},
        "runs": {str(p): {n: {f: [] for f in RUN_FIELDS} for n in READS + WRITES}
                 for p in PIPELINES},
        "ratios": {str(p): {r[0]: [] for r in RATIOS} for p in PIPELINES},
        "cost_ratios": {str(p): {r[0]: [] for r in RATIOS} for p in PIPELINES},
        "revoke": {f: [] for f in INDEX_FIELDS},
        "list": {f: [] for f in INDEX_FIELDS},
        "write_keys": [],
    }

    tokens, hash_key = preload(conn)
    reads = read_commands(tokens[0], hash_key, shas)
    sanity_check(conn, reads, writes)
    tokens, hash_key = preload(conn)
    if base is not None:
        # The same database for the baseline's REVOKEINDEX and LIST (it serves nothing else
        # until the memory figure).
        preload(base)

    log("calibrating request counts so that every run lasts at least %gs" % SECONDS)
    flush = lambda: conn.call("FLUSHALL", "SYNC")  # noqa: E731
    plan = {}
    for p in PIPELINES:
        plan[str(p)] = {}
        if p != PIPELINES[0]:
            tokens, hash_key = preload(conn)  # the writes' calibration emptied the database
        reads = read_commands(tokens[0], hash_key, shas)
        for name in READS:
            with setting_for(conn, name, reads):
                plan[str(p)][name] = calibrate(port, client_cpu, p, reads[name])
        # The writes share one request count, set by the fastest of them (the HSET floor).
        n = calibrate(port, client_cpu, p, writes["hset"], rand=True, flush=flush, margin=1.25)
        for name in WRITES:
            plan[str(p)][name] = n
    results["plan"] = plan
    log("request counts: " + json.dumps(plan))

    for rep in range(REPS):
        tokens, hash_key = preload(conn)
        reads = read_commands(tokens[0], hash_key, shas)
        log("repetition %d/%d: reads" % (rep + 1, REPS))
        for p in PIPELINES:
            for name in READS:
                with setting_for(conn, name, reads):
                    run = redis_benchmark(port, client_cpu, p, plan[str(p)][name], reads[name])
                    if run.seconds < SECONDS:
                        # Faster than calibrated (the machine got quieter): again, longer.
                        n = plan[str(p)][name] = round_up(run.rps * SECONDS * 1.2)
                        run = redis_benchmark(port, client_cpu, p, n, reads[name])
                record(results, p, name, run)

        log("repetition %d/%d: REVOKEINDEX and LIST" % (rep + 1, REPS))
        for key, measure in (("revoke", measure_revoke), ("list", measure_list)):
            record_index(results[key], "", *measure(conn))
            if base is not None:
                record_index(results[key], "baseline_", *measure(base))

        log("repetition %d/%d: writes" % (rep + 1, REPS))
        for p in PIPELINES:
            # The HSET floor first: the fastest, it sets the shared request count; when it
            # runs shorter than SECONDS the count grows (for this and later repetitions).
            for name in ("hset",) + tuple(w for w in WRITES if w != "hset"):
                run = write_run(conn, port, client_cpu, p, name, plan[str(p)][name], writes)
                if name == "hset" and run.seconds < SECONDS:
                    n = round_up(run.rps * SECONDS * 1.25)
                    for w in WRITES:
                        plan[str(p)][w] = n
                    run = write_run(conn, port, client_cpu, p, name, n, writes)
                results["write_keys"].append({"rep": rep + 1, "pipeline": p, "command": name,
                                              "requests": run.requests, "keys": run.keys})
                record(results, p, name, run)
        conn.call("FLUSHALL", "SYNC")

        for p in PIPELINES:
            r = results["runs"][str(p)]
            for label, num, den, _ in RATIOS:
                results["ratios"][str(p)][label].append(r[num]["rps"][rep] / r[den]["rps"][rep])
                cost = (r[num]["server_us"][rep], r[den]["server_us"][rep])
                if None not in cost:
                    results["cost_ratios"][str(p)][label].append(cost[1] / cost[0])
        for key in ("revoke", "list"):
            index_ratios(results[key], rep)

    log("memory per session for %d sessions" % MEMORY_N)
    results["memory"] = measure_memory(conn, base)
    results["replication"] = measure_replications(tmp, baseline, server_cpu, client_cpu)
    results["load_after"] = loadavg()
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    return results


# Per repetition, ours and the baseline's, and ours / the baseline's.
INDEX_FIELDS = ("client_ms", "server_ms", "baseline_client_ms", "baseline_server_ms",
                "ratio_client", "ratio_server")


def record_index(figures, prefix, client_ms, server_ms):
    figures[prefix + "client_ms"].append(client_ms)
    figures[prefix + "server_ms"].append(server_ms)


def index_ratios(figures, rep):
    """Ours / the baseline's in repetition `rep`, when both were measured."""
    if len(figures["baseline_client_ms"]) <= rep:
        return
    ours, theirs = figures["client_ms"][rep], figures["baseline_client_ms"][rep]
    figures["ratio_client"].append(ours / theirs)
    ours, theirs = figures["server_ms"][rep], figures["baseline_server_ms"][rep]
    if ours is not None and theirs:
        figures["ratio_server"].append(ours / theirs)


# ---------------------------------------------------------------------------------------
# The cost of expiry: Redis reaping sessions with the module's key-event handlers (which take
# each session out of its index in the same step) against the same keys without the module.

def server_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CpuMeter.TICK


def expiry_run(tmp, cpu, with_module, n):
    """Loads `n` sessions in the module's stored layout (layout-2 strings, whose tag the
    key-event handler does not check) with plain commands (1 s TTL, active expiry paused),
    then lets active expiry reap them; returns (wall s, server CPU s)."""
    server = Server(tmp, cpu, module=MODULE if with_module else None,
                    extra=["--enable-debug-command", "yes"])
    try:
        conn = Conn(server.port)
        conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        batch = []
        for i in range(n):
            token = "%048x" % (0xabcdef << 160 | i)
            user = i % (n // 4 or 1)
            data = STORED_DATA.replace(RAND_USER, str(user + 1))
            index = "user_id:%d" % (user + 1)
            batch.append(("SET", token, layout2_value(FAKE_TAG, TTL, index, data), "PX", 1000))
            batch.append(("SADD", index, token))
            if len(batch) >= 2000:
                conn.pipeline(batch, batch=3000)
                batch = []
        if batch:
            conn.pipeline(batch, batch=3000)
        time.sleep(1.2)  # every session is now past its expiry, none reaped yet
        keys = conn.call("DBSIZE")
        before = server_cpu_seconds(server.pid)
        start = time.monotonic()
        conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        # Without the module the index sets stay (nothing takes the tokens out): done when
        # only they are left; with key events they empty and go with their last session.
        left = n // 4 if not with_module or not key_events(conn) else 0
        while conn.call("DBSIZE") > left:
            time.sleep(0.01)
        wall = time.monotonic() - start
        cpu_s = server_cpu_seconds(server.pid) - before
        expired = int(conn.info("stats").get("expired_keys", 0))
        if expired < n:
            fail("only %d of %d sessions expired" % (expired, n))
        conn.close()
        return {"keys": keys, "wall_s": wall, "server_cpu_s": cpu_s}
    finally:
        server.stop()


def key_events(conn):
    try:
        return conn.info("session").get("session_key_events") == "yes"
    except ReplyError:
        return False


def measure_expiry(tmp, cpu):
    n = EXPIRE_N
    log("expiry of %d sessions without the module" % n)
    without = expiry_run(tmp, cpu, False, n)
    log("expiry of %d sessions with the module" % n)
    with_module = expiry_run(tmp, cpu, True, n)
    return {"n": n, "without": without, "with": with_module,
            "wall_ratio": with_module["wall_s"] / without["wall_s"],
            "cpu_ratio": with_module["server_cpu_s"] / max(without["server_cpu_s"], 1e-9)}


def render_expiry(e):
    lines = ["expiry of %s sessions by active expiry (server CPU while reaping; wall time until "
             "all are gone)" % "{:,}".format(e["n"]), "-" * 86]
    for label, run in (("without the module (index entries stay)", e["without"]),
                       ("with the module (key events take each out)", e["with"])):
        lines.append("%-50s %8.2f s CPU %8.2f s wall" % (label, run["server_cpu_s"],
                                                          run["wall_s"]))
    lines.append("%-50s %8.2fx     %8.2fx" % ("with / without", e["cpu_ratio"], e["wall_ratio"]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Cluster: VALIDATE on one node of a cluster against the same node standalone.

CLUSTER_NODES = 3        # primaries of the cluster phase, no replicas
CLUSTER_TARGET = ("min", 0.95)
CLUSTER_READS = ("validate", "get", "hgetall")
CLUSTER_LABELS = {
    "validate": "SESSION.VALIDATE <token>",
    "get": "SESSION.GET <token>",
    "hgetall": "HGETALL <hash> (Redis's own command)",
}


@contextlib.contextmanager
def metering(pid):
    """redis_benchmark's CPU figures taken of server `pid` for a while."""
    global METER
    saved, METER = METER, CpuMeter(pid)
    try:
        yield
    finally:
        METER = saved


def start_cluster(tmp, server_cpu, client_cpu):
    """CLUSTER_NODES primaries of REDIS_SERVER with the module, slots split evenly (node 0
    serves 0..5460 of 3), met and agreed (cluster_state:ok on every node). Node 0, the one
    benchmarked, runs on the server's core; the others, idle but for the cluster bus, on the
    client's."""
    nodes = []
    try:
        for i in range(CLUSTER_NODES):
            conf = os.path.join(tmp, "nodes-bench-%d-%d.conf" % (os.getpid(), i))
            nodes.append(Server(tmp, server_cpu if i == 0 else client_cpu, extra=[
                "--cluster-enabled", "yes", "--cluster-config-file", conf,
                "--cluster-node-timeout", "5000"], port=cluster_port()))
        conns = [Conn(n.port) for n in nodes]
        per = 16384 // CLUSTER_NODES
        for i, conn in enumerate(conns):
            last = 16383 if i == CLUSTER_NODES - 1 else (i + 1) * per - 1
            conn.call("CLUSTER", "ADDSLOTSRANGE", i * per, last)
        for n in nodes[1:]:
            conns[0].call("CLUSTER", "MEET", "127.0.0.1", n.port)
        deadline = time.monotonic() + 60
        while True:
            infos = [c.call("CLUSTER", "INFO").decode() for c in conns]
            if all("cluster_state:ok" in i and "cluster_known_nodes:%d" % CLUSTER_NODES in i
                   and "cluster_slots_assigned:16384" in i for i in infos):
                break
            if time.monotonic() > deadline:
                fail("the benchmark cluster did not reach cluster_state:ok in 60 s:\n"
                     + "\n".join(infos))
            time.sleep(0.1)
        for c in conns:
            c.close()
        return nodes
    except BaseException:
        for n in nodes:
            n.stop()
        raise


def cluster_preload(conn):
    """The preload of the reads on a cluster node: sessions of users 1.. until PRELOAD of
    them were created here (a CREATE whose user's slot another node serves is MOVED, and
    writes nothing), and a session-sized hash in a slot of this node (named with a token's
    tag). Returns (tokens, hash key)."""
    conn.call("FLUSHALL", "SYNC")
    tokens, user = [], 1
    while len(tokens) < PRELOAD:
        batch = [("SESSION.CREATE", example_data(u)) for u in range(user, user + 1000)]
        user += 1000
        tokens += [json.loads(reply)["token"] for reply in conn.pipeline(batch, tolerate="MOVED")
                   if not isinstance(reply, ReplyError)]
    # The hash is named with a token's tag (a slot of this node); its index set may be in
    # another node's slot, whose MOVED is no matter: HGETALL reads the hash alone.
    tag = tokens[0][:tokens[0].index("}") + 1]
    hash_key = write_hash_sessions(conn, [HASH_USER], key_start=tag, tolerate="MOVED")[0]
    return tokens[:PRELOAD], hash_key


def cluster_reads(token, hash_key):
    return {"validate": ["SESSION.VALIDATE", token], "get": ["SESSION.GET", token],
            "hgetall": ["HGETALL", hash_key]}


def measure_cluster(tmp, server_cpu, client_cpu):
    """The same reads on a standalone server and on node 0 of a 3-primary cluster (the same
    binary, flags, module and core, the same number of preloaded sessions), interleaved in
    each repetition; the ratios cluster / standalone within a repetition."""
    standalone = Server(tmp, server_cpu)
    nodes = []
    try:
        nodes = start_cluster(tmp, server_cpu, client_cpu)
        node = nodes[0]
        plain, clustered = Conn(standalone.port), Conn(node.port)
        plain_tokens, plain_hash = preload(plain)
        node_tokens, node_hash = cluster_preload(clustered)
        sides = (("standalone", standalone, cluster_reads(plain_tokens[0], plain_hash)),
                 ("cluster", node, cluster_reads(node_tokens[0], node_hash)))
        for conn, (side, _, reads) in zip((plain, clustered), sides):
            for name in CLUSTER_READS:
                if conn.call(*reads[name]) in (None, []):
                    fail("cluster phase: %s on the %s server replied nil" % (name, side))
        results = {"nodes": CLUSTER_NODES, "served_slots": 16384 // CLUSTER_NODES,
                   "plan": {}, "runs": {}, "ratios": {}}
        for p in PIPELINES:
            results["plan"][str(p)] = {
                name: calibrate(standalone.port, client_cpu, p, sides[0][2][name])
                for name in CLUSTER_READS}
            results["runs"][str(p)] = {side: {n: [] for n in CLUSTER_READS}
                                       for side, _, _ in sides}
            results["ratios"][str(p)] = {n: [] for n in CLUSTER_READS}
        for rep in range(CLUSTER_REPS):
            log("cluster phase, repetition %d/%d" % (rep + 1, CLUSTER_REPS))
            for p in PIPELINES:
                for name in CLUSTER_READS:
                    got = {}
                    # Alternate which side goes first, so that neither always runs second.
                    order = sides if rep % 2 == 0 else tuple(reversed(sides))
                    for side, server, reads in order:
                        with metering(server.pid):
                            run = redis_benchmark(server.port, client_cpu, p,
                                                  results["plan"][str(p)][name], reads[name])
                        got[side] = run
                        results["runs"][str(p)][side][name].append(
                            {f: getattr(run, f) for f in RUN_FIELDS})
                    results["ratios"][str(p)][name].append(
                        got["cluster"].rps / got["standalone"].rps)
        for c in (plain, clustered):
            c.close()
        return results
    finally:
        for n in nodes:
            n.stop()
        standalone.stop()


def render_cluster(c):
    lines = ["cluster: the same reads on node 0 of a %d-primary cluster (slots 0..%d, no "
             "replicas) and on a standalone server" % (c["nodes"], c["served_slots"] - 1),
             "(same binary, module, core and preload; interleaved; medians of %d repetitions)"
             % CLUSTER_REPS, ""]
    row = "%-40s %4s %12s %12s %8s %9s  %s"
    head = row % ("command", "-P", "standalone", "cluster", "ratio", "target", "")
    lines += [head, "-" * len(head)]
    for p in PIPELINES:
        runs = c["runs"][str(p)]
        for name in CLUSTER_READS:
            target = CLUSTER_TARGET if name == "validate" and p == 32 else None
            value = median(c["ratios"][str(p)][name])
            want, result = verdict(value, target)
            lines.append(row % (CLUSTER_LABELS[name], p,
                                fmt_rps(median([r["rps"] for r in runs["standalone"][name]])),
                                fmt_rps(median([r["rps"] for r in runs["cluster"][name]])),
                                "%.2fx" % value, want, result))
    lines.append("ratio: cluster req/s / standalone req/s within each repetition, median; the "
                 "target (issue 12)")
    lines.append("is VALIDATE's at -P 32. HGETALL shows what cluster mode costs Redis's own "
                 "commands.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# MAXSESSIONS: CREATE for a user at the limit against a plain CREATE.

MAXSESSIONS_TARGET = ("min", 0.7)
MAXSESSIONS_LIMIT = 5
LIMIT_USER = 424242
LIMITED_DATA = '{"user_id":%d,"foo":"bar","role":"admin"}' % LIMIT_USER


def limited_state(conn):
    """A database holding the limit's worth of sessions of LIMIT_USER."""
    conn.call("FLUSHALL", "SYNC")
    for _ in range(MAXSESSIONS_LIMIT):
        conn.call("SESSION.CREATE", LIMITED_DATA)


def measure_maxsessions(server, conn, client_cpu):
    """SESSION.CREATE ... MAXSESSIONS 5 for a user who has 5 live sessions (each CREATE ends
    the one that would expire soonest, so the user stays at the limit) against a plain
    SESSION.CREATE of a random user, each from its own starting state, in turn within each
    repetition; ratio limited / plain req/s within a repetition."""
    plain = ["SESSION.CREATE", CREATE_DATA]
    limited = ["SESSION.CREATE", LIMITED_DATA, "MAXSESSIONS", str(MAXSESSIONS_LIMIT)]
    index = "user_id:%d" % LIMIT_USER
    results = {"limit": MAXSESSIONS_LIMIT, "plan": {}, "runs": {}, "ratios": {}}
    for p in PIPELINES:
        results["plan"][str(p)] = {
            "plain": calibrate(server.port, client_cpu, p, plain, rand=True,
                               flush=lambda: conn.call("FLUSHALL", "SYNC")),
            "limited": calibrate(server.port, client_cpu, p, limited,
                                 flush=lambda: limited_state(conn)),
        }
        results["runs"][str(p)] = {"plain": [], "limited": []}
        results["ratios"][str(p)] = []
    for rep in range(MAXSESSIONS_REPS):
        log("MAXSESSIONS phase, repetition %d/%d" % (rep + 1, MAXSESSIONS_REPS))
        for p in PIPELINES:
            got = {}
            for side in (("plain", "limited") if rep % 2 == 0 else ("limited", "plain")):
                if side == "plain":
                    conn.call("FLUSHALL", "SYNC")
                    args, rand = plain, True
                else:
                    limited_state(conn)
                    args, rand = limited, False
                with metering(server.pid):
                    run = redis_benchmark(server.port, client_cpu, p,
                                          results["plan"][str(p)][side], args, rand=rand)
                if side == "limited":
                    live = conn.call("SCARD", index)
                    if live != MAXSESSIONS_LIMIT:
                        fail("MAXSESSIONS phase: %s holds %r members after the run, not %d"
                             % (index, live, MAXSESSIONS_LIMIT))
                got[side] = run
                results["runs"][str(p)][side].append({f: getattr(run, f) for f in RUN_FIELDS})
            results["ratios"][str(p)].append(got["limited"].rps / got["plain"].rps)
    conn.call("FLUSHALL", "SYNC")
    return results


def render_maxsessions(m):
    lines = ["MAXSESSIONS: CREATE for a user at the limit (%d live sessions; each CREATE ends "
             "one) against a plain CREATE of a random user" % m["limit"],
             "(one server; each run from its own starting state; medians of %d repetitions)"
             % MAXSESSIONS_REPS, ""]
    row = "%-48s %4s %12s %8s %9s  %s"
    head = row % ("command", "-P", "req/s", "ratio", "target", "")
    lines += [head, "-" * len(head)]
    for p in PIPELINES:
        runs = m["runs"][str(p)]
        value = median(m["ratios"][str(p)])
        want, result = verdict(value, MAXSESSIONS_TARGET if p == 32 else None)
        lines.append(row % ("SESSION.CREATE <random user>", p,
                            fmt_rps(median([r["rps"] for r in runs["plain"]])), "", "", ""))
        lines.append(row % ("SESSION.CREATE <user at limit> MAXSESSIONS %d" % m["limit"], p,
                            fmt_rps(median([r["rps"] for r in runs["limited"]])),
                            "%.2fx" % value, want, result))
    lines.append("ratio: limited req/s / plain req/s within each repetition, median; the target "
                 "(issue 13) is at -P 32.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# token-hash: VALIDATE of a session stored under its token's hash against one stored by it.

TOKEN_HASH_TARGET = ("min", 0.85)
TOKEN_HASH_READS = ("validate", "get", "miss")
TOKEN_HASH_LABELS = {
    "validate": "SESSION.VALIDATE <token>",
    "get": "SESSION.GET <token>",
    "miss": "SESSION.VALIDATE <unknown token>",
}
UNKNOWN = "0123456789abcdef" * 3


def measure_token_hash(server, conn, client_cpu):
    """On one server and preload: the reads of a session made with `token-hash none` (the
    setting none while measured) and of one made with `sha256` (the setting sha256), in
    turn within each repetition, the order alternating; ratios sha256 / none within a
    repetition. The miss: an unknown token, which is looked up in both domains either way."""
    conn.call("CONFIG", "SET", "session.token-hash", "none")
    plain, _ = preload(conn)
    conn.call("CONFIG", "SET", "session.token-hash", "sha256")
    hashed = create_sessions(conn, range(PRELOAD + 1, 2 * PRELOAD + 1))
    sides = (("none", plain[0]), ("sha256", hashed[0]))

    def reads(token):
        return {"validate": ["SESSION.VALIDATE", token], "get": ["SESSION.GET", token],
                "miss": ["SESSION.VALIDATE", UNKNOWN]}

    for mode, token in sides:
        conn.call("CONFIG", "SET", "session.token-hash", mode)
        if conn.call("SESSION.VALIDATE", token) is None:
            fail("token-hash phase: VALIDATE of the %s session replied nil" % mode)
    results = {"plan": {}, "runs": {}, "ratios": {}}
    for p in PIPELINES:
        conn.call("CONFIG", "SET", "session.token-hash", "none")
        results["plan"][str(p)] = {name: calibrate(server.port, client_cpu, p,
                                                   reads(plain[0])[name])
                                   for name in TOKEN_HASH_READS}
        results["runs"][str(p)] = {mode: {n: [] for n in TOKEN_HASH_READS} for mode, _ in sides}
        results["ratios"][str(p)] = {n: [] for n in TOKEN_HASH_READS}
    for rep in range(TOKEN_HASH_REPS):
        log("token-hash phase, repetition %d/%d" % (rep + 1, TOKEN_HASH_REPS))
        for p in PIPELINES:
            for name in TOKEN_HASH_READS:
                got = {}
                order = sides if rep % 2 == 0 else tuple(reversed(sides))
                for mode, token in order:
                    conn.call("CONFIG", "SET", "session.token-hash", mode)
                    with metering(server.pid):
                        run = redis_benchmark(server.port, client_cpu, p,
                                              results["plan"][str(p)][name], reads(token)[name])
                    got[mode] = run
                    results["runs"][str(p)][mode][name].append(
                        {f: getattr(run, f) for f in RUN_FIELDS})
                results["ratios"][str(p)][name].append(got["sha256"].rps / got["none"].rps)
    conn.call("CONFIG", "SET", "session.token-hash", "none")
    return results


def render_token_hash(t):
    lines = ["token-hash: sessions stored under the SHA-256 of their token (setting sha256) "
             "against sessions stored by it (none)",
             "(one server and preload; interleaved; medians of %d repetitions)" % TOKEN_HASH_REPS,
             ""]
    row = "%-40s %4s %12s %12s %8s %9s  %s"
    head = row % ("command", "-P", "none", "sha256", "ratio", "target", "")
    lines += [head, "-" * len(head)]
    for p in PIPELINES:
        runs = t["runs"][str(p)]
        for name in TOKEN_HASH_READS:
            value = median(t["ratios"][str(p)][name])
            target = TOKEN_HASH_TARGET if name == "validate" and p == 32 else None
            want, result = verdict(value, target)
            lines.append(row % (TOKEN_HASH_LABELS[name], p,
                                fmt_rps(median([r["rps"] for r in runs["none"][name]])),
                                fmt_rps(median([r["rps"] for r in runs["sha256"][name]])),
                                "%.2fx" % value, want, result))
    us = {mode: median([r["server_us"] for r in t["runs"]["32"][mode]["validate"]
                        if r["server_us"] is not None] or [0]) for mode in ("none", "sha256")}
    lines.append("ratio: sha256 req/s / none req/s within each repetition, median; the target "
                 "(issue 13) is VALIDATE's at -P 32.")
    lines.append("server CPU per VALIDATE at -P 32, median: none %.2f us, sha256 %.2f us"
                 % (us["none"], us["sha256"]))
    return "\n".join(lines)


def perf_top(data_path, options, limit, only=None):
    out = command_output(["perf", "report", "-i", data_path, "--stdio", "-g", "none",
                          "--percent-limit", "0.05"] + options)
    rows = [line.rstrip() for line in out.splitlines()
            if line.strip() and not line.startswith("#")]
    if only is not None:
        rows = [row for row in rows if only.search(row)]
    return rows[:limit]


# The module's own functions and the module API it calls into.
MODULE_FRAMES = re.compile(r"redis_session::|redis_module::|\] RM_|RedisModule")


def profile(server, conn, client_cpu):
    """perf record of the server under a VALIDATE-only, then a CREATE-only load.

    The recordings stay in OUT_DIR (perf-validate.data, perf-create.data) for `perf report
    -i ...`; the summary goes to OUT_DIR/profile.md and stdout. redis-server shows up as
    redis-check-rdb in Debian's package (one binary, several names)."""
    if shutil.which("perf") is None:
        fail("perf is not installed (apt-get install linux-perf)")
    os.makedirs(OUT_DIR, exist_ok=True)
    tokens, _ = preload(conn)
    loads = (
        ("validate", ["SESSION.VALIDATE", tokens[0]], False),
        ("create", ["SESSION.CREATE", CREATE_DATA], True),
    )
    report = []
    for name, args, rand in loads:
        if name == "create":
            conn.call("FLUSHALL", "SYNC")
        # Far more requests than it can send before it is stopped after the recording.
        cmd = pinned(client_cpu) + [
            REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(server.port), "-c", str(CLIENTS),
            "-n", "1000000000", "-P", "32", "-q"]
        cmd += (["-r", str(RAND_RANGE)] if rand else []) + args
        load = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data = os.path.join(OUT_DIR, "perf-%s.data" % name)
        if os.path.exists(data):
            os.remove(data)  # else perf keeps the previous recording as .old
        try:
            time.sleep(1)
            log("perf record of %s for %gs -> %s" % (args[0], PROFILE_SECONDS, data))
            # Neither redis-server nor the module keeps frame pointers: unwind with DWARF.
            rec = subprocess.run(["perf", "record", "-e", "cpu-clock", "-F", "1999",
                                  "--call-graph", "dwarf,8192", "-p", str(server.pid),
                                  "-o", data, "--", "sleep", str(PROFILE_SECONDS)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True)
            if rec.returncode != 0:
                fail("perf record failed:\n" + rec.stdout[-2000:])
        finally:
            load.terminate()  # our own redis-benchmark, by its pid
            load.wait()
        log("perf report of %s" % data)
        title = "%s only (%d clients, -P 32, %gs)" % (args[0], CLIENTS, PROFILE_SECONDS)
        for heading, options, limit, only in (
                ("self cost by shared object", ["--no-children", "--sort", "dso"], 8, None),
                ("top 25 symbols by self cost", ["--no-children", "--sort", "dso,sym"], 25,
                 None),
                ("top 40 symbols by inclusive cost (children, self)",
                 ["--children", "--sort", "sym"], 40, None),
                ("the module's functions and the module API calls by inclusive cost",
                 ["--children", "--sort", "sym"], 30, MODULE_FRAMES)):
            report += ["#### %s: %s" % (title, heading), "", "```"]
            report += perf_top(data, options, limit, only)
            report += ["```", ""]
    text = "\n".join(report)
    with open(os.path.join(OUT_DIR, "profile.md"), "w") as f:
        f.write(text + "\n")
    print(text)


def cargo():
    found = shutil.which("cargo")
    if found:
        return found
    home = os.path.join(os.path.expanduser("~"), ".cargo", "bin", "cargo")
    return home if os.path.isfile(home) else None


def baseline_module():
    """The module the figures are compared with: BASELINE_MODULE (a path, or `none` for no
    baseline), else 0.1.0 built once from this repository's commit BASELINE_COMMIT into
    BASELINE_DIR (its sources from `git archive`, its own target/) and reused."""
    chosen = os.environ.get("BASELINE_MODULE", "").strip()
    if chosen.lower() == "none":
        return None
    if chosen:
        if not os.path.isfile(chosen):
            fail("BASELINE_MODULE=%s: no such file" % chosen)
        return os.path.abspath(chosen)
    built = os.path.join(BASELINE_DIR, "target", "release", "libredis_session.so")
    if os.path.isfile(built):
        return built
    tool = cargo()
    if tool is None:
        fail("cargo not found: it builds the %s baseline (or set BASELINE_MODULE=<path.so>, "
             "or BASELINE_MODULE=none)" % BASELINE_VERSION)
    if subprocess.run(["git", "-C", ROOT, "cat-file", "-e", BASELINE_COMMIT + "^{commit}"],
                      stderr=subprocess.DEVNULL).returncode != 0:
        fail("commit %s (%s) is not in this repository's history: set BASELINE_MODULE=<path.so>"
             " or BASELINE_MODULE=none" % (BASELINE_COMMIT, BASELINE_VERSION))
    log("building the %s baseline (commit %s) in %s, once"
        % (BASELINE_VERSION, BASELINE_COMMIT, BASELINE_DIR))
    os.makedirs(BASELINE_DIR, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", ROOT, "archive", BASELINE_COMMIT],
                               stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", BASELINE_DIR], stdin=archive.stdout)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        fail("git archive %s | tar -x -C %s failed" % (BASELINE_COMMIT, BASELINE_DIR))
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(BASELINE_DIR, "target"))
    build = subprocess.run([tool, "build", "--release", "--locked"], cwd=BASELINE_DIR, env=env)
    if build.returncode != 0 or not os.path.isfile(built):
        fail("building %s in %s failed" % (BASELINE_VERSION, BASELINE_DIR))
    return built


def main():
    started = time.monotonic()
    if ONLY not in ONLY_CHOICES:
        fail("BENCH_ONLY=%r: expected one of %s" % (ONLY, ", ".join(c for c in ONLY_CHOICES if c)))
    for tool in (REDIS_SERVER, REDIS_BENCHMARK):
        if shutil.which(tool) is None:
            fail("%s not found (apt-get install redis-server redis-tools)" % tool)
    if not os.path.isfile(MODULE):
        fail("no module at %s: run `cargo build --release` (make bench does)" % MODULE)
    baseline = (None if PROFILE or ONLY in ("expiry", "cluster", "token-hash", "maxsessions")
                else baseline_module())
    ncpu = os.cpu_count() or 1
    server_cpu = env_cpu("BENCH_SERVER_CPU", 0)
    client_cpu = env_cpu("BENCH_CLIENT_CPU", 1)
    if ncpu < 2 or shutil.which("taskset") is None:
        log("one core or no taskset: server and redis-benchmark are not pinned")
        server_cpu = client_cpu = None

    tmp = tempfile.mkdtemp(prefix="redis-session-bench-")
    server = base_server = None
    try:
        server = Server(tmp, server_cpu)
        global METER
        METER = CpuMeter(server.pid)
        log("redis-server pid %d on 127.0.0.1:%d (dir %s)" % (server.pid, server.port, tmp))
        conn = Conn(server.port)
        if PROFILE:
            profile(server, conn, client_cpu)
            return
        base = None
        if baseline is not None and ONLY in ("", "commands", "memory"):
            # The same server binary and flags, the same core; idle but for its own phases.
            base_server = Server(tmp, server_cpu, module=baseline)
            log("%s baseline: redis-server pid %d on 127.0.0.1:%d with %s"
                % (BASELINE_VERSION, base_server.pid, base_server.port, baseline))
            base = Conn(base_server.port)
        if ONLY == "memory":
            results = {"machine": machine(conn, baseline), "memory": measure_memory(conn, base)}
            tables = [describe_modules(results["machine"]), render_memory(results["memory"])]
        elif ONLY == "replication":
            results = {"machine": machine(conn, baseline),
                       "replication": measure_replications(tmp, baseline, server_cpu,
                                                           client_cpu)}
            tables = [describe_modules(results["machine"]),
                      render_replication(results["replication"])]
        elif ONLY in ("expiry", "cluster", "token-hash", "maxsessions"):
            results = {"machine": machine(conn)}
            tables = []
        else:
            results = benchmark(server, conn, base, baseline, server_cpu, client_cpu, tmp)
            tables = [render(results)]
        if base_server is not None:
            base_server.stop()  # done with: the expiry cost has servers of its own
        if ONLY in ("", "maxsessions"):
            results["maxsessions"] = measure_maxsessions(server, conn, client_cpu)
            tables.append(render_maxsessions(results["maxsessions"]))
        if ONLY in ("", "token-hash"):
            results["token_hash"] = measure_token_hash(server, conn, client_cpu)
            tables.append(render_token_hash(results["token_hash"]))
        if ONLY in ("", "cluster"):
            results["cluster"] = measure_cluster(tmp, server_cpu, client_cpu)
            tables.append(render_cluster(results["cluster"]))
        if ONLY in ("", "expiry"):
            results["expiry"] = measure_expiry(tmp, server_cpu)
            tables.append(render_expiry(results["expiry"]))
        results["total_minutes"] = round((time.monotonic() - started) / 60, 1)
        table = "\n\n".join(tables)
        os.makedirs(OUT_DIR, exist_ok=True)
        with open(os.path.join(OUT_DIR, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        with open(os.path.join(OUT_DIR, "table.txt"), "w") as f:
            f.write(table + "\n")
        print(table)
        log("took %.1f minutes; table and raw figures in %s" % (results["total_minutes"], OUT_DIR))
    finally:
        for running in (base_server, server):
            if running is not None:
                running.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
