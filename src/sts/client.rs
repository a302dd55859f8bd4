//! The backend's pool of STS clients, one per set of connection settings, built on first use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::credentials::ambient_credentials;
use super::http::http_client_for;
use super::{resolve_region, ConnectionSettings};

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
pub(super) struct AttemptCounter(pub(super) Arc<AtomicU32>);

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
pub(super) struct PooledClient {
    pub(super) client: aws_sdk_sts::Client,
    pub(super) region: Region,
    pub(super) credentials_expiry: Arc<Mutex<Option<SystemTime>>>,
    pub(super) attempts: AttemptCounter,
}

thread_local! {
    static CLIENTS: RefCell<HashMap<ConnectionSettings, PooledClient>> = RefCell::new(HashMap::new());
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
pub(super) async fn pooled_client(settings: &ConnectionSettings) -> PooledClient {
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
