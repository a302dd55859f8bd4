-- aws_sts 0.1.0 to 0.2.0 (ALTER EXTENSION aws_sts UPDATE). What a fresh 0.2.0 install creates
-- beyond 0.1.0; tests/upgrade.rs checks that both give the same objects and comments.
\echo Use "ALTER EXTENSION aws_sts UPDATE TO '0.2.0'" to load this file. \quit

-- Comments on every function and on the event trigger.
COMMENT ON FUNCTION aws_sts_fdw_handler() IS 'Handler of the aws_sts foreign data wrapper: plans and runs scans of aws_sts_caller_identity';
COMMENT ON FUNCTION aws_sts_fdw_validator(text[], oid) IS 'Validator of the aws_sts foreign data wrapper: checks the options of its servers, user mappings and foreign tables';
COMMENT ON FUNCTION aws_sts_table_comment() IS 'The comment IMPORT FOREIGN SCHEMA puts on aws_sts_caller_identity';
COMMENT ON FUNCTION aws_sts_column_comment(text) IS 'The comment of a column of aws_sts_caller_identity, NULL for an unknown column name';
COMMENT ON FUNCTION aws_sts_clear_cache() IS 'Empties this backend''s identity cache (and, with shared_preload_libraries, this database''s shared entries) and drops its STS clients and the credentials they hold; returns how many identities were cached';
COMMENT ON FUNCTION aws_sts_comment_imported_tables() IS 'Event trigger function: comments the tables and columns IMPORT FOREIGN SCHEMA creates for aws_sts servers';
COMMENT ON EVENT TRIGGER aws_sts_comment_imported_tables IS 'Comments the tables and columns IMPORT FOREIGN SCHEMA creates for aws_sts servers';

-- The identity cache and call statistics as views (shared by the cluster's backends with
-- shared_preload_libraries = 'aws_sts', else each backend's own), and their reset.
CREATE  FUNCTION "aws_sts_cache"() RETURNS TABLE (
	"server" TEXT,  /* String */
	"user_name" TEXT,  /* Option < String > */
	"arn" TEXT,  /* String */
	"account_id" TEXT,  /* String */
	"cached_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"expires_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"hits" bigint  /* i64 */
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'aws_sts_cache_wrapper';
CREATE  FUNCTION "aws_sts_stats"() RETURNS TABLE (
	"server" TEXT,  /* String */
	"calls" bigint,  /* i64 */
	"cache_hits" bigint,  /* i64 */
	"errors" bigint,  /* i64 */
	"retries" bigint,  /* i64 */
	"total_time" double precision,  /* f64 */
	"mean_time" double precision,  /* f64 */
	"max_time" double precision,  /* f64 */
	"last_error" TEXT,  /* Option < String > */
	"last_error_at" timestamp with time zone  /* Option < TimestampWithTimeZone > */
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'aws_sts_stats_wrapper';
CREATE  FUNCTION "aws_sts_stats_reset"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'aws_sts_stats_reset_wrapper';
CREATE VIEW aws_sts_cache AS SELECT * FROM aws_sts_cache();
CREATE VIEW aws_sts_stats AS SELECT * FROM aws_sts_stats();
COMMENT ON FUNCTION aws_sts_cache() IS 'The identities cached for this database: shared by every backend with shared_preload_libraries = ''aws_sts'', else this backend''s';
COMMENT ON FUNCTION aws_sts_stats() IS 'GetCallerIdentity calls, cache hits, errors and times per server of this database: cluster-wide with shared_preload_libraries = ''aws_sts'', else this backend''s';
COMMENT ON FUNCTION aws_sts_stats_reset() IS 'Forgets this database''s aws_sts_stats (superusers only unless granted)';
COMMENT ON VIEW aws_sts_cache IS 'The identities cached for this database (all of them for superusers and pg_read_all_stats, else the current user''s)';
COMMENT ON VIEW aws_sts_stats IS 'GetCallerIdentity calls per server of this database (all servers for superusers and pg_read_all_stats, else those the current user has USAGE on)';
GRANT SELECT ON aws_sts_cache, aws_sts_stats TO PUBLIC;
REVOKE ALL ON FUNCTION aws_sts_stats_reset() FROM PUBLIC;
