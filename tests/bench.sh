#!/usr/bin/env bash
# `make bench`: measures aws_sts in one run against one local moto server (the STS emulator)
# and prints one table with ratios and targets:
#   1. a cached scan vs a local one-row table,
#   2. an uncached scan vs PL/Python + boto3, boto3, the AWS CLI and a bare Rust aws-sdk-sts
#      loop (the floor, tests/bench/sts_floor.rs),
#   3. the first query of a fresh backend vs an uncached scan,
#   4. a backend's memory before and after its first query and over 10,000 queries,
#   5. aggregators over 1, 10, 100 and 1000 servers on a concurrent responder answering after
#      50 ms, vs one server and (1000) vs the bare SDK making the same calls on one thread,
#      with the backend's descriptors (tests/bench/aggregate.sh, on a cluster of its own),
#   6. the shared identity cache (a second cluster with shared_preload_libraries = 'aws_sts'):
#      a fresh backend's first query with a warm shared cache vs one of a local table, a
#      dashboard of 20 new connections each querying once (STS calls, time) with and without
#      preloading, the shared memory used and a fresh backend's VmRSS.
# Missed targets are reported, not fatal: the script exits 0 once every measurement ran.
#
# Knobs: AWS_STS_BENCH_SECONDS (pgbench duration per run, default 5), AWS_STS_BENCH_CLI_CALLS
# (timed AWS CLI runs, default 5), AWS_STS_BENCH_LOOP_CALLS (calls per boto3 and Rust loop,
# default 500), AWS_STS_BENCH_FRESH (fresh backends in case 3, default 20),
# AWS_STS_BENCH_QUERIES (queries per phase in case 4, default 10000), and for case 5
# AWS_STS_BENCH_SIZES (default "1 10 100 1000"), AWS_STS_BENCH_DELAY_MS (default 50) and
# AWS_STS_BENCH_CONCURRENCY (default 1000).
set -euo pipefail

. "$(dirname "$0")/env.sh"
cd "$ROOT"
PG_BIN=$("$PG_CONFIG" --bindir)
PGPORT=$AWS_STS_TEST_PGPORT
VENV=$AWS_STS_VENV
ENDPOINT=http://127.0.0.1:$AWS_STS_TEST_MOTO_PORT
DB=aws_sts_bench
SECONDS_PER_RUN=${AWS_STS_BENCH_SECONDS:-5}
CLI_CALLS=${AWS_STS_BENCH_CLI_CALLS:-5}
LOOP_CALLS=${AWS_STS_BENCH_LOOP_CALLS:-500}
FRESH_BACKENDS=${AWS_STS_BENCH_FRESH:-20}
QUERIES=${AWS_STS_BENCH_QUERIES:-10000}
WORK=$ROOT/target/bench
rm -rf "$WORK" && mkdir -p "$WORK"

# Build the Rust floor before anything is timed: compiling it would steal the CPU (2 cores).
# It is then run as the executable cargo built, so that a source change in the middle of the
# run cannot start a rebuild between measurements.
echo "bench: building the Rust floor (cargo bench --no-run)"
cargo bench --no-default-features --bench sts_floor --no-run --message-format=json \
    >"$WORK/floor-build.json" 2>"$WORK/floor-build.log" || { cat "$WORK/floor-build.log" >&2; exit 1; }
floor_bin=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' "$WORK/floor-build.json" | tail -n 1)
[ -x "$floor_bin" ] || { echo "bench: no sts_floor executable in cargo's output" >&2; exit 1; }
build_seconds=$SECONDS

tests/cluster.sh start
trap 'tests/cluster.sh stop' EXIT
eval "$(tests/seed_moto.sh)"

# The clients outside Postgres get Alice's keys and nothing of the caller's AWS setup.
export AWS_ACCESS_KEY_ID=$ALICE_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$ALICE_SECRET_KEY
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_SESSION_TOKEN AWS_PROFILE

psql_db() { tests/cluster.sh psql -d "$DB" -v ON_ERROR_STOP=1 -qAt "$@"; }
tests/cluster.sh psql -d postgres -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
    -c "CREATE DATABASE $DB TEMPLATE template0"
# PostgreSQL 15 from Debian has PL/Python (tests/setup.sh installs it); the PostgreSQL 18
# wheel (.venv-pg18) has none, so on 18 the PL/Python row says so and the rest runs.
plpython=yes
if ! psql_db -c "CREATE EXTENSION plpython3u" 2>"$WORK/plpython.log"; then
    cat "$WORK/plpython.log" >&2
    if [ "$PG_MAJOR" = 15 ]; then
        echo "bench: PL/Python is missing: run tests/setup.sh (postgresql-plpython3-15, python3-boto3)" >&2
        exit 1
    fi
    echo "bench: no PL/Python in PostgreSQL $PG_MAJOR: its row is left out" >&2
    plpython=no
fi
# `aws`: the default settings (cache on); `nocache`: every scan calls STS. The PL/Python
# function reads the same endpoint and keys from settings of the database.
psql_db -v endpoint="$ENDPOINT" -v access_key="$ALICE_ACCESS_KEY" -v secret_key="$ALICE_SECRET_KEY" <<'SQL'
CREATE EXTENSION aws_sts;
CREATE SERVER aws FOREIGN DATA WRAPPER aws_sts OPTIONS (region 'us-east-1', endpoint_url :'endpoint');
CREATE USER MAPPING FOR CURRENT_USER SERVER aws OPTIONS (access_key :'access_key', secret_key :'secret_key');
IMPORT FOREIGN SCHEMA aws FROM SERVER aws INTO public;
CREATE SERVER nocache FOREIGN DATA WRAPPER aws_sts
    OPTIONS (region 'us-east-1', endpoint_url :'endpoint', cache 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER nocache OPTIONS (access_key :'access_key', secret_key :'secret_key');
CREATE SCHEMA nocache;
IMPORT FOREIGN SCHEMA aws FROM SERVER nocache INTO nocache;
-- The local baseline: the same columns, the same row.
CREATE TABLE one_row AS SELECT * FROM aws_sts_caller_identity;
VACUUM ANALYZE one_row;

SELECT format('ALTER DATABASE %I SET bench.endpoint = %L', current_database(), :'endpoint') \gexec
SELECT format('ALTER DATABASE %I SET bench.access_key = %L', current_database(), :'access_key') \gexec
SELECT format('ALTER DATABASE %I SET bench.secret_key = %L', current_database(), :'secret_key') \gexec
SQL
[ "$plpython" = no ] || psql_db <<'SQL'
-- boto3's counterpart of the foreign table: one client per backend, kept in SD.
CREATE FUNCTION py_caller_identity(OUT arn text, OUT user_id text, OUT account_id text)
LANGUAGE plpython3u AS $$
client = SD.get("client")
if client is None:
    import boto3
    setting = lambda name: plpy.execute("SELECT current_setting('bench.%s') AS v" % name)[0]["v"]
    client = SD["client"] = boto3.client(
        "sts", region_name="us-east-1", endpoint_url=setting("endpoint"),
        aws_access_key_id=setting("access_key"), aws_secret_access_key=setting("secret_key"))
answer = client.get_caller_identity()
return answer["Arn"], answer["UserId"], answer["Account"]
$$;
SQL

# Guards against measuring the wrong thing: every path answers, the cached table hits its
# cache once warm and the other never uses one.
[ "$plpython" = no ] || psql_db -c "SELECT arn FROM py_caller_identity()" >/dev/null
explain=$(psql_db -c "SELECT count(*) FROM aws_sts_caller_identity" -c "EXPLAIN SELECT * FROM aws_sts_caller_identity" \
    -c "SELECT count(*) FROM nocache.aws_sts_caller_identity" -c "EXPLAIN SELECT * FROM nocache.aws_sts_caller_identity")
if ! grep -q "AWS Cache: hit" <<<"$explain" || ! grep -q "AWS Cache: off" <<<"$explain"; then
    printf '%s\n' "$explain" >&2
    echo "bench: EXPLAIN shows no 'AWS Cache: hit' for the cached table or no 'AWS Cache: off' for the other" >&2
    exit 1
fi

# pgbench_mean NAME SQL: one client, prepared statements; prints "<mean ms> <transactions>".
pgbench_mean() {
    printf '%s;\n' "$2" >"$WORK/pgbench-$1.sql"
    if ! "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -n -c 1 -j 1 -T "$SECONDS_PER_RUN" \
        -M prepared -f "$WORK/pgbench-$1.sql" "$DB" >"$WORK/pgbench-$1.log" 2>&1; then
        cat "$WORK/pgbench-$1.log" >&2
        return 1
    fi
    awk '/^latency average/ { ms = $4 } /^number of transactions actually processed/ { n = $NF }
         END { if (ms == "" || n == 0) exit 1; print ms, n }' "$WORK/pgbench-$1.log"
}
# ms_since START_NS: milliseconds elapsed since a `date +%s%N` reading.
ms_since() { awk -v start="$1" -v now="$(date +%s%N)" 'BEGIN { printf "%.3f", (now - start) / 1e6 }'; }

echo "bench: [$SECONDS s] 1. cached foreign table vs a local one-row table (pgbench ${SECONDS_PER_RUN}s each)"
# pgbench's own backend starts with an empty cache: its first scan is the only STS call.
out=$(pgbench_mean cached "SELECT * FROM aws_sts_caller_identity") && read -r cached_ms _ <<<"$out"
out=$(pgbench_mean local "SELECT * FROM one_row") && read -r local_ms _ <<<"$out"

echo "bench: [$SECONDS s] 2. uncached: foreign table, PL/Python, boto3, AWS CLI, Rust floor"
# floor_mean: what `cargo bench --no-default-features --bench sts_floor -- ENDPOINT N` runs.
floor_mean() {
    "$floor_bin" "$ENDPOINT" "$LOOP_CALLS" 2>>"$WORK/floor-run.log" | sed -n 's/^mean_ms=\([0-9.]*\) .*/\1/p' | grep .
}
# moto's speed drifts by tenths of a millisecond over a run: the floor is the mean of a run
# just before and one just after the foreign table's, which also warms moto up.
floor_before=$(floor_mean)
out=$(pgbench_mean uncached "SELECT * FROM nocache.aws_sts_caller_identity") && read -r uncached_ms _ <<<"$out"
floor_after=$(floor_mean)
floor_ms=$(awk -v a="$floor_before" -v b="$floor_after" 'BEGIN { printf "%.3f", (a + b) / 2 }')
plpython_ms=
if [ "$plpython" = yes ]; then
    out=$(pgbench_mean plpython "SELECT * FROM py_caller_identity()") && read -r plpython_ms _ <<<"$out"
fi
boto3_ms=$("$VENV/bin/python" - "$ENDPOINT" "$LOOP_CALLS" <<'PY'
import sys, time, boto3
endpoint, calls = sys.argv[1], int(sys.argv[2])
client = boto3.client("sts", endpoint_url=endpoint)
client.get_caller_identity()  # untimed: loads the service model, opens the connection
start = time.perf_counter()
for _ in range(calls):
    client.get_caller_identity()
print("%.3f" % ((time.perf_counter() - start) * 1000 / calls))
PY
)
"$VENV/bin/aws" sts get-caller-identity --endpoint-url "$ENDPOINT" >/dev/null  # untimed: warms the page cache
cli_total=0
for _ in $(seq "$CLI_CALLS"); do
    start=$(date +%s%N)
    "$VENV/bin/aws" sts get-caller-identity --endpoint-url "$ENDPOINT" >/dev/null
    cli_total=$(awk -v a="$cli_total" -v b="$(ms_since "$start")" 'BEGIN { print a + b }')
done
cli_ms=$(awk -v total="$cli_total" -v n="$CLI_CALLS" 'BEGIN { printf "%.3f", total / n }')

echo "bench: [$SECONDS s] 3. first query in $FRESH_BACKENDS fresh backends"
# psql's \timing covers the query only, not connecting: the extension's load, its runtime,
# credentials and the call, plus what any first query of a backend pays (catalog caches).
# A third argument names another psql function (psql_shared: the preloaded cluster).
first_query_mean() {
    local times=$WORK/first-$2.txt psql=${3:-psql_db}
    : >"$times"
    for _ in $(seq "$FRESH_BACKENDS"); do
        "$psql" -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' >>"$times"
    done
    awk '{ sum += $1 } END { if (NR == 0) exit 1; printf "%.3f", sum / NR }' "$times"
}
first_ms=$(first_query_mean "SELECT * FROM aws_sts_caller_identity" fdw)
first_local_ms=$(first_query_mean "SELECT * FROM one_row" local)

echo "bench: [$SECONDS s] 4. backend memory over $QUERIES uncached and $QUERIES cached queries (one session)"
# One statement per line, sent one by one by psql; the backend reads its own VmRSS (kB).
rss() { echo "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1] AS $1 \gset"; }
# Samples half-way tell warm-up (allocator, pools) from a leak, which grows in both halves.
half=$((QUERIES / 2))
{
    echo '\o /dev/null'
    rss rss_before
    echo 'SELECT arn FROM nocache.aws_sts_caller_identity;'
    rss rss_first
    for _ in $(seq "$half"); do echo 'SELECT arn FROM nocache.aws_sts_caller_identity;'; done
    rss rss_uncached_half
    for _ in $(seq $((QUERIES - half))); do echo 'SELECT arn FROM nocache.aws_sts_caller_identity;'; done
    rss rss_uncached
    echo 'SELECT arn FROM aws_sts_caller_identity;'
    rss rss_cached_first
    for _ in $(seq "$half"); do echo 'SELECT arn FROM aws_sts_caller_identity;'; done
    rss rss_cached_half
    for _ in $(seq $((QUERIES - half))); do echo 'SELECT arn FROM aws_sts_caller_identity;'; done
    rss rss_cached
    echo '\echo :rss_before :rss_first :rss_uncached_half :rss_uncached :rss_cached_first :rss_cached_half :rss_cached'
} >"$WORK/memory.sql"
out=$(psql_db -f "$WORK/memory.sql") &&
    read -r rss_before rss_first rss_uncached_half rss_uncached rss_cached_first rss_cached_half rss_cached <<<"$out"

echo "bench: [$SECONDS s] 6. shared cache: a cluster with shared_preload_libraries = 'aws_sts'"
SHARED_PORT=$((PGPORT + 19))
shared_cluster() {
    AWS_STS_TEST_PGPORT=$SHARED_PORT AWS_STS_SCRATCH=/tmp/aws_sts-scratch-$SHARED_PORT \
        AWS_STS_SERVER_CONF="-c shared_preload_libraries=aws_sts" tests/cluster.sh "$@"
}
shared_cluster stop >/dev/null
rm -rf "/tmp/aws_sts-scratch-$SHARED_PORT"
shared_cluster start >/dev/null
trap 'shared_cluster stop; tests/cluster.sh stop' EXIT
psql_shared() { shared_cluster psql -d "$DB" -v ON_ERROR_STOP=1 -qAt "$@"; }
shared_cluster psql -d postgres -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE $DB TEMPLATE template0"
psql_shared -v endpoint="$ENDPOINT" -v access_key="$ALICE_ACCESS_KEY" -v secret_key="$ALICE_SECRET_KEY" <<'SQL'
CREATE EXTENSION aws_sts;
CREATE SERVER aws FOREIGN DATA WRAPPER aws_sts OPTIONS (region 'us-east-1', endpoint_url :'endpoint');
CREATE USER MAPPING FOR CURRENT_USER SERVER aws OPTIONS (access_key :'access_key', secret_key :'secret_key');
IMPORT FOREIGN SCHEMA aws FROM SERVER aws INTO public;
CREATE TABLE one_row AS SELECT * FROM aws_sts_caller_identity;
VACUUM ANALYZE one_row;
SQL
if ! psql_shared -c "EXPLAIN SELECT * FROM aws_sts_caller_identity" | grep -q "AWS Cache: shared, hit"; then
    echo "bench: the preloaded cluster's EXPLAIN shows no 'AWS Cache: shared, hit'" >&2
    exit 1
fi
shmem_bytes=$(psql_shared -c "SELECT size FROM pg_shmem_allocations WHERE name = 'aws_sts'")
shared_first_ms=$(first_query_mean "SELECT * FROM aws_sts_caller_identity" shared-fdw psql_shared)
shared_first_local_ms=$(first_query_mean "SELECT * FROM one_row" shared-local psql_shared)
# dashboard PSQL: 20 new connections each query once, from an empty cache and zeroed stats;
# each also reads aws_sts_stats, which counts its own backend's calls without preloading and
# the cluster's with it. Prints "<STS calls> <total ms>".
dashboard() {
    "$1" -c "SELECT aws_sts_clear_cache(), aws_sts_stats_reset()" >/dev/null
    local start calls=0 last=0
    start=$(date +%s%N)
    for _ in $(seq 20); do
        last=$("$1" -c "SELECT count(*) FROM aws_sts_caller_identity" \
            -c "SELECT coalesce(sum(calls), 0) FROM aws_sts_stats WHERE server = 'aws'" | tail -n 1)
        calls=$((calls + last))
    done
    local ms
    ms=$(ms_since "$start")
    if [ "$2" = shared ]; then echo "$last $ms"; else echo "$calls $ms"; fi
}
read -r dash_shared_calls dash_shared_ms <<<"$(dashboard psql_shared shared)"
read -r dash_local_calls dash_local_ms <<<"$(dashboard psql_db local)"
# fresh_rss PSQL: VmRSS (kB) of a new backend after its first query of the foreign table.
fresh_rss() {
    "$1" -c "SELECT count(*) FROM aws_sts_caller_identity" \
        -c "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]" | tail -n 1
}
rss_shared=$(fresh_rss psql_shared)
rss_local=$(fresh_rss psql_db)

# The table. ratio: measured / compared with; met: the target holds.
rows=()
row() { local IFS=$'\t'; rows+=("$*"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
below() { awk -v a="$1" -v b="$2" -v limit="$3" 'BEGIN { print (a / b < limit) ? "yes" : "NO" }'; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }
# growth TOTAL SECOND_HALF (KiB). "No growth" is judged on the second half, past warm-up,
# with 64 KiB of slack for allocator noise: a leak of 13 bytes a query or more exceeds it.
growth() { awk -v kb="$1" -v half="$2" 'BEGIN { printf "%+d KiB (2nd half %+d KiB)", kb, half }'; }
no_growth() { awk -v kb="$1" 'BEGIN { print (kb < 64) ? "yes" : "NO" }'; }

row "1. cached foreign table (pgbench)" "$cached_ms ms" "local one_row table $local_ms ms" \
    "$(ratio "$cached_ms" "$local_ms")" "< 1.5x" "$(below "$cached_ms" "$local_ms" 1.5)"
row "2. uncached foreign table (pgbench)" "$uncached_ms ms" "Rust aws-sdk-sts loop $floor_ms ms" \
    "$(ratio "$uncached_ms" "$floor_ms")" "< 1.2x" "$(below "$uncached_ms" "$floor_ms" 1.2)"
if [ -n "$plpython_ms" ]; then
    row "   PL/Python + boto3, SD client (pgbench)" "$plpython_ms ms" "Rust aws-sdk-sts loop $floor_ms ms" \
        "$(ratio "$plpython_ms" "$floor_ms")" "-" "-"
else
    row "   PL/Python + boto3, SD client (pgbench)" "no PL/Python in PostgreSQL $PG_MAJOR" "-" "-" "-" "-"
fi
row "   boto3, reused client (python loop)" "$boto3_ms ms" "Rust aws-sdk-sts loop $floor_ms ms" \
    "$(ratio "$boto3_ms" "$floor_ms")" "-" "-"
row "   AWS CLI, one process per call" "$cli_ms ms" "Rust aws-sdk-sts loop $floor_ms ms" \
    "$(ratio "$cli_ms" "$floor_ms")" "-" "-"
row "3. first query, fresh backend (\\timing)" "$first_ms ms" "uncached foreign table $uncached_ms ms" \
    "$(ratio "$first_ms" "$uncached_ms")" "< 2x" "$(below "$first_ms" "$uncached_ms" 2)"
row "   first query of one_row, fresh backend" "$first_local_ms ms" "local one_row table $local_ms ms" \
    "$(ratio "$first_local_ms" "$local_ms")" "-" "-"
row "4. VmRSS added by the first query" "$(mib $((rss_first - rss_before)))" \
    "before it $(mib "$rss_before")" "-" "< 15 MiB" \
    "$(awk -v kb=$((rss_first - rss_before)) 'BEGIN { print (kb < 15 * 1024) ? "yes" : "NO" }')"
row "   VmRSS growth over $QUERIES uncached queries" \
    "$(growth $((rss_uncached - rss_first)) $((rss_uncached - rss_uncached_half)))" \
    "after the first query $(mib "$rss_first")" "-" "no growth" "$(no_growth $((rss_uncached - rss_uncached_half)))"
row "   VmRSS growth over $QUERIES cached queries" \
    "$(growth $((rss_cached - rss_cached_first)) $((rss_cached - rss_cached_half)))" \
    "after the first cached query $(mib "$rss_cached_first")" "-" "no growth" \
    "$(no_growth $((rss_cached - rss_cached_half)))"
row "6. first query, fresh backend, warm shared cache" "$shared_first_ms ms" \
    "first query of one_row, fresh backend $shared_first_local_ms ms" \
    "$(ratio "$shared_first_ms" "$shared_first_local_ms")" "<= 1.5x" "$(below "$shared_first_ms" "$shared_first_local_ms" 1.5)"
row "   dashboard: 20 new connections, preloaded" "$dash_shared_calls STS calls, $dash_shared_ms ms" \
    "not preloaded: $dash_local_calls STS calls, $dash_local_ms ms" \
    "$(ratio "$dash_shared_ms" "$dash_local_ms")" "1 STS call" "$([ "$dash_shared_calls" = 1 ] && echo yes || echo NO)"
row "   shared memory (pg_shmem_allocations)" "$(mib $((shmem_bytes / 1024)))" \
    "aws_sts.shared_cache_entries = 1024" "-" "-" "-"
row "   VmRSS of a fresh backend after its first query" "preloaded $(mib "$rss_shared")" \
    "not preloaded $(mib "$rss_local")" "$(ratio "$rss_shared" "$rss_local")" "unchanged" \
    "$(awk -v a="$rss_shared" -v b="$rss_local" 'BEGIN { print (a <= b + 1024) ? "yes" : "NO" }')"

echo "bench: [$SECONDS s] 5. aggregators over 1 to 1000 servers on the concurrent responder"
AWS_STS_BENCH_ROWS=$WORK/aggregate-rows.tsv tests/bench/aggregate.sh
while IFS= read -r line; do rows+=("$line"); done <"$WORK/aggregate-rows.tsv"

echo
echo "aws_sts bench: moto at $ENDPOINT, pgbench -n -c 1 -j 1 -T $SECONDS_PER_RUN -M prepared; latencies are means"
echo "(Rust floor: $floor_before ms before the foreign table's run, $floor_after ms after;" \
    "building it took $build_seconds s, measuring $((SECONDS - build_seconds)) s; load average $(cut -d' ' -f1-3 /proc/loadavg))"
# Columns padded to their widest cell (awk, not column(1), which a minimal Debian lacks).
printf '%s\n' "$(IFS=$'\t'; echo "case${IFS}measured${IFS}compared with${IFS}ratio${IFS}target${IFS}met?")" "${rows[@]}" |
    awk -F '\t' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > width[i]) width[i] = length($i) } }
        END {
            for (r = 1; r <= NR; r++) {
                line = ""
                for (i = 1; i < 6; i++) line = line sprintf("%-*s | ", width[i], cell[r, i])
                line = line cell[r, 6]
                print line
                if (r == 1) { rule = ""; for (i = 1; i <= 6; i++) rule = rule sprintf(i < 6 ? "%s-+-" : "%s", sprintf("%*s", width[i], "")); gsub(/ /, "-", rule); print rule }
            }
        }'
echo "5.: one uncached scan in a fresh backend; fds: the backend's descriptors at the scan's peak and after it;" \
    "conn.: the most connections the responder saw open at once"
