#!/usr/bin/env bash
# Starts and stops the scratch environment the demo and the tests use: a moto server (the
# STS/IAM emulator) and a PostgreSQL cluster with aws_sts installed, both on 127.0.0.1. The
# server is $PG_CONFIG's (PG=18 for PostgreSQL 18); each major version has its own ports
# and scratch directory (tests/env.sh), so 15's and 18's can run side by side.
#
#   tests/cluster.sh start   # idempotent
#   tests/cluster.sh stop
#   tests/cluster.sh psql [ARGS...]
#
# The cluster runs as the `postgres` OS user when started by root (postgres refuses root),
# with an empty environment: no AWS_* variable of the caller leaks in, instance metadata is
# switched off (AWS_EC2_METADATA_DISABLED=true) and HOME is an empty scratch directory, so
# the AWS default credential chain finds nothing unless a test puts it there.
#
# Two variables shape a cluster for tests that need another one (tests/common/cluster.rs):
#   AWS_STS_SERVER_ENV   more NAME=value words for the server's environment (HTTPS_PROXY=...)
#   AWS_STS_SERVER_CONF  more postgres options (-c shared_preload_libraries=aws_sts)
#   AWS_STS_SERVER_NOFILE  the server's soft descriptor limit (runuser's PAM session sets
#                        1024), for the aggregator bench's concurrency 1000
set -euo pipefail

. "$(dirname "$0")/env.sh"
PG_BIN=$("$PG_CONFIG" --bindir)
SCRATCH=$AWS_STS_SCRATCH
PGPORT=$AWS_STS_TEST_PGPORT
MOTO_PORT=$AWS_STS_TEST_MOTO_PORT
VENV=$AWS_STS_VENV
PGDATA=$SCRATCH/pgdata

if [ "$(id -u)" = 0 ]; then
    RUN_AS=(runuser -u postgres --)
else
    RUN_AS=()
fi

moto_up() { curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; }
pg_up() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; }

# `postgres` must reach the server's programs and aws_sts's files: a server installed under
# a directory only root may enter (the PostgreSQL 18 wheel in a checkout's .venv-pg18) gets
# o+x on each directory on the way that needs it, and the files o+r.
let_postgres_reach() {
    local path dir parents
    for path in "$@"; do
        if "${RUN_AS[@]}" test -r "$path"; then continue; fi
        path=$(readlink -f "$path")
        parents=()
        dir=$path
        while [ "$dir" != / ]; do
            dir=$(dirname "$dir")
            parents=("$dir" "${parents[@]}")
        done
        for dir in "${parents[@]}"; do
            if ! "${RUN_AS[@]}" test -x "$dir"; then
                echo "cluster: chmod o+x $dir (for the postgres user)"
                chmod o+x "$dir"
            fi
        done
        "${RUN_AS[@]}" test -r "$path" || chmod o+rX "$path"
    done
}

start_moto() {
    if moto_up; then return; fi
    mkdir -p "$SCRATCH"
    AWS_EC2_METADATA_DISABLED=true nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" \
        >"$SCRATCH/moto.log" 2>&1 &
    echo $! >"$SCRATCH/moto.pid"
    for _ in $(seq 100); do moto_up && return; sleep 0.1; done
    echo "moto did not start on port $MOTO_PORT; see $SCRATCH/moto.log" >&2
    exit 1
}

start_postgres() {
    if pg_up; then return; fi
    mkdir -p "$SCRATCH/home" "$SCRATCH/socket"
    if [ ${#RUN_AS[@]} -gt 0 ]; then
        chown -R postgres: "$SCRATCH"
        let_postgres_reach "$PG_BIN/postgres" "$PG_BIN/initdb" "$PG_BIN/pg_ctl" \
            "$("$PG_CONFIG" --pkglibdir)/aws_sts.so" "$("$PG_CONFIG" --sharedir)/extension/aws_sts.control"
    fi
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$SCRATCH/initdb.log"
    fi
    local server_env
    read -r -a server_env <<<"${AWS_STS_SERVER_ENV:-}"
    "${RUN_AS[@]}" env -i PATH=/usr/bin:/bin HOME="$SCRATCH/home" LANG=C.UTF-8 AWS_EC2_METADATA_DISABLED=true \
        "${server_env[@]}" \
        ${AWS_STS_SERVER_NOFILE:+prlimit --nofile="$AWS_STS_SERVER_NOFILE":} \
        "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$SCRATCH/postgres.log" -w -t 60 \
        -o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $SCRATCH/socket -c max_connections=200 -c shared_buffers=64MB ${AWS_STS_SERVER_CONF:-}" \
        start >/dev/null
}

case "${1:-}" in
start)
    start_moto
    start_postgres
    echo "moto on http://127.0.0.1:$MOTO_PORT, PostgreSQL on 127.0.0.1:$PGPORT (log: $SCRATCH/postgres.log)"
    ;;
stop)
    if [ -f "$PGDATA/PG_VERSION" ] && pg_up; then
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    if [ -f "$SCRATCH/moto.pid" ]; then
        kill "$(cat "$SCRATCH/moto.pid")" 2>/dev/null || true
        rm -f "$SCRATCH/moto.pid"
    fi
    ;;
psql)
    shift
    exec "$PG_BIN/psql" -X -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"
    ;;
*)
    echo "usage: $0 start|stop|psql [ARGS...]" >&2
    exit 2
    ;;
esac
