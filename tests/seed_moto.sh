#!/usr/bin/env bash
# Seeds the moto server with the identities of the seed scenarios and prints them as shell
# assignments (eval "$(tests/seed_moto.sh)"):
#   ALICE_ACCESS_KEY, ALICE_SECRET_KEY, ALICE_USER_ID   an IAM user Alice with an access key
#   ROLE_ACCESS_KEY, ROLE_SECRET_KEY, ROLE_SESSION_TOKEN  AssumeRole credentials for
#                                                       my-role-name / my-role-session-name
# and writes $AWS_STS_SCRATCH/iam_users.csv: moto's IAM users (name, user_id, arn, created).
# moto is reset first, so the output always describes a fresh account 123456789012.
set -euo pipefail

. "$(dirname "$0")/env.sh"
VENV=$AWS_STS_VENV
SCRATCH=$AWS_STS_SCRATCH
ENDPOINT=http://127.0.0.1:$AWS_STS_TEST_MOTO_PORT

export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=moto AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_SESSION_TOKEN AWS_PROFILE
aws() { "$VENV/bin/aws" --endpoint-url "$ENDPOINT" --output text "$@"; }

curl -fsS -X POST "$ENDPOINT/moto-api/reset" >/dev/null
aws iam create-user --user-name Alice --query User.UserId >/dev/null
aws iam create-user --user-name Bob --query User.UserId >/dev/null
read -r alice_key alice_secret < <(aws iam create-access-key --user-name Alice \
    --query '[AccessKey.AccessKeyId, AccessKey.SecretAccessKey]')
aws iam create-role --role-name my-role-name --assume-role-policy-document '{"Version":"2012-10-17","Statement":[]}' \
    --query Role.RoleId >/dev/null
read -r role_key role_secret role_token < <(aws sts assume-role \
    --role-arn arn:aws:iam::123456789012:role/my-role-name --role-session-name my-role-session-name \
    --query '[Credentials.AccessKeyId, Credentials.SecretAccessKey, Credentials.SessionToken]')
mkdir -p "$SCRATCH"
aws iam list-users --query 'Users[].[UserName, UserId, Arn, CreateDate]' | tr '\t' ',' >"$SCRATCH/iam_users.csv"
chmod a+r "$SCRATCH/iam_users.csv"
alice_id=$(aws iam get-user --user-name Alice --query User.UserId)

printf 'ALICE_ACCESS_KEY=%q\nALICE_SECRET_KEY=%q\nALICE_USER_ID=%q\n' "$alice_key" "$alice_secret" "$alice_id"
printf 'ROLE_ACCESS_KEY=%q\nROLE_SECRET_KEY=%q\nROLE_SESSION_TOKEN=%q\n' "$role_key" "$role_secret" "$role_token"
printf 'export ALICE_ACCESS_KEY ALICE_SECRET_KEY ALICE_USER_ID ROLE_ACCESS_KEY ROLE_SECRET_KEY ROLE_SESSION_TOKEN\n'
