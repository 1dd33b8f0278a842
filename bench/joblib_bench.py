"""The joblib side of the benchmarks: the same workloads as bench.c, with
joblib's Parallel + Memory.cache (Debian's python3-joblib), printing one JSON
object per run, with the same fields.

    python3 joblib_bench.py WORKLOAD CACHEDIR [N] [N_JOBS]
"""
import json
import resource
import sys
import time

import numpy as np
from joblib import Memory, Parallel, delayed


def tiny(i, k):
    return i * 31 + k


def cpu(seed, iters):
    x, acc = seed * 1e-3, 0.0
    for _ in range(iters):
        x = x * 1.0000001 + 1e-9
        acc += x / (1.0 + x * x)
    return acc


def array_sum(a):
    return float(a.sum())


def emit(name, n, seconds, **extra):
    out = {"workload": name, "n": n, "seconds": seconds, "per_second": n / seconds,
           "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    out.update(extra)
    print(json.dumps(out))


def main():
    workload, cachedir = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    n_jobs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    mem = Memory(location=cachedir, verbose=0)
    # Start joblib's worker pool (loky reuses it) before any timing, so that
    # joblib is not charged for spawning its Python workers: jobcache's forks
    # cost little and are counted, joblib's start-up is not.
    if n_jobs != 1:
        Parallel(n_jobs=n_jobs)(delayed(tiny)(i, 7) for i in range(4 * n_jobs))
    if workload == "tiny":
        f = mem.cache(tiny)
        t0 = time.perf_counter()
        res = Parallel(n_jobs=n_jobs)(delayed(f)(i, 7) for i in range(n))
        t = time.perf_counter() - t0
        assert res == [i * 31 + 7 for i in range(n)]
        emit(workload, n, t)
    elif workload == "nocache":
        t0 = time.perf_counter()
        res = Parallel(n_jobs=n_jobs)(delayed(tiny)(i, 7) for i in range(n))
        t = time.perf_counter() - t0
        assert res[-1] == (n - 1) * 31 + 7
        emit(workload, n, t)
    elif workload == "cpu":
        iters = int(sys.argv[5]) if len(sys.argv) > 5 else 100000
        t0 = time.perf_counter()
        res = Parallel(n_jobs=n_jobs)(delayed(cpu)(i, iters) for i in range(n))
        t = time.perf_counter() - t0
        emit(workload, n, t, checksum=sum(res))
    elif workload == "arrays":
        length = 131072
        data = np.arange(n * length, dtype=np.float64)
        data = (data % 1000) * 0.25 + np.floor(data / length)
        arrays = [data[i * length:(i + 1) * length] for i in range(n)]
        f = mem.cache(array_sum)
        t0 = time.perf_counter()
        res = Parallel(n_jobs=n_jobs)(delayed(f)(a) for a in arrays)
        t = time.perf_counter() - t0
        emit(workload, n, t, checksum=sum(res))
    elif workload == "memo":
        f = mem.cache(tiny)
        distinct = 1000
        for i in range(distinct):
            f(i, 7)
        t0 = time.perf_counter()
        s = 0
        for i in range(n):
            s += f(i % distinct, 7)
        t = time.perf_counter() - t0
        emit(workload, n, t, us_per_call=t / n * 1e6, checksum=s)
    else:
        sys.exit("unknown workload " + workload)


if __name__ == "__main__":
    main()
