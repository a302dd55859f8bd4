-- The demo `make demo` runs (see tests/demo.sh for the variables it sets).
\pset null '(null)'
\set QUIET on
CREATE EXTENSION aws_sts;

-- The caller's own keys.
CREATE SERVER aws FOREIGN DATA WRAPPER aws_sts OPTIONS (:server_options);
SELECT CASE WHEN :'session_token' = ''
    THEN format('CREATE USER MAPPING FOR CURRENT_USER SERVER aws OPTIONS (access_key %L, secret_key %L)',
                :'access_key', :'secret_key')
    ELSE format('CREATE USER MAPPING FOR CURRENT_USER SERVER aws OPTIONS (access_key %L, secret_key %L, session_token %L)',
                :'access_key', :'secret_key', :'session_token')
    END AS create_mapping \gset
:create_mapping;
IMPORT FOREIGN SCHEMA aws FROM SERVER aws INTO public;

-- Temporary credentials from AssumeRole (with real AWS: the same keys).
CREATE SERVER assumed FOREIGN DATA WRAPPER aws_sts OPTIONS (:server_options);
SELECT CASE WHEN :'role_session_token' = ''
    THEN format('CREATE USER MAPPING FOR CURRENT_USER SERVER assumed OPTIONS (access_key %L, secret_key %L)',
                :'role_access_key', :'role_secret_key')
    ELSE format('CREATE USER MAPPING FOR CURRENT_USER SERVER assumed OPTIONS (access_key %L, secret_key %L, session_token %L)',
                :'role_access_key', :'role_secret_key', :'role_session_token')
    END AS create_role_mapping \gset
:create_role_mapping;
CREATE SCHEMA assumed;
IMPORT FOREIGN SCHEMA aws FROM SERVER assumed INTO assumed;

-- A local copy of the account's IAM users, for the seed's joins.
CREATE TABLE aws_iam_user (name text, user_id text, arn text, create_date timestamptz, password_last_used timestamptz);
COPY aws_iam_user (name, user_id, arn, create_date) FROM :'iam_users_csv' WITH (FORMAT csv);
\set QUIET off

\echo '== Basic info'
select
  arn,
  user_id,
  title,
  account_id,
  akas
from
  aws_sts_caller_identity;

\echo '== The same through AssumeRole credentials, with every column'
SELECT * FROM assumed.aws_sts_caller_identity;

\echo '== Get the details of the user created with AssumeRole (the seed query, verbatim)'
\echo '   An assumed role''s user_id (AROA...:session) matches no IAM user, so Steampipe''s query finds no row.'
\set QUIET on
SET search_path = assumed, public;
\set QUIET off
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
\set QUIET on
RESET search_path;
\set QUIET off

\echo '== Get the details of the user created with GetFederationToken (the seed query, verbatim)'
\echo '   A federated user''s user_id (<account>:<name>) matches no IAM user either.'
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

\echo '== The IAM user behind the caller: the join without the ARN filter'
select
  caller_identity.arn,
  caller_identity.account_id,
  u.name,
  u.create_date,
  u.password_last_used
from
  aws_sts_caller_identity as caller_identity
  join aws_iam_user as u on caller_identity.user_id = u.user_id;

\echo '== EXPLAIN: one row, where the call goes, no AWS call made'
EXPLAIN SELECT * FROM aws_sts_caller_identity;

\echo '== Steampipe''s connection config (HCL) as a server option, as steampipe_postgres_aws takes it'
\set QUIET on
CREATE SERVER steampipe FOREIGN DATA WRAPPER aws_sts OPTIONS (:server_options, config E'
  regions = ["us-*"]
  max_error_retry_attempts = 9
  min_error_retry_delay = 25
  ignore_error_codes = ["AccessDenied"]');
SELECT replace(:'create_mapping', 'SERVER aws ', 'SERVER steampipe ') AS create_steampipe_mapping \gset
:create_steampipe_mapping;
CREATE SCHEMA steampipe;
IMPORT FOREIGN SCHEMA aws FROM SERVER steampipe INTO steampipe;
\set QUIET off
SELECT arn, account_id, sp_connection_name FROM steampipe.aws_sts_caller_identity;

SELECT :'role_arn' <> '' AS have_role \gset
\if :have_role
\echo '== AssumeRole by the extension: role_arn on the server, the user mapping''s keys as the source'
\set QUIET on
CREATE SERVER admin_role FOREIGN DATA WRAPPER aws_sts
    OPTIONS (:server_options, role_arn :'role_arn', role_session_name 'aws-sts-demo');
SELECT replace(:'create_mapping', 'SERVER aws ', 'SERVER admin_role ') AS create_role_arn_mapping \gset
:create_role_arn_mapping;
CREATE SCHEMA admin_role;
IMPORT FOREIGN SCHEMA aws FROM SERVER admin_role INTO admin_role;
\set QUIET off
SELECT arn, user_id, account_id FROM admin_role.aws_sts_caller_identity;
EXPLAIN (COSTS OFF) SELECT arn FROM admin_role.aws_sts_caller_identity;
\endif
