#!/usr/bin/env python3
"""The summary of a bench/run-all.sh run: medians over the rounds and the
ratios the scenarios are judged by.

    bench/summarize.py OUT_DIR

Reads the key=value rows run-mc.sh and run-redis.sh append to their RESULTS
files (large-mc.txt, large-redis.txt, pipeline.txt, workers.txt, small.txt),
bench/floor.c's lines (floor.txt) and idle.py's log. A file that is missing is a scenario that was not run.
"""

import os
import statistics
import sys


def rows(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            d = {}
            for tok in line.split():
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    d[k] = v
            out.append(d)
    return out


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "%.0f" % v
    return "%.*f" % (nd, v)


def table(head, body):
    widths = [max(len(str(r[i])) for r in [head] + body) for i in range(len(head))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(head, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in body:
        lines.append("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def section(head, body):
    """One section's table, or that it was not run, and a blank line."""
    print(table(head, body) if body else "(not run)")
    print()


def large(out):
    print("Large values, 50 clients, workers = 1 (medians of the rounds; CPU in us per request)")
    body = []
    for proto, path, direct in (("memcached", "large-mc.txt", "memcached"),
                                ("redis", "large-redis.txt", "redis")):
        rs = rows(os.path.join(out, path))
        perf = [r for r in rs if "round" in r]
        sysc = [r for r in rs if "syscalls_per_op" in r]
        keys = sorted({(int(r["value_size"]), r["test"]) for r in perf})
        for size, test in keys:
            cpu = {}
            for target in (direct, "nutcracker", "cachemux"):
                sel = [r for r in perf if r["target"] == target and r["test"] == test
                       and int(r["value_size"]) == size]
                if not sel:
                    continue
                if proto == "memcached":
                    ops = med(num(r.get("ops_per_sec")) for r in sel)
                    p50 = med(num(r.get("p50_us")) for r in sel)
                    p99 = med(num(r.get("p99_us")) for r in sel)
                else:
                    ops = med(num(r.get("rps")) for r in sel)
                    p50 = med(num(r.get("p50_ms")) * 1000 for r in sel if num(r.get("p50_ms")) is not None)
                    p99 = med(num(r.get("p99_ms")) * 1000 for r in sel if num(r.get("p99_ms")) is not None)
                pcpu = med(num(r.get("proxy_cpu_us_per_op")) for r in sel)
                cpu[target] = pcpu
                sc = [num(r["syscalls_per_op"]) for r in sysc if r["target"] == target
                      and r["test"] == test and int(r["value_size"]) == size]
                ratio = ""
                if target == "cachemux" and cpu.get("nutcracker"):
                    ratio = "%.2fx" % (pcpu / cpu["nutcracker"])
                body.append([proto, "%dK" % (size // 1024), test, target, fmt(ops, 0), fmt(p50, 0),
                             fmt(p99, 0), fmt(pcpu), ratio, fmt(med(sc), 2)])
    section(["proto", "value", "op", "target", "ops/s", "p50_us", "p99_us", "proxy_cpu", "vs_nc",
             "syscalls"], body)


def pipeline(out):
    print("500 clients x -P 100 GET, workers = 1 (each round; p99 in ms)")
    rs = [r for r in rows(os.path.join(out, "pipeline.txt")) if "round" in r]
    body = []
    for rnd in sorted({r["round"] for r in rs}, key=int):
        by = {r["target"]: r for r in rs if r["round"] == rnd}
        d = num(by.get("redis", {}).get("p99_ms"))
        row = [rnd]
        for t in ("redis", "nutcracker", "cachemux"):
            r = by.get(t, {})
            row += [fmt(num(r.get("rps")), 0), fmt(num(r.get("p99_ms")), 1)]
        c = num(by.get("cachemux", {}).get("p99_ms"))
        row.append("%.2fx" % (c / d) if c and d else "-")
        body.append(row)
    section(["round", "direct ops/s", "p99", "nutcracker ops/s", "p99", "cachemux ops/s", "p99",
             "cmx/direct p99"], body)


def workers(out):
    print("Redis backend CPU per request by cachemux workers (GET, -P 1; us per request)")
    rs = [r for r in rows(os.path.join(out, "workers.txt")) if "round" in r]
    body = []
    base = {}
    for conns in sorted({int(r["conns"]) for r in rs}):
        direct = [r for r in rs if r["target"] == "redis" and int(r["conns"]) == conns]
        dcpu = med(num(r.get("redis_cpu_us_per_op")) for r in direct)
        # (workers, the pool's workers key): the remedy's rows after the plain ones
        combos = sorted({(int(r["workers"]), int(r.get("pool_workers", 0))) for r in rs},
                        key=lambda wp: (wp[1] != 0, wp))
        for w, pw in combos:
            sel = [r for r in rs if r["target"] == "cachemux" and int(r["conns"]) == conns
                   and int(r["workers"]) == w and int(r.get("pool_workers", 0)) == pw]
            if not sel:
                continue
            rcpu = med(num(r.get("redis_cpu_us_per_op")) for r in sel)
            if w == 1 and pw == 0:
                base[conns] = rcpu
            ratio = "%.2fx" % (rcpu / base[conns]) if base.get(conns) else "-"
            body.append([conns, w, pw or "all", fmt(med(num(r.get("rps")) for r in sel), 0),
                         fmt(rcpu, 2),
                         fmt(med(num(r.get("backend_reads_per_op")) for r in sel), 2),
                         fmt(med(num(r.get("proxy_cpu_us_per_op")) for r in sel)), ratio,
                         fmt(dcpu, 2)])
    section(["conns", "workers", "pool_workers", "ops/s", "redis_cpu", "be_reads/req",
             "proxy_cpu", "vs_1_worker", "direct_redis_cpu"], body)


def small(out):
    print("Small requests (memcached getset, 50 clients, workers = 1)")
    rs = rows(os.path.join(out, "small.txt"))
    perf = [r for r in rs if "round" in r]
    sysc = [r for r in rs if "syscalls_per_op" in r]
    body = []
    for t in ("memcached", "nutcracker", "cachemux"):
        sel = [r for r in perf if r["target"] == t]
        if not sel:
            continue
        sc = [num(r["syscalls_per_op"]) for r in sysc if r["target"] == t]
        body.append([t, fmt(med(num(r.get("ops_per_sec")) for r in sel), 0),
                     fmt(med(num(r.get("proxy_cpu_us_per_op")) for r in sel)), fmt(med(sc), 2)])
    section(["target", "ops/s", "proxy_cpu", "syscalls/req"], body)


def floor(out):
    print("Forwarding floor (bench/floor.c: CPU us per message of the forwarding thread alone)")
    rs = [r for r in rows(os.path.join(out, "floor.txt")) if "mode" in r]
    body = []
    for size in sorted({int(r["size"]) for r in rs}):
        for mode in ("copy", "splice"):
            sel = [r for r in rs if int(r["size"]) == size and r["mode"] == mode]
            if sel:
                body.append([size, mode, fmt(med(num(r["cpu_us"]) for r in sel)),
                             fmt(med(num(r["syscalls"]) for r in sel), 2)])
    section(["size", "mode", "cpu_us/msg", "syscalls/msg"], body)


def idle(out):
    path = os.path.join(out, "idle.log")
    print("Idle connections (bench/idle.py)")
    if os.path.exists(path):
        with open(path) as f:
            print(f.read().rstrip())
    else:
        print("(not run)")
    print()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py OUT_DIR")
    out = sys.argv[1]
    large(out)
    pipeline(out)
    idle(out)
    workers(out)
    small(out)
    floor(out)


if __name__ == "__main__":
    main()
