#!/usr/bin/env bash
# Load test (part of `make test`): 32 concurrent clients x 1,000 queries through pgbench
# against moto, uncached (every query calls STS) and cached. Every query checks its row;
# a wrong or missing row aborts that client. Passes only with 32,000/32,000 correct
# queries and no aborted client each way; prints the throughput.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
PGBENCH=$("$PG_CONFIG" --bindir)/pgbench
CLIENTS=${LOAD_CLIENTS:-32}
QUERIES=${LOAD_QUERIES:-1000}

PGOPTIONS="-c client_min_messages=warning" tests/cluster.sh psql -q -d postgres -c "DROP DATABASE IF EXISTS aws_sts_load WITH (FORCE)" -c "CREATE DATABASE aws_sts_load"
tests/cluster.sh psql -q -d aws_sts_load -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION aws_sts;
CREATE SERVER load_uncached FOREIGN DATA WRAPPER aws_sts
    OPTIONS (endpoint_url 'http://127.0.0.1:$AWS_STS_TEST_MOTO_PORT', cache 'false');
CREATE SERVER load_cached FOREIGN DATA WRAPPER aws_sts
    OPTIONS (endpoint_url 'http://127.0.0.1:$AWS_STS_TEST_MOTO_PORT');
CREATE USER MAPPING FOR CURRENT_USER SERVER load_uncached OPTIONS (access_key 'AKIAIOSFODNN7EXAMPLE', secret_key 'load');
CREATE USER MAPPING FOR CURRENT_USER SERVER load_cached OPTIONS (access_key 'AKIAIOSFODNN7EXAMPLE', secret_key 'load');
CREATE SCHEMA load_uncached;
CREATE SCHEMA load_cached;
IMPORT FOREIGN SCHEMA aws FROM SERVER load_uncached INTO load_uncached;
IMPORT FOREIGN SCHEMA aws FROM SERVER load_cached INTO load_cached;
SQL

status=0
for schema in load_uncached load_cached; do
    script=$AWS_STS_SCRATCH/$schema.pgbench
    cat >"$script" <<PGBENCH
SELECT arn = 'arn:aws:sts::123456789012:user/moto' AND user_id = 'AKIAIOSFODNN7EXAMPLE'
       AND account_id = '123456789012' AND sp_connection_name = '$schema' AS row_ok
FROM $schema.aws_sts_caller_identity \gset
\if :row_ok
\else
SELECT 'wrong row' :: int;
\endif
PGBENCH
    out=$AWS_STS_SCRATCH/$schema.out
    "$PGBENCH" -n -h 127.0.0.1 -p "$AWS_STS_TEST_PGPORT" -U postgres -c "$CLIENTS" -j 2 -t "$QUERIES" \
        -f "$script" aws_sts_load >"$out" 2>&1 || true
    processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\)\/.*/\1/p' "$out")
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
    latency=$(sed -n 's/^latency average = \(.*\)$/\1/p' "$out")
    if [ "${processed:-0}" = $((CLIENTS * QUERIES)) ] && ! grep -q "aborted" "$out"; then
        echo "load: $schema: $processed/$((CLIENTS * QUERIES)) queries correct, $tps queries/s, latency $latency ($CLIENTS clients)"
    else
        echo "load: $schema FAILED:" >&2
        cat "$out" >&2
        status=1
    fi
done
exit $status
