-- Run by sqlite/tests/shell.sh with Alice's keys in the environment.

-- The seed's join without its ARN filter: Alice's keys find Alice's IAM user.
select caller_identity.arn, u.name, caller_identity.user_id = u.user_id as joined, u.password_last_used
from aws_sts_caller_identity as caller_identity, aws_iam_user as u
where caller_identity.user_id = u.user_id;

-- The other columns: partition, Steampipe's connection name, the JSON ones.
select partition, sp_connection_name, akas ->> 0 = arn as akas_has_arn,
       sp_ctx ->> 'connection_name' as sp_ctx_connection, _ctx ->> 'extension' as ctx_extension
from aws_sts_caller_identity;

-- A config without keys: the keys still come from the environment.
select aws_sts_configure('regions = ["eu-west-1"]');
select arn from aws_sts_caller_identity;

-- A config that cannot be parsed fails with the parser's message and changes nothing.
select aws_sts_configure('regions = [');
select arn from aws_sts_caller_identity;

-- An endpoint nothing listens on fails at once, saying where it tried.
select aws_sts_configure('endpoint_url = "http://127.0.0.1:1"
max_error_retry_attempts = 1');
select arn from aws_sts_caller_identity;

-- NULL goes back to the environment alone.
select aws_sts_configure(NULL);
select arn from aws_sts_caller_identity;

-- A table of its own, named as a Steampipe connection.
create virtual table prod using aws_sts_caller_identity(connection_name='prod');
select sp_connection_name, arn from prod;
