#!/usr/bin/env bash
# The SQLite extension's tests (`make test-sqlite`; tests/run.sh runs them after the Postgres
# ones), against moto (started here unless it already runs, seeded by tests/seed_moto.sh):
#   1. unit tests of the extension crate (sqlite/src),
#   2. Rust tests loading the built extension into the system SQLite (sqlite/tests/*.rs),
#   3. the sqlite3 shell running the seed's queries verbatim (sqlite/tests/shell.sh).
# Expects the extension built (`make sqlite`). Every step runs even if one fails; the last line
# is "sqlite tests: N passed, M failed", and the exit status is 1 if anything failed.
# The Rust tests are a package outside the workspace (sqlite/tests/Cargo.toml): built with the
# extension, cargo would give their host SQLite the extension's API-table build of rusqlite.
set -uo pipefail

. "$(dirname "$0")/env.sh"
cd "$ROOT"
SCRATCH=$AWS_STS_SCRATCH
MOTO_PORT=$AWS_STS_TEST_MOTO_PORT
mkdir -p "$SCRATCH" target

moto_up() { curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; }
if ! moto_up; then
    AWS_EC2_METADATA_DISABLED=true "$AWS_STS_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" \
        >"$SCRATCH/moto-sqlite.log" 2>&1 &
    moto_pid=$!
    trap 'kill "$moto_pid" 2>/dev/null' EXIT
    for _ in $(seq 100); do moto_up && break; sleep 0.1; done
    moto_up || { echo "moto did not start on port $MOTO_PORT; see $SCRATCH/moto-sqlite.log" >&2; exit 1; }
fi

eval "$(tests/seed_moto.sh)" || { echo "seeding moto failed" >&2; exit 1; }
export IAM_USERS_CSV=$SCRATCH/iam_users.csv

status=0
log=target/sqlite-cargo-test.log
echo "== SQLite: cargo test (extension unit tests, then the extension in the system SQLite)"
cargo test -p aws_sts_sqlite --lib 2>&1 | tee "$log" || status=1
cargo test --manifest-path sqlite/tests/Cargo.toml --target-dir target -- --test-threads=4 2>&1 | tee -a "$log" || status=1
cargo_passed=$(awk '/^test result:/ { sum += $4 } END { print sum + 0 }' "$log")
cargo_failed=$(awk '/^test result:/ { sum += $6 } END { print sum + 0 }' "$log")

echo "== SQLite: the seed's queries in the sqlite3 shell (sqlite/tests/shell.sh)"
sqlite/tests/shell.sh | tee target/sqlite-shell.log || status=1
shell_passed=$(awk '/^shell:/ { print $2 }' target/sqlite-shell.log)
shell_failed=$(awk '/^shell:/ { print $4 }' target/sqlite-shell.log)

failed=$((cargo_failed + ${shell_failed:-1}))
# A step that stopped before reporting (a build error, a crash) counts as a failure.
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "sqlite tests: $((cargo_passed + ${shell_passed:-0})) passed, $failed failed"
exit "$status"
