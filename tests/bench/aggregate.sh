#!/usr/bin/env bash
# Aggregator benchmark (part of `make bench`): 1, 10, 100 and 1000 member servers, each a
# distinct AssumeRole identity in moto, behind a proxy that adds 50 ms to every request.
# Prints the wall time of one uncached aggregator scan at concurrency 100 and 25 (the
# default), and one after another (concurrency 1), with the speedup.
set -euo pipefail
. "$(dirname "$0")/../env.sh"
cd "$ROOT"
# A free port, chosen by the proxy: a fixed one can be some connection's ephemeral port.
PROXY_PORT_FILE=$AWS_STS_SCRATCH/delay_proxy.port
DELAY_MS=${AWS_STS_BENCH_DELAY_MS:-50}
SIZES=${AWS_STS_BENCH_SIZES:-1 10 100 1000}
largest=$(echo "$SIZES" | tr ' ' '\n' | sort -n | tail -1)

rm -f "$PROXY_PORT_FILE"
"$AWS_STS_VENV/bin/python" tests/bench/delay_proxy.py "${AWS_STS_BENCH_PROXY_PORT:-0}" "$AWS_STS_TEST_MOTO_PORT" "$DELAY_MS" "$PROXY_PORT_FILE" &
proxy=$!
trap 'kill $proxy 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$PROXY_PORT_FILE" ] && break; sleep 0.1; done
PROXY_PORT=$(cat "$PROXY_PORT_FILE" 2>/dev/null) || { echo "the delay proxy did not start" >&2; exit 1; }

# One role per member, assumed once: each member's keys are a distinct identity.
KEYS=$AWS_STS_SCRATCH/aggregate_keys.txt
"$AWS_STS_VENV/bin/python" - "$AWS_STS_TEST_MOTO_PORT" "$largest" "$PROXY_PORT" "$KEYS" >"$AWS_STS_SCRATCH/aggregate_bench.sql" <<'PY'
import sys, boto3
port, count, proxy, keys_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
keys = open(keys_file, "w")
session = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
               aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="bench")
iam, sts = boto3.client("iam", **session), boto3.client("sts", **session)
print("CREATE EXTENSION aws_sts;")
for i in range(count):
    name = f"bench-role-{i}"
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    c = sts.assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{name}", RoleSessionName=f"s{i}")["Credentials"]
    keys.write(c["AccessKeyId"] + "\n")
    print(f"CREATE SERVER m{i:04d} FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'http://127.0.0.1:{proxy}', cache 'false', timeout '60s');")
    print(f"CREATE USER MAPPING FOR CURRENT_USER SERVER m{i:04d} OPTIONS (access_key '{c['AccessKeyId']}', "
          f"secret_key '{c['SecretAccessKey']}', session_token '{c['SessionToken']}');")
PY
PGOPTIONS="-c client_min_messages=warning" tests/cluster.sh psql -q -d postgres \
    -c "DROP DATABASE IF EXISTS aws_sts_aggregate WITH (FORCE)" -c "CREATE DATABASE aws_sts_aggregate"
tests/cluster.sh psql -q -d aws_sts_aggregate -v ON_ERROR_STOP=1 -f "$AWS_STS_SCRATCH/aggregate_bench.sql" >/dev/null

# Milliseconds of one scan (in a fresh backend, after one warm-up scan of another size so
# that the extension and runtime are loaded) of an aggregator over the first N members.
scan_ms() {
    local size=$1 concurrency=$2 pattern
    pattern=$(seq -f 'm%04g' 0 $((size - 1)) | paste -sd, -)
    PGOPTIONS="-c client_min_messages=warning" tests/cluster.sh psql -X -q -At -d aws_sts_aggregate -v ON_ERROR_STOP=1 <<SQL | sed -n "s/^elapsed_ms=//p"
DROP SERVER IF EXISTS agg CASCADE;
CREATE SERVER agg FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', connections '$pattern', concurrency '$concurrency');
CREATE FOREIGN TABLE agg_identity (arn text) SERVER agg;
SELECT count(*) FROM agg_identity WHERE false;
SELECT clock_timestamp() AS t0 \gset
SELECT count(DISTINCT arn) = $size AS all_distinct FROM agg_identity \gset
\if :all_distinct
\else
\echo 'aggregate bench: wrong row count'
SELECT 1/0;
\endif
SELECT 'elapsed_ms=' || round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000);
SQL
}

printf '%-24s %11s %11s %11s %11s %8s %9s %9s\n' "aggregator (+${DELAY_MS} ms/req)" "conc. 100" "conc. 25" "one by one" "floor 100" "speedup" "vs 1 srv" "vs floor"
one_server_ms=
for size in $SIZES; do
    c100=$(scan_ms "$size" 100)
    c25=$(scan_ms "$size" 25)
    if [ "$size" -le 100 ]; then serial=$(scan_ms "$size" 1); else serial=; fi
    floor=$("$AWS_STS_VENV/bin/python" tests/bench/aggregate_floor.py "$PROXY_PORT" "$KEYS" "$size" 100)
    : "${one_server_ms:=$c100}"
    speedup=$([ -n "$serial" ] && awk -v a="$serial" -v b="$c100" 'BEGIN { printf "%.1fx", a / b }' || echo "-")
    ratio=$(awk -v a="$c100" -v b="$one_server_ms" 'BEGIN { printf "%.1fx", a / b }')
    vs_floor=$(awk -v a="$c100" -v b="$floor" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-24s %8s ms %8s ms %11s %8s ms %8s %9s %9s\n' "$size servers" "$c100" "$c25" "${serial:+$serial ms}" "$floor" "$speedup" "$ratio" "$vs_floor"
done
echo "target: 100 servers at concurrency 100 in under 2x the time of one server"
echo "floor 100: the same requests sent by 100 Python threads straight to the proxy (no Postgres,"
echo "no SDK): moto serves one request at a time, so this is the least any client can take here."
