//! The `aws_sts_cache` and `aws_sts_stats` views and `aws_sts_stats_reset()`, in the
//! manner of pg_stat_statements: the current database's rows of the shared cache and
//! statistics when aws_sts is preloaded, else this backend's. A user who is neither a
//! superuser nor a member of pg_read_all_stats sees only the cache entries they filled and
//! the statistics of servers they have USAGE on. No row holds a secret: identities, names,
//! times, counts and error messages (already redacted of every key).

use std::time::{Duration, SystemTime};

use pgrx::datetime::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::shared;

use super::catalog::{cstr_to_string, user_name};
use super::compat;
use super::identities;

extension_sql!(
    r#"
CREATE VIEW aws_sts_cache AS SELECT * FROM aws_sts_cache();
CREATE VIEW aws_sts_stats AS SELECT * FROM aws_sts_stats();
COMMENT ON FUNCTION aws_sts_cache() IS 'The identities cached for this database: shared by every backend with shared_preload_libraries = ''aws_sts'', else this backend''s';
COMMENT ON FUNCTION aws_sts_stats() IS 'GetCallerIdentity calls, cache hits, errors and times per server of this database: cluster-wide with shared_preload_libraries = ''aws_sts'', else this backend''s';
COMMENT ON FUNCTION aws_sts_stats_reset() IS 'Forgets this database''s aws_sts_stats (superusers only unless granted)';
COMMENT ON VIEW aws_sts_cache IS 'The identities cached for this database (all of them for superusers and pg_read_all_stats, else the current user''s)';
COMMENT ON VIEW aws_sts_stats IS 'GetCallerIdentity calls per server of this database (all servers for superusers and pg_read_all_stats, else those the current user has USAGE on)';
GRANT SELECT ON aws_sts_cache, aws_sts_stats TO PUBLIC;
REVOKE ALL ON FUNCTION aws_sts_stats_reset() FROM PUBLIC;
"#,
    name = "views",
    requires = [aws_sts_cache, aws_sts_stats, aws_sts_stats_reset],
);

/// Whether the current user may see every row: a superuser or a member of
/// pg_read_all_stats, as for pg_stat_statements.
fn sees_everything() -> bool {
    // SAFETY: role checks read the syscache.
    unsafe {
        pg_sys::superuser()
            || pg_sys::has_privs_of_role(
                pg_sys::GetUserId(),
                pg_sys::Oid::from(pg_sys::ROLE_PG_READ_ALL_STATS),
            )
    }
}

/// A server's name, or None when it is gone.
fn server_name(server_id: u32) -> Option<String> {
    // SAFETY: with FSV_MISSING_OK, a missing server is NULL rather than an ERROR.
    unsafe {
        let server = pg_sys::GetForeignServerExtended(
            pg_sys::Oid::from(server_id),
            pg_sys::FSV_MISSING_OK as u16,
        );
        (!server.is_null()).then(|| cstr_to_string((*server).servername))
    }
}

fn timestamp(time: SystemTime) -> Option<TimestampWithTimeZone> {
    // Postgres counts microseconds from 2000-01-01.
    const POSTGRES_EPOCH: i64 = 946_684_800_000_000;
    TimestampWithTimeZone::try_from(shared::micros(time) - POSTGRES_EPOCH).ok()
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The rows of the `aws_sts_cache` view.
#[pg_extern(volatile, parallel_restricted)]
#[allow(clippy::type_complexity)]
fn aws_sts_cache() -> TableIterator<
    'static,
    (
        name!(server, String),
        name!(user_name, Option<String>),
        name!(arn, String),
        name!(account_id, String),
        name!(cached_at, Option<TimestampWithTimeZone>),
        name!(expires_at, Option<TimestampWithTimeZone>),
        name!(hits, i64),
    ),
> {
    let everything = sees_everything();
    // SAFETY: GetUserId reads the session's current user.
    let current_user = unsafe { pg_sys::GetUserId() }.to_u32();
    let rows: Vec<_> = identities::cache_rows()
        .into_iter()
        .filter(|row| everything || row.owner.user_id == current_user)
        .filter_map(|row| {
            Some((
                server_name(row.owner.server_id)?,
                Some(user_name(pg_sys::Oid::from(row.owner.user_id)))
                    .filter(|name| !name.is_empty()),
                row.identity.arn,
                row.identity.account_id,
                timestamp(row.cached_at),
                timestamp(row.expires_at),
                row.hits as i64,
            ))
        })
        .collect();
    TableIterator::new(rows)
}

/// The rows of the `aws_sts_stats` view.
#[pg_extern(volatile, parallel_restricted)]
#[allow(clippy::type_complexity)]
fn aws_sts_stats() -> TableIterator<
    'static,
    (
        name!(server, String),
        name!(calls, i64),
        name!(cache_hits, i64),
        name!(errors, i64),
        name!(retries, i64),
        name!(total_time, f64),
        name!(mean_time, f64),
        name!(max_time, f64),
        name!(last_error, Option<String>),
        name!(last_error_at, Option<TimestampWithTimeZone>),
    ),
> {
    let everything = sees_everything();
    // SAFETY: GetUserId reads the session's current user.
    let current_user = unsafe { pg_sys::GetUserId() };
    let rows: Vec<_> = identities::stats_rows()
        .into_iter()
        .filter_map(|(server_id, stats)| {
            let name = server_name(server_id)?;
            let allowed = everything
                || compat::foreign_server_aclcheck(
                    pg_sys::Oid::from(server_id),
                    current_user,
                    pg_sys::ACL_USAGE as pg_sys::AclMode,
                ) == pg_sys::AclResult::ACLCHECK_OK;
            if !allowed {
                return None;
            }
            let last_error = stats.last_error();
            Some((
                name,
                stats.calls as i64,
                stats.cache_hits as i64,
                stats.errors as i64,
                stats.retries as i64,
                milliseconds(stats.total_time),
                milliseconds(stats.mean_time()),
                milliseconds(stats.max_time),
                last_error.map(|(message, _)| message.to_string()),
                last_error.and_then(|(_, at)| timestamp(at)),
            ))
        })
        .collect();
    TableIterator::new(rows)
}

/// Forgets this database's statistics (cluster-wide when preloaded, else this backend's).
#[pg_extern(volatile, parallel_unsafe)]
fn aws_sts_stats_reset() {
    identities::reset_stats();
}
