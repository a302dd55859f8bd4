#!/usr/bin/env bash
# The seed's sql+sqlite queries (sqlite/tests/sql/seed_queries.sql, verbatim) in Debian's
# sqlite3 shell: `.load` the extension, create aws_iam_user from moto's IAM users, `.read` the
# queries, with credentials from the environment only, against moto, once per identity of the
# seed (moto's default user, Alice's access key, an AssumeRole session); then configuration
# through aws_sts_configure (sqlite/tests/sql/configure.sql).
#
# Each scenario's output, moto's random ids replaced by placeholders, must equal
# sqlite/tests/expected/<scenario>.out; a difference is printed and fails the scenario.
# Needs moto seeded by tests/seed_moto.sh (tests/sqlite.sh does both). Prints
# "shell: N passed, M failed" last; exits 1 if any scenario failed.
set -euo pipefail

. "$(dirname "$0")/../../tests/env.sh"
cd "$ROOT"
: "${ALICE_ACCESS_KEY:?run through tests/sqlite.sh, which seeds moto}"
EXTENSION=${AWS_STS_SQLITE_EXTENSION:-target/sqlite/aws_sts}
ENDPOINT=http://127.0.0.1:$AWS_STS_TEST_MOTO_PORT
IAM_USERS_CSV=${IAM_USERS_CSV:-$AWS_STS_SCRATCH/iam_users.csv}
OUT=target/sqlite-shell
rm -rf "$OUT" && mkdir -p "$OUT/home"

# What every scenario does before its queries: not echoed, so not part of the output.
cat >"$OUT/prelude.sql" <<EOF
.bail off
.headers on
.nullvalue (null)
.load $EXTENSION
CREATE TABLE aws_iam_user (name TEXT, user_id TEXT, arn TEXT, create_date TEXT, password_last_used TEXT);
CREATE TEMP TABLE iam_users_csv (name TEXT, user_id TEXT, arn TEXT, create_date TEXT);
.import --csv $IAM_USERS_CSV iam_users_csv
INSERT INTO aws_iam_user (name, user_id, arn, create_date) SELECT * FROM iam_users_csv;
.echo on
EOF

# Runs sqlite3 on the prelude and an SQL file with the given AWS credentials in an otherwise
# empty environment (no shared config files, no instance metadata).
run_sqlite() {
    local sql_file=$1
    shift
    cat "$OUT/prelude.sql" "$sql_file" |
        env -i PATH=/usr/bin:/bin HOME="$OUT/home" LANG=C.UTF-8 AWS_EC2_METADATA_DISABLED=true \
            AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
            AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$ENDPOINT" "$@" \
            stdbuf -oL -eL sqlite3 -batch :memory: 2>&1 || true
}

# moto's random values become placeholders; everything else must match exactly.
normalise() {
    sed -e "s/$ALICE_USER_ID/<alice-user-id>/g" \
        -e "s/$ALICE_ACCESS_KEY/<alice-access-key>/g" \
        -e "s/$ROLE_ACCESS_KEY/<role-access-key>/g" \
        -e 's/AROA[A-Z0-9]*:/<role-id>:/g' \
        -e 's/[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9:.]*Z/<create-date>/g'
}

passed=0
failed=0
check() {
    local scenario=$1
    shift
    run_sqlite "$@" | normalise >"$OUT/$scenario.out"
    if diff -u "sqlite/tests/expected/$scenario.out" "$OUT/$scenario.out" >"$OUT/$scenario.diff"; then
        echo "ok   $scenario"
        passed=$((passed + 1))
    else
        echo "FAIL $scenario (expected sqlite/tests/expected/$scenario.out, got $OUT/$scenario.out)"
        cat "$OUT/$scenario.diff"
        failed=$((failed + 1))
    fi
}

SEED=sqlite/tests/sql/seed_queries.sql
check seed_default "$SEED" AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=moto
check seed_alice "$SEED" AWS_ACCESS_KEY_ID="$ALICE_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$ALICE_SECRET_KEY"
check seed_assumed_role "$SEED" AWS_ACCESS_KEY_ID="$ROLE_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$ROLE_SECRET_KEY" \
    AWS_SESSION_TOKEN="$ROLE_SESSION_TOKEN"
check configure sqlite/tests/sql/configure.sql AWS_ACCESS_KEY_ID="$ALICE_ACCESS_KEY" \
    AWS_SECRET_ACCESS_KEY="$ALICE_SECRET_KEY"

echo "shell: $passed passed, $failed failed"
[ "$failed" = 0 ]
