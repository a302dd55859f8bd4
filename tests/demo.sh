#!/usr/bin/env bash
# `make demo`: a scratch PostgreSQL 15 cluster with aws_sts, a fresh database `aws_sts_demo`,
# and the Steampipe table page's queries run and printed.
#
# With AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN,
# AWS_REGION) in the environment, the server asks real AWS STS (AWS_STS_DEMO_ROLE_ARN, if set,
# names a role those keys may assume). Without them, it asks the local moto emulator, seeded
# with an IAM user Alice and a role my-role-name.
set -euo pipefail

. "$(dirname "$0")/env.sh"
cd "$ROOT"
SCRATCH=$AWS_STS_SCRATCH
MOTO_PORT=$AWS_STS_TEST_MOTO_PORT

tests/cluster.sh start
PGOPTIONS="-c client_min_messages=warning" tests/cluster.sh psql -q -d postgres -c "DROP DATABASE IF EXISTS aws_sts_demo WITH (FORCE)" -c "CREATE DATABASE aws_sts_demo"

if [ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ]; then
    echo "demo: AWS credentials found in the environment: asking AWS STS"
    server_options="region '${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}'"
    access_key=$AWS_ACCESS_KEY_ID secret_key=$AWS_SECRET_ACCESS_KEY session_token=${AWS_SESSION_TOKEN:-}
    role_access_key=$access_key role_secret_key=$secret_key role_session_token=$session_token
    role_arn=${AWS_STS_DEMO_ROLE_ARN:-}
    : >"$SCRATCH/iam_users.csv"
else
    echo "demo: no AWS credentials in the environment: asking the moto emulator on 127.0.0.1:$MOTO_PORT"
    eval "$(tests/seed_moto.sh)"
    server_options="region 'us-east-1', endpoint_url 'http://127.0.0.1:$MOTO_PORT'"
    access_key=$ALICE_ACCESS_KEY secret_key=$ALICE_SECRET_KEY session_token=
    role_access_key=$ROLE_ACCESS_KEY role_secret_key=$ROLE_SECRET_KEY role_session_token=$ROLE_SESSION_TOKEN
    role_arn=arn:aws:iam::123456789012:role/my-role-name
fi

tests/cluster.sh psql -d aws_sts_demo -v ON_ERROR_STOP=1 \
    -v server_options="$server_options" \
    -v access_key="$access_key" -v secret_key="$secret_key" -v session_token="$session_token" \
    -v role_access_key="$role_access_key" -v role_secret_key="$role_secret_key" \
    -v role_session_token="$role_session_token" -v iam_users_csv="$SCRATCH/iam_users.csv" \
    -v role_arn="$role_arn" \
    -f sql/demo.sql

PGPORT=$AWS_STS_TEST_PGPORT
echo
echo "The cluster keeps running: psql -h 127.0.0.1 -p $PGPORT -U postgres aws_sts_demo   (stop it: make stop)"
