#!/usr/bin/env python3
"""Plots the demo sweep (examples/sweep.c) from its cache with the Python
reader: the final size of the epidemic against R0 = beta / gamma, the mean
over seeds with their spread (each seed a dot, the band one standard
deviation), beside the deterministic SIR final-size relation
z = 1 - exp(-R0 z).

    python3 examples/plot_sweep.py [CACHE] [-o sweep.png]

CACHE is the demo's cache (build/jobcache.db after examples/demo.sh, or
$JOBCACHE_PATH). Needs python3-msgpack, python3-pandas, python3-matplotlib.
"""
import argparse
import math
import os
import sys

try:
    import jobcache
except ImportError:  # run from the repository, not installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import jobcache


def _named(df):
    """The sweep names its parameters (JC_FUNCTION_PARAMS); a cache made by
    an older demo has them as arg0 and arg1."""
    return df.rename(columns={"arg0": "beta", "arg1": "seed"})


def summarize(cache):
    """One row per (population, R0): mean, std, min, max and count of the
    final size over seeds, from the entries of sir v1."""
    try:
        df = cache.frame("sir", "v1")
    except jobcache.UnknownFunctionError as e:
        raise SystemExit("%s: run examples/demo.sh first" % e)
    df = _named(df)
    df["R0"] = (df["beta"] / df["gamma"]).round(9)
    g = df.groupby(["population", "R0"])["final_size"]
    return g.agg(["mean", "std", "min", "max", "count"]).reset_index()


def final_size(r0):
    """The deterministic final size: the root of z = 1 - exp(-R0 z) in (0, 1]."""
    if r0 <= 1:
        return 0.0
    z = 1.0
    for _ in range(200):
        z = 1.0 - math.exp(-r0 * z)
    return z


def plot(cache, out):
    import matplotlib
    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt

    summary = summarize(cache)
    points = _named(cache.frame("sir", "v1"))
    points["R0"] = (points["beta"] / points["gamma"]).round(9)
    # Two panels on one R0 axis: the mean (the spread is too narrow to see
    # at this scale with a population of 150000), and each seed's distance
    # from the mean, where the spread shows.
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6), dpi=120,
                                      gridspec_kw={"height_ratios": [3, 2]})
    for i, (pop, s) in enumerate(summary.groupby("population")):
        color = "C%d" % i
        p = points[points["population"] == pop].merge(s[["R0", "mean"]], on="R0")
        top.fill_between(s["R0"], s["min"], s["max"], color=color, alpha=0.25)
        top.plot(s["R0"], s["mean"], "o-", color=color, lw=2,
                 label="mean over %d seeds, N = %d (band: min to max)" % (s["count"].max(), pop))
        bottom.scatter(p["R0"], 1e3 * (p["final_size"] - p["mean"]), s=10, alpha=0.5, color=color)
        bottom.errorbar(s["R0"], [0] * len(s), yerr=1e3 * s["std"].fillna(0), fmt="_", color="k",
                        capsize=4, lw=1.5, label="\u00b1 1 standard deviation")
    lo, hi = summary["R0"].min(), summary["R0"].max()
    xs = [lo + (hi - lo) * k / 200 for k in range(201)]
    top.plot(xs, [final_size(x) for x in xs], "k--", lw=1, label="deterministic: z = 1 - exp(-R0 z)")
    top.set_ylabel("final epidemic size\n(fraction infected)")
    top.set_title("Stochastic SIR sweep (examples/sweep.c), read from %s"
                  % os.path.basename(cache.path), fontsize=10)
    top.set_ylim(-0.02, 1.02)
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="lower right")
    bottom.axhline(0, color="0.6", lw=0.8)
    bottom.set_ylabel("seed minus mean\n(x 0.001)")
    bottom.set_xlabel("R0 = beta / gamma")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cache", nargs="?", default=os.environ.get("JOBCACHE_PATH", "jobcache.db"))
    ap.add_argument("-o", "--output", default="sweep.png")
    a = ap.parse_args(argv)
    with jobcache.open(a.cache) as cache:
        summary = plot(cache, a.output)
    print(summary.to_string(index=False, float_format=lambda x: "%.3f" % x))
    print("wrote %s" % a.output)


if __name__ == "__main__":
    main()
