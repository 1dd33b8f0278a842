#!/usr/bin/python3
"""Runs the jobcache benchmarks side by side with joblib and writes BENCHMARKS.md.

    bench/run.py --bench BUILD/jobcache_bench [--baseline OLD/jobcache_bench] [--reps 3] [--out BENCHMARKS.md]
    bench/run.py --bench BUILD/jobcache_bench --smoke      (CI: tiny sizes, no file written)

Every figure is the median of --reps runs, with the spread (min-max). Both
sides run in this one invocation on this machine, so the ratios compare like
with like even on a shared, noisy machine. joblib is Debian's python3-joblib.
--baseline runs every jobcache workload with another build too (bench/
baseline.sh builds the one of the previous release, 0.1.0), in the same
invocation, as a column beside the current one.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JOBLIB = [sys.executable, os.path.join(HERE, "joblib_bench.py")]


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


class Bench:
    def __init__(self, binary, reps, tmp, sizes, baseline=None):
        self.bin, self.reps, self.tmp, self.s = binary, reps, tmp, sizes
        self.base = baseline
        self.rows = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def fresh(self, name):
        for suffix in ("", "-wal", "-shm"):
            p = self.path(name) + suffix
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.remove(p)
        return self.path(name)

    def jc(self, *args, binary=None):
        return run_json([binary or self.bin] + [str(a) for a in args])

    def old(self, *args):
        return self.jc(*args, binary=self.base)

    def jl(self, *args):
        return run_json(JOBLIB + [str(a) for a in args])

    def row(self, key, what, jc_vals, jl_vals, unit, higher_better, target, met, old=None):
        self.rows.append(dict(key=key, what=what, jc=jc_vals, jl=jl_vals, unit=unit,
                              higher=higher_better, target=target, met=met, old=old or []))
        med = statistics.median(jc_vals)
        print(f"  {key}: {what}: jobcache {med:,.3g} {unit}"
              + (f", joblib {statistics.median(jl_vals):,.3g}" if jl_vals else ""), file=sys.stderr)

    # (a) cold, (b) warm, (d) grown by 10%
    def tiny(self):
        n, m = self.s["tiny"], self.s["tiny_joblib"]
        cold, warm, grown, grown_frac = [], [], [], []
        jl_cold, jl_warm, jl_grown_frac = [], [], []
        o_cold, o_warm, o_frac = [], [], []
        for _ in range(self.reps):
            if self.base:
                db = self.fresh("old-tiny.db")
                a = self.old("tiny", db, n, 2)
                b = self.old("tiny", db, n, 2)
                d = self.old("tiny", db, n + n // 10, 2)
                o_cold.append(a["per_second"])
                o_warm.append(b["per_second"])
                o_frac.append(d["seconds"] / a["seconds"] * 100)
            db = self.fresh("tiny.db")
            a = self.jc("tiny", db, n, 2)
            b = self.jc("tiny", db, n, 2)
            d = self.jc("tiny", db, n + n // 10, 2)
            assert a["computed"] == n and b["cached"] == n and d["computed"] == n // 10
            cold.append(a["per_second"])
            warm.append(b["per_second"])
            grown.append(d["seconds"])
            grown_frac.append(d["seconds"] / a["seconds"] * 100)
            jd = self.fresh("joblib-tiny")
            ja = self.jl("tiny", jd, m, 2)
            jb = self.jl("tiny", jd, m, 2)
            jgrown = self.jl("tiny", jd, m + m // 10, 2)
            jl_cold.append(ja["per_second"])
            jl_warm.append(jb["per_second"])
            jl_grown_frac.append(jgrown["seconds"] / ja["seconds"] * 100)
        self.row("a", f"cold run of {n:,} tiny calls, every result stored (joblib: {m:,})",
                 cold, jl_cold, "calls/s", True, ">= 200,000 calls/s", statistics.median(cold) >= 200000, o_cold)
        self.row("b", "warm rerun of (a)", warm, jl_warm, "hits/s", True, ">= 1,000,000 hits/s",
                 statistics.median(warm) >= 1000000, o_warm)
        self.row("d", "sweep grown by 10%: time as % of the cold run", grown_frac, jl_grown_frac,
                 "% of cold", False, "<= 15%", statistics.median(grown_frac) <= 15, o_frac)

    # (c) speedup of 400 calls of ~5 ms at n_jobs = 2 over n_jobs = 1
    def cpu(self):
        n = self.s["cpu"]
        probe = self.jc("cpu", "-", 10, 1, 1000000)
        iters = max(1000, int(1000000 * 0.005 / (probe["seconds"] / 10)))
        jprobe = self.jl("cpu", self.path("jl-probe"), 4, 1, 20000)
        jiters = max(100, int(20000 * 0.005 / (jprobe["seconds"] / 4)))
        sp, jsp, per_call = [], [], []
        for _ in range(self.reps):
            one = self.jc("cpu", "-", n, 1, iters)
            two = self.jc("cpu", "-", n, 2, iters)
            assert one["checksum"] == two["checksum"]
            sp.append(one["seconds"] / two["seconds"])
            per_call.append(one["seconds"] / n * 1000)
            j1 = self.jl("cpu", self.path("jl-cpu"), n, 1, jiters)
            j2 = self.jl("cpu", self.path("jl-cpu"), n, 2, jiters)
            jsp.append(j1["seconds"] / j2["seconds"])
        self.row("c", f"{n} CPU-bound calls of {statistics.median(per_call):.1f} ms: speedup of n_jobs=2 over 1",
                 sp, jsp, "x", True, ">= 1.95x", statistics.median(sp) >= 1.95)

    # (e) 1,000 calls, each taking a distinct 1 MB double array
    def arrays(self):
        n, m = self.s["arrays"], self.s["arrays_joblib"]
        mb, jmb = [], []
        for _ in range(self.reps):
            r = self.jc("arrays", self.fresh("arrays.db"), n, 2)
            mb.append(n / r["seconds"])
            j = self.jl("arrays", self.fresh("joblib-arrays"), m, 2)
            jmb.append(m / j["seconds"])
        ratio = statistics.median(mb) / statistics.median(jmb)
        self.row("e", f"{n:,} calls each with a distinct 1 MB array, cold (joblib: {m:,})", mb, jmb,
                 "MB/s", True, ">= 10x joblib", ratio >= 10)

    # (f) time per hit against caches of growing size; (g) peak RSS of 1M calls
    def sizes(self):
        probe_n = self.s["probe"]
        per_hit, old_hit = {}, {}
        rss = None
        for size in self.s["sizes"]:
            db = self.fresh(f"size-{size}.db")
            fill = self.jc("tiny", db, size, 2)
            if size == self.s["sizes"][-1]:
                rss = fill["peak_rss"] / size
            vals = []
            for _ in range(self.reps):
                r = self.jc("tiny", db, probe_n, 2)
                assert r["cached"] == probe_n
                vals.append(r["seconds"] / probe_n * 1e6)
            per_hit[size] = vals
            os.remove(db)
            if self.base:
                db = self.fresh(f"old-size-{size}.db")
                self.old("tiny", db, size, 2)
                old_hit[size] = [self.old("tiny", db, probe_n, 2)["seconds"] / probe_n * 1e6
                                 for _ in range(self.reps)]
                os.remove(db)
        meds = [statistics.median(v) for v in per_hit.values()]
        spread = max(meds) / min(meds)
        for size, vals in per_hit.items():
            self.row("f", f"warm rerun of {probe_n:,} calls against a cache of {size:,} entries", vals, [],
                     "us/hit", False, "<= 1.5x growth, <= 2 us at the largest",
                     spread <= 1.5 and meds[-1] <= 2, old_hit.get(size))
        big = self.s["sizes"][-1]
        jl_rss = self.jl("nocache", self.path("jl-rss"), self.s["rss_joblib"], 2)
        self.row("g", f"peak RSS of the coordinating process, {big:,} tiny calls (joblib: Parallel alone, "
                 f"{self.s['rss_joblib']:,} calls)", [rss], [jl_rss["peak_rss"] / self.s["rss_joblib"]],
                 "bytes/call", False, "reported", True)

    # (h) one memoized call outside a batch, warm
    def memo(self):
        n, m = self.s["memo"], self.s["memo_joblib"]
        us, jus, ous = [], [], []
        for _ in range(self.reps):
            us.append(self.jc("memo", self.fresh("memo.db"), n)["us_per_call"])
            jus.append(self.jl("memo", self.fresh("joblib-memo"), m)["us_per_call"])
            if self.base:
                ous.append(self.old("memo", self.fresh("old-memo.db"), n)["us_per_call"])
        ratio = statistics.median(jus) / statistics.median(us)
        self.row("h", "single memoized call (Memory.cache analogue), warm", us, jus, "us/call", False,
                 "<= 1.5 us (>= 40x joblib)", statistics.median(us) <= 1.5 and ratio >= 40, ous)

    # (j) one large result: peak memory of the coordinating process, cold then warm,
    # each in a process of its own; (k) a cold run into a large cache against an empty one
    def big(self):
        mib = self.s["bigresult"]
        vals = {"cold": [], "warm": []}
        old = {"cold": [], "warm": []}
        for _ in range(self.reps):
            db = self.fresh("big.db")
            vals["cold"].append(self.jc("bigresult", db, mib)["rss_per_result"])
            vals["warm"].append(self.jc("bigresult", db, mib)["rss_per_result"])
            if self.base:
                db = self.fresh("old-big.db")
                try:
                    old["cold"].append(self.old("bigresult", db, mib)["rss_per_result"])
                    old["warm"].append(self.old("bigresult", db, mib)["rss_per_result"])
                except subprocess.CalledProcessError:
                    pass
        for k in ("cold", "warm"):
            self.row("j", f"one result of {mib} MiB, {k}: peak memory of the coordinating process / result size",
                     vals[k], [], "x", False, "<= 1.5x", statistics.median(vals[k]) <= 1.5, old[k])
        big_n, new_n = self.s["bigcache"], self.s["bigcache_new"]
        into_big, into_empty, o_big, o_empty = [], [], [], []
        for binary, big, empty in ((self.bin, into_big, into_empty), (self.base, o_big, o_empty)):
            if not binary:
                continue
            db = self.fresh("bigcache.db")
            self.jc("fill", db, big_n, 2, binary=binary)
            for _ in range(self.reps):
                # fresh keys each time: tiny(i, 7) with i past the cache's range
                e = self.fresh("empty.db")
                empty.append(self.jc("tiny", e, new_n, 2, binary=binary)["seconds"])
                r = self.jc("tinyfrom", db, new_n, 2, big_n + len(big) * new_n, binary=binary)
                big.append(r["seconds"])
        ratio = statistics.median(into_big) / statistics.median(into_empty)
        self.row("k", f"cold run of {new_n:,} new calls into a cache of {big_n:,} entries: time / the same "
                 "into an empty cache", [b / e for b, e in zip(into_big, into_empty)], [], "x", False, "<= 2x",
                 ratio <= 2, [b / e for b, e in zip(o_big, o_empty)] if o_big else None)

    # (i) concurrent runs sharing work (leases): bench/leases.py
    # (l) the 5 ms calls of (c), (m) the tiny calls of (a): the MPI backend
    # (1 coordinator + 2 worker ranks under mpirun --oversubscribe -np 3)
    # beside the fork pool with 2 workers, on the same cores, alternating.
    def mpi(self):
        mpirun = shutil.which("mpirun")
        if not mpirun:
            print("  l, m: skipped (no mpirun)", file=sys.stderr)
            return
        launch = [mpirun, "--oversubscribe", "--allow-run-as-root", "-np", "3"]

        def on_mpi(*args):
            r = run_json(launch + [self.bin] + [str(a) for a in args])
            assert r["ranks"] == 3, r
            return r

        n, t = self.s["cpu"], self.s["tiny"]
        probe = self.jc("cpu", "-", 10, 1, 1000000)
        iters = max(1000, int(1000000 * 0.005 / (probe["seconds"] / 10)))
        share, fork_cps, mpi_cps, fork_us, mpi_us = [], [], [], [], []
        for _ in range(self.reps):
            f = self.jc("cpu", "-", n, 2, iters)
            m = on_mpi("cpu", "-", n, 2, iters)
            assert f["checksum"] == m["checksum"]
            fork_cps.append(f["per_second"])
            mpi_cps.append(m["per_second"])
            share.append(m["per_second"] / f["per_second"] * 100)
            f = self.jc("tiny", self.fresh("fork-tiny.db"), t, 2)
            m = on_mpi("tiny", self.fresh("mpi-tiny.db"), t, 2)
            assert f["computed"] == t and m["computed"] == t
            fork_us.append(f["seconds"] / t * 1e6)
            mpi_us.append(m["seconds"] / t * 1e6)
        self.row("l", f"{n} CPU-bound calls of 5 ms, cache disabled: MPI (1 coordinator + 2 worker ranks) "
                 f"throughput as % of the fork pool's (2 workers; {statistics.median(fork_cps):,.0f} calls/s "
                 f"vs MPI {statistics.median(mpi_cps):,.0f})", share, [], "% of fork", True, ">= 90%",
                 statistics.median(share) >= 90)
        self.row("m", f"cold run of {t:,} tiny calls, stored: time per call on MPI (fork pool with 2 workers: "
                 f"{statistics.median(fork_us):.2f} us)", mpi_us, [], "us/call", False, "stated", True)

    def shared(self):
        n, procs = self.s["shared"], 4
        cmd = [sys.executable, os.path.join(HERE, "leases.py"), "--n", str(n), "--procs", str(procs), "--json"]
        res = run_json(cmd + ["--bench", self.bin])
        old = run_json(cmd + ["--bench", self.base]) if self.base else None
        self.row("i", f"{procs} processes x {n:,} calls of 1 ms, half shared, on one cache: duplicate "
                 "computations, % of the shared calls", [100 * res["duplicates_share"]], [], "%", False,
                 "<= 1%", res["duplicates_share"] <= 0.01, [100 * old["duplicates_share"]] if old else None)
        self.row("i", "the same: time of the group / time of one process computing the union alone",
                 [res["ratio"]], [], "x", False, "<= 1.10", res["ratio"] <= 1.10, [old["ratio"]] if old else None)


def fmt(vals):
    if not vals:
        return "n/a"
    med = statistics.median(vals)
    text = f"{med:,.4g}"
    if len(vals) > 1:
        text += f" ({min(vals):,.4g}-{max(vals):,.4g})"
    return text


def ratio(r):
    if not r["jl"]:
        return "n/a"
    a, b = statistics.median(r["jc"]), statistics.median(r["jl"])
    x = a / b if r["higher"] else b / a
    return f"{x:,.3g} : 1"


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import joblib
    sqlite = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout.split()[:1] \
        if shutil.which("sqlite3") else ["?"]
    return [f"CPU: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
            f"joblib {joblib.__version__} on Python {platform.python_version()}; "
            f"SQLite {sqlite[0] if sqlite else '?'}; compiled with the build's flags (RelWithDebInfo: -O2 -g)"]


def write_md(path, b, started, elapsed):
    lines = ["# Benchmarks", "",
             f"Written by `bench/run.py` on {started}, in {elapsed:.0f} s. Each figure is the median of "
             f"{b.reps} runs with the spread (min-max) in brackets. jobcache and joblib ran side by side "
             "in the same invocation; the ratio is jobcache : joblib, where more than 1 means jobcache is "
             "better (faster, or less memory).", ""]
    lines += ["- " + m for m in machine()] + [""]
    lines += ["| | workload | jobcache | 0.1.0 | joblib | unit | ratio to joblib | target | met |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in b.rows:
        lines.append(f"| {r['key']} | {r['what']} | {fmt(r['jc'])} | {fmt(r['old'])} | {fmt(r['jl'])} | "
                     f"{r['unit']} | {ratio(r)} | {r['target']} | {'yes' if r['met'] else '**no**'} |")
    # The tables of bench/callgrind.py, bench/pipeline.py and bench/pg.py, kept as they were written.
    old = open(path).read() if os.path.exists(path) else ""
    for begin, end in (("<!-- callgrind: written by bench/callgrind.py -->", "<!-- /callgrind -->"),
                       ("<!-- pipeline: written by bench/pipeline.py -->", "<!-- /pipeline -->"),
                       ("<!-- server: written by bench/pg.py -->", "<!-- /server -->")):
        if begin in old and end in old:
            lines += ["", old[old.index(begin):old.index(end) + len(end)]]
    notes = os.path.join(HERE, "NOTES.md")
    if os.path.exists(notes):
        lines += ["", open(notes).read().strip()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="the jobcache_bench binary")
    ap.add_argument("--baseline", help="the jobcache_bench of the previous release (bench/baseline.sh)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one rep, no file written")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "BENCHMARKS.md"))
    args = ap.parse_args()
    full = dict(tiny=100000, tiny_joblib=5000, cpu=400, arrays=1000, arrays_joblib=200, probe=10000,
                sizes=[10000, 100000, 1000000], rss_joblib=200000, memo=200000, memo_joblib=5000, shared=20000,
                bigresult=200, bigcache=1500000, bigcache_new=50000)
    smoke = dict(tiny=2000, tiny_joblib=200, cpu=8, arrays=10, arrays_joblib=4, probe=500,
                 sizes=[1000, 5000], rss_joblib=2000, memo=2000, memo_joblib=200, shared=200,
                 bigresult=4, bigcache=5000, bigcache_new=500)
    sizes = smoke if args.smoke else full
    reps = 1 if args.smoke else args.reps
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="jobcache-bench-") as tmp:
        b = Bench(os.path.abspath(args.bench), reps, tmp, sizes,
                  os.path.abspath(args.baseline) if args.baseline else None)
        for step in (b.tiny, b.cpu, b.mpi, b.arrays, b.sizes, b.memo, b.big, b.shared):
            print(f"{step.__name__}...", file=sys.stderr)
            step()
    if args.smoke:
        print(f"bench smoke: {len(b.rows)} figures in {time.time() - t0:.1f} s", file=sys.stderr)
        return
    write_md(args.out, b, started, time.time() - t0)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
