#!/bin/sh
# A PostgreSQL server of the tests' own (issue 26): `pg_server.sh start DIR`
# makes a cluster in DIR with initdb and starts it, listening only on a Unix
# socket in DIR (no TCP port), as an unprivileged user when run as root
# (initdb refuses root); `pg_server.sh stop DIR` stops it and removes DIR.
# CTest runs start as a fixture's setup and stop as its cleanup, so the
# server is stopped even when tests fail.
#
# On success DIR/uri holds the connection URI of the database `jobcache`,
# which tests read (testutil.h, jc_test_pg_uri). A machine without the
# server's binaries gets DIR/skipped with the reason instead, and exit 0:
# the tests that need the server then skip, saying why.
set -u
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: pg_server.sh start|stop DIR" >&2
    exit 2
fi

bindir=
for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && bindir=$d
done

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

case $cmd in
start)
    if [ -d "$dir/data" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
    fi
    rm -rf "$dir"
    mkdir -p "$dir" || exit 1
    if [ -z "$bindir" ]; then
        echo "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian package postgresql)" \
            >"$dir/skipped"
        echo "skipped: $(cat "$dir/skipped")"
        exit 0
    fi
    if [ "$(id -u)" = 0 ]; then
        chown nobody "$dir" || exit 1
    fi
    chmod 0755 "$dir"
    # -A trust: only this socket, in a directory of the test's own.
    if ! as_owner "$bindir/initdb" -D "$dir/data" -U jobcache -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        exit 1
    fi
    # One role must give a password (test_pg: a password refused), the
    # rest are trusted on this socket.
    { echo "local all jc_password scram-sha-256"; cat "$dir/data/pg_hba.conf"; } >"$dir/hba" &&
        cat "$dir/hba" >"$dir/data/pg_hba.conf" && rm -f "$dir/hba"
    # No TCP (listen_addresses empty); the socket in DIR; no fsync (a
    # test's server is thrown away). JC_PG_LISTEN=ADDRESS: TCP on that
    # address too, for a test that runs the server in a network namespace
    # of its own (test_pg: a lost node), where no other program sees it.
    listen=
    if [ -n "${JC_PG_LISTEN:-}" ]; then
        listen=$JC_PG_LISTEN
        echo "host all jobcache $JC_PG_LISTEN/24 trust" >>"$dir/data/pg_hba.conf"
    fi
    if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=$listen -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null; then
        cat "$dir/server.log" >&2
        exit 1
    fi
    if ! as_owner "$bindir/createdb" -h "$dir" -U jobcache jobcache; then
        exit 1
    fi
    printf 'postgresql:///jobcache?host=%s&user=jobcache\n' "$dir" >"$dir/uri"
    echo "PostgreSQL ($($bindir/postgres --version)) on socket $dir"
    ;;
restart)
    # Fast shutdown (every session cut off), then started again with the
    # same options: a server restarted under running programs.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
    ;;
stop)
    if [ -n "$bindir" ] && [ -d "$dir/data" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg_server.sh start|stop|restart DIR" >&2
    exit 2
    ;;
esac
