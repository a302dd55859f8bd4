//! Credentials and the STS client, the counterpart of postgres_fdw's connection.c: turns
//! validated options into an AWS SDK client, calls GetCallerIdentity, and explains every
//! failure as an [`FdwError`] that says what to fix.

mod ambient;
mod client;
mod credentials;
mod endpoint;
mod errors;
mod http;
mod transport;

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use aws_config::meta::region::RegionProviderChain;
use aws_config::Region;
use aws_types::os_shim_internal::{Env, Fs};

use crate::error::{FdwError, SqlState};
use crate::options::{ServerOptions, StaticKeys};
use crate::row::CallerIdentity;

use client::pooled_client;
use errors::{concerns_credentials, explain_sdk_error, no_endpoint, timed_out, with_attempts};

pub use client::{clear_clients, forget_client, MAX_POOLED_CLIENTS};
pub use credentials::INSTANCE_METADATA_BUDGET;
pub use endpoint::{EndpointSource, ResolvedEndpoint};
pub use http::{close_idle_connections, MAX_RESPONSE_BYTES};
pub use transport::CA_BUNDLE_VARIABLE;

/// Steampipe's last resort, and STS's global endpoint region.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Everything needed to ask STS who we are: the server's options and the keys to use (the
/// user mapping's, else the server's own); without keys, credentials come from the
/// database server's own environment (the default chain, or the named profile).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionSettings {
    pub server: ServerOptions,
    pub keys: Option<StaticKeys>,
}

impl ConnectionSettings {
    /// The settings for a server and the current user's mapping keys, which win over keys
    /// in the server's options.
    pub fn new(server: ServerOptions, mapping_keys: Option<StaticKeys>) -> Self {
        let keys = mapping_keys.or_else(|| server.keys.clone());
        ConnectionSettings { server, keys }
    }

    /// Values that must never reach a message.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self.keys.iter().flat_map(StaticKeys::secrets).collect();
        secrets.extend(self.server.keys.iter().flat_map(StaticKeys::secrets));
        secrets
    }

    /// Whether the keys in use are the server's own (no user mapping gave any).
    fn keys_from_server(&self) -> bool {
        self.keys.is_some() && self.keys == self.server.keys
    }

    /// Whether the call would use the database server's own credentials or files (the
    /// default chain, or a named profile): only trusted users may.
    pub fn uses_ambient_credentials(&self) -> bool {
        self.keys.is_none() || self.server.reads_server_files()
    }

    /// Where credentials come from, for EXPLAIN and messages (never the keys themselves).
    pub fn credential_source(&self) -> String {
        let base = match (&self.keys, &self.server.profile) {
            (Some(_), _) if self.keys_from_server() => "server options".to_string(),
            (Some(keys), _) if keys.session_token.is_some() => {
                "user mapping (temporary keys)".into()
            }
            (Some(_), _) => "user mapping".into(),
            (None, Some(profile)) => format!("profile {profile}"),
            (None, None) if self.server.instance_metadata => "default chain".into(),
            (None, None) => "default chain without instance metadata".into(),
        };
        match &self.server.assume_role {
            Some(role) => format!("{base}, then AssumeRole {}", role.role_arn),
            None => base,
        }
    }
}

/// The region STS is called in, in Steampipe's order: the server's `region` (or
/// `default_region`), else the environment or the shared config profile, else the main
/// region of the partition `regions` names, else us-east-1. Instance metadata is never
/// asked for a region.
pub async fn resolve_region(server: &ServerOptions) -> Region {
    if let Some(region) = &server.region {
        return Region::new(region.clone());
    }
    let mut profile_region = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(profile) = &server.profile {
        profile_region = profile_region.profile_name(profile);
    }
    let sdk_region = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(profile_region.build())
    .region()
    .await;
    sdk_region.unwrap_or_else(|| Region::new(region_for_patterns(&server.regions)))
}

/// The region to call when only Steampipe's `regions` list hints at one: its first plain
/// region, else the main region of the partition its first wildcard names.
pub fn region_for_patterns(patterns: &[String]) -> String {
    if let Some(region) = patterns
        .iter()
        .find(|pattern| !pattern.contains(['*', '?']))
    {
        return region.clone();
    }
    let main_regions = [
        ("us-gov-", "us-gov-west-1"),
        ("cn-", "cn-northwest-1"),
        ("us-isob-", "us-isob-east-1"),
        ("us-iso-", "us-iso-east-1"),
    ];
    patterns
        .first()
        .and_then(|pattern| {
            main_regions
                .iter()
                .find(|(prefix, _)| pattern.starts_with(prefix))
                .map(|(_, region)| region.to_string())
        })
        .unwrap_or_else(|| FALLBACK_REGION.to_string())
}

/// The endpoint a GetCallerIdentity for these options goes to in `region`, as the SDK
/// resolves it from the options, the process's environment and its shared config file; an
/// error is the SDK's reason for having none. Reads the shared files, asks no network.
pub async fn resolve_endpoint(
    server: &ServerOptions,
    region: &str,
) -> Result<ResolvedEndpoint, String> {
    endpoint::resolve(server, region, &Env::real(), &Fs::real()).await
}

/// The endpoint a request goes to, for messages and EXPLAIN: its URL, with where it came
/// from when that is the environment or the profile (`http://localhost:4566
/// (AWS_ENDPOINT_URL)`), or why there is none.
pub async fn endpoint_for_messages(server: &ServerOptions, region: &str) -> String {
    match resolve_endpoint(server, region).await {
        Ok(endpoint) => endpoint.to_string(),
        Err(why) => format!("none ({why})"),
    }
}

/// A GetCallerIdentity answer and when the credentials behind it expire, if they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub identity: CallerIdentity,
    pub credentials_expiry: Option<SystemTime>,
}

/// Calls GetCallerIdentity with the backend's client for these settings. Errors are
/// redacted of the settings' secrets but do not yet name the server; the caller adds that
/// with [`FdwError::for_server`].
pub async fn get_caller_identity(settings: &ConnectionSettings) -> Result<Answer, FdwError> {
    get_caller_identity_counted(settings).await.0
}

/// [`get_caller_identity`], and how many attempts the call made (at least one; the rest
/// are retries), for statistics.
pub async fn get_caller_identity_counted(
    settings: &ConnectionSettings,
) -> (Result<Answer, FdwError>, u32) {
    let counter = client::AttemptCounter::default();
    let result = call_with_counter(settings, &counter).await;
    (result, counter.0.load(Ordering::Relaxed).max(1))
}

async fn call_with_counter(
    settings: &ConnectionSettings,
    counter: &client::AttemptCounter,
) -> Result<Answer, FdwError> {
    let timeout = settings.server.timeout;
    let call = async {
        let pooled = pooled_client(settings).await;
        let result = pooled
            .get_caller_identity()
            .interceptor(counter.clone())
            .send()
            .await;
        (pooled, result)
    };
    // The SDK's operation timeout covers the request; this one also covers loading config
    // and credentials, so nothing here can outlive `timeout` by more than a moment.
    let (pooled, result) =
        match tokio::time::timeout(timeout + Duration::from_millis(500), call).await {
            Ok(done) => done,
            Err(_) => {
                let region = resolve_region(&settings.server).await;
                return Err(timed_out(
                    timeout,
                    &endpoint_for_messages(&settings.server, region.as_ref()).await,
                ));
            }
        };
    let attempts = counter.0.load(Ordering::Relaxed);
    let answer = match result {
        Ok(answer) => answer,
        Err(error) => {
            // Found only now: a successful call reads no shared file for a message.
            let endpoint = match resolve_endpoint(&settings.server, pooled.region.as_ref()).await {
                Ok(endpoint) => endpoint.to_string(),
                // The SDK, asked the same, had no endpoint either: the call never left.
                Err(why) => {
                    return Err(
                        no_endpoint(pooled.region.as_ref(), &why).redacted(&settings.secrets())
                    )
                }
            };
            let ambient = if concerns_credentials(&error) {
                ambient::inspect(settings).await
            } else {
                ambient::Ambient::default()
            };
            return Err(with_attempts(
                explain_sdk_error(error, settings, &endpoint, &ambient),
                attempts,
                settings.server.max_attempts,
            ));
        }
    };
    let credentials_expiry = *pooled
        .credentials_expiry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match (answer.arn, answer.user_id, answer.account) {
        (Some(arn), Some(user_id), Some(account_id)) => Ok(Answer {
            identity: CallerIdentity {
                arn,
                user_id,
                account_id,
            },
            credentials_expiry,
        }),
        _ => Err(FdwError::new(
            SqlState::UnableToCreateReply,
            format!(
                "the GetCallerIdentity answer from {} lacks Arn, UserId or Account",
                endpoint_for_messages(&settings.server, pooled.region.as_ref()).await
            ),
        )
        .with_hint("Check that endpoint_url points at an STS endpoint.")),
    }
    .map_err(|error| error.redacted(&settings.secrets()))
}

/// Formats a duration as the options accept it back ('500ms', '2s', '1.5s').
pub fn human_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!(
            "{}s",
            format!("{:.3}", duration.as_secs_f64()).trim_end_matches('0')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_options_accept_them() {
        assert_eq!(human_duration(Duration::from_secs(10)), "10s");
        assert_eq!(human_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn credential_source_names_no_secret() {
        let keys = StaticKeys {
            access_key_id: "AKIA".into(),
            secret_access_key: "wJalr".into(),
            session_token: Some("tok".into()),
        };
        let settings = ConnectionSettings {
            server: ServerOptions::default(),
            keys: Some(keys),
        };
        assert_eq!(
            settings.credential_source(),
            "user mapping (temporary keys)"
        );
        assert_eq!(
            settings.secrets(),
            vec!["wJalr".to_string(), "tok".to_string()]
        );
        let profile = ServerOptions {
            profile: Some("prod".into()),
            ..ServerOptions::default()
        };
        let settings = ConnectionSettings {
            server: profile,
            keys: None,
        };
        assert_eq!(settings.credential_source(), "profile prod");
    }

    #[test]
    fn regions_name_their_partitions_main_region() {
        let patterns = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            region_for_patterns(&patterns(&["eu-*", "ap-south-1"])),
            "ap-south-1"
        );
        assert_eq!(
            region_for_patterns(&patterns(&["us-gov-*"])),
            "us-gov-west-1"
        );
        assert_eq!(region_for_patterns(&patterns(&["cn-*"])), "cn-northwest-1");
        assert_eq!(
            region_for_patterns(&patterns(&["us-iso-*"])),
            "us-iso-east-1"
        );
        assert_eq!(region_for_patterns(&patterns(&["*"])), "us-east-1");
        assert_eq!(region_for_patterns(&[]), "us-east-1");
    }

    #[test]
    fn mapping_keys_win_over_server_keys_and_both_are_secrets() {
        let server_keys = StaticKeys {
            access_key_id: "AKIASERVER".into(),
            secret_access_key: "server-secret".into(),
            session_token: None,
        };
        let mapping_keys = StaticKeys {
            access_key_id: "AKIAMAPPING".into(),
            secret_access_key: "mapping-secret".into(),
            session_token: None,
        };
        let server = ServerOptions {
            keys: Some(server_keys),
            ..ServerOptions::default()
        };
        let shared = ConnectionSettings::new(server.clone(), None);
        assert_eq!(shared.credential_source(), "server options");
        assert!(!shared.uses_ambient_credentials());
        let own = ConnectionSettings::new(server, Some(mapping_keys));
        assert_eq!(own.keys.as_ref().unwrap().access_key_id, "AKIAMAPPING");
        assert_eq!(own.credential_source(), "user mapping");
        assert_eq!(
            own.secrets(),
            vec!["mapping-secret".to_string(), "server-secret".to_string()]
        );
        let profiled = ConnectionSettings::new(
            ServerOptions {
                profile: Some("prod".into()),
                ..ServerOptions::default()
            },
            own.keys.clone(),
        );
        assert!(
            profiled.uses_ambient_credentials(),
            "a profile reads the server's files"
        );
    }

    #[tokio::test]
    async fn a_call_the_sdk_has_no_endpoint_for_says_why() {
        // Refused by the option parser; the environment can make the same (FIPS from
        // AWS_USE_FIPS_ENDPOINT, a custom endpoint from AWS_ENDPOINT_URL).
        let settings = ConnectionSettings::new(
            ServerOptions {
                region: Some("us-east-1".into()),
                endpoint_url: Some("http://127.0.0.1:9".into()),
                use_fips: Some(true),
                max_attempts: 1,
                ..ServerOptions::default()
            },
            Some(StaticKeys {
                access_key_id: "AKIANOENDPOINT".into(),
                secret_access_key: "no-endpoint-secret".into(),
                session_token: None,
            }),
        );
        let error = get_caller_identity(&settings).await.unwrap_err();
        assert_eq!(error.state, SqlState::UnableToEstablishConnection);
        assert_eq!(
            error.message,
            "no STS endpoint for region us-east-1: Invalid Configuration: FIPS and custom endpoint are not supported"
        );
        assert!(error.hint.unwrap().contains("AWS_USE_FIPS_ENDPOINT"));
        assert_eq!(
            endpoint_for_messages(&settings.server, "us-east-1").await,
            "none (Invalid Configuration: FIPS and custom endpoint are not supported)"
        );
        clear_clients();
    }

    #[tokio::test]
    async fn region_option_wins_and_us_east_1_is_the_fallback() {
        let server = ServerOptions {
            region: Some("eu-west-3".into()),
            ..ServerOptions::default()
        };
        assert_eq!(resolve_region(&server).await.as_ref(), "eu-west-3");
        // The server's endpoint_url wins over anything in the process's environment.
        let custom = ServerOptions {
            endpoint_url: Some("http://127.0.0.1:5000".into()),
            ..server
        };
        assert_eq!(
            endpoint_for_messages(&custom, "eu-west-3").await,
            "http://127.0.0.1:5000"
        );
    }
}
