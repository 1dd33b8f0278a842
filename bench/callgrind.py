#!/usr/bin/python3
"""Instructions per call, counted by callgrind: stable on a shared, noisy
machine where seconds are not (the same binary and inputs give the same
count whatever else runs).

    bench/callgrind.py --bench BUILD/jobcache_bench [--against LABEL=OTHER/jobcache_bench ...]
                       [--commit LABEL=COMMIT ...] [--n 20000] [--json]

Three paths, each on N tiny calls f(i, 7) with n_jobs = 1 (in-process, so
that every instruction is in the one process callgrind follows), opening and
closing the cache included:

  cold   a fresh cache: N misses, computed and stored      Ir(tiny, N) / N
  warm   the same calls again: N hits                      Ir(tiny, N) / N
  memo   N jc_memo calls that hit (1,000 distinct, warmed)  (Ir(memo, N) - Ir(memo, 0)) / N
  memo_session           the same in a memo session (jc_memo_session_begin)
  memo_distinct          N jc_memo calls of N distinct keys, all hits (the cache of cold)
  memo_distinct_session  the same in a memo session

The memo row subtracts a run of 0 calls, which removes opening, warming and
closing: it is the cost of one memoized call. Every binary given is measured
in this one invocation, each on caches of its own; --against takes builds of
other commits (bench/baseline.sh DIR COMMIT builds one), --commit builds
them here (0.1.0 is 24c2234: tags do not travel with a clone). For like
with like, measure builds made the same way: baseline.sh links the library
statically, as jobcache_bench of a -DBUILD_SHARED_LIBS=OFF build does. Prints a Markdown
table (and the figures as JSON with --json).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

PATHS = ("cold", "warm", "memo", "memo_session", "memo_distinct", "memo_distinct_session")


def collected(binary, args, tmp):
    """Instructions executed by BINARY ARGS under callgrind (its 'Collected')."""
    out = os.path.join(tmp, "callgrind.out")
    env = dict(os.environ, JOBCACHE_VERBOSE="0")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary] + [str(a) for a in args],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit("callgrind: %s %s failed (%d):\n%s" % (binary, " ".join(map(str, args)), p.returncode,
                                                                p.stderr[-2000:]))
    m = re.search(r"Collected\s*:\s*(\d+)", p.stderr)
    if not m:
        raise SystemExit("callgrind: no 'Collected' line in the output of %s" % binary)
    os.remove(out)
    return int(m.group(1))


def measure(binary, n, tmp):
    """{path: instructions per call} for one build."""
    db = os.path.join(tmp, "cg.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    cold = collected(binary, ["tiny", db, n, 1], tmp)
    warm = collected(binary, ["tiny", db, n, 1], tmp)
    memo_db = os.path.join(tmp, "cg-memo.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(memo_db + suffix):
            os.remove(memo_db + suffix)
    collected(binary, ["memo", memo_db, 0], tmp)  # the cache holds the 1,000 calls from here on
    memo0 = collected(binary, ["memo", memo_db, 0], tmp)
    memo = collected(binary, ["memo", memo_db, n], tmp)
    out = {"cold": cold / n, "warm": warm / n, "memo": (memo - memo0) / n}
    # Memo sessions (0.4 on): a build without them fails these, shown as n/a.
    try:
        s0 = collected(binary, ["memo_session", memo_db, 0], tmp)
        out["memo_session"] = (collected(binary, ["memo_session", memo_db, n], tmp) - s0) / n
    except SystemExit:
        out["memo_session"] = None
    d0 = collected(binary, ["memo_distinct", db, 0, 0], tmp)
    out["memo_distinct"] = (collected(binary, ["memo_distinct", db, n, 0], tmp) - d0) / n
    try:
        d0 = collected(binary, ["memo_distinct", db, 0, 1], tmp)
        out["memo_distinct_session"] = (collected(binary, ["memo_distinct", db, n, 1], tmp) - d0) / n
    except SystemExit:
        out["memo_distinct_session"] = None
    return out


def table(results, n):
    labels = list(results)
    lines = ["| instructions per call (callgrind, %s tiny calls, n_jobs = 1) | %s |" % (f"{n:,}", " | ".join(labels)),
             "| --- |" + " --- |" * len(labels)]
    names = {"cold": "cold run (miss, computed, stored; open and close included)",
             "warm": "warm rerun (hit; open and close included)",
             "memo": "one memoized call that hits (jc_memo), 1,000 keys repeated",
             "memo_session": "the same in a memo session",
             "memo_distinct": "one memoized call that hits, every key distinct",
             "memo_distinct_session": "the same in a memo session"}
    first = labels[0]
    for path in PATHS:
        cells = []
        for label in labels:
            v = results[label].get(path)
            if v is None:
                cells.append("n/a")
                continue
            cell = f"{v:,.0f}"
            if label != first and results[first].get(path) is not None:
                cell += " (%+.1f%%)" % (100.0 * (results[first][path] - v) / v)
            cells.append(cell)
        lines.append("| %s | %s |" % (names[path], " | ".join(cells)))
    if len(labels) > 1:
        lines.append("")
        lines.append("(In parentheses: how much more (+) or less (-) the first column executes than that one.)")
    return "\n".join(lines)


BEGIN, END = "<!-- callgrind: written by bench/callgrind.py -->", "<!-- /callgrind -->"


def write_section(path, text, builds):
    """Puts the table in path between BEGIN and END (bench/run.py keeps that
    section when it rewrites the file); before the notes when new."""
    import time
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = "\n".join([BEGIN, "## Instructions per call (callgrind)", "",
                         "Written by `bench/callgrind.py` on %s: %s, each built by `bench/baseline.sh` "
                         "(static library, RelWithDebInfo) and measured in one invocation. Instruction counts "
                         "do not depend on the load of the machine." % (when, ", ".join(label for label, _ in builds)),
                         "", text, END])
    old = open(path).read() if os.path.exists(path) else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END):]
    elif "## How to read these figures" in old:
        i = old.index("## How to read these figures")
        new = old[:i] + section + "\n\n" + old[i:]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + section + "\n"
    with open(path, "w") as f:
        f.write(new)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", required=True, help="the jobcache_bench binary measured first")
    ap.add_argument("--label", default="this build")
    ap.add_argument("--against", action="append", default=[], metavar="LABEL=BINARY",
                    help="another build's jobcache_bench (repeatable)")
    ap.add_argument("--commit", action="append", default=[], metavar="LABEL=COMMIT",
                    help="build COMMIT's jobcache_bench with bench/baseline.sh and measure it too (repeatable)")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", help="write the table into this file (BENCHMARKS.md) between its callgrind markers")
    a = ap.parse_args(argv)
    if not shutil.which("valgrind"):
        raise SystemExit("callgrind: valgrind is not installed (Debian package valgrind)")
    builds = [(a.label, a.bench)]
    for spec in a.against:
        label, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit("callgrind: --against takes LABEL=BINARY, got %r" % spec)
        builds.append((label, path))
    here = os.path.dirname(os.path.abspath(__file__))
    for spec in a.commit:
        label, sep, commit = spec.partition("=")
        if not sep:
            raise SystemExit("callgrind: --commit takes LABEL=COMMIT, got %r" % spec)
        print("callgrind: building %s (%s)..." % (label, commit), file=sys.stderr)
        out = subprocess.run([os.path.join(here, "baseline.sh"), "/tmp/jobcache-callgrind-" + commit, commit],
                             check=True, capture_output=True, text=True).stdout
        builds.append((label, out.strip().splitlines()[-1]))
    results = {}
    with tempfile.TemporaryDirectory(prefix="jobcache-callgrind-") as tmp:
        for label, binary in builds:
            print("callgrind: %s (%s)..." % (label, binary), file=sys.stderr)
            results[label] = measure(os.path.abspath(binary), a.n, tmp)
    text = table(results, a.n)
    print(text)
    if a.out:
        write_section(a.out, text, builds)
    if a.json:
        print(json.dumps({"n": a.n, "results": results}))
    return results


if __name__ == "__main__":
    main()
