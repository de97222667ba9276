#!/usr/bin/env python3
"""Runs every redis-cli transcript in the given markdown files against a real server and
fails when a reply differs from what the file shows.

    python3 tests/transcripts/check_transcripts.py [--list] [-v] [FILE.md ...]

Without files: README.md and docs/**/*.md of the repository. Python 3 standard library and
the `redis-cli` binary only. Environment: REDIS_SERVER (default `redis-server` on PATH),
REDIS_SESSION_MODULE (default target/release/libredis_session.so), REDIS_CLI (default
`redis-cli`).

WHAT IS A TRANSCRIPT
  A fenced code block with no info string, or with `sh`/`shell`/`console`/`bash`, that holds
  a prompt line: `<host>:<port>> <command>` (as interactive redis-cli shows it, also with
  `[db]` and `(TX)`) or `$ <command>` (a shell prompt). Every other line is output.
  - `<host>:<port>> CMD` lines: CMD is split as redis-cli splits what you type (quotes,
    `\\xHH` escapes), sent on one connection per block, and its reply formatted as
    interactive redis-cli formats it; the following lines, up to the next prompt, are the
    expected reply. The port in a prompt is cosmetic (it must not change within a block,
    except after a `-> Redirected` line in a cluster).
  - `$ redis-cli [options]` with no command opens such an interactive session (`-c`: follow
    MOVED/ASK and print `-> Redirected to slot [N] located at host:port`, as redis-cli does).
  - `$ redis-cli [options] CMD ARGS...` (split as a shell splits) runs the real redis-cli
    binary with its stdout on a pseudo-terminal, so it prints what a terminal shows
    (`--raw`, `--no-raw` and the other options are passed on); `-h`/`-p` are pointed at
    the test server (in a cluster, at its first primary). MONITOR, SUBSCRIBE, PSUBSCRIBE
    and SSUBSCRIBE keep running: see `while` below.
  - A `$ ` line that is not redis-cli cannot be checked and is refused.
  A block of any other info string (text, conf, js, python, ...) that holds a prompt line is
  refused too, and so is a `$ redis-cli CMD` without output: nothing prompt-like escapes the
  check unless a `skip` directive says why.

STATE
  Each file gets a fresh redis-server (a free loopback port, `--save ''`, a temporary
  directory), started at its first transcript, with the module loaded with
  `indexes user_id`; its transcripts run in order against it (state carries across blocks)
  and it is stopped by its pid at the end.

DIRECTIVES: HTML comments right before a block (blank lines and other directives may sit
between), invisible on GitHub. One per comment:
  <!-- transcript: server [--opt value ...] [--no-module] [module args ...] -->
      Restart on a fresh server before this block: redis-server options (`--name value`),
      the module's load arguments (default `indexes user_id`; given ones replace it),
      `--no-module` to load none (for MODULE LOAD/LOADEX transcripts).
  <!-- transcript: cluster [module args ...] -->
      Restart on a fresh cluster of 3 primaries (cluster-enabled, module loaded on each,
      joined by `redis-cli --cluster create`); later blocks of the file run against it.
  <!-- transcript: setup
  127.0.0.1:6379> COMMAND ...
  expected reply
  -->
      A hidden transcript run (and checked) before the block: state the block needs, or a
      doc token bound by showing it in a reply. Here a reply of `...` accepts any reply.
  <!-- transcript: sleep SECONDS -->
      Wait before the block ("six seconds later").
  <!-- transcript: while previous -->  or  <!-- transcript: while
  127.0.0.1:6379> COMMAND ...
  -->
      For a streaming block (`$ redis-cli ... MONITOR`/`PSUBSCRIBE`): it is started, and
      what it prints is collected while the previous transcript block runs, or while the
      hidden transcript in the directive runs; then it is stopped and compared.
  <!-- transcript: skip REASON -->
      Don't run this block; it is listed as skipped with the reason.
  A `server` or `cluster` directive also forgets the doc values bound so far (below).

COMPARISON: exact, line by line, trailing blanks ignored, except:
  - Hex runs (16 to 256 lowercase hex digits with at least one letter: tokens, SHA-256
    session ids, 16-digit tags, secrets, run ids): a doc value in a reply binds to the real
    value of the same length at that place on first sight; afterwards the same doc value
    must meet the same real value, and no two doc values may meet one real value. Commands
    are sent with bound doc values replaced by their real ones; a doc value a command uses
    before any reply showed it stands for itself (a made-up token).
  - By shape: dates `YYYY-MM-DD HH:MM:SS`, unix times in ms (13 digits) and s (10 digits)
    from 2020 to 2033, MONITOR timestamps (`1795769003.868215`), `ip:port` addresses; a path
    ending in `libredis_session.so` stands for the module under test (in commands too).
  - By command: TTL and PTTL `(integer)` replies within 2 s; SLOWLOG GET durations; replies
    whose order Redis leaves open (SMEMBERS, SUNION, SINTER, SDIFF, KEYS, HKEYS, HVALS,
    SESSION.LIST, COMMAND LIST, and by pairs CONFIG GET, HGETALL) are compared as multisets
    of their top-level elements.
  A mismatch prints file:line, the command, the expected and the actual reply.
"""

import argparse
import glob
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = os.environ.get("REDIS_SERVER", "redis-server")
CLI = os.environ.get("REDIS_CLI", "redis-cli")
MODULE = os.path.abspath(
    os.environ.get(
        "REDIS_SESSION_MODULE", os.path.join(ROOT, "target", "release", "libredis_session.so")
    )
)
DEFAULT_MODULE_ARGS = ["indexes", "user_id"]

# ----------------------------------------------------------------------------- markdown

PROMPT = re.compile(r"^(?P<host>[A-Za-z0-9_.\-]+):(?P<port>\d+)(?:\[\d+\])?(?:\(TX\))?>(?: (?P<cmd>.*))?$")
SHELL = re.compile(r"^\$ (?P<cmd>.*)$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
DIRECTIVE_START = re.compile(r"^\s*<!--\s*transcript:\s*(?P<rest>.*)$")
SHELLISH = {"", "sh", "shell", "console", "bash", "shell-session"}
STREAMING = {"MONITOR", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"}
DIRECTIVES = {"server", "cluster", "setup", "sleep", "while", "skip"}


class DocError(Exception):
    """A problem in a markdown file: refused block, bad directive."""


class Directive:
    def __init__(self, name, args, body, line):
        self.name, self.args, self.body, self.line = name, args, body, line


class Block:
    def __init__(self, path, line, info, lines, directives):
        self.path = path
        self.line = line  # line number of the opening fence
        self.info = info
        self.lines = lines  # [(lineno, text)]
        self.directives = directives

    def directive(self, name):
        return [d for d in self.directives if d.name == name]


def prompt_like(text):
    return bool(PROMPT.match(text) or SHELL.match(text))


def parse_markdown(path):
    """Fenced blocks with the directives right before each. Raises DocError."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks, pending = [], []
    i = 0
    while i < len(lines):
        text = lines[i]
        m = DIRECTIVE_START.match(text)
        if m:
            start = i + 1
            rest = m.group("rest")
            body = []
            if "-->" in rest:
                head = rest[: rest.index("-->")]
            else:
                head = rest
                i += 1
                while i < len(lines) and "-->" not in lines[i]:
                    body.append((i + 1, lines[i]))
                    i += 1
                if i == len(lines):
                    raise DocError(f"{path}:{start}: directive comment never closed (-->)")
                before = lines[i][: lines[i].index("-->")]
                if before.strip():
                    body.append((i + 1, before))
            words = head.split()
            if not words or words[0] not in DIRECTIVES:
                raise DocError(
                    f"{path}:{start}: unknown transcript directive {head.strip()!r} "
                    f"(known: {', '.join(sorted(DIRECTIVES))})"
                )
            pending.append(Directive(words[0], head.split(None, 1)[1] if len(words) > 1 else "", body, start))
            i += 1
            continue
        m = FENCE.match(text)
        if m:
            indent, fence, info = len(m.group("indent")), m.group("fence"), m.group("info")
            start = i + 1
            content = []
            i += 1
            while i < len(lines):
                close = re.match(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$", lines[i])
                if close:
                    break
                raw = lines[i]
                # strip the fence's indentation (blocks inside list items)
                strip = min(indent, len(raw) - len(raw.lstrip(" ")))
                content.append((i + 1, raw[strip:]))
                i += 1
            blocks.append(Block(path, start, info.lower(), content, pending))
            pending = []
            i += 1
            continue
        if text.strip() and pending:
            raise DocError(f"{path}:{pending[0].line}: transcript directive not right before a code block")
        i += 1
    if pending:
        raise DocError(f"{path}:{pending[0].line}: transcript directive not right before a code block")
    return blocks


# ------------------------------------------------------------------ transcript structure


class Step:
    """One command and its expected output."""

    def __init__(self, kind, line, command, expected, opts=None, session=None):
        self.kind = kind  # "cli" (interactive line), "oneshot", "stream", "open"
        self.line = line
        self.command = command
        self.expected = expected  # [(lineno, text)]
        self.opts = opts or {}
        self.session = session


def parse_cli_options(words):
    """Split `redis-cli` argv (without the program) into options and the command."""
    opts = {"cluster": False, "pass": []}
    i = 0
    with_value = {"-h", "-p", "-s", "-a", "--user", "--pass", "-u", "-n", "-r", "-i", "-d", "-D", "--tls", "-x"}
    while i < len(words):
        w = words[i]
        if w == "-c":
            opts["cluster"] = True
        elif w in ("-h", "-p"):
            opts[w] = words[i + 1] if i + 1 < len(words) else ""
            i += 1
        elif w.startswith("-") and len(w) > 1:
            if w in with_value and w not in ("-x", "--tls"):
                opts["pass"] += [w, words[i + 1] if i + 1 < len(words) else ""]
                i += 1
            else:
                opts["pass"].append(w)
        else:
            break
        i += 1
    return opts, words[i:]


def parse_steps(lines, where):
    """Steps of a transcript: [(lineno, text)] -> [Step]. Raises DocError."""
    steps = []
    session = None  # options of the open interactive session, or None (implicit)
    i = 0
    n = len(lines)
    prev_port = None
    redirected = False
    while i < n:
        lineno, text = lines[i]
        pm, sm = PROMPT.match(text), SHELL.match(text)
        if not pm and not sm:
            if not text.strip() and not steps:
                i += 1
                continue
            raise DocError(f"{where(lineno)}: output line before any prompt: {text!r}")
        j = i + 1
        out = []
        while j < n and not PROMPT.match(lines[j][1]) and not SHELL.match(lines[j][1]):
            out.append(lines[j])
            j += 1
        if pm:
            port = pm.group("port")
            in_cluster = bool(session and session["cluster"])
            if prev_port is not None and port != prev_port and not (in_cluster and redirected):
                raise DocError(
                    f"{where(lineno)}: the prompt's port changes ({prev_port} -> {port}) within one "
                    "redis-cli session; start another with a `$ redis-cli -p PORT` line"
                )
            prev_port = port
            redirected = any(t.startswith("-> Redirected to slot") for _, t in out)
            steps.append(Step("cli", lineno, pm.group("cmd") or "", out, session=session))
        else:
            cmd = sm.group("cmd")
            try:
                words = shlex.split(cmd)
            except ValueError as e:
                raise DocError(f"{where(lineno)}: cannot split {cmd!r}: {e}")
            if not words or os.path.basename(words[0]) != "redis-cli":
                raise DocError(
                    f"{where(lineno)}: `$ {cmd}` is not a redis-cli command: it cannot be checked "
                    "(add <!-- transcript: skip REASON -->)"
                )
            opts, argv = parse_cli_options(words[1:])
            if not argv:
                if out:
                    raise DocError(f"{where(lineno)}: output after `$ {cmd}` before its first prompt")
                if opts["pass"]:
                    raise DocError(
                        f"{where(lineno)}: `$ {cmd}`: an interactive session takes only -h, -p and -c "
                        f"here, not {' '.join(opts['pass'])}"
                    )
                session = opts
                prev_port = None
                steps.append(Step("open", lineno, cmd, [], opts))
            else:
                kind = "stream" if argv[0].upper() in STREAMING else "oneshot"
                if kind == "oneshot" and not out:
                    raise DocError(
                        f"{where(lineno)}: `$ {cmd}` shows no output: show it, or "
                        "add <!-- transcript: skip REASON -->"
                    )
                opts["argv"] = argv
                steps.append(Step(kind, lineno, cmd, out, opts))
                session = None
                prev_port = None
        i = j
    return steps


def classify(block):
    """None (not a transcript), "transcript", or raises DocError for a prompt-like block that
    cannot be checked."""
    where = lambda ln: f"{block.path}:{ln}"
    has_prompt = any(prompt_like(t) for _, t in block.lines)
    if block.directive("skip"):
        return "skip"
    if not has_prompt:
        if block.directives:
            raise DocError(f"{where(block.line)}: transcript directive on a block that holds no prompt line")
        return None
    if block.info not in SHELLISH:
        first = next(ln for ln, t in block.lines if prompt_like(t))
        raise DocError(
            f"{where(first)}: a ```{block.info} block holds a prompt line, which is not checked: "
            "use a block without info string (or sh), or add <!-- transcript: skip REASON -->"
        )
    return "transcript"


# ------------------------------------------------------------------------- redis-cli bits


def split_args(line):
    """sdssplitargs, as redis-cli splits an interactive line: bytes args, or None."""
    p = line.encode("utf-8")
    n = len(p)
    i = 0
    args = []
    ishex = lambda c: chr(c) in "0123456789abcdefABCDEF"
    while True:
        while i < n and chr(p[i]).isspace():
            i += 1
        if i >= n:
            return args
        inq = insq = done = False
        cur = bytearray()
        while not done:
            c = p[i] if i < n else 0
            nxt = p[i + 1] if i + 1 < n else 0
            if inq:
                if c == 0x5C and nxt == ord("x") and i + 3 < n and ishex(p[i + 2]) and ishex(p[i + 3]):
                    cur.append(int(p[i + 2 : i + 4].decode(), 16))
                    i += 3
                elif c == 0x5C and nxt:
                    i += 1
                    cur.append({ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}.get(p[i], p[i]))
                elif c == ord('"'):
                    if nxt and not chr(nxt).isspace():
                        return None
                    done = True
                elif c == 0:
                    return None
                else:
                    cur.append(c)
            elif insq:
                if c == 0x5C and nxt == ord("'"):
                    i += 1
                    cur.append(ord("'"))
                elif c == ord("'"):
                    if nxt and not chr(nxt).isspace():
                        return None
                    done = True
                elif c == 0:
                    return None
                else:
                    cur.append(c)
            else:
                if c in (0x20, 0x0A, 0x0D, 0x09, 0):
                    done = True
                elif c == ord('"'):
                    inq = True
                elif c == ord("'"):
                    insq = True
                else:
                    cur.append(c)
            if i < n:
                i += 1
        args.append(bytes(cur))


class Error(str):
    pass


class Status(str):
    pass


class Resp:
    """A minimal RESP2/RESP3 client."""

    def __init__(self, port, host="127.0.0.1", timeout=15.0):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self.read()

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("connection closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, k):
        while len(self.buf) < k + 2:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("connection closed")
            self.buf += d
        data, self.buf = self.buf[:k], self.buf[k + 2 :]
        return data

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return Status(rest.decode("utf-8", "surrogateescape"))
        if t == b"-":
            return Error(rest.decode("utf-8", "surrogateescape"))
        if t == b":":
            return int(rest)
        if t in (b"$", b"="):
            k = int(rest)
            return None if k < 0 else self._exact(k)
        if t in (b"*", b"~", b">"):
            k = int(rest)
            return None if k < 0 else [self.read() for _ in range(k)]
        if t == b"%":
            k = int(rest)
            return [self.read() for _ in range(2 * k)]
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return ("double", rest.decode())
        raise ConnectionError(f"unexpected reply type {line!r}")

    def call(self, *args):
        r = self.send(list(args))
        if isinstance(r, Error):
            raise RuntimeError(f"{' '.join(map(str, args))}: {r}")
        return r


def repr_bytes(b):
    """sdscatrepr: redis-cli's quoting of a bulk string (C locale isprint)."""
    out = ['"']
    for c in b:
        ch = chr(c)
        if ch in '\\"':
            out.append("\\" + ch)
        elif c == 10:
            out.append("\\n")
        elif c == 13:
            out.append("\\r")
        elif c == 9:
            out.append("\\t")
        elif c == 7:
            out.append("\\a")
        elif c == 8:
            out.append("\\b")
        elif 0x20 <= c <= 0x7E:
            out.append(ch)
        else:
            out.append("\\x%02x" % c)
    out.append('"')
    return "".join(out)


def format_tty(r, prefix=""):
    """cliFormatReplyTTY for RESP2 replies (what interactive redis-cli prints)."""
    if isinstance(r, Error):
        return f"(error) {r}\n"
    if isinstance(r, Status):
        return f"{r}\n"
    if isinstance(r, bool):
        return "(true)\n" if r else "(false)\n"
    if isinstance(r, int):
        return f"(integer) {r}\n"
    if isinstance(r, tuple):
        return f"(double) {r[1]}\n"
    if isinstance(r, bytes):
        return repr_bytes(r) + "\n"
    if r is None:
        return "(nil)\n"
    if isinstance(r, list):
        if not r:
            return "(empty array)\n"
        idxlen = len(str(len(r)))
        sub = prefix + " " * (idxlen + 2)
        out = []
        for i, e in enumerate(r):
            out.append(("" if i == 0 else prefix) + str(i + 1).rjust(idxlen) + ") ")
            out.append(format_tty(e, sub))
        return "".join(out)
    raise TypeError(r)


def format_raw(r):
    """cliFormatReplyRaw, as redis-cli prints INFO and the like in interactive mode."""
    if isinstance(r, bytes):
        return r.decode("utf-8", "surrogateescape")
    if isinstance(r, list):
        return "\n".join(format_raw(e) for e in r)
    if r is None:
        return ""
    return str(r)


def raw_output_command(args):
    a = [x.decode("utf-8", "replace").lower() for x in args[:2]]
    c = a[0] if a else ""
    s = a[1] if len(a) > 1 else ""
    return (
        c in ("info", "lolwut")
        or (c == "debug" and s in ("htstats", "htstats-key", "client-eviction"))
        or (c == "memory" and s in ("malloc-stats", "doctor"))
        or (c == "cluster" and len(args) == 2 and s in ("nodes", "info"))
        or (c == "client" and s in ("list", "info"))
        or (c == "latency" and ((len(args) == 3 and s == "graph") or (len(args) == 2 and s == "doctor")))
    )


# ----------------------------------------------------------------------------- servers

_ports_lock = threading.Lock()
_handed_out = set()


def free_port(with_bus=False):
    for _ in range(500):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _ports_lock:
            taken = {port, port + 10000} & {q for p in _handed_out for q in (p, p + 10000)}
            if taken or (with_bus and port >= 55535):
                continue
            if with_bus:
                with socket.socket() as s:
                    try:
                        s.bind(("127.0.0.1", port + 10000))
                    except OSError:
                        continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


class Node:
    def __init__(self, tmp, server_args, module_args, load_module=True, cluster=False):
        self.port = free_port(with_bus=cluster)
        self.dir = os.path.join(tmp, str(self.port))
        os.makedirs(self.dir)
        args = [
            SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
            "--logfile", os.path.join(self.dir, "redis.log"), "--save", "", "--appendonly", "no",
        ]
        if cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "2000"]
        args += server_args
        if load_module:
            args += ["--loadmodule", MODULE, *module_args]
        self.args = args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_up(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({' '.join(self.args)}); log:\n{self.log()}")
            try:
                c = Resp(self.port, timeout=2)
                try:
                    if c.send(["PING"]) == "PONG":
                        return
                finally:
                    c.close()
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on {self.port} did not answer; log:\n{self.log()}")

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Deployment:
    """A standalone server or a cluster of 3 primaries, in a temporary directory."""

    def __init__(self, kind, server_args=(), module_args=None, load_module=True):
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix="redis-session-transcripts.")
        self.nodes = []
        module_args = DEFAULT_MODULE_ARGS if module_args is None else module_args
        try:
            count = 3 if kind == "cluster" else 1
            self.nodes = [
                Node(self.tmp, list(server_args), module_args, load_module, cluster=kind == "cluster")
                for _ in range(count)
            ]
            for n in self.nodes:
                n.wait_up()
            if kind == "cluster":
                self._join()
        except BaseException:
            self.stop()
            raise

    @property
    def port(self):
        return self.nodes[0].port

    def _join(self):
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        p = subprocess.run(
            [CLI, "--cluster", "create", *addrs, "--cluster-yes"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
        )
        if p.returncode != 0:
            raise RuntimeError("redis-cli --cluster create failed:\n" + p.stdout.decode(errors="replace"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ok = True
            for n in self.nodes:
                c = Resp(n.port)
                try:
                    info = c.call("CLUSTER", "INFO").decode()
                    slots = c.call("CLUSTER", "SLOTS")
                finally:
                    c.close()
                if "cluster_state:ok" not in info or len(slots) != 3:
                    ok = False
            if ok:
                return
            time.sleep(0.05)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def stop(self):
        for n in self.nodes:
            try:
                n.stop()
            except Exception:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- matching

HEX = r"(?<![0-9A-Za-z])(?=[0-9]*[a-f])[0-9a-f]{16,256}(?![0-9A-Za-z])"
MODPATH = r"[^\s\"']*libredis_session\.so"
MASK = re.compile(
    "|".join(
        [
            r"(?P<date>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})",
            r"(?P<monts>(?<![0-9A-Za-z.])1[6-9]\d{8}\.\d{6}(?![0-9A-Za-z.]))",
            r"(?P<addr>(?<![0-9A-Za-z.])\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}(?![0-9A-Za-z.]))",
            r"(?P<hex>" + HEX + ")",
            r"(?P<ms>(?<![0-9A-Za-z.])1[6-9]\d{11}(?![0-9A-Za-z.]))",
            r"(?P<s>(?<![0-9A-Za-z.])1[6-9]\d{8}(?![0-9A-Za-z.]))",
            r"(?P<mod>" + MODPATH + ")",
        ]
    )
)
SHAPE = {
    "date": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
    "monts": r"\d{10}\.\d{6}",
    "addr": r"\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}",
    "ms": r"\d{13}",
    "s": r"\d{10}",
}
_regex_cache = {}


def line_regex(expected):
    """(compiled regex, [doc hex values in capture order]) for an expected line."""
    hit = _regex_cache.get(expected)
    if hit:
        return hit
    parts, hexes, pos = [], [], 0
    for m in MASK.finditer(expected):
        parts.append(re.escape(expected[pos : m.start()]))
        kind = m.lastgroup
        if kind == "hex":
            hexes.append(m.group())
            parts.append("([0-9a-f]{%d})" % len(m.group()))
        elif kind == "mod":
            parts.append(re.escape(MODULE))
        else:
            parts.append("(?:" + SHAPE[kind] + ")")
        pos = m.end()
    parts.append(re.escape(expected[pos:]))
    hit = (re.compile("".join(parts)), hexes)
    _regex_cache[expected] = hit
    return hit


class Bindings:
    def __init__(self):
        self.fwd, self.rev = {}, {}

    def copy(self):
        b = Bindings()
        b.fwd, b.rev = dict(self.fwd), dict(self.rev)
        return b

    def bind(self, doc, real):
        """None, or why the pair breaks the binding."""
        if doc in self.fwd:
            if self.fwd[doc] != real:
                return f"doc value {doc} stands for {self.fwd[doc]} already, but here it is {real}"
            return None
        if real in self.rev:
            return f"real value {real} is the doc's {self.rev[real]} already, but here the doc shows {doc}"
        self.fwd[doc] = real
        self.rev[real] = doc
        return None

    def substitute(self, text):
        """A command's text with bound doc values replaced; unbound ones stand for themselves."""
        problems = []

        def rep(m):
            v = m.group()
            if v not in self.fwd:
                why = self.bind(v, v)
                if why:
                    problems.append(why)
                    return v
            return self.fwd[v]

        text = re.sub(HEX, rep, text)
        text = re.sub(MODPATH, lambda m: MODULE, text)
        return text, problems


def match_line(exp, act, b):
    """Match one line; binds into b (mutates). None or a reason."""
    exp, act = exp.rstrip(), act.rstrip()
    rx, hexes = line_regex(exp)
    m = rx.fullmatch(act)
    if not m:
        return "differs"
    for doc, real in zip(hexes, m.groups()):
        why = b.bind(doc, real)
        if why:
            return why
    return None


def match_lines(exp, act, b):
    """Line by line; returns (new bindings or None, reason, index of the first bad line)."""
    if len(exp) != len(act):
        # report the first differing line even so
        t = b.copy()
        for k, (e, a) in enumerate(zip(exp, act)):
            if match_line(e, a, t):
                return None, f"{len(exp)} lines expected, {len(act)} printed", k
        return None, f"{len(exp)} lines expected, {len(act)} printed", min(len(exp), len(act))
    t = b.copy()
    for k, (e, a) in enumerate(zip(exp, act)):
        why = match_line(e, a, t)
        if why:
            return None, why, k
    return t, None, None


ELEM = re.compile(r"^( *)(\d+)\) ")


def split_elements(lines):
    """Top-level elements of an array as redis-cli prints it: [[content lines]] or None."""
    if not lines:
        return None
    m = ELEM.match(lines[0])
    if not m or m.group(2) != "1":
        return None
    width = len(m.group(1)) + len(m.group(2))
    elems = []
    for ln in lines:
        m = ELEM.match(ln)
        if m and len(m.group(1)) + len(m.group(2)) == width and int(m.group(2)) == len(elems) + 1:
            elems.append([ln[width + 2 :]])
        elif elems and ln.startswith(" " * (width + 2)):
            elems[-1].append(ln[width + 2 :])
        else:
            return None
    return elems


def match_unordered(exp, act, b, pairs):
    e, a = split_elements(exp), split_elements(act)
    if e is None or a is None:
        return match_lines(exp, act, b)
    if pairs:
        if len(e) % 2 or len(a) % 2:
            return match_lines(exp, act, b)
        e = [e[k] + e[k + 1] for k in range(0, len(e), 2)]
        a = [a[k] + a[k + 1] for k in range(0, len(a), 2)]
    if len(e) != len(a):
        return None, f"{len(exp)} lines expected, {len(act)} printed (elements in any order)", 0
    used = [False] * len(a)
    reasons = []

    def solve(i, bind):
        if i == len(e):
            return bind
        for j in range(len(a)):
            if used[j] or len(a[j]) != len(e[i]):
                continue
            t, why, _ = match_lines(e[i], a[j], bind)
            if why and why != "differs":
                reasons.append(why)
            if t is not None:
                used[j] = True
                r = solve(i + 1, t)
                if r is not None:
                    return r
                used[j] = False
        return None

    r = solve(0, b)
    if r is None:
        why = "no pairing of the elements (compared in any order) fits"
        if reasons:
            why += "; e.g. " + reasons[0]
        return None, why, 0
    return r, None, None


UNORDERED = {("SMEMBERS",), ("SUNION",), ("SINTER",), ("SDIFF",), ("KEYS",), ("HKEYS",), ("HVALS",),
             ("SESSION.LIST",), ("COMMAND", "LIST")}
UNORDERED_PAIRS = {("CONFIG", "GET"), ("HGETALL",)}
TTL_TOLERANCE = {"TTL": 2, "PTTL": 2000}
SLOWLOG_DURATION = re.compile(r"^(\s*3\) \(integer\) )\d+$")


def compare(command_words, exp, act, b):
    """Compare an expected reply with the printed one: (new bindings or None, reason, line)."""
    words = [w.upper() for w in command_words[:2]]
    if words and words[0] in TTL_TOLERANCE and len(exp) == 1 and len(act) == 1:
        me = re.fullmatch(r"\(integer\) (\d+)", exp[0].strip())
        ma = re.fullmatch(r"\(integer\) (\d+)", act[0].strip())
        if me and ma and int(me.group(1)) > 0 and int(ma.group(1)) > 0:
            if abs(int(me.group(1)) - int(ma.group(1))) <= TTL_TOLERANCE[words[0]]:
                return b, None, None
            return None, f"{words[0]} outside the tolerance of {TTL_TOLERANCE[words[0]]}", 0
    if words[:2] == ["SLOWLOG", "GET"]:
        exp = [SLOWLOG_DURATION.sub(r"\g<1>N", x) for x in exp]
        act = [SLOWLOG_DURATION.sub(r"\g<1>N", x) for x in act]
    key1, key2 = tuple(words[:1]), tuple(words[:2])
    if key1 in UNORDERED or key2 in UNORDERED:
        return match_unordered(exp, act, b, False)
    if key1 in UNORDERED_PAIRS or key2 in UNORDERED_PAIRS:
        return match_unordered(exp, act, b, True)
    return match_lines(exp, act, b)


# ------------------------------------------------------------------------------ runner


class Failure(Exception):
    pass


class Stream:
    """The real redis-cli, stdout on a pseudo-terminal, running in the background."""

    def __init__(self, argv):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        self.data = b""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                r, _, _ = select.select([self.master], [], [], 0.05)
                if not r:
                    if self.proc.poll() is not None:
                        # drain what is left
                        r, _, _ = select.select([self.master], [], [], 0.05)
                        if not r:
                            return
                d = os.read(self.master, 65536)
            except OSError:
                return
            if not d:
                return
            with self.lock:
                self.data += d

    def lines(self):
        with self.lock:
            text = self.data.decode("utf-8", "surrogateescape").replace("\r\n", "\n").replace("\r", "")
        out = text.split("\n")
        if out and out[-1] == "":
            out.pop()
        return out

    def wait_lines(self, count, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.lines()) >= count or not self.thread.is_alive():
                return
            time.sleep(0.01)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(timeout=2)
        try:
            os.close(self.master)
        except OSError:
            pass
        return self.lines()


class FileRun:
    def __init__(self, path, verbose=False):
        self.path = path
        self.rel = display(path)
        self.verbose = verbose
        self.out = []
        self.failures = 0
        self.checked_blocks = 0
        self.commands = 0
        self.skipped = []
        self.dep = None
        self.bindings = Bindings()

    def say(self, text):
        self.out.append(text)

    def fail(self, line, command, sent, exp, act, why, k=None):
        self.failures += 1
        msg = [f"FAIL {self.rel}:{line}: {command}"]
        if sent is not None and sent != command:
            msg.append(f"  sent:     {sent}")
        msg.append(f"  why:      {why}" + (f" (reply line {k + 1})" if k is not None else ""))
        msg.append("  expected:")
        msg += ["    " + x for x in exp] or ["    (nothing)"]
        msg.append("  actual:")
        msg += ["    " + x for x in act] or ["    (nothing)"]
        self.say("\n".join(msg))

    # -- servers

    def restart(self, kind, args, line):
        if self.dep:
            self.dep.stop()
            self.dep = None
        self.bindings = Bindings()
        try:
            words = shlex.split(args)
        except ValueError as e:
            raise DocError(f"{self.rel}:{line}: bad directive arguments {args!r}: {e}")
        server_args, module_args, load = [], [], True
        i = 0
        while i < len(words):
            w = words[i]
            if w == "--no-module":
                load = False
            elif w.startswith("--") and kind == "server":
                server_args.append(w)
                i += 1
                while i < len(words) and not words[i].startswith("--"):
                    server_args.append(words[i])
                    i += 1
                continue
            else:
                module_args.append(w)
            i += 1
        self.dep = Deployment(kind, server_args, module_args or None, load)

    def ensure(self):
        if self.dep is None:
            self.dep = Deployment("standalone")

    # -- steps

    def run_session_steps(self, steps, hidden=False):
        """Interactive steps (one connection per run of consecutive steps of one session)."""
        conn = None
        current_session = object()
        port = None
        try:
            for st in steps:
                if st.kind == "open":
                    if conn:
                        conn.close()
                    conn = None
                    current_session = st.opts
                    continue
                if st.kind in ("oneshot", "stream"):
                    if conn:
                        conn.close()
                    conn = None
                    current_session = object()
                    if st.kind == "oneshot":
                        self.run_oneshot(st)
                    else:
                        self.run_stream(st, None, [])
                    continue
                if st.session is not current_session or conn is None:
                    if conn:
                        conn.close()
                    self.ensure()
                    port = self.dep.port
                    conn = Resp(port)
                    current_session = st.session
                # `$ redis-cli -c` follows redirections; so does a block with no `$ redis-cli`
                # line in a cluster (as if opened with `redis-cli -c`)
                follow = self.dep.kind == "cluster" and (st.session is None or st.session["cluster"])
                conn, port = self.run_cli(st, conn, port, follow, hidden)
        finally:
            if conn:
                conn.close()

    def run_cli(self, st, conn, port, cluster, hidden):
        self.commands += 1
        sent, problems = self.bindings.substitute(st.command)
        exp = [t for _, t in st.expected]
        shown = st.command
        if problems:
            self.fail(st.line, shown, sent, exp, [], "; ".join(problems))
            return conn, port
        args = split_args(sent)
        if args is None:
            printed = ["Invalid argument(s)"]
        elif not args:
            printed = []
        else:
            name = args[0].decode("utf-8", "replace").upper()
            if name in STREAMING or name in ("QUIT", "EXIT", "CONNECT", "HELP", "CLEAR", "RESTART"):
                raise DocError(
                    f"{self.rel}:{st.line}: {name} in an interactive transcript is not checked: "
                    "use a `$ redis-cli ... " + name + "` block"
                )
            printed = []
            for _ in range(8):
                reply = conn.send(args)
                if (
                    cluster
                    and isinstance(reply, Error)
                    and (reply.startswith("MOVED ") or reply.startswith("ASK "))
                ):
                    _, slot, addr = reply.split(" ")
                    host, p = addr.rsplit(":", 1)
                    printed.append(f"-> Redirected to slot [{slot}] located at {host}:{p}")
                    conn.close()
                    port = int(p)
                    conn = Resp(port, host)
                    if reply.startswith("ASK "):
                        conn.send(["ASKING"])
                    continue
                break
            if raw_output_command(args) and not isinstance(reply, Error):
                text = format_raw(reply)
            else:
                text = format_tty(reply)
            text = text.replace("\r\n", "\n")
            printed += text.split("\n")
            if printed and printed[-1] == "":
                printed.pop()
        if self.verbose:
            self.say(f"  {self.rel}:{st.line}> {sent}\n" + "\n".join("    " + x for x in printed))
        if hidden and exp == ["..."]:
            return conn, port
        words = [a.decode("utf-8", "replace") for a in (args or [])]
        new, why, k = compare(words, exp, printed, self.bindings)
        if new is None:
            self.fail(st.line, shown, sent, exp, printed, why, k)
        else:
            self.bindings = new
        return conn, port

    def cli_argv(self, opts):
        self.ensure()
        argv = [CLI, "-h", "127.0.0.1", "-p", str(self.dep.port)]
        if opts.get("cluster"):
            argv.append("-c")
        argv += opts["pass"]
        return argv

    def substitute_words(self, st, words):
        out = []
        for w in words:
            s, problems = self.bindings.substitute(w)
            if problems:
                self.fail(st.line, st.command, None, [t for _, t in st.expected], [], "; ".join(problems))
                return None
            out.append(s)
        return out

    def run_oneshot(self, st):
        self.commands += 1
        argv = self.substitute_words(st, st.opts["argv"])
        if argv is None:
            return
        s = Stream(self.cli_argv(st.opts) + argv)
        deadline = time.monotonic() + 15
        while s.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        printed = s.stop()
        exp = [t for _, t in st.expected]
        if self.verbose:
            self.say(f"  {self.rel}:{st.line}$ {' '.join(argv)}\n" + "\n".join("    " + x for x in printed))
        new, why, k = compare(argv, exp, printed, self.bindings)
        if new is None:
            self.fail(st.line, "$ " + st.command, "redis-cli " + " ".join(argv), exp, printed, why, k)
        else:
            self.bindings = new

    def run_stream(self, st, meanwhile, meanwhile_steps):
        """Start the streaming redis-cli of st, run meanwhile() or meanwhile_steps, compare."""
        self.commands += 1
        argv = self.substitute_words(st, st.opts["argv"])
        if argv is None:
            return
        s = Stream(self.cli_argv(st.opts) + argv)
        s.wait_lines(1, 5)
        time.sleep(0.1)
        exp = [t for _, t in st.expected]
        try:
            if meanwhile:
                meanwhile()
            if meanwhile_steps:
                self.run_session_steps(meanwhile_steps, hidden=True)
            s.wait_lines(len(exp), 2.0)
            time.sleep(0.15)
        finally:
            printed = s.stop()
        new, why, k = compare(argv, exp, printed, self.bindings)
        if new is None:
            self.fail(st.line, "$ " + st.command, "redis-cli " + " ".join(argv), exp, printed, why, k)
        else:
            self.bindings = new

    # -- blocks

    def body_steps(self, d):
        where = lambda ln: f"{self.rel}:{ln}"
        steps = parse_steps(d.body, where)
        if not steps:
            raise DocError(f"{self.rel}:{d.line}: `{d.name}` directive with no commands in it")
        return steps

    def run(self):
        try:
            blocks = parse_markdown(self.path)
            plan = []
            for b in blocks:
                kind = classify(b)
                if kind == "skip":
                    reason = b.directive("skip")[0].args.strip()
                    if not reason:
                        raise DocError(f"{self.rel}:{b.line}: `skip` needs a reason")
                    self.skipped.append((b.line, reason))
                elif kind == "transcript":
                    steps = parse_steps(b.lines, lambda ln: f"{self.rel}:{ln}")
                    plan.append((b, steps))
            # `while previous`: the streaming block is run around the transcript before it
            wrapped = {}
            for k, (b, steps) in enumerate(plan):
                for d in b.directive("while"):
                    if d.args.strip() == "previous":
                        if k == 0:
                            raise DocError(f"{self.rel}:{d.line}: `while previous` but no transcript before it")
                        if len(steps) != 1 or steps[0].kind != "stream":
                            raise DocError(f"{self.rel}:{d.line}: `while` on a block that is not one streaming command")
                        if b.directive("server") or b.directive("cluster") or b.directive("setup"):
                            raise DocError(f"{self.rel}:{d.line}: `while previous` cannot be combined with server/cluster/setup")
                        wrapped[k - 1] = (b, steps[0])
                    elif d.args.strip():
                        raise DocError(f"{self.rel}:{d.line}: `while` takes `previous` or a hidden transcript")
            done = set()
            for k, (b, steps) in enumerate(plan):
                if k in done:
                    continue
                self.checked_blocks += 1
                for d in b.directives:
                    if d.name in ("server", "cluster"):
                        self.restart(d.name, d.args, d.line)
                for d in b.directives:
                    if d.name == "sleep":
                        try:
                            time.sleep(float(d.args))
                        except ValueError:
                            raise DocError(f"{self.rel}:{d.line}: `sleep` needs a number of seconds")
                for d in b.directives:
                    if d.name == "setup":
                        if d.args.strip():
                            raise DocError(f"{self.rel}:{d.line}: put setup commands on the lines after `setup`")
                        self.run_session_steps(self.body_steps(d), hidden=True)
                whiles = [d for d in b.directives if d.name == "while" and not d.args.strip()]
                if whiles:
                    if len(steps) != 1 or steps[0].kind != "stream":
                        raise DocError(f"{self.rel}:{whiles[0].line}: `while` on a block that is not one streaming command")
                    self.ensure()
                    self.run_stream(steps[0], None, self.body_steps(whiles[0]))
                elif k in wrapped:
                    wb, wst = wrapped[k]
                    self.ensure()
                    self.checked_blocks += 1
                    done.add(k + 1)
                    self.run_stream(wst, lambda: self.run_session_steps(steps), [])
                else:
                    self.run_session_steps(steps)
        except DocError as e:
            self.failures += 1
            self.say(f"FAIL {e}")
        except (OSError, RuntimeError, ConnectionError) as e:
            self.failures += 1
            self.say(f"FAIL {self.rel}: {type(e).__name__}: {e}")
        finally:
            if self.dep:
                self.dep.stop()
                self.dep = None
        status = "ok" if not self.failures else f"{self.failures} FAILED"
        summary = f"{self.rel}: {self.checked_blocks} transcripts, {self.commands} commands: {status}"
        for line, reason in self.skipped:
            summary += f"\n  skipped {self.rel}:{line}: {reason}"
        self.say(summary)
        return self.failures == 0


def display(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def list_file(path):
    rel = display(path)
    try:
        blocks = parse_markdown(path)
        for b in blocks:
            kind = classify(b)
            if kind is None:
                continue
            ds = " ".join(f"[{d.name}{' ' + d.args if d.args else ''}]" for d in b.directives)
            if kind == "skip":
                print(f"{rel}:{b.line}: skipped {ds}")
                continue
            steps = parse_steps(b.lines, lambda ln: f"{rel}:{ln}")
            kinds = sorted({s.kind for s in steps})
            print(f"{rel}:{b.line}: {len(steps)} steps ({', '.join(kinds)}) {ds}")
        return True
    except DocError as e:
        print(f"FAIL {e}")
        return False


def default_files():
    files = [os.path.join(ROOT, "README.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return [f for f in files if os.path.isfile(f)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="markdown files (default: README.md docs/**/*.md)")
    ap.add_argument("--list", action="store_true", help="list the transcripts found, run nothing")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every command and reply")
    ap.add_argument("-j", "--jobs", type=int, default=4, help="files checked at once (default 4)")
    opts = ap.parse_args(argv)
    files = opts.files or default_files()
    if not files:
        print("transcripts: no markdown files found", file=sys.stderr)
        return 1
    if opts.list:
        return 0 if all([list_file(f) for f in files]) else 1
    if not os.path.isfile(MODULE):
        print(f"transcripts: no module at {MODULE}: build it first (make build)", file=sys.stderr)
        return 1
    for tool in (SERVER, CLI):
        if not shutil.which(tool):
            print(f"transcripts: missing {tool}", file=sys.stderr)
            return 1
    start = time.monotonic()
    runs = [FileRun(f, opts.verbose) for f in files]
    sem = threading.Semaphore(max(1, opts.jobs))

    def work(r):
        with sem:
            r.run()

    threads = [threading.Thread(target=work, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in runs:
        print("\n".join(r.out), flush=True)
    failed = sum(r.failures for r in runs)
    blocks = sum(r.checked_blocks for r in runs)
    cmds = sum(r.commands for r in runs)
    took = time.monotonic() - start
    print(
        f"transcripts: {len(runs)} files, {blocks} transcripts, {cmds} commands, "
        f"{failed} failures, {took:.1f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
