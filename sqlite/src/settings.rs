//! What a scan needs to know, the SQLite way: a Steampipe HCL connection config (from
//! `aws_sts_configure` or a module argument) or plain server options, turned into the core's
//! `ConnectionSettings` by the core's own parser; and the per-connection state that holds the
//! configured settings and the identity cache.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use aws_sts::cache::IdentityCache;
use aws_sts::error::{FdwError, SqlState};
use aws_sts::options::{parse_server, ServerOptions};
use aws_sts::row::CallerIdentity;
use aws_sts::sts::{get_caller_identity, ConnectionSettings};

use crate::words;

/// Steampipe's SQLite extensions name their one connection "aws".
pub const DEFAULT_CONNECTION_NAME: &str = "aws";

/// The option that carries a whole Steampipe connection block body (HCL).
pub const CONFIG_OPTION: &str = "config";

/// The settings used when nothing is configured: the AWS default credential chain
/// (environment, shared files), the region from the environment or us-east-1.
pub fn default_settings() -> ConnectionSettings {
    settings_for(ServerOptions::default())
}

/// Parses a Steampipe connection config (`regions = ["us-east-1"]`, `access_key = "..."`, ...)
/// with the core's parser.
pub fn settings_from_config(hcl: &str) -> Result<ConnectionSettings, FdwError> {
    settings_from_options(&[(CONFIG_OPTION.to_string(), hcl.to_string())])
}

/// Parses server options as the Postgres extension's `CREATE SERVER ... OPTIONS` takes them
/// (`config` among them), less those that do not apply to SQLite (aggregators, user
/// mappings, foreign table columns).
pub fn settings_from_options(options: &[(String, String)]) -> Result<ConnectionSettings, FdwError> {
    words::check_applies(options)?;
    parse_server(options).map(settings_for)
}

/// SQLite has no user mappings: keys come from the config or the environment.
fn settings_for(server: ServerOptions) -> ConnectionSettings {
    ConnectionSettings::new(server, None)
}

/// A one-line summary of settings for `aws_sts_configure`'s answer: where requests go and
/// where credentials come from, never a key.
pub fn describe(settings: &ConnectionSettings) -> String {
    let server = &settings.server;
    let region = match &server.region {
        Some(region) => region.clone(),
        None => format!(
            "from the environment or {}",
            aws_sts::sts::region_for_patterns(&server.regions)
        ),
    };
    let endpoint = server
        .endpoint_url
        .as_deref()
        .unwrap_or("from AWS_ENDPOINT_URL or AWS's");
    let mut credentials = match (&settings.keys, &server.profile) {
        (Some(_), _) => "keys from the config".to_string(),
        (None, Some(profile)) => format!("profile {profile}"),
        (None, None) => "default chain".to_string(),
    };
    if let Some(role) = &server.assume_role {
        credentials.push_str(&format!(", assuming {}", role.role_arn));
    }
    format!("aws_sts: region {region}, endpoint {endpoint}, credentials {credentials}")
}

/// One SQLite connection's state, shared by `aws_sts_configure` and the virtual table.
#[derive(Debug)]
pub struct ConnectionState {
    /// What `aws_sts_configure` set; `None` means the defaults.
    configured: Option<ConnectionSettings>,
    /// Identities already fetched, so a join does not call STS once per row.
    cache: IdentityCache,
}

pub type SharedState = Arc<Mutex<ConnectionState>>;

pub fn new_shared_state() -> SharedState {
    Arc::new(Mutex::new(ConnectionState {
        configured: None,
        cache: IdentityCache::new(),
    }))
}

/// Locks the state even if a panic (already reported as an error) poisoned it: the state is
/// a cache and a value, both valid at any point.
fn lock(state: &SharedState) -> MutexGuard<'_, ConnectionState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Replaces the configured settings (`None`: back to the defaults). Cached identities are
/// forgotten, so configuring is also how to ask STS again.
pub fn configure(state: &SharedState, settings: Option<ConnectionSettings>) {
    let mut state = lock(state);
    state.configured = settings;
    state.cache.clear();
}

/// The settings a table without its own configuration scans with.
pub fn configured_settings(state: &SharedState) -> ConnectionSettings {
    lock(state)
        .configured
        .clone()
        .unwrap_or_else(default_settings)
}

/// The rows of a scan: the caller identity, or none when STS failed with an error code the
/// settings' `ignore_error_codes` lists (Steampipe's way to skip an account).
pub fn scan_identity(
    state: &SharedState,
    settings: &ConnectionSettings,
) -> Result<Option<CallerIdentity>, FdwError> {
    match caller_identity(state, settings) {
        Ok(identity) => Ok(Some(identity)),
        Err(error) if settings.server.ignores(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The caller identity for these settings: from the connection's cache while fresh, else
/// from STS (on the core's runtime), then cached.
fn caller_identity(
    state: &SharedState,
    settings: &ConnectionSettings,
) -> Result<CallerIdentity, FdwError> {
    if let Some(identity) = lock(state).cache.get(settings, Instant::now()) {
        return Ok(identity.clone());
    }
    // The lock is not held while STS answers: nothing else may need it meanwhile, but a
    // held lock across a network call is a deadlock waiting for a re-entrant path.
    let answer = aws_sts::runtime::block_on_interruptible(
        get_caller_identity(settings),
        // SQLite 3.40 has no sqlite3_is_interrupted (3.41+), so an interrupt cannot be seen
        // here; the settings' connect_timeout and timeout bound the wait instead.
        || false,
        no_thread_setup,
    )
    .map_err(|_interrupted| {
        FdwError::new(SqlState::FdwError, "GetCallerIdentity was interrupted")
    })??;
    lock(state).cache.put(
        settings,
        answer.identity.clone(),
        answer.credentials_expiry,
        // No catalog rows to invalidate by: entries live for cache_ttl or until configured anew.
        &[],
        Instant::now(),
        SystemTime::now(),
    );
    Ok(answer.identity)
}

/// The runtime's helper threads need no setup in SQLite (Postgres blocks signals there).
fn no_thread_setup() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuring_replaces_the_settings_and_forgets_the_cache() {
        let state = new_shared_state();
        assert_eq!(configured_settings(&state), default_settings());
        let options = [("region".to_string(), "eu-west-3".to_string())];
        let settings = settings_from_options(&options).expect("valid options");
        configure(&state, Some(settings.clone()));
        assert_eq!(configured_settings(&state), settings);
        configure(&state, None);
        assert_eq!(configured_settings(&state), default_settings());
    }

    #[test]
    fn a_config_is_parsed_by_the_core_with_its_keys() {
        let settings = settings_from_config(
            "access_key = \"AKIAEXAMPLE\"\nsecret_key = \"s3cr3t\"\nregions = [\"eu-west-1\"]\n",
        )
        .expect("a valid config");
        let keys = settings.keys.clone().expect("keys from the config");
        assert_eq!(keys.access_key_id, "AKIAEXAMPLE");
        let summary = describe(&settings);
        assert!(summary.contains("keys from the config"), "{summary}");
        assert!(!summary.contains("s3cr3t"), "{summary}");
        let error = settings_from_config("regions = [").expect_err("unterminated list");
        assert!(error.message.contains("line"), "{}", error.message);
    }

    #[test]
    fn bad_options_fail_with_the_core_message() {
        let options = [("region".to_string(), "not a region".to_string())];
        let error = settings_from_options(&options).expect_err("invalid region");
        assert!(error.message.contains("region"), "{}", error.message);
    }
}
