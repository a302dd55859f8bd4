# Shared settings of the test and demo scripts (sourced, not run). Override any of them
# from the environment.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
AWS_STS_TEST_PGPORT=${AWS_STS_TEST_PGPORT:-28815}
AWS_STS_TEST_MOTO_PORT=${AWS_STS_TEST_MOTO_PORT:-47123}
# Outside the checkout: the cluster runs as `postgres`, which may not reach a root-owned tree.
AWS_STS_SCRATCH=${AWS_STS_SCRATCH:-/tmp/aws_sts-scratch-$AWS_STS_TEST_PGPORT}
AWS_STS_VENV=${AWS_STS_VENV:-$ROOT/.venv}
export PG_CONFIG AWS_STS_TEST_PGPORT AWS_STS_TEST_MOTO_PORT AWS_STS_SCRATCH AWS_STS_VENV
export AWS_EC2_METADATA_DISABLED=true
