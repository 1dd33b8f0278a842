"""The joblib side of the pipeline benchmark: the three-stage sweep of
bench/pipeline.c written the way joblib's users chain stages, one
Parallel(delayed(Memory.cache(f))) per stage, each stage's results passed as
values into the next (joblib has no references between calls). Prints one
JSON object with the same fields as jobcache_bench_pipeline.

    python3 pipeline_joblib.py CACHEDIR SEEDS ALPHAS N_JOBS
"""
import json
import sys
import time

import numpy as np
from joblib import Memory, Parallel, delayed

DATA_N, FIT_N = 1000, 16


def generate(seed):
    i = np.arange(DATA_N, dtype=np.int64)
    return ((seed * 7919 + i * 104729) % 1000) / 1000.0


def train(data, alpha, seed):
    w = np.zeros(FIT_N)
    np.add.at(w, np.arange(len(data)) % FIT_N, data * alpha)
    return w


def evaluate(fit, data, seed):
    return float(np.dot(np.resize(fit, len(data)), data))


def io_of(pid):
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rchar():
    """rchar of this process and of its descendants (joblib's workers, which
    run the cached calls and read their results), from /proc."""
    import os
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    mine, me = 0, os.getpid()
    for pid in parent:
        p = pid
        while p and p != me and p in parent:
            p = parent[p]
        if p == me:
            mine += io_of(pid)
    return mine


def main():
    cachedir, seeds, alphas, n_jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    mem = Memory(location=cachedir, verbose=0)
    gen, fit, ev = mem.cache(generate), mem.cache(train), mem.cache(evaluate)
    # Start joblib's worker pool before timing (as bench/joblib_bench.py does).
    if n_jobs != 1:
        Parallel(n_jobs=n_jobs)(delayed(abs)(i) for i in range(4 * n_jobs))
    alpha = [0.01 * (a + 1) for a in range(alphas)]
    r0, t0 = rchar(), time.perf_counter()
    with Parallel(n_jobs=n_jobs) as par:
        data = par(delayed(gen)(s) for s in range(seeds))
        fits = par(delayed(fit)(data[s], alpha[a], s) for s in range(seeds) for a in range(alphas))
        scores = par(delayed(ev)(fits[s * alphas + a], data[s], s) for s in range(seeds) for a in range(alphas))
    t, r1 = time.perf_counter() - t0, rchar()
    print(json.dumps({"mode": "joblib", "seconds": t, "calls": seeds * (1 + 2 * alphas), "rchar": r1 - r0,
                      "checksum": sum(scores)}))


if __name__ == "__main__":
    main()
