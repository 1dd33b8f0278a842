#!/usr/bin/python3
"""The pipeline benchmark: a three-stage sweep (1,000 generate, 10,000 fit,
10,000 evaluate) written as one jobcache pipeline, as jobcache stages passed
by value (one batch per stage, as before pipelines), and as joblib's users
chain Memory.cache calls, all in one invocation; writes its section of
BENCHMARKS.md.

    bench/pipeline.py --bench BUILD/jobcache_bench_pipeline [--reps 3] [--out BENCHMARKS.md]
    bench/pipeline.py --bench BUILD/jobcache_bench_pipeline --smoke   (tiny sizes, nothing written)

Figures:
  rerun   every stage cached: time, and bytes read (rchar of /proc/PID/io:
          what the processes read through read(2), from the page cache or
          the disk, joblib's workers included), and intermediate values read
  cold    the same sweep with nothing cached, calls spending CPU time (evenly,
          and with the 1% largest seeds 100 times heavier, submitted last):
          the pipeline's time against the three stages run one after another
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN, END = "<!-- pipeline: written by bench/pipeline.py -->", "<!-- /pipeline -->"


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fresh(path):
    for suffix in ("", "-wal", "-shm"):
        p = path + suffix
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    return path


def med(vals):
    return statistics.median(vals)


def spread(vals, f="{:,.3g}"):
    text = f.format(med(vals))
    if len(vals) > 1:
        text += " (" + f.format(min(vals)) + "-" + f.format(max(vals)) + ")"
    return text


def mib(n):
    return n / 1048576


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="the jobcache_bench_pipeline binary")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one rep, nothing written")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "BENCHMARKS.md"))
    args = ap.parse_args()
    seeds, alphas, work, heavy = (20, 3, 50, 1) if args.smoke else (1000, 10, 1000, 10)
    reps = 1 if args.smoke else args.reps
    nj = args.n_jobs
    binary = os.path.abspath(args.bench)
    # Debian's python3-joblib: the system interpreter, whatever python3 is first on PATH.
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    joblib = [py, os.path.join(HERE, "pipeline_joblib.py")]
    calls = seeds * (1 + 2 * alphas)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.time()

    def jc(mode, db, work_us=0, heavy_n=0):
        return run_json([binary, mode, db, str(seeds), str(alphas), str(nj), str(work_us), str(heavy_n)])

    with tempfile.TemporaryDirectory(prefix="jobcache-pipeline-") as tmp:
        pipe_db, stages_db, jl_dir = (os.path.join(tmp, n) for n in ("pipe.db", "stages.db", "joblib"))
        print("cold fills...", file=sys.stderr)
        cold_pipe = jc("pipeline", fresh(pipe_db))
        cold_stages = jc("stages", fresh(stages_db))
        cold_jl = run_json(joblib + [jl_dir, str(seeds), str(alphas), str(nj)])
        assert cold_pipe["computed"] == calls and cold_stages["computed"] == calls
        want = cold_pipe["checksum"]
        assert abs(cold_stages["checksum"] - want) <= 1e-9 * abs(want)
        assert abs(cold_jl["checksum"] - want) <= 1e-6 * abs(want), (cold_jl, want)
        rerun = {"pipeline": [], "stages": [], "joblib": []}
        for _ in range(reps):
            print("reruns...", file=sys.stderr)
            p = jc("pipeline", pipe_db)
            s = jc("stages", stages_db)
            j = run_json(joblib + [jl_dir, str(seeds), str(alphas), str(nj)])
            assert p["cached"] == calls and p["computed"] == 0 and p["inputs_read"] == 0, p
            assert s["cached"] == calls, s
            rerun["pipeline"].append(p)
            rerun["stages"].append(s)
            rerun["joblib"].append(j)
        sizes = {"pipeline": os.path.getsize(pipe_db), "stages": os.path.getsize(stages_db)}
        jl_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(jl_dir) for f in fs)
        cold = {}
        for heavy_n in (0, heavy):
            for _ in range(reps):
                print(f"cold, {heavy_n} heavy seeds...", file=sys.stderr)
                p = jc("pipeline", fresh(os.path.join(tmp, "cold-p.db")), work, heavy_n)
                s = jc("stages", fresh(os.path.join(tmp, "cold-s.db")), work, heavy_n)
                assert p["computed"] == calls and s["computed"] == calls
                cold.setdefault(heavy_n, []).append((p["seconds"], s["seconds"]))

    def secs(rows):
        return [r["seconds"] for r in rows]

    def rch(rows):  # read(2) and, for jobcache, the pages read through SQLite's memory map
        return [mib(r["rchar"] + max(r.get("mapped", 0), 0)) for r in rows]

    tp, ts, tj = med(secs(rerun["pipeline"])), med(secs(rerun["stages"])), med(secs(rerun["joblib"]))
    lines = [BEGIN, "## Pipelines: a three-stage sweep (issue 27)", "",
             f"Written by `bench/pipeline.py` on {started}, in {time.time() - t0:.0f} s; medians of {reps} runs "
             f"(spread in brackets), every side run in the same invocation, alternating, `n_jobs = {nj}`. "
             f"The sweep: {seeds:,} `generate(seed)` (1,000 doubles each), {seeds * alphas:,} "
             f"`train(data, alpha)` (16 doubles), {seeds * alphas:,} `evaluate(fit, data)` (one double): "
             f"{calls:,} calls, every result checked equal on the three sides. *pipeline* is one batch whose "
             "calls take their inputs by reference (`jc_use`), generate and train marked intermediate; "
             "*stages* is one jobcache batch per stage, values passed on (what was written before pipelines); "
             "*joblib* chains three `Memory.cache` functions, one `Parallel` per stage (Debian's python3-joblib). "
             "Bytes read: `rchar` of `/proc/PID/io` during the run (reads served from the page cache count "
             "too), joblib's worker processes included; for jobcache, plus the pages of the cache file "
             "read through SQLite's memory map (the mapping's resident size in `/proc/self/smaps` at the "
             "end of the run), which `rchar` does not see.", "",
             "| rerun, every stage cached | jobcache pipeline | jobcache stages | joblib |",
             "| --- | --- | --- | --- |",
             f"| time, s | {spread(secs(rerun['pipeline']))} | {spread(secs(rerun['stages']))} | "
             f"{spread(secs(rerun['joblib']))} |",
             f"| time, as a multiple of the pipeline's | 1 | {ts / tp:.3g} | {tj / tp:.3g} |",
             f"| bytes read, MiB | {spread(rch(rerun['pipeline']))} | {spread(rch(rerun['stages']))} | "
             f"{spread(rch(rerun['joblib']))} |",
             f"| intermediate values read | {rerun['pipeline'][0]['inputs_read']:,} | "
             f"{seeds + seeds * alphas:,} (handed back by stages 1 and 2) | {seeds + seeds * alphas:,} (loaded) |",
             f"| cache size, MiB | {mib(sizes['pipeline']):,.1f} | {mib(sizes['stages']):,.1f} | "
             f"{mib(jl_bytes):,.1f} |",
             f"| cold fill, s (once) | {cold_pipe['seconds']:,.3g} | {cold_stages['seconds']:,.3g} | "
             f"{cold_jl['seconds']:,.3g} |", "",
             f"| cold, calls spending CPU time (generate {work} us, train {work / 10:g} us, evaluate "
             f"{work / 20:g} us) | pipeline, s | stages one after another, s | stages / pipeline | "
             "lower bound (CPU work / n_jobs), s |",
             "| --- | --- | --- | --- | --- |"]
    for heavy_n, rows in cold.items():
        cpu = work * 1e-6 * (1 + alphas / 10 + alphas / 20) * (seeds - heavy_n + 100 * heavy_n)
        what = "every seed alike" if heavy_n == 0 else \
            f"the {heavy_n} largest seeds ({100 * heavy_n / seeds:g}%) 100 times heavier, submitted last"
        lines.append(f"| {what} | {spread([p for p, _ in rows])} | {spread([s for _, s in rows])} | "
                     f"{spread([s / p for p, s in rows])} | {cpu / nj:.3g} |")
    lines.append(END)
    text = "\n".join(lines)
    if args.smoke:
        print(text)
        return
    old = open(args.out).read() if os.path.exists(args.out) else "# Benchmarks\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END):]
    else:  # after the callgrind table, before the notes
        at = old.index("<!-- /callgrind -->") + len("<!-- /callgrind -->") if "<!-- /callgrind -->" in old \
            else len(old)
        new = old[:at] + "\n\n" + text + old[at:]
    with open(args.out, "w") as f:
        f.write(new)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
