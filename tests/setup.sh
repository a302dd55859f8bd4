#!/usr/bin/env bash
# Installs what building and testing aws_sts needs on a fresh Debian machine; quick when
# everything is already there. Run as root (or with passwordless sudo for apt).
set -euo pipefail

. "$(dirname "$0")/env.sh"
PGRX_VERSION=0.18.1
MOTO_VERSION=5.2.5
VENV=$AWS_STS_VENV
SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo)

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

# 3. pgrx's registry of Postgres installations: the system's PostgreSQL 15.
PGRX_HOME=${PGRX_HOME:-$HOME/.pgrx}
if ! grep -qs "pg15 = \"$PG_CONFIG\"" "$PGRX_HOME/config.toml"; then
    echo "setup: cargo pgrx init --pg15 $PG_CONFIG"
    cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi

# 4. The moto STS/IAM emulator and the AWS CLI, in a project-local virtualenv.
if ! "$VENV/bin/python" -c "import moto, boto3; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
    echo "setup: creating $VENV with moto $MOTO_VERSION"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" boto3 awscli
fi
echo "setup: ready"
