#!/usr/bin/python3
"""Concurrent runs sharing work (leases), measured: NPROCS processes started
together on one cache, each N calls of 1 ms CPU, half of them shared by all;
against one process computing the union of their calls alone.

    bench/leases.py --bench BUILD/jobcache_bench [--n 20000] [--procs 4] [--reps 1]

Prints a Markdown table (and JSON with --json): wall time of the group, of
the union alone, their ratio, and duplicate computations (calls computed by
more than one process) as a share of the shared calls.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def fresh(path):
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def group(binary, db, n, procs, n_jobs):
    fresh(db)
    t0 = time.monotonic()
    ps = [subprocess.Popen([binary, "shared", db, str(n), str(n_jobs), str(q), str(procs)],
                           stdout=subprocess.PIPE, text=True) for q in range(procs)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in ps]
    wall = time.monotonic() - t0
    if any(p.returncode for p in ps):
        sys.exit("a process of the group failed")
    return wall, sum(o["computed"] for o in outs)


def union(binary, db, n, procs, n_jobs):
    fresh(db)
    t0 = time.monotonic()
    out = subprocess.run([binary, "shared", db, str(n), str(n_jobs), "-1", str(procs)],
                         check=True, capture_output=True, text=True).stdout
    wall = time.monotonic() - t0
    return wall, json.loads(out.strip().splitlines()[-1])["computed"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "shared.jobcache")
        gw, uw, dups = [], [], []
        for _ in range(a.reps):
            w, computed = group(a.bench, db, a.n, a.procs, a.n_jobs)
            u, unique = union(a.bench, db, a.n, a.procs, a.n_jobs)
            gw.append(w)
            uw.append(u)
            dups.append(computed - unique)
    shared = a.n // 2
    res = {
        "procs": a.procs, "n": a.n, "shared_calls": shared,
        "group_seconds": statistics.median(gw), "union_seconds": statistics.median(uw),
        "ratio": statistics.median(gw) / statistics.median(uw),
        "duplicates": statistics.median(dups),
        "duplicates_share": statistics.median(dups) / shared,
        "reps": a.reps,
    }
    if a.json:
        print(json.dumps(res))
        return
    print(f"| {a.procs} processes x {a.n} calls of 1 ms, {shared} shared | "
          f"group {res['group_seconds']:.2f} s, union alone {res['union_seconds']:.2f} s, "
          f"ratio {res['ratio']:.3f} | duplicates {res['duplicates']:.0f} "
          f"({100 * res['duplicates_share']:.2f}% of shared calls) |")


if __name__ == "__main__":
    main()
