-- The sql+sqlite examples of Steampipe's aws_sts_caller_identity table page, verbatim,
-- in the page's order (run by sqlite/tests/shell.sh).

-- Basic info
select
  arn,
  user_id,
  title,
  account_id,
  akas
from
  aws_sts_caller_identity;

-- Get the details of the user created with AssumeRole
select
  caller_identity.arn,
  caller_identity.user_id,
  caller_identity.title,
  caller_identity.account_id,
  u.name,
  u.create_date,
  u.password_last_used
from
  aws_sts_caller_identity as caller_identity,
  aws_iam_user as u
where
  caller_identity.user_id = u.user_id
  and caller_identity.arn like '%assumed%';

-- Get the details of the user created with GetFederationToken
select
  caller_identity.arn,
  caller_identity.user_id,
  caller_identity.title,
  caller_identity.account_id,
  u.name,
  u.create_date,
  u.password_last_used
from
  aws_sts_caller_identity as caller_identity,
  aws_iam_user as u
where
  caller_identity.user_id = u.user_id
  and caller_identity.arn like '%federated%';
