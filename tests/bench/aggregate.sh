#!/usr/bin/env bash
# Aggregator benchmark (part of `make bench`): aggregators of 1, 10, 100 and 1000 member
# servers, each a distinct identity (its own access key) on the concurrent responder
# (tests/bench/sts_responder.rs, answering every request after 50 ms, as many at once as
# asked), at concurrency 1000. For each size: the wall time of one uncached scan in a fresh
# backend and its ratio to one member, the backend's descriptors at the peak of the scan and
# after it, and the most connections the responder saw open at once. The largest is also
# compared with its floors, the fastest of five rounds each: the same calls made by the bare
# SDK on one thread (tests/bench/sts_floor.rs with a member count), the same calls signed and
# sent through the SDK's HTTP client alone (`client`), and written on raw sockets (`raw`):
# what this machine's kernel and two cores allow at all.
#
# It runs its own cluster (port +21): concurrency 1000 needs 2000 descriptors (the backend
# keeps half of what it may open for Postgres), so max_files_per_process = 4096 and a soft
# RLIMIT_NOFILE of 8192 (runuser's PAM session would leave 1024); EXPLAIN shows the cap.
#
# Under tests/bench.sh (AWS_STS_BENCH_ROWS=FILE) the rows go to FILE, for the main table;
# alone it prints them. Knobs: AWS_STS_BENCH_SIZES (default "1 10 100 1000"),
# AWS_STS_BENCH_DELAY_MS (50), AWS_STS_BENCH_CONCURRENCY (1000).
set -euo pipefail
. "$(dirname "$0")/../env.sh"
cd "$ROOT"
LATENCY_MS=${AWS_STS_BENCH_DELAY_MS:-50}
SIZES=${AWS_STS_BENCH_SIZES:-1 10 100 1000}
CONCURRENCY=${AWS_STS_BENCH_CONCURRENCY:-1000}
WORK=$ROOT/target/bench-aggregate
rm -rf "$WORK" && mkdir -p "$WORK"
largest=$(echo "$SIZES" | tr ' ' '\n' | sort -n | tail -1)

# The responder and the floor: built (with the Postgres-free core, optimized, as the Rust
# floor is) before anything is timed, and run as the executables cargo built.
executable() { sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' "$1" | tail -n 1; }
cargo build --release --no-default-features --example sts_responder --message-format=json \
    >"$WORK/build.json" 2>"$WORK/build.log" || { cat "$WORK/build.log" >&2; exit 1; }
cargo bench --no-default-features --bench sts_floor --no-run --message-format=json \
    >"$WORK/floor-build.json" 2>"$WORK/floor-build.log" || { cat "$WORK/floor-build.log" >&2; exit 1; }
responder_bin=$(executable "$WORK/build.json")
floor_bin=$(executable "$WORK/floor-build.json")
[ -x "$responder_bin" ] && [ -x "$floor_bin" ] ||
    { echo "aggregate bench: no sts_responder or sts_floor executable in cargo's output" >&2; exit 1; }

AGG_PORT=$((AWS_STS_TEST_PGPORT + 21))
cluster() {
    AWS_STS_TEST_PGPORT=$AGG_PORT AWS_STS_SCRATCH=/tmp/aws_sts-scratch-$AGG_PORT \
        AWS_STS_SERVER_CONF="-c max_files_per_process=4096" AWS_STS_SERVER_NOFILE=8192 \
        tests/cluster.sh "$@"
}
cluster stop >/dev/null
rm -rf "/tmp/aws_sts-scratch-$AGG_PORT"
cluster start >/dev/null
"$responder_bin" "$LATENCY_MS" "$WORK/responder.port" &
responder=$!
trap 'kill $responder 2>/dev/null || true; cluster stop' EXIT
for _ in $(seq 100); do [ -s "$WORK/responder.port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/responder.port" 2>/dev/null) || { echo "aggregate bench: the responder did not start" >&2; exit 1; }
URL=http://127.0.0.1:$PORT
stats() { curl -fsS "$URL/stats"; }
json_field() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"; }

# One server per member, uncached, each with its own key (so its own identity).
{
    echo "CREATE EXTENSION aws_sts;"
    seq -f '%04g' 0 $((largest - 1)) | awk -v url="$URL" '{
        print "CREATE SERVER m" $1 " FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url '\''" url "'\'', cache '\''false'\'', timeout '\''60s'\'');"
        print "CREATE USER MAPPING FOR CURRENT_USER SERVER m" $1 " OPTIONS (access_key '\''AKIABENCH" $1 "'\'', secret_key '\''aggregate-bench'\'');"
    }'
} >"$WORK/members.sql"
PGOPTIONS="-c client_min_messages=warning" cluster psql -q -d postgres \
    -c "DROP DATABASE IF EXISTS aws_sts_aggregate WITH (FORCE)" -c "CREATE DATABASE aws_sts_aggregate"
cluster psql -q -d aws_sts_aggregate -v ON_ERROR_STOP=1 -f "$WORK/members.sql" >/dev/null

# One scan of an aggregator over the first N members, in a fresh backend (after a query that
# plans it, so that the extension and catalogs are loaded): prints "<ms> <effective
# concurrency> <descriptors at the peak> <descriptors after> <responder's peak connections>".
scan() {
    local size=$1 pattern pid peak_file=$WORK/peak-$1 stop=$WORK/stop-$1 out
    pattern=$(seq -f 'm%04g' 0 $((size - 1)) | paste -sd, -)
    # The first session sets up and names its backend; the scan's own backend is the next.
    PGOPTIONS="-c client_min_messages=warning" cluster psql -X -q -At -d aws_sts_aggregate -v ON_ERROR_STOP=1 <<SQL
DROP SERVER IF EXISTS agg CASCADE;
CREATE SERVER agg FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', connections '$pattern', concurrency '$CONCURRENCY');
CREATE FOREIGN TABLE agg_identity (arn text) SERVER agg;
SQL
    curl -fsS -X POST "$URL/reset" >/dev/null
    rm -f "$stop"
    out=$(cluster psql -X -q -At -d aws_sts_aggregate -v ON_ERROR_STOP=1 <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND :pid
\! ("$ROOT/tests/bench/fd_peak.sh" "\$BACKEND" "$stop" >"$peak_file" &)
SELECT count(*) FROM agg_identity WHERE false;
EXPLAIN SELECT * FROM agg_identity;
SELECT clock_timestamp() AS t0 \gset
SELECT count(DISTINCT arn) = $size AS all_distinct FROM agg_identity \gset
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000) AS ms \gset
\! touch "$stop"
\if :all_distinct
\else
\echo 'aggregate bench: wrong row count'
SELECT 1/0;
\endif
SELECT 'ms=' || :ms;
\! echo "after=\$(ls /proc/\$BACKEND/fd | wc -l)"
SQL
)
    for _ in $(seq 50); do [ -s "$peak_file" ] && break; sleep 0.1; done
    local ms after capped peak connections
    ms=$(sed -n 's/^ms=//p' <<<"$out")
    after=$(sed -n 's/^after=//p' <<<"$out")
    capped=$(sed -n 's/.*AWS Concurrency: \([0-9]*\).*/\1/p' <<<"$out")
    peak=$(cat "$peak_file")
    connections=$(stats | json_field peak)
    echo "$ms $capped $peak $after $connections"
}

# The rows: case, measured, compared with, ratio, target, met? (tab-separated).
rows=()
one_ms=
for size in $SIZES; do
    read -r ms capped peak after connections <<<"$(scan "$size")"
    : "${one_ms:=$ms}"
    largest_ms=$ms
    ratio=$(awk -v a="$ms" -v b="$one_ms" 'BEGIN { printf "%.2fx", a / b }')
    if [ "$size" = 1000 ]; then
        target="< 2x"
        met=$(awk -v a="$ms" -v b="$one_ms" 'BEGIN { print (a / b <= 2) ? "yes" : "NO" }')
    else
        target=- met=-
    fi
    label="aggregator, $size member$([ "$size" = 1 ] || echo s), +$LATENCY_MS ms, conc. $capped"
    [ "$capped" -lt "$CONCURRENCY" ] && [ "$capped" -lt "$size" ] && label="$label (capped)"
    rows+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$label" \
        "$ms ms; fds: peak $peak, after $after; $connections conn. at once" \
        "1 member $one_ms ms" "$ratio" "$target" "$met")")
done
# The floors: the largest aggregator's calls made by the bare SDK; the same calls signed and
# sent through the SDK's HTTP client with no SDK around it; and the machine's own floor, the
# signed calls written on raw sockets with no HTTP client (after the scans, so that the
# responder is as warm for them as for the scans).
floor() {
    curl -fsS -X POST "$URL/reset" >/dev/null
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_REGION=us-east-1 \
        "$floor_bin" "$URL" 5 "$largest" "$@" | sed -n 's/^round_ms=\([0-9.]*\) .*/\1/p' | grep .
}
floor_row() {
    local label=$1 floor_ms=$2 what=$3 target=$4
    printf '%s\t%s\t%s\t%s\t%s\t%s' "aggregator, $largest members, vs $label" "$largest_ms ms" \
        "$what: $floor_ms ms ($(awk -v a="$floor_ms" -v b="$one_ms" 'BEGIN { printf "%.2fx", a / b }') 1 member)" \
        "$(awk -v a="$largest_ms" -v b="$floor_ms" 'BEGIN { printf "%.2fx", a / b }')" "$target" \
        "$([ "$target" = - ] && echo - || awk -v a="$largest_ms" -v b="$floor_ms" 'BEGIN { print (a / b <= 1.5) ? "yes" : "NO" }')"
}
rows+=("$(floor_row "the bare SDK" "$(floor)" "aws-sdk-sts, $largest calls at once on one thread" "<= 1.5x")")
rows+=("$(floor_row "an HTTP client alone" "$(floor client)" "signed requests through the SDK's HTTP client, no SDK" -)")
rows+=("$(floor_row "raw sockets" "$(floor raw)" "signed HTTP/1.1 on $largest raw sockets at once, one thread" -)")
rows[0]="5. ${rows[0]}"
for index in $(seq 1 $((${#rows[@]} - 1))); do rows[index]="   ${rows[index]}"; done
if [ -n "${AWS_STS_BENCH_ROWS:-}" ]; then
    printf '%s\n' "${rows[@]}" >>"$AWS_STS_BENCH_ROWS"
else
    printf '%s\n' "${rows[@]}" | tr '\t' '|' | sed 's/|/ | /g'
fi
