-- aws_sts as a user sees it. Runs against moto on 127.0.0.1:47123, seeded by
-- tests/seed_moto.sh (its values arrive as environment variables).
\getenv alice_access_key ALICE_ACCESS_KEY
\getenv alice_secret_key ALICE_SECRET_KEY
\getenv alice_user_id ALICE_USER_ID
\getenv role_access_key ROLE_ACCESS_KEY
\getenv role_secret_key ROLE_SECRET_KEY
\getenv role_session_token ROLE_SESSION_TOKEN
\getenv iam_users_csv IAM_USERS_CSV
\pset null '(null)'

CREATE EXTENSION aws_sts;
\dew aws_sts

-- The quick start: a server, keys in a user mapping, IMPORT FOREIGN SCHEMA, the query.
CREATE SERVER aws FOREIGN DATA WRAPPER aws_sts
    OPTIONS (region 'us-east-1', endpoint_url 'http://127.0.0.1:47123');
CREATE USER MAPPING FOR CURRENT_USER SERVER aws
    OPTIONS (access_key 'AKIAIOSFODNN7EXAMPLE', secret_key 'moto-default-secret');
IMPORT FOREIGN SCHEMA aws FROM SERVER aws INTO public;
\d+ aws_sts_caller_identity
SELECT obj_description('aws_sts_caller_identity'::regclass, 'pg_class');

-- Steampipe's "Basic info" query. moto answers any unknown key as its default user.
select
  arn,
  user_id,
  title,
  account_id,
  akas
from
  aws_sts_caller_identity;

-- The other columns, derived as Steampipe derives them.
SELECT partition, sp_connection_name, sp_ctx ->> 'connection_name' AS ctx_connection,
       sp_ctx ->> 'extension' AS ctx_extension, _ctx = sp_ctx AS same_ctx
FROM aws_sts_caller_identity;

-- One row, estimated as one row; EXPLAIN shows where the call would go and makes none.
EXPLAIN SELECT * FROM aws_sts_caller_identity;
EXPLAIN (COSTS OFF, VERBOSE) SELECT arn FROM aws_sts_caller_identity WHERE account_id = '123456789012';

-- The backend caches the answer (cache_ttl, 300 s by default): EXPLAIN ANALYZE counts the
-- calls and the cache hits. aws_sts_clear_cache() empties the cache.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT arn FROM aws_sts_caller_identity;
SELECT aws_sts_clear_cache() > 0 AS cleared;
EXPLAIN (COSTS OFF) SELECT arn FROM aws_sts_caller_identity;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT arn FROM aws_sts_caller_identity;

-- IMPORT honours LIMIT TO and EXCEPT, whatever the remote schema is called.
CREATE SCHEMA limited;
IMPORT FOREIGN SCHEMA anything LIMIT TO (aws_sts_caller_identity) FROM SERVER aws INTO limited;
CREATE SCHEMA excepted;
IMPORT FOREIGN SCHEMA anything EXCEPT (aws_sts_caller_identity) FROM SERVER aws INTO excepted;
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('limited', 'excepted') ORDER BY 1, 2;

-- A hand-written table with a subset of the columns, in another order, one renamed.
CREATE FOREIGN TABLE whoami (
    account_id text,
    principal text OPTIONS (column_name 'arn'),
    akas jsonb
) SERVER aws;
SELECT * FROM whoami;
ALTER FOREIGN TABLE whoami ADD COLUMN nonsense text;
SELECT * FROM whoami;
ALTER FOREIGN TABLE whoami DROP COLUMN nonsense;
SELECT account_id FROM whoami;

-- Columns of other types get their values through the type's input function; a value the
-- type rejects names the column and the foreign table in its CONTEXT. Only the columns a
-- query reads (output or quals) are converted: the others stay NULL.
CREATE FOREIGN TABLE typed (account_id bigint, akas text[]) SERVER aws;
SELECT account_id FROM typed;
SELECT account_id FROM typed WHERE account_id > 0;
SELECT akas FROM typed;
SELECT account_id FROM typed WHERE akas IS NOT NULL;
SELECT typed IS NULL FROM typed;
SELECT count(*) FROM typed AS a JOIN typed AS b USING (account_id);
DROP FOREIGN TABLE typed;

-- The validator rejects bad options at CREATE/ALTER time.
\set VERBOSITY default
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (regoin 'us-east-1');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (region 'US-EAST-1');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'localhost:5000');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'https://AKIA:wJalr@sts.amazonaws.com');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (timeout 'soon');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (max_error_retry_attempts '0');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (cache_ttl '-1');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (cache 'perhaps');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (secret_key 'wJalrXUtnFEMI');
ALTER FOREIGN DATA WRAPPER aws_sts OPTIONS (ADD region 'us-east-1');
CREATE USER MAPPING FOR PUBLIC SERVER aws OPTIONS (access_key 'AKIAIOSFODNN7EXAMPLE');
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR PUBLIC SERVER aws OPTIONS (secret_key 'wJalrXUtnFEMI');
CREATE USER MAPPING FOR PUBLIC SERVER aws OPTIONS (access_key 'AKIA', secret_key 'has a space');
ALTER USER MAPPING FOR CURRENT_USER SERVER aws OPTIONS (DROP secret_key);
CREATE FOREIGN TABLE bad_column (arn text OPTIONS (column_name 'nope')) SERVER aws;
CREATE FOREIGN TABLE bad_option (arn text) SERVER aws OPTIONS (table 'x');
-- Good values in every form.
CREATE SERVER good FOREIGN DATA WRAPPER aws_sts OPTIONS (region 'us-gov-west-1',
    endpoint_url 'https://sts.us-gov-west-1.amazonaws.com', profile 'prod', timeout '2.5', connect_timeout '500ms',
    max_error_retry_attempts '3', min_error_retry_delay '100', cache 'on', cache_ttl '5min');
ALTER SERVER good OPTIONS (SET timeout '1min', DROP profile);
DROP SERVER good;

-- Seed scenario 2: keys of the IAM user Alice, joined against a local table of moto's IAM users.
CREATE TABLE aws_iam_user (name text, user_id text, arn text, create_date timestamptz, password_last_used timestamptz);
COPY aws_iam_user (name, user_id, arn, create_date) FROM :'iam_users_csv' WITH (FORMAT csv);
CREATE SERVER alice FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'http://127.0.0.1:47123');
CREATE USER MAPPING FOR CURRENT_USER SERVER alice
    OPTIONS (access_key :'alice_access_key', secret_key :'alice_secret_key');
CREATE SCHEMA alice;
IMPORT FOREIGN SCHEMA aws FROM SERVER alice INTO alice;
SET search_path = alice, public;
SELECT arn, user_id = :'alice_user_id' AS user_id_is_alices, title = user_id AS title_is_user_id,
       account_id, akas, partition, sp_connection_name
FROM aws_sts_caller_identity;
-- The seed's query, verbatim: Alice is an IAM user, not an assumed role, so no row.
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
-- Without the '%assumed%' filter the join finds Alice's IAM user.
SELECT caller_identity.arn, u.name, u.user_id = caller_identity.user_id AS joined, u.password_last_used
FROM aws_sts_caller_identity AS caller_identity JOIN aws_iam_user AS u ON caller_identity.user_id = u.user_id;
RESET search_path;

-- Seed scenario 3: temporary credentials from AssumeRole.
CREATE SERVER assumed FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'http://127.0.0.1:47123');
CREATE USER MAPPING FOR CURRENT_USER SERVER assumed OPTIONS (access_key :'role_access_key',
    secret_key :'role_secret_key', session_token :'role_session_token');
CREATE SCHEMA assumed;
IMPORT FOREIGN SCHEMA aws FROM SERVER assumed INTO assumed;
SELECT arn, user_id ~ '^AROA[A-Z0-9]+:my-role-session-name$' AS user_id_is_role_session,
       title = user_id AS title_is_user_id, account_id, partition
FROM assumed.aws_sts_caller_identity WHERE arn LIKE '%assumed%';
EXPLAIN (COSTS OFF) SELECT arn FROM assumed.aws_sts_caller_identity;

-- Two servers, two identities, one query.
SELECT a.arn AS moto_default, b.arn AS alice
FROM public.aws_sts_caller_identity a CROSS JOIN alice.aws_sts_caller_identity b;

-- An aggregator server (Steampipe's type = "aggregator"): one row per member server whose
-- name matches connections, called concurrently; sp_connection_name quals prune members.
CREATE SERVER aws_all FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', connections 'a*');
CREATE SCHEMA everywhere;
IMPORT FOREIGN SCHEMA aws FROM SERVER aws_all INTO everywhere;
SELECT sp_connection_name, arn FROM everywhere.aws_sts_caller_identity ORDER BY 1;
EXPLAIN (COSTS OFF) SELECT arn FROM everywhere.aws_sts_caller_identity;
EXPLAIN (COSTS OFF) SELECT arn FROM everywhere.aws_sts_caller_identity WHERE sp_connection_name IN ('alice', 'aws');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', connections 'a*', region 'us-east-1');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', connections 'a*', on_error 'ignore');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (concurrency '5');

-- A user who is not a superuser: no keys, no ambient credentials.
CREATE ROLE analyst LOGIN;
GRANT USAGE ON FOREIGN SERVER alice TO analyst;
GRANT USAGE ON SCHEMA alice TO analyst;
GRANT SELECT ON alice.aws_sts_caller_identity TO analyst;
SET ROLE analyst;
SELECT arn FROM alice.aws_sts_caller_identity;
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER alice OPTIONS (ambient_credentials 'true');
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER alice
    OPTIONS (access_key :'alice_access_key', secret_key :'alice_secret_key');
SELECT arn FROM alice.aws_sts_caller_identity;
-- Other users' keys stay hidden in pg_user_mappings, as Postgres hides them.
SELECT usename, umoptions IS NULL AS hidden,
       (SELECT array_agg(split_part(option, '=', 1)) FROM unnest(umoptions) AS option) AS visible_options
FROM pg_user_mappings WHERE srvname = 'alice' ORDER BY usename;
RESET ROLE;
SELECT usename, array_length(umoptions, 1) AS option_count FROM pg_user_mappings
WHERE srvname = 'alice' ORDER BY usename;
DROP OWNED BY analyst;
DROP ROLE analyst;

-- Steampipe's connection config, as steampipe_postgres_aws takes it (a connection block's
-- body, or the whole block). Keys in it, or in plain server options, are accepted from a
-- superuser only, with a WARNING: every user can read a server's options.
CREATE SERVER steampipe FOREIGN DATA WRAPPER aws_sts OPTIONS (config E'
  regions = ["eu-*"]
  endpoint_url = "http://127.0.0.1:47123"
  max_error_retry_attempts = 3
  min_error_retry_delay = 25
  ignore_error_codes = ["AccessDenied"]');
CREATE USER MAPPING FOR CURRENT_USER SERVER steampipe
    OPTIONS (access_key :'alice_access_key', secret_key :'alice_secret_key');
CREATE SCHEMA steampipe;
IMPORT FOREIGN SCHEMA aws FROM SERVER steampipe INTO steampipe;
SELECT arn FROM steampipe.aws_sts_caller_identity;
EXPLAIN (COSTS OFF) SELECT arn FROM steampipe.aws_sts_caller_identity;
CREATE SERVER keyed FOREIGN DATA WRAPPER aws_sts
    OPTIONS (config E'access_key = "AKIAIOSFODNN7EXAMPLE"\nsecret_key = "moto-default-secret"');
-- Mistakes in config name their line; a setting given both ways is refused.
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (config E'profile = "prod"\nregion = "us-east-1"');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (config E'regions = ["us-east-1"\nprofile = "x"');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (config 'regions = []');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (config E'\nmax_error_retry_attempts = 0');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (config 'secret_key = "x"');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (config 'profile = "a"', profile 'b');

-- Assume a role with the mapping's keys: the row shows the assumed-role identity.
CREATE SERVER admin_role FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'http://127.0.0.1:47123',
    role_arn 'arn:aws:iam::123456789012:role/my-role-name', role_session_name 'dashboard',
    external_id 'dashboard-7', duration_seconds '3600');
CREATE USER MAPPING FOR CURRENT_USER SERVER admin_role
    OPTIONS (access_key :'alice_access_key', secret_key :'alice_secret_key');
CREATE SCHEMA admin_role;
IMPORT FOREIGN SCHEMA aws FROM SERVER admin_role INTO admin_role;
SELECT arn, user_id ~ '^AROA[A-Z0-9]+:dashboard$' AS user_id_is_role_session
FROM admin_role.aws_sts_caller_identity;
EXPLAIN (COSTS OFF) SELECT arn FROM admin_role.aws_sts_caller_identity;
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (role_arn 'arn:aws:iam::123456789012:user/alice');
CREATE SERVER bad FOREIGN DATA WRAPPER aws_sts OPTIONS (role_session_name 'dashboard');

-- Dropping the extension drops the wrapper, its servers need CASCADE.
DROP EXTENSION aws_sts;
DROP EXTENSION aws_sts CASCADE;
