#!/usr/bin/env bash
# Soak (`make soak`, and part of `make bench`): one backend runs 100,000 cached and then
# 10,000 uncached queries; its VmRSS is read before and after each run. Prints the figures
# and whether the growth stays under the 1 MiB target (a target, so it is reported, and
# the script fails only if a query fails).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
CACHED=${SOAK_CACHED:-100000}
UNCACHED=${SOAK_UNCACHED:-10000}
WARMUP=1000

PGOPTIONS="-c client_min_messages=warning" tests/cluster.sh psql -q -d postgres \
    -c "DROP DATABASE IF EXISTS aws_sts_soak WITH (FORCE)" -c "CREATE DATABASE aws_sts_soak"
sql=$AWS_STS_SCRATCH/soak.sql
{
    cat <<SQL
\set ON_ERROR_STOP on
\set QUIET on
CREATE EXTENSION aws_sts;
CREATE SERVER soak_cached FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'http://127.0.0.1:$AWS_STS_TEST_MOTO_PORT');
CREATE SERVER soak_uncached FOREIGN DATA WRAPPER aws_sts
    OPTIONS (endpoint_url 'http://127.0.0.1:$AWS_STS_TEST_MOTO_PORT', cache 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER soak_cached OPTIONS (access_key 'AKIAIOSFODNN7EXAMPLE', secret_key 'soak');
CREATE USER MAPPING FOR CURRENT_USER SERVER soak_uncached OPTIONS (access_key 'AKIAIOSFODNN7EXAMPLE', secret_key 'soak');
CREATE FOREIGN TABLE cached (arn text, akas jsonb) SERVER soak_cached;
CREATE FOREIGN TABLE uncached (arn text, akas jsonb) SERVER soak_uncached;
\o /dev/null
SQL
    rss='SELECT substring(pg_read_file('"'"'/proc/self/status'"'"') from '"'"'VmRSS:\s+(\d+) kB'"'"')::bigint AS'
    echo "$rss rss_start \\gset"
    for _ in $(seq "$WARMUP"); do echo "SELECT * FROM cached;"; done
    for _ in $(seq $((WARMUP / 10))); do echo "SELECT * FROM uncached;"; done
    echo "$rss rss_warm \\gset"
    for _ in $(seq "$CACHED"); do echo "SELECT * FROM cached;"; done
    echo "$rss rss_cached \\gset"
    for _ in $(seq "$UNCACHED"); do echo "SELECT * FROM uncached;"; done
    echo "$rss rss_uncached \\gset"
    echo '\o'
    echo '\echo soak_kb :rss_start :rss_warm :rss_cached :rss_uncached'
} >"$sql"

started=$(date +%s)
read -r _ start warm cached uncached < <(tests/cluster.sh psql -X -d aws_sts_soak -f "$sql" | grep '^soak_kb')
elapsed=$(( $(date +%s) - started ))
kib_to_mib() { awk -v kb="$1" 'BEGIN { printf "%.2f", kb / 1024 }'; }
echo "soak: one backend, ${elapsed}s: VmRSS $(kib_to_mib "$start") MiB at start, $(kib_to_mib "$warm") MiB after warm-up"
echo "soak: +$(kib_to_mib $((cached - warm))) MiB over $CACHED cached queries (target < 1 MiB)"
echo "soak: +$(kib_to_mib $((uncached - cached))) MiB over $UNCACHED uncached queries (target < 1 MiB)"
