#!/usr/bin/env bash
# The whole test suite (what `make test` runs after building and installing the extension):
#   1. plain `cargo test` of the Postgres-free core and the integration tests' helpers,
#   2. the pg_regress tests in tests/sql against the scratch cluster and moto,
#   3. the Rust integration tests in tests/*.rs against the same cluster and moto,
#   4. a check that no backend crashed during the run,
#   5. the SQLite extension's tests (tests/sqlite.sh).
# On the PostgreSQL that PG_CONFIG (or PG=15|18) names, with its own ports and scratch
# directory (tests/env.sh); what it writes goes to target/tests-pgNN, the last line of which
# is "tests: N passed, M failed" (result.txt holds it too).
set -euo pipefail

. "$(dirname "$0")/env.sh"
cd "$ROOT"
SCRATCH=$AWS_STS_SCRATCH
PGPORT=$AWS_STS_TEST_PGPORT
OUT=target/tests-pg$PG_MAJOR
echo "== PostgreSQL $("$PG_CONFIG" --version | sed 's/^PostgreSQL //') ($PG_CONFIG), port $PGPORT, moto port $AWS_STS_TEST_MOTO_PORT"

tests/cluster.sh start
trap 'tests/cluster.sh stop' EXIT
log_start=$(wc -c <"$SCRATCH/postgres.log")
# Every secret the tests hand to Postgres is listed here (tests/common/mod.rs), checked last.
: >"$SCRATCH/test-secrets.txt"

echo "== pg_regress (tests/sql, tests/expected)"
eval "$(tests/seed_moto.sh)"
export IAM_USERS_CSV=$SCRATCH/iam_users.csv
rm -rf "$OUT" && mkdir -p "$OUT/regress/input/sql" "$OUT/regress/input/expected"
# The regress files name moto's port for PostgreSQL 15 (47123): each version runs them
# against its own moto. pg_regress compares with every tests/expected/aws_sts*.out
# (aws_sts_1.out is where a version's output differs) and keeps the closest.
for file in tests/sql/*.sql tests/expected/*.out; do
    sed "s/127\.0\.0\.1:47123/127.0.0.1:$AWS_STS_TEST_MOTO_PORT/g" "$file" \
        >"$OUT/regress/input/${file#tests/}"
done
# With --use-existing, pg_regress neither creates nor drops its database.
PGOPTIONS="-c client_min_messages=warning" tests/cluster.sh psql -q -d postgres -c "DROP DATABASE IF EXISTS aws_sts_regress WITH (FORCE)" \
    -c "CREATE DATABASE aws_sts_regress TEMPLATE template0"
# --bindir: pg_regress's built-in one is where the server was built (for a wheel, a path of
# its build machine).
if ! "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" --use-existing \
    --bindir="$("$PG_CONFIG" --bindir)" --host=127.0.0.1 --port="$PGPORT" --user=postgres --dbname=aws_sts_regress \
    --inputdir="$OUT/regress/input" --outputdir="$OUT/regress" aws_sts | tee "$OUT/regress/summary.txt"; then
    cat "$OUT/regress/regression.diffs"
    exit 1
fi

echo "== cargo test (unit tests of the core, integration tests through Postgres and moto)"
cargo test --no-default-features --lib --tests -- --test-threads=4 2>&1 | tee "$OUT/cargo-test.log"
cargo_passed=$(awk '/^test result:/ { sum += $4 } END { print sum + 0 }' "$OUT/cargo-test.log")
cargo_failed=$(awk '/^test result:/ { sum += $6 } END { print sum + 0 }' "$OUT/cargo-test.log")
# "test aws_sts ... ok" up to PostgreSQL 15, TAP's "ok 1 - aws_sts" from 16 on.
regress_passed=$(grep -cE '^(test .* ok|ok [0-9]+ )' "$OUT/regress/summary.txt" || true)

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
tests/sqlite.sh | tee "$OUT/sqlite-tests.log" || sqlite_status=1
sqlite_passed=$(awk '/^sqlite tests:/ { print $3 }' "$OUT/sqlite-tests.log")
sqlite_failed=$(awk '/^sqlite tests:/ { print $5 }' "$OUT/sqlite-tests.log")
# --- end of the SQLite section ---------------------------------------------------------------

# Last, as it reseeds moto: the .deb of `make package` installs with dpkg -i, answers the
# seed query and leaves nothing behind with dpkg -r (Debian's PostgreSQL only).
echo "== package (tests/package.sh check)"
package_passed=0 package_failed=0
if tests/package.sh check 2>&1 | tee "$OUT/package.log"; then
    if grep -q '^package: dpkg -r removed every file' "$OUT/package.log"; then package_passed=1; fi
else
    package_failed=1
fi

echo "tests: $((cargo_passed + regress_passed + ${sqlite_passed:-0} + package_passed)) passed, $((cargo_failed + ${sqlite_failed:-1} + package_failed)) failed" |
    tee "$OUT/result.txt"
[ "$package_failed" = 0 ] || exit 1
exit "$sqlite_status"
