-- aws_sts 0.1.0 to 0.2.0 (ALTER EXTENSION aws_sts UPDATE). What a fresh 0.2.0 install creates
-- beyond 0.1.0; tests/upgrade.rs checks that both give the same objects and comments.
\echo Use "ALTER EXTENSION aws_sts UPDATE TO '0.2.0'" to load this file. \quit

-- Comments on every function and on the event trigger.
COMMENT ON FUNCTION aws_sts_fdw_handler() IS 'Handler of the aws_sts foreign data wrapper: plans and runs scans of aws_sts_caller_identity';
COMMENT ON FUNCTION aws_sts_fdw_validator(text[], oid) IS 'Validator of the aws_sts foreign data wrapper: checks the options of its servers, user mappings and foreign tables';
COMMENT ON FUNCTION aws_sts_table_comment() IS 'The comment IMPORT FOREIGN SCHEMA puts on aws_sts_caller_identity';
COMMENT ON FUNCTION aws_sts_column_comment(text) IS 'The comment of a column of aws_sts_caller_identity, NULL for an unknown column name';
COMMENT ON FUNCTION aws_sts_clear_cache() IS 'Empties the identity cache and drops the STS clients (and the credentials they hold); returns how many identities were cached';
COMMENT ON FUNCTION aws_sts_comment_imported_tables() IS 'Event trigger function: comments the tables and columns IMPORT FOREIGN SCHEMA creates for aws_sts servers';
COMMENT ON EVENT TRIGGER aws_sts_comment_imported_tables IS 'Comments the tables and columns IMPORT FOREIGN SCHEMA creates for aws_sts servers';
