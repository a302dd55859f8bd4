# aws_sts: `make demo` sets everything up and shows the extension answering; `make test`
# runs every test. Both work on a fresh Debian machine as root.
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
export PG_CONFIG
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup build install demo test bench load soak unit lint stop clean

setup:
	tests/setup.sh

build: setup
	cargo build --release

install: setup
	cargo pgrx install --release --pg-config $(PG_CONFIG)

demo: install
	tests/demo.sh

test: install sqlite
	tests/run.sh

# Latency and memory against moto, side by side with a local table, boto3, PL/Python, the
# AWS CLI and a bare Rust aws-sdk-sts loop; prints one table (tests/bench.sh).
bench: install
	tests/bench.sh

# The full load test: 32 clients x 1,000 queries, uncached and cached (moto bounds the
# uncached rate at about 120 queries/s, so this takes about 5 minutes).
load: install
	tests/cluster.sh start
	LOAD_QUERIES=1000 tests/load.sh

# One backend, 100,000 cached and 10,000 uncached queries: VmRSS before and after.
soak: install
	tests/cluster.sh start
	tests/soak.sh

# The Postgres-free core only: no cluster, no moto.
unit:
	cargo test --no-default-features --lib

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --no-default-features -- -D warnings
	cargo clippy -p aws_sts_sqlite --all-targets -- -D warnings
	cargo fmt --manifest-path sqlite/tests/Cargo.toml -- --check
	cargo clippy --manifest-path sqlite/tests/Cargo.toml --target-dir target --all-targets -- -D warnings

# --- SQLite extension (sqlite/, issue #6) -------------------------------------------------
# `make sqlite` builds it as target/sqlite/aws_sts.so, for `.load target/sqlite/aws_sts` in
# sqlite3 (SQLITE_PROFILE=dev for a quicker debug build); `make test-sqlite` tests it
# against moto (tests/sqlite.sh), as `make test` does after the Postgres tests.
SQLITE_PROFILE ?= release
SQLITE_BUILD_DIR := target/$(if $(filter dev,$(SQLITE_PROFILE)),debug,$(SQLITE_PROFILE))

.PHONY: sqlite test-sqlite
sqlite:
	cargo build -p aws_sts_sqlite --profile $(SQLITE_PROFILE)
	mkdir -p target/sqlite
	cp $(SQLITE_BUILD_DIR)/libaws_sts_sqlite.so target/sqlite/aws_sts.so

test-sqlite: setup sqlite
	tests/sqlite.sh
# --- end of the SQLite section ---------------------------------------------------------------

stop:
	tests/cluster.sh stop

clean: stop
	cargo clean
	rm -rf .venv
