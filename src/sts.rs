//! Credentials and the STS client, the counterpart of postgres_fdw's connection.c: turns
//! validated options into an AWS SDK client, calls GetCallerIdentity, and explains every
//! failure as an [`FdwError`] that says what to fix.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::{self, credentials::ImdsCredentialsProvider};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::error::{FdwError, Remedy, SqlState};
use crate::options::{ServerOptions, StaticKeys};
use crate::row::CallerIdentity;

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
    /// One plain HTTP client for `http://` endpoints (emulators, local proxies): they never
    /// need TLS, so they never pay for loading the system's trust store (~5 ms per backend).
    static PLAIN_HTTP_CLIENT: OnceCell<SharedHttpClient> = const { OnceCell::new() };
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

fn plain_http_client() -> SharedHttpClient {
    PLAIN_HTTP_CLIENT.with(|cell| {
        cell.get_or_init(|| aws_smithy_http_client::Builder::new().build_http())
            .clone()
    })
}

/// The HTTP client for calls to the server's STS endpoint.
fn http_client_for(server: &ServerOptions) -> SharedHttpClient {
    match &server.endpoint_url {
        Some(url) if url.starts_with("http://") => plain_http_client(),
        _ => shared_http_client(),
    }
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
    let source_credentials = match &settings.keys {
        Some(keys) => SharedCredentialsProvider::new(Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.clone(),
            keys.session_token.clone(),
            None,
            "aws_sts_keys",
        )),
        None => ambient_credentials(server, &region, &timeouts),
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(server.max_attempts)
                .with_initial_backoff(server.min_retry_delay),
        )
        .http_client(http_client_for(server))
        .credentials_provider(source_credentials);
    if let Some(url) = &server.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &server.profile {
        loader = loader.profile_name(profile);
    }
    let sdk_config = loader.load().await;
    let credentials = match &server.assume_role {
        // AssumeRole goes to the same endpoint, with the same timeouts and retries, signed
        // with the source credentials.
        Some(role) => {
            let mut assume = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
                .session_name(role.session_name.clone())
                .region(region.clone())
                .configure(&sdk_config);
            if let Some(external_id) = &role.external_id {
                assume = assume.external_id(external_id.clone());
            }
            if let Some(duration) = role.duration {
                assume = assume.session_length(duration);
            }
            Some(SharedCredentialsProvider::new(assume.build().await))
        }
        None => sdk_config.credentials_provider(),
    };
    let credentials_expiry = Arc::new(Mutex::new(None));
    let attempts = AttemptCounter::default();
    let mut sts_config =
        aws_sdk_sts::config::Builder::from(&sdk_config).interceptor(attempts.clone());
    if let Some(provider) = credentials {
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

/// How long the chain may wait for EC2 instance metadata before giving up on it: off EC2
/// nothing answers at 169.254.169.254, and the SDK's own retries would take minutes.
pub const INSTANCE_METADATA_BUDGET: Duration = Duration::from_secs(1);

/// The database server's own credentials. With `profile`, that profile alone (its keys,
/// role chain, credential_process or SSO session), as the AWS CLI's --profile; else the
/// default chain: environment, shared files, web identity, container, then instance
/// metadata (unless `instance_metadata 'false'`), the last bounded to
/// [`INSTANCE_METADATA_BUDGET`].
fn ambient_credentials(
    server: &ServerOptions,
    region: &Region,
    timeouts: &TimeoutConfig,
) -> SharedCredentialsProvider {
    let provider_config = ProviderConfig::without_region()
        .with_region(Some(region.clone()))
        .with_http_client(shared_http_client())
        .with_timeout_config(timeouts.clone());
    let profile = |name: Option<&String>| {
        let mut builder = ProfileFileCredentialsProvider::builder().configure(&provider_config);
        if let Some(name) = name {
            builder = builder.profile_name(name);
        }
        builder.build()
    };
    if let Some(name) = &server.profile {
        return SharedCredentialsProvider::new(profile(Some(name)));
    }
    let mut chain = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("Profile", profile(None))
    .or_else(
        "WebIdentityToken",
        WebIdentityTokenCredentialsProvider::builder()
            .configure(&provider_config)
            .build(),
    )
    .or_else(
        "EcsContainer",
        EcsCredentialsProvider::builder()
            .configure(&provider_config)
            .build(),
    );
    if server.instance_metadata {
        let client = imds::Client::builder()
            .configure(&provider_config)
            .max_attempts(1)
            .connect_timeout(INSTANCE_METADATA_BUDGET / 2)
            .read_timeout(INSTANCE_METADATA_BUDGET / 2)
            .build();
        chain = chain.or_else(
            "Ec2InstanceMetadata",
            Bounded {
                inner: ImdsCredentialsProvider::builder()
                    .configure(&provider_config)
                    .imds_client(client)
                    .build(),
                budget: INSTANCE_METADATA_BUDGET,
                what: "EC2 instance metadata",
            },
        );
    }
    SharedCredentialsProvider::new(chain)
}

/// A credentials provider that gives up after `budget`, as "not loaded", so the chain
/// reports every source it tried.
#[derive(Debug)]
struct Bounded<P> {
    inner: P,
    budget: Duration,
    what: &'static str,
}

impl<P: ProvideCredentials> ProvideCredentials for Bounded<P> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            match tokio::time::timeout(self.budget, self.inner.provide_credentials()).await {
                Ok(result) => result,
                Err(_) => Err(CredentialsError::not_loaded(format!(
                    "{} did not answer within {}",
                    self.what,
                    human_duration(self.budget)
                ))),
            }
        })
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

/// Finds an error of type `T` anywhere in an error's source chain.
fn find_in_chain<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
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
    let explained = if let Some(credentials_error) = find_in_chain::<CredentialsError>(&error) {
        explain_credentials_error(credentials_error, settings, &chain, endpoint)
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

/// Why credentials could not be had: no source had any, AssumeRole failed (with its AWS
/// code, for `ignore_error_codes`), an SSO session is missing or expired, or another
/// source failed.
fn explain_credentials_error(
    error: &CredentialsError,
    settings: &ConnectionSettings,
    chain: &str,
    endpoint: &str,
) -> FdwError {
    let tried = credential_source_hint(settings);
    if let (Some(role), Some(assume_error)) = (
        &settings.server.assume_role,
        find_in_chain::<AssumeRoleError>(error),
    ) {
        let code = assume_error.code().unwrap_or("unknown error");
        let remedy = match code {
            "ExpiredToken" | "ExpiredTokenException" => Some(Remedy::RenewKeys),
            "InvalidClientTokenId" | "SignatureDoesNotMatch" => Some(Remedy::CheckKeys),
            _ => None,
        };
        let hint = match code {
            "AccessDenied" => "Check that the role's trust policy lets the source identity assume it, and that external_id matches what it expects.",
            "ExpiredToken" | "ExpiredTokenException" => "The source credentials have expired: renew the keys in the user mapping (session_token too).",
            "InvalidClientTokenId" | "SignatureDoesNotMatch" => "AWS does not accept the source credentials: check access_key, secret_key and session_token.",
            "ValidationError" => "Check role_arn, role_session_name and duration_seconds (at most the role's maximum session duration).",
            _ => "See the AWS error in the detail.",
        };
        let explained = FdwError::new(
            SqlState::UnableToEstablishConnection,
            format!("could not assume role {} ({code})", role.role_arn),
        )
        .with_detail(format!(
            "AWS error {code}: {} (endpoint {endpoint}; source credentials: {tried})",
            assume_error.message().unwrap_or("no message")
        ))
        .with_hint(hint)
        .with_aws_code(code);
        return match remedy {
            Some(remedy) => explained.with_remedy(remedy),
            None => explained,
        };
    }
    // aws-config's SSO providers say "SSO" and name the ~/.aws/sso/cache token file.
    if settings.keys.is_none() && (chain.contains("SSO") || chain.contains(".aws/sso/")) {
        let profile = settings.server.profile.as_deref().unwrap_or("default");
        return FdwError::new(
            SqlState::UnableToEstablishConnection,
            format!("the AWS SSO session of profile \"{profile}\" is missing or has expired"),
        )
        .with_detail(chain.to_string())
        .with_hint(format!(
            "Sign in again as the database server's OS user: aws sso login --profile {profile}; \
             or put keys in a user mapping."
        ))
        .with_remedy(Remedy::SsoLogin(profile.to_string()));
    }
    match error {
        CredentialsError::CredentialsNotLoaded(_) => FdwError::new(
            SqlState::UnableToEstablishConnection,
            "no AWS credentials found",
        )
        .with_detail(format!("Tried: {tried}. {chain}"))
        .with_hint(
            "Create a user mapping with keys: CREATE USER MAPPING FOR CURRENT_USER SERVER <server> \
             OPTIONS (access_key '...', secret_key '...'); or give the database server's OS user \
             AWS credentials (environment, ~/.aws/credentials, the profile option).",
        )
        .with_remedy(Remedy::ProvideKeys),
        _ => FdwError::new(SqlState::UnableToEstablishConnection, "could not load AWS credentials")
            .with_detail(format!("Tried: {tried}. {chain}"))
            .with_hint("Check the database server's AWS configuration (the profile's settings), or put keys in a user mapping.")
            .with_remedy(Remedy::ProvideKeys),
    }
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
    let explained = FdwError::new(state, format!("{summary} ({code})"))
        .with_detail(format!("{detail} (endpoint {endpoint})"))
        .with_hint(hint)
        .with_aws_code(code);
    match code {
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature" => explained.with_remedy(Remedy::CheckKeys),
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            explained.with_remedy(Remedy::RenewKeys)
        }
        _ => explained,
    }
}

/// The credential sources tried, for the "no credentials" detail.
fn credential_source_hint(settings: &ConnectionSettings) -> String {
    if settings.keys.is_some() {
        return if settings.keys_from_server() {
            "the server's keys".to_string()
        } else {
            "the user mapping's keys".to_string()
        };
    }
    match &settings.server.profile {
        Some(profile) => {
            format!("profile \"{profile}\" in the shared config and credentials files")
        }
        None if settings.server.instance_metadata => format!(
            "environment variables, shared config and credentials files, web identity token, \
             ECS container credentials, EC2 instance metadata (at most {})",
            human_duration(INSTANCE_METADATA_BUDGET)
        ),
        None => "environment variables, shared config and credentials files, web identity token, \
                 ECS container credentials (instance_metadata is off)"
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
        assert_eq!(settings.credential_source(), "profile prod");
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
        assert_eq!(explained.remedy.as_deref(), Some(&Remedy::RenewKeys));
        assert!(explained.hint.unwrap().contains("session_token"));
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
