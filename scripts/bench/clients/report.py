"""The table of scripts/bench/clients/run.sh: medians over repetitions of each store's
results (one JSON line per store and repetition in RAW), written as JSON to OUT.

    python3 report.py RAW.jsonl OUT.json key=value ...

ratio: a row's ops/s over its reference's in the same repetition (the Node rows against
redis-session-client, the Python rows against raw redis-py commands), median over the
repetitions. CPU per op: the server's (from /proc/<pid>/stat, utime + stime) and the client
process's, over creates + validations; busy: that CPU time over the wall time (1.00 = one
core all the time); others busy: the rest of the machine's busy CPU time (steal included)
over the wall time, the load that was not this benchmark.
"""

import json
import statistics
import sys

ROWS = [
    ("client", "redis-session-client 0.1.0, node-redis 5.12.4", "client"),
    ("raw", "raw SESSION.CREATE/VALIDATE, node-redis 5.12.4 (reference)", "client"),
    ("redis-sessions", "redis-sessions 4.0.0 (its node-redis 4.7.1)", "client"),
    ("connect-redis", "connect-redis 10.0.0, node-redis 5.12.4", "client"),
    ("py-package", "redis-session (Python), redis-py 8.1.0 asyncio", "py-raw"),
    ("py-raw", "raw SESSION.CREATE/VALIDATE, redis-py 8.1.0 asyncio (reference)", "py-raw"),
]


def main():
    raw_path, out_path = sys.argv[1], sys.argv[2]
    meta = dict(a.split("=", 1) for a in sys.argv[3:])
    runs = [json.loads(line) for line in open(raw_path) if line.strip()]
    by = {}
    for r in runs:
        by.setdefault(r["store"], {})[r["rep"]] = r
    rows = []
    for store, label, ref in ROWS:
        if store not in by:
            continue
        reps = by[store]
        med = lambda f: statistics.median(f(r) for r in reps.values())  # noqa: E731
        ratios = [r["ops_per_s"] / by[ref][k]["ops_per_s"]
                  for k, r in reps.items() if ref in by and k in by[ref]]
        have_cpu = all(r["server_cpu_s"] is not None for r in reps.values())
        rows.append({
            "store": store, "label": label, "reference": ref, "reps": len(reps),
            "ops_per_s": med(lambda r: r["ops_per_s"]),
            "ops_per_s_all": [round(reps[k]["ops_per_s"]) for k in sorted(reps)],
            "ratio": statistics.median(ratios) if ratios else None,
            "ratio_all": [round(x, 3) for x in ratios],
            "server_cpu_us_per_op": med(lambda r: r["server_cpu_s"] / r["ops"] * 1e6) if have_cpu else None,
            "server_busy": med(lambda r: r["server_cpu_s"] / r["wall_s"]) if have_cpu else None,
            "client_cpu_us_per_op": med(lambda r: r["client_cpu_s"] / r["ops"] * 1e6),
            "client_busy": med(lambda r: r["client_cpu_s"] / r["wall_s"]),
            # What else ran: the machine's busy CPU time (all cores, steal included) minus
            # this server's and this client's, over the wall time (0.00: nothing else).
            "others_busy": med(lambda r: (r["machine_busy_s"] - (r["server_cpu_s"] or 0) - r["client_cpu_s"]) / r["wall_s"]),
            "steal": med(lambda r: r["steal_s"] / r["wall_s"]),
            "validate_p50_us": med(lambda r: r["validate_p50_us"]),
            "validate_p99_us": med(lambda r: r["validate_p99_us"]),
        })
    first = runs[0]
    result = dict(meta, sessions=first["sessions"], validations_per_session=first["validations"] // first["sessions"],
                  concurrency=first["concurrency"], users=first["users"], rows=rows, runs=runs)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)

    print()
    print("%d sessions x (1 create + %d validations), %d in flight, median of %d repetitions; redis %s, load %s -> %s"
          % (first["sessions"], result["validations_per_session"], first["concurrency"],
             max(r["reps"] for r in rows), meta.get("server", "?"), meta.get("load_before", "?"),
             meta.get("load_after", "?")))
    print()
    print("| store | ops/s | ratio | server CPU/op | server busy | client CPU/op | client busy | validate p50 / p99 | others busy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %s | %s | %s | %.1f us | %.2f | %.2f / %.2f ms | %.2f |" % (
            r["label"], format(round(r["ops_per_s"]), ","),
            "%.2fx" % r["ratio"] if r["ratio"] is not None else "",
            "%.1f us" % r["server_cpu_us_per_op"] if r["server_cpu_us_per_op"] is not None else "",
            "%.2f" % r["server_busy"] if r["server_busy"] is not None else "",
            r["client_cpu_us_per_op"], r["client_busy"],
            r["validate_p50_us"] / 1000, r["validate_p99_us"] / 1000, r["others_busy"]))
    print()
    print("ratio: Node rows / redis-session-client, Python rows / raw redis-py, per repetition, median")


main()
