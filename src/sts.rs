//! Credentials and the STS client, the counterpart of postgres_fdw's connection.c: turns
//! validated options into an AWS SDK client, calls GetCallerIdentity, and explains every
//! failure as an [`FdwError`] that says what to fix.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::error::{FdwError, SqlState};
use crate::options::{ServerOptions, StaticKeys};
use crate::row::CallerIdentity;

/// Steampipe's last resort, and STS's global endpoint region.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Everything needed to ask STS who we are: the server's options and, when the user mapping
/// has them, static keys. Credentials otherwise come from the AWS default chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionSettings {
    pub server: ServerOptions,
    pub keys: Option<StaticKeys>,
}

impl ConnectionSettings {
    /// Values that must never reach a message.
    pub fn secrets(&self) -> Vec<String> {
        self.keys
            .as_ref()
            .map(StaticKeys::secrets)
            .unwrap_or_default()
    }

    /// Where credentials come from, for EXPLAIN and messages (never the keys themselves).
    pub fn credential_source(&self) -> String {
        match (&self.keys, &self.server.profile) {
            (Some(keys), _) if keys.session_token.is_some() => {
                "user mapping (temporary keys)".into()
            }
            (Some(_), _) => "user mapping".into(),
            (None, Some(profile)) => format!("default chain, profile {profile}"),
            (None, None) => "default chain".into(),
        }
    }
}

/// The region STS is called in: the server's `region`, else the environment or the shared
/// config profile, else us-east-1. Instance metadata is never asked for a region.
pub async fn resolve_region(server: &ServerOptions) -> Region {
    if let Some(region) = &server.region {
        return Region::new(region.clone());
    }
    let mut profile_region = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(profile) = &server.profile {
        profile_region = profile_region.profile_name(profile);
    }
    RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(profile_region.build())
    .or_else(Region::new(FALLBACK_REGION))
    .region()
    .await
    .unwrap_or_else(|| Region::new(FALLBACK_REGION))
}

/// The endpoint a request goes to, for messages.
pub fn endpoint_for_messages(server: &ServerOptions, region: &str) -> String {
    server
        .endpoint_url
        .clone()
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
}

/// Records the expiry of the credentials a provider hands out, so that cached identities
/// expire with the temporary credentials that produced them.
#[derive(Debug)]
struct ExpiryRecorder {
    inner: SharedCredentialsProvider,
    expiry: Arc<Mutex<Option<SystemTime>>>,
}

impl ProvideCredentials for ExpiryRecorder {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let credentials = self.inner.provide_credentials().await?;
            *self
                .expiry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = credentials.expiry();
            Ok(credentials)
        })
    }
}

/// Counts the attempts of a call (retries included), for the final error.
#[derive(Debug, Clone, Default)]
struct AttemptCounter(Arc<AtomicU32>);

impl Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "aws_sts attempt counter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A client built for one set of connection settings, kept for the backend's life.
#[derive(Clone)]
struct PooledClient {
    client: aws_sdk_sts::Client,
    region: Region,
    credentials_expiry: Arc<Mutex<Option<SystemTime>>>,
    attempts: AttemptCounter,
}

thread_local! {
    /// One HTTPS client (TLS configuration, connection pool) for every STS client of the backend.
    static HTTP_CLIENT: OnceCell<SharedHttpClient> = const { OnceCell::new() };
    static CLIENTS: RefCell<HashMap<ConnectionSettings, PooledClient>> = RefCell::new(HashMap::new());
}

fn shared_http_client() -> SharedHttpClient {
    HTTP_CLIENT.with(|cell| {
        cell.get_or_init(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .build_https()
        })
        .clone()
    })
}

/// Forgets every client (and the credentials they hold); returns how many there were.
pub fn clear_clients() -> usize {
    CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        let count = clients.len();
        clients.clear();
        count
    })
}

/// The backend's client for these settings, built on first use.
async fn pooled_client(settings: &ConnectionSettings) -> PooledClient {
    if let Some(pooled) = CLIENTS.with(|clients| clients.borrow().get(settings).cloned()) {
        return pooled;
    }
    let region = resolve_region(&settings.server).await;
    let pooled = build_client(settings, region).await;
    CLIENTS.with(|clients| {
        clients
            .borrow_mut()
            .insert(settings.clone(), pooled.clone())
    });
    pooled
}

async fn build_client(settings: &ConnectionSettings, region: Region) -> PooledClient {
    let server = &settings.server;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(server.connect_timeout)
        .operation_timeout(server.timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(server.max_attempts)
                .with_initial_backoff(server.min_retry_delay),
        )
        .http_client(shared_http_client());
    if let Some(url) = &server.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &server.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(keys) = &settings.keys {
        loader = loader.credentials_provider(Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.clone(),
            keys.session_token.clone(),
            None,
            "aws_sts_user_mapping",
        ));
    }
    let sdk_config = loader.load().await;
    let credentials_expiry = Arc::new(Mutex::new(None));
    let attempts = AttemptCounter::default();
    let mut sts_config =
        aws_sdk_sts::config::Builder::from(&sdk_config).interceptor(attempts.clone());
    if let Some(provider) = sdk_config.credentials_provider() {
        sts_config = sts_config.credentials_provider(ExpiryRecorder {
            inner: provider,
            expiry: credentials_expiry.clone(),
        });
    }
    PooledClient {
        client: aws_sdk_sts::Client::from_conf(sts_config.build()),
        region,
        credentials_expiry,
        attempts,
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
    let timeout = settings.server.timeout;
    let call = async {
        let pooled = pooled_client(settings).await;
        pooled.attempts.0.store(0, Ordering::Relaxed);
        let result = pooled.client.get_caller_identity().send().await;
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
                    &endpoint_for_messages(&settings.server, region.as_ref()),
                ));
            }
        };
    let endpoint = endpoint_for_messages(&settings.server, pooled.region.as_ref());
    let attempts = pooled.attempts.0.load(Ordering::Relaxed);
    let answer = result.map_err(|error| {
        with_attempts(
            explain_sdk_error(error, settings, &endpoint),
            attempts,
            settings.server.max_attempts,
        )
    })?;
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
            format!("the GetCallerIdentity answer from {endpoint} lacks Arn, UserId or Account"),
        )
        .with_hint("Check that endpoint_url points at an STS endpoint.")),
    }
    .map_err(|error| error.redacted(&settings.secrets()))
}

/// Says how many attempts a failed call made, when it made more than one.
fn with_attempts(mut error: FdwError, attempts: u32, max_attempts: u32) -> FdwError {
    if attempts > 1 {
        error.message = format!("{} after {attempts} attempts", error.message);
    }
    let attempts_line =
        format!("{attempts} of at most {max_attempts} attempts (max_error_retry_attempts) made.");
    error.detail = Some(match error.detail.take() {
        Some(detail) => format!("{detail}\n{attempts_line}"),
        None => attempts_line,
    });
    error
}

fn timed_out(timeout: Duration, endpoint: &str) -> FdwError {
    FdwError::new(
        SqlState::UnableToEstablishConnection,
        format!("GetCallerIdentity at {endpoint} did not finish within the timeout of {}", human_duration(timeout)),
    )
    .with_hint("Check that the endpoint is reachable from the database server, or raise the server's timeout option.")
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

/// An error and its sources as one line of their messages, each said once.
fn describe_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// Finds a credentials-provider error anywhere in an error's source chain.
fn find_credentials_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

fn explain_sdk_error(
    error: SdkError<GetCallerIdentityError, aws_smithy_runtime_api::http::Response>,
    settings: &ConnectionSettings,
    endpoint: &str,
) -> FdwError {
    let chain = describe_chain(&error);
    let source = credential_source_hint(settings);
    let explained = if let Some(credentials_error) = find_credentials_error(&error) {
        match credentials_error {
            CredentialsError::CredentialsNotLoaded(_) => FdwError::new(
                SqlState::UnableToEstablishConnection,
                "no AWS credentials found",
            )
            .with_detail(format!("Tried: {source}. {chain}"))
            .with_hint(
                "Create a user mapping with keys: CREATE USER MAPPING FOR CURRENT_USER SERVER <server> \
                 OPTIONS (access_key '...', secret_key '...'); or give the database server's OS user \
                 AWS credentials (environment, ~/.aws/credentials, the profile option).",
            ),
            _ => FdwError::new(SqlState::UnableToEstablishConnection, "could not load AWS credentials")
                .with_detail(format!("Tried: {source}. {chain}"))
                .with_hint("Check the database server's AWS configuration, or put keys in a user mapping."),
        }
    } else {
        match &error {
            // An answer the SDK could not read as GetCallerIdentity nor as an AWS error.
            SdkError::ServiceError(service) if service.err().code().is_none() => FdwError::new(
                SqlState::UnableToCreateReply,
                format!("could not understand the answer from {endpoint}"),
            )
            .with_detail(format!("HTTP status {}: {chain}", service.raw().status().as_u16()))
            .with_hint("Check that endpoint_url points at an STS endpoint."),
            SdkError::ServiceError(service) => explain_service_error(service.err(), endpoint),
            SdkError::TimeoutError(_) => timed_out(settings.server.timeout, endpoint),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => FdwError::new(
                SqlState::UnableToEstablishConnection,
                format!(
                    "could not connect to {endpoint} within the connect_timeout of {}",
                    human_duration(settings.server.connect_timeout)
                ),
            )
            .with_detail(chain)
            .with_hint("Check the server's endpoint_url and region, and the database server's network."),
            SdkError::DispatchFailure(_) => FdwError::new(
                SqlState::UnableToEstablishConnection,
                format!("could not reach the STS endpoint {endpoint}"),
            )
            .with_detail(chain)
            .with_hint("Check the server's endpoint_url and region, and that the endpoint is reachable from the database server."),
            SdkError::ResponseError(_) => FdwError::new(
                SqlState::UnableToCreateReply,
                format!("could not understand the answer from {endpoint}"),
            )
            .with_detail(chain)
            .with_hint("Check that endpoint_url points at an STS endpoint."),
            _ => FdwError::new(SqlState::FdwError, "GetCallerIdentity failed").with_detail(chain),
        }
    };
    explained.redacted(&settings.secrets())
}

fn explain_service_error(error: &GetCallerIdentityError, endpoint: &str) -> FdwError {
    let code = error.code().unwrap_or("unknown error");
    let message = error.message().unwrap_or("no message");
    let detail = format!("AWS error {code}: {message}");
    let (summary, hint) = match code {
        "InvalidClientTokenId" | "UnrecognizedClientException" => (
            "AWS does not recognise the access key or session token",
            "Check access_key and session_token in the user mapping, or the credentials the default chain found.",
        ),
        "SignatureDoesNotMatch" | "IncompleteSignature" => (
            "AWS rejected the request signature: the secret key does not match the access key",
            "Check secret_key in the user mapping.",
        ),
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => (
            "the AWS credentials have expired",
            "Renew the temporary credentials: ALTER USER MAPPING ... OPTIONS (SET access_key '...', SET secret_key '...', SET session_token '...').",
        ),
        "AccessDenied" | "AccessDeniedException" => (
            "AWS denied GetCallerIdentity",
            "GetCallerIdentity needs no permission; a denial usually means a service control policy or an endpoint policy blocks STS.",
        ),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => (
            "AWS throttled GetCallerIdentity",
            "Retry later.",
        ),
        _ => ("STS GetCallerIdentity failed", "See the AWS error in the detail."),
    };
    let state = match code {
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => SqlState::FdwError,
        _ if summary.starts_with("STS") => SqlState::FdwError,
        _ => SqlState::UnableToEstablishConnection,
    };
    FdwError::new(state, format!("{summary} ({code})"))
        .with_detail(format!("{detail} (endpoint {endpoint})"))
        .with_hint(hint)
}

/// The credential sources the default chain tries, for the "no credentials" detail.
fn credential_source_hint(settings: &ConnectionSettings) -> String {
    match &settings.server.profile {
        _ if settings.keys.is_some() => "the user mapping's keys".to_string(),
        Some(profile) => {
            format!("profile \"{profile}\" in the shared config and credentials files")
        }
        None => "environment variables, shared config and credentials files, web identity token, \
                 ECS container credentials, EC2 instance metadata"
            .to_string(),
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
    fn failed_calls_say_how_many_attempts_they_made() {
        let error = with_attempts(
            FdwError::new(SqlState::FdwError, "boom").with_detail("why"),
            3,
            9,
        );
        assert_eq!(error.message, "boom after 3 attempts");
        assert_eq!(
            error.detail.as_deref(),
            Some("why\n3 of at most 9 attempts (max_error_retry_attempts) made.")
        );
        let error = with_attempts(FdwError::new(SqlState::FdwError, "boom"), 1, 1);
        assert_eq!(error.message, "boom");
        assert_eq!(
            error.detail.as_deref(),
            Some("1 of at most 1 attempts (max_error_retry_attempts) made.")
        );
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
        assert_eq!(settings.credential_source(), "default chain, profile prod");
    }

    #[test]
    fn service_errors_say_what_to_fix() {
        let error = GetCallerIdentityError::generic(
            aws_sdk_sts::error::ErrorMetadata::builder()
                .code("ExpiredToken")
                .message("The security token included in the request is expired")
                .build(),
        );
        let explained = explain_service_error(&error, "http://127.0.0.1:1");
        assert_eq!(explained.state, SqlState::UnableToEstablishConnection);
        assert_eq!(
            explained.message,
            "the AWS credentials have expired (ExpiredToken)"
        );
        assert!(explained.hint.unwrap().contains("session_token"));
    }

    #[tokio::test]
    async fn region_option_wins_and_us_east_1_is_the_fallback() {
        let server = ServerOptions {
            region: Some("eu-west-3".into()),
            ..ServerOptions::default()
        };
        assert_eq!(resolve_region(&server).await.as_ref(), "eu-west-3");
        assert_eq!(
            endpoint_for_messages(&server, "eu-west-3"),
            "https://sts.eu-west-3.amazonaws.com"
        );
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1
                .as_deref()
                .map(|layer| layer as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn a_chain_reads_as_one_line_without_repeats() {
        let error = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "io error",
                Some(Box::new(Layer(
                    "connection\n  refused",
                    Some(Box::new(Layer("refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            describe_chain(&error),
            "dispatch failure: io error: connection refused"
        );
    }
}
