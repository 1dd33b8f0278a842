#!/usr/bin/env bash
# The demo under mpirun (issue 15), with the sweep program of examples/:
#  1. `mpirun -np 3 ./sweep 16` prints the same table as `./sweep 16 -1`,
#     and its rerun computes nothing;
#  2. a Ctrl-C of mpirun (SIGINT to mpirun, which passes SIGTERM on to every
#     rank and kills the job as soon as one rank dies) commits what has
#     arrived: the summary rank 0 prints counts exactly the entries stored.
# Usage: mpi_demo.sh MPIRUN SWEEP SCRATCH_DIR
set -euo pipefail
mpirun="$1" sweep="$2" dir="$3"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
run_mpi() { "$mpirun" --oversubscribe --allow-run-as-root "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

JOBCACHE_PATH=alone.db "$sweep" 16 -1 >alone.out 2>alone.err
JOBCACHE_PATH=mpi.db run_mpi -np 3 "$sweep" 16 >mpi.out 2>mpi.err
diff -u alone.out mpi.out || fail "the table under mpirun differs"
grep -q "128 computed.*mpi: 3 ranks, 2 computing" mpi.err || { cat mpi.err; fail "summary of the MPI run"; }
JOBCACHE_PATH=mpi.db run_mpi -np 3 "$sweep" 16 >again.out 2>again.err
diff -u alone.out again.out || fail "the table of the rerun differs"
grep -q "128 cached, 0 computed" again.err || { cat again.err; fail "the rerun computed"; }
echo "ok: the same table with and without mpirun; the rerun computed nothing"

# Ctrl-C. Each rank's stderr goes to a file of its own (mpirun's forwarding
# of output ends with the job). mpirun gets SIGINT's default disposition
# back (env --default-signal): a shell ignores SIGINT for the commands it
# starts in the background, and so may whatever started this script.
JOBCACHE_PATH=int.db env --default-signal=INT "$mpirun" --oversubscribe --allow-run-as-root -np 3 sh -c 'exec "$0" 600 >out.$OMPI_COMM_WORLD_RANK 2>err.$OMPI_COMM_WORLD_RANK' \
    "$sweep" &
pid=$!
# Interrupt once results are being stored.
for _ in $(seq 200); do
    n=$(sqlite3 int.db "SELECT count(*) FROM entries" 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 200 ] && break
    sleep 0.05
done
kill -INT "$pid"
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "mpirun did not end within 30 s of SIGINT"; }
wait "$pid" && fail "mpirun exited 0 after SIGINT"
cat err.0
computed=$(sed -n 's/.* \([0-9]*\) computed, .*/\1/p' err.0)
[ -n "$computed" ] || fail "rank 0 printed no summary: it was killed before committing"
stored=$(sqlite3 int.db "SELECT count(*) FROM entries")
[ "$computed" -gt 0 ] && [ "$computed" -lt 4800 ] || fail "computed $computed of 4800"
[ "$stored" -eq "$computed" ] || fail "rank 0 computed $computed results but $stored are stored"
grep -q "interrupted" err.0 || fail "rank 0 did not say it was interrupted"
echo "ok: Ctrl-C of mpirun: $stored results that had arrived are stored"
