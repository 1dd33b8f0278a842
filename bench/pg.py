#!/usr/bin/env python3
"""The PostgreSQL store against the SQLite file (issue 26), side by side in one invocation.

    bench/pg.py --bench BUILD/jobcache_bench [--reps 3] [--n 100000] [--delay-ms 1] [--out BENCHMARKS.md]

Starts a PostgreSQL server of its own (tests/pg_server.sh: initdb into a
temporary directory, a Unix socket there, no TCP port; stopped at the end
even on failure), then runs jobcache_bench's `tiny` workload (N tiny calls,
n_jobs = 1) cold and warm, each round on three stores in turn:

  file    the SQLite file
  server  the PostgreSQL store on the server's socket
  delayed the same through a proxy of this script's own between two Unix
          sockets, which delays every message (every read from either side)
          by --delay-ms before passing it on, in order: a network's latency

and writes the medians, with the ratios the issue sets targets for, between
<!-- server: written by bench/pg.py --> and <!-- /server --> in --out.
"""
import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
BEGIN, END = "<!-- server: written by bench/pg.py -->", "<!-- /server -->"
PG_SOCKET = ".s.PGSQL.5432"


# ---- the delaying proxy ----

async def pump(reader, writer, delay):
    """Passes what reader reads to writer, each read delay seconds later, in order."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay, data))
    finally:
        queue.put_nowait((0, None))
        await sender


def start_proxy(listen_dir, target, delay):
    """A proxy on listen_dir/.s.PGSQL.5432 to the socket target, in a thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def handle(client_r, client_w):
        server_r, server_w = await asyncio.open_unix_connection(target)
        await asyncio.gather(pump(client_r, server_w, delay), pump(server_r, client_w, delay),
                             return_exceptions=True)

    async def serve():
        path = os.path.join(listen_dir, PG_SOCKET)
        srv = await asyncio.start_unix_server(handle, path=path)
        ready.set()
        async with srv:
            await srv.serve_forever()

    t = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    t.start()
    ready.wait(10)
    return loop


# ---- the runs ----

def run_bench(bench, location, n):
    out = subprocess.run([bench, "tiny", location, str(n), "1"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def psql_uri(sock_dir, schema=None):
    uri = f"postgresql:///jobcache?host={sock_dir}&user=jobcache"
    if schema:
        uri += f"&options=-csearch_path%3D{schema}"
    return uri


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--delay-ms", type=float, default=1.0)
    ap.add_argument("--out", default=os.path.join(TOP, "BENCHMARKS.md"))
    ap.add_argument("--smoke", action="store_true", help="small sizes, one round, nothing written")
    args = ap.parse_args()
    n = 2000 if args.smoke else args.n
    reps = 1 if args.smoke else args.reps
    bench = os.path.abspath(args.bench)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    tmp = tempfile.mkdtemp(prefix="jobcache-pgbench-")
    server = os.path.join(tmp, "server")
    proxy_dir = os.path.join(tmp, "proxy")
    os.makedirs(proxy_dir)
    os.chmod(tmp, 0o755)
    times = {(s, w): [] for s in ("file", "server", "delayed") for w in ("cold", "warm")}
    try:
        r = subprocess.run([os.path.join(TOP, "tests", "pg_server.sh"), "start", server], capture_output=True,
                           text=True)
        if os.path.exists(os.path.join(server, "skipped")) and args.smoke:
            print(f"pg bench smoke: skipped ({open(os.path.join(server, 'skipped')).read().strip()})",
                  file=sys.stderr)
            return
        if r.returncode != 0 or not os.path.exists(os.path.join(server, "uri")):
            sys.exit(f"bench/pg.py: cannot start a PostgreSQL server: {r.stdout}{r.stderr}")
        start_proxy(proxy_dir, os.path.join(server, PG_SOCKET), args.delay_ms / 1000.0)
        for rep in range(reps):
            for store in ("file", "server", "delayed"):
                if store == "file":
                    loc = os.path.join(tmp, f"tiny-{rep}.jobcache")
                else:
                    loc = psql_uri(server if store == "server" else proxy_dir, f"tiny_{store}_{rep}")
                for w in ("cold", "warm"):
                    res = run_bench(bench, loc, n)
                    assert res["computed" if w == "cold" else "cached"] == n, res
                    times[(store, w)].append(res["seconds"])
                    print(f"round {rep + 1}: {store} {w}: {res['seconds']:.3f} s", file=sys.stderr)
    finally:
        subprocess.run([os.path.join(TOP, "tests", "pg_server.sh"), "stop", server], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])
    if args.smoke:
        print(f"pg bench smoke: {sum(len(v) for v in times.values())} runs", file=sys.stderr)
        return

    med = {k: statistics.median(v) for k, v in times.items()}

    def cell(k):
        v = times[k]
        return f"{med[k]:.3f} ({min(v):.3f}-{max(v):.3f})"

    def ratios(a, b):
        return "/".join(f"{x / y:.2f}" for x, y in zip(times[a], times[b]))

    lines = [BEGIN, "", f"## The PostgreSQL store (issue 26): {n:,} tiny calls, n_jobs = 1", "",
             f"Written by `bench/pg.py` on {started}: the median of {reps} rounds, the range in brackets, "
             "seconds; in each round the file, the server and the delayed server ran one after another. "
             f"The server is PostgreSQL on a Unix socket of the benchmark's own; *delayed* reaches it "
             f"through a proxy that holds every message {args.delay_ms:g} ms. Ratios are per round.", "",
             "| | file | server | delayed |", "| --- | --- | --- | --- |",
             f"| cold run | {cell(('file', 'cold'))} | {cell(('server', 'cold'))} | {cell(('delayed', 'cold'))} |",
             f"| warm rerun | {cell(('file', 'warm'))} | {cell(('server', 'warm'))} | {cell(('delayed', 'warm'))} |",
             "", "| ratio | per round | target | met |", "| --- | --- | --- | --- |"]
    checks = [("server ÷ file, cold", ("server", "cold"), ("file", "cold"), 3.0),
              ("server ÷ file, warm", ("server", "warm"), ("file", "warm"), 3.0),
              ("delayed ÷ server, warm", ("delayed", "warm"), ("server", "warm"), 2.0)]
    for name, a, b, target in checks:
        met = med[a] / med[b] <= target
        lines.append(f"| {name} | {ratios(a, b)} | ≤ {target:g} | {'yes' if met else '**no**'} |")
    lines += ["", END]
    text = "\n".join(lines)
    old = open(args.out).read() if os.path.exists(args.out) else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END):]
    elif "<!-- /pipeline -->" in old:
        at = old.index("<!-- /pipeline -->") + len("<!-- /pipeline -->")
        new = old[:at] + "\n\n" + text + old[at:]
    else:
        new = old + "\n" + text + "\n"
    with open(args.out, "w") as f:
        f.write(new)
    print(text)


if __name__ == "__main__":
    main()
