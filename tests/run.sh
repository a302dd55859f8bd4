#!/usr/bin/env bash
# The whole test suite (what `make test` runs after building and installing the extension):
#   1. plain `cargo test` of the Postgres-free core and the integration tests' helpers,
#   2. the pg_regress tests in tests/sql against the scratch cluster and moto,
#   3. the Rust integration tests in tests/*.rs against the same cluster and moto,
#   4. a check that no backend crashed during the run,
#   5. the SQLite extension's tests (tests/sqlite.sh).
set -euo pipefail

. "$(dirname "$0")/env.sh"
cd "$ROOT"
SCRATCH=$AWS_STS_SCRATCH
PGPORT=$AWS_STS_TEST_PGPORT

tests/cluster.sh start
trap 'tests/cluster.sh stop' EXIT
log_start=$(wc -c <"$SCRATCH/postgres.log")
# Every secret the tests hand to Postgres is listed here (tests/common/mod.rs), checked last.
: >"$SCRATCH/test-secrets.txt"

echo "== pg_regress (tests/sql, tests/expected)"
eval "$(tests/seed_moto.sh)"
export IAM_USERS_CSV=$SCRATCH/iam_users.csv
rm -rf target/regress && mkdir -p target/regress
# With --use-existing, pg_regress neither creates nor drops its database.
PGOPTIONS="-c client_min_messages=warning" tests/cluster.sh psql -q -d postgres -c "DROP DATABASE IF EXISTS aws_sts_regress WITH (FORCE)" \
    -c "CREATE DATABASE aws_sts_regress TEMPLATE template0"
if ! "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" --use-existing \
    --host=127.0.0.1 --port="$PGPORT" --user=postgres --dbname=aws_sts_regress \
    --inputdir=tests --outputdir=target/regress aws_sts | tee target/regress/summary.txt; then
    cat target/regress/regression.diffs
    exit 1
fi

echo "== cargo test (unit tests of the core, integration tests through Postgres and moto)"
cargo test --no-default-features --lib --tests -- --test-threads=4 2>&1 | tee target/cargo-test.log
cargo_passed=$(awk '/^test result:/ { sum += $4 } END { print sum + 0 }' target/cargo-test.log)
cargo_failed=$(awk '/^test result:/ { sum += $6 } END { print sum + 0 }' target/cargo-test.log)
regress_passed=$(grep -cE '^(test|ok) .* ok' target/regress/summary.txt || true)

echo "== load: pgbench, 32 clients, every row checked (make load runs 1,000 queries per client)"
LOAD_QUERIES=${LOAD_QUERIES:-100} tests/load.sh

echo "== server log"
if tail -c +"$((log_start + 1))" "$SCRATCH/postgres.log" | grep -E "terminated by signal|PANIC|server process .* was terminated"; then
    echo "a backend crashed during the tests" >&2
    exit 1
fi
echo "no backend crashed"
printf '%s\n' "$ALICE_SECRET_KEY" "$ROLE_SECRET_KEY" "$ROLE_SESSION_TOKEN" >>"$SCRATCH/test-secrets.txt"
# Placeholders shorter than 6 characters ('x', 'any') would match ordinary words.
sort -u "$SCRATCH/test-secrets.txt" | awk 'length($0) >= 6' >"$SCRATCH/test-secrets-checked.txt"
secrets_checked=$(wc -l <"$SCRATCH/test-secrets-checked.txt")
if tail -c +"$((log_start + 1))" "$SCRATCH/postgres.log" | grep -F -f "$SCRATCH/test-secrets-checked.txt"; then
    echo "a secret reached the server log" >&2
    exit 1
fi
echo "none of the $secrets_checked secrets the tests used reached the server log"

# --- SQLite extension (issue #6): tests/sqlite.sh, against the same moto ---------------------
sqlite_status=0
tests/sqlite.sh | tee target/sqlite-tests.log || sqlite_status=1
sqlite_passed=$(awk '/^sqlite tests:/ { print $3 }' target/sqlite-tests.log)
sqlite_failed=$(awk '/^sqlite tests:/ { print $5 }' target/sqlite-tests.log)
# --- end of the SQLite section ---------------------------------------------------------------

echo "tests: $((cargo_passed + regress_passed + ${sqlite_passed:-0})) passed, $((cargo_failed + ${sqlite_failed:-1})) failed"
exit "$sqlite_status"
