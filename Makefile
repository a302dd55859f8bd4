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

test: install
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

stop:
	tests/cluster.sh stop

clean: stop
	cargo clean
	rm -rf .venv
