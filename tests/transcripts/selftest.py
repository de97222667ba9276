#!/usr/bin/env python3
"""Self-test of check_transcripts.py (Python 3 standard library, a real server).

1. Every fixture in fixtures/ is checked on its own: a `<!-- selftest-expects: exit N -->`
   comment gives the exit status it must have, every other `selftest-expects` comment a text
   its output must hold. fixtures/pass.md must pass; each fail-*.md fixture (a changed reply,
   a wrong error text, a missing line, an inconsistent token binding either way, a refused
   prompt, a one-shot and a stream that differ) must fail where it says.
2. The checker's own redis-cli emulation (argument splitting, reply formatting) must print
   what the real `redis-cli --no-raw` prints for the same lines, on a real server.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import check_transcripts as ct  # noqa: E402

EXPECT = re.compile(r"<!-- selftest-expects: (.*?) -->")


def fixtures():
    failures = 0
    paths = sorted(
        os.path.join(HERE, "fixtures", f) for f in os.listdir(os.path.join(HERE, "fixtures")) if f.endswith(".md")
    )
    for path in paths:
        with open(path, encoding="utf-8") as f:
            expects = EXPECT.findall(f.read())
        rc = [int(e.split()[1]) for e in expects if e.startswith("exit ")]
        texts = [e for e in expects if not e.startswith("exit ")]
        if len(rc) != 1:
            print(f"selftest: {path}: needs one `selftest-expects: exit N` comment")
            failures += 1
            continue
        p = subprocess.run(
            [sys.executable, os.path.join(HERE, "check_transcripts.py"), os.path.relpath(path, ROOT)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
        )
        out = p.stdout.decode("utf-8", "replace")
        problems = []
        if p.returncode != rc[0]:
            problems.append(f"exit status {p.returncode}, expected {rc[0]}")
        for t in texts:
            if t not in out:
                problems.append(f"output lacks {t!r}")
        name = os.path.relpath(path, ROOT)
        if problems:
            failures += 1
            print(f"selftest: FAIL {name}: " + "; ".join(problems))
            print("\n".join("    " + x for x in out.splitlines()))
        else:
            print(f"selftest: ok {name} (exit {p.returncode})")
    return failures


# Lines typed into redis-cli: the emulation must split and print them as redis-cli does.
LINES = [
    "FLUSHALL",
    r'''ECHO "a\x41\n\tb\"c"''',
    r"ECHO 'it\'s \n'",
    "ECHO plain",
    "ECHO \"unbalanced",
    r'''SET selftest:k "Zoë \\ \x00 \x7f end"''',
    "GET selftest:k",
    "RPUSH selftest:list 1 2 3 4 5 6 7 8 9 10 11 12",
    "LRANGE selftest:list 0 -1",
    "SESSION.GET 0123456789abcdef0123456789abcdef",
    "SESSION.GET",
    "SMEMBERS selftest:none",
    "CONFIG GET session.ttl",
    "COMMAND INFO session.validate",
    "COMMAND DOCS session.create",
    "MODULE LIST",
    "INFO session",
    "PING",
]


def emulation():
    dep = ct.Deployment("standalone")
    try:
        argv = [ct.CLI, "-h", "127.0.0.1", "-p", str(dep.port), "--no-raw"]
        # redis-cli reading lines from a pipe runs its interactive loop (no prompt shown),
        # so it splits each line as it would in a terminal.
        real = subprocess.run(
            argv, input=("\n".join(LINES) + "\n").encode(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=30,
        ).stdout.decode("utf-8", "surrogateescape").replace("\r\n", "\n").split("\n")
        conn = ct.Resp(dep.port)
        mine = []
        for line in LINES:
            args = ct.split_args(line)
            if args is None:
                mine.append("Invalid argument(s)")
                continue
            reply = conn.send(args)
            if ct.raw_output_command(args) and not isinstance(reply, ct.Error):
                text = ct.format_raw(reply)
            else:
                text = ct.format_tty(reply)
            mine += text.replace("\r\n", "\n").split("\n")
            if mine and mine[-1] == "":
                mine.pop()
        conn.close()
        while real and real[-1] == "":
            real.pop()
        if real != mine:
            print("selftest: FAIL the redis-cli emulation differs from redis-cli --no-raw")
            for k in range(max(len(real), len(mine))):
                a = real[k] if k < len(real) else "(none)"
                b = mine[k] if k < len(mine) else "(none)"
                mark = "  " if a == b else "!!"
                print(f"  {mark} redis-cli: {a}\n  {mark} emulated:  {b}")
            return 1
        print(f"selftest: ok the redis-cli emulation prints what redis-cli prints ({len(real)} lines)")
        return 0
    finally:
        dep.stop()


def main():
    failures = fixtures() + emulation()
    print(f"selftest: {'ok' if not failures else str(failures) + ' FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
