//! The backend's pool of STS clients, built on first use and kept for the
//! [`MAX_POOLED_CLIENTS`] most recently used settings: one per set of settings when the
//! client resolves credentials itself (the default chain, a profile, a role to assume),
//! and one per set of server options for static keys, which each call then brings: an
//! aggregator over 1,000 accounts with their own keys then builds one client, not 1,000.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_config::identity::IdentityCache;
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
use super::http::transport_for;
use super::transport::TransportConfig;
use super::{resolve_region, ConnectionSettings};
use crate::options::{ServerOptions, StaticKeys};

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

/// A client as a call uses it: the pooled client, and the keys the call brings when the
/// client is shared by all the static keys of its server options.
#[derive(Clone)]
pub(super) struct PooledClient {
    pub(super) client: aws_sdk_sts::Client,
    pub(super) region: Region,
    pub(super) credentials_expiry: Arc<Mutex<Option<SystemTime>>>,
    /// The call's own static keys, for a client built without credentials.
    pub(super) call_keys: Option<Credentials>,
    /// How its requests leave the process, as it was when the client was built.
    transport: TransportConfig,
}

/// A GetCallerIdentity call, customized (before it is sent) to bring its own keys.
pub(super) type Call = aws_sdk_sts::client::customize::CustomizableOperation<
    aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput,
    aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
    aws_sdk_sts::operation::get_caller_identity::builders::GetCallerIdentityFluentBuilder,
>;

impl PooledClient {
    /// A GetCallerIdentity call with this client and the call's keys, if it brings any.
    pub(super) fn get_caller_identity(&self) -> Call {
        let call = self.client.get_caller_identity().customize();
        match &self.call_keys {
            Some(keys) => call
                .config_override(aws_sdk_sts::Config::builder().credentials_provider(keys.clone())),
            None => call,
        }
    }
}

/// What the pool keys a client by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PoolKey {
    /// A client that resolves and caches credentials itself: for exactly these settings.
    Settings(ConnectionSettings),
    /// Static keys and no role to assume: one client for the server options (without any
    /// keys of the server's own), the keys given per call.
    KeysPerCall(ServerOptions),
}

impl PoolKey {
    fn of(settings: &ConnectionSettings) -> (PoolKey, Option<Credentials>) {
        match &settings.keys {
            Some(keys) if settings.server.assume_role.is_none() => (
                PoolKey::KeysPerCall(ServerOptions {
                    keys: None,
                    ..settings.server.clone()
                }),
                Some(static_credentials(keys)),
            ),
            _ => (PoolKey::Settings(settings.clone()), None),
        }
    }
}

fn static_credentials(keys: &StaticKeys) -> Credentials {
    Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.clone(),
        keys.session_token.clone(),
        None,
        "aws_sts_keys",
    )
}

/// The most clients a backend keeps: every ALTER SERVER or USER MAPPING makes new
/// settings, and a backend lives as long as its connection.
pub const MAX_POOLED_CLIENTS: usize = 32;

/// The backend's clients, least recently used first: few enough to scan.
struct Pool {
    entries: Vec<(PoolKey, PooledClient)>,
}

impl Pool {
    fn position(&self, settings: &PoolKey) -> Option<usize> {
        self.entries.iter().position(|(key, _)| key == settings)
    }

    /// The client for these settings, which becomes the most recently used.
    fn get(&mut self, settings: &PoolKey) -> Option<PooledClient> {
        let entry = self.entries.remove(self.position(settings)?);
        let client = entry.1.clone();
        self.entries.push(entry);
        Some(client)
    }

    /// Keeps a client as the most recently used, evicting the least recently used one
    /// when the pool is full (a call still using it keeps it until it ends).
    fn insert(&mut self, settings: PoolKey, client: PooledClient) {
        self.remove(&settings);
        if self.entries.len() >= MAX_POOLED_CLIENTS {
            self.entries.remove(0);
        }
        self.entries.push((settings, client));
    }

    fn remove(&mut self, settings: &PoolKey) -> bool {
        self.position(settings)
            .map(|at| self.entries.remove(at))
            .is_some()
    }
}

thread_local! {
    static CLIENTS: RefCell<Pool> = const { RefCell::new(Pool { entries: Vec::new() }) };
}

/// Forgets the client for these settings (and the credentials it holds), as when they
/// stop being current; true when there was one.
pub fn forget_client(settings: &ConnectionSettings) -> bool {
    CLIENTS.with(|clients| clients.borrow_mut().remove(&PoolKey::of(settings).0))
}

/// Forgets every client (and the credentials they hold); returns how many there were.
pub fn clear_clients() -> usize {
    CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        let count = clients.entries.len();
        clients.entries.clear();
        count
    })
}

#[cfg(test)]
fn pool_len() -> usize {
    CLIENTS.with(|clients| clients.borrow().entries.len())
}

#[cfg(test)]
fn is_pooled(settings: &ConnectionSettings) -> bool {
    CLIENTS.with(|clients| {
        clients
            .borrow()
            .position(&PoolKey::of(settings).0)
            .is_some()
    })
}

/// The backend's client for these settings, built on first use, and built anew when its
/// transport has changed: a CA bundle edited or replaced since (a stat per call), so that
/// fixing the file is enough, in a backend that lives for hours behind a pooler too.
pub(super) async fn pooled_client(settings: &ConnectionSettings) -> PooledClient {
    let transport = TransportConfig::for_server(&settings.server);
    let (key, call_keys) = PoolKey::of(settings);
    let pooled = match CLIENTS.with(|clients| clients.borrow_mut().get(&key)) {
        Some(pooled) if pooled.transport == transport => pooled,
        _ => {
            let region = resolve_region(&settings.server).await;
            let pooled = build_client(&key, region, transport).await;
            CLIENTS.with(|clients| clients.borrow_mut().insert(key, pooled.clone()));
            pooled
        }
    };
    PooledClient {
        call_keys,
        ..pooled
    }
}

/// A client for these settings; for [`PoolKey::KeysPerCall`], one without credentials (nor
/// a cache of them, so that no call's keys outlive it) for calls that bring their own.
async fn build_client(key: &PoolKey, region: Region, transport: TransportConfig) -> PooledClient {
    let server = match key {
        PoolKey::Settings(settings) => &settings.server,
        PoolKey::KeysPerCall(server) => server,
    };
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(server.connect_timeout)
        .operation_timeout(server.timeout)
        .build();
    let source_credentials = match key {
        PoolKey::KeysPerCall(_) => None,
        PoolKey::Settings(ConnectionSettings {
            keys: Some(keys), ..
        }) => Some(SharedCredentialsProvider::new(static_credentials(keys))),
        PoolKey::Settings(_) => Some(ambient_credentials(server, &region, &timeouts, &transport)),
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(server.max_attempts)
                .with_initial_backoff(server.min_retry_delay),
        )
        .http_client(transport_for(&transport));
    loader = match source_credentials {
        Some(source) => loader.credentials_provider(source),
        None => loader
            .no_credentials()
            .identity_cache(IdentityCache::no_cache()),
    };
    // The endpoint: the loader and aws-sdk-sts's config builder read AWS_ENDPOINT_URL_STS,
    // AWS_ENDPOINT_URL, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, AWS_USE_FIPS_ENDPOINT,
    // AWS_USE_DUALSTACK_ENDPOINT and the profile's keys themselves; the server's options
    // win over them. `endpoint.rs` says the same for messages (tested below).
    if let Some(url) = &server.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(use_fips) = server.use_fips {
        loader = loader.use_fips(use_fips);
    }
    if let Some(use_dual_stack) = server.use_dual_stack {
        loader = loader.use_dual_stack(use_dual_stack);
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
    let mut sts_config = aws_sdk_sts::config::Builder::from(&sdk_config);
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
        call_keys: None,
        transport,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;

    use super::*;
    use crate::options::{ServerOptions, StaticKeys};

    /// Settings that differ by region only. Keys and a plain HTTP endpoint: building their
    /// client reads no credentials and loads no trust store (and nothing is ever called).
    fn settings(region: usize) -> ConnectionSettings {
        ConnectionSettings::new(
            ServerOptions {
                region: Some(format!("test-region-{region}")),
                endpoint_url: Some("http://127.0.0.1:9".into()),
                ..ServerOptions::default()
            },
            Some(StaticKeys {
                access_key_id: "AKIAPOOL".into(),
                secret_access_key: "pool-secret".into(),
                session_token: None,
            }),
        )
    }

    /// A handle that tells whether a client is still alive (held by the pool or a caller).
    fn liveness(pooled: &PooledClient) -> Weak<Mutex<Option<SystemTime>>> {
        Arc::downgrade(&pooled.credentials_expiry)
    }

    #[tokio::test]
    async fn the_pool_keeps_the_most_recently_used_clients() {
        let kept = settings(0);
        let first = pooled_client(&kept).await;
        for region in 1..100 {
            pooled_client(&settings(region)).await;
            // Used between every insertion: never the least recently used.
            let again = pooled_client(&kept).await;
            assert!(
                Arc::ptr_eq(&first.credentials_expiry, &again.credentials_expiry),
                "a pooled client is reused, not rebuilt"
            );
            assert!(pool_len() <= MAX_POOLED_CLIENTS, "{} clients", pool_len());
        }
        assert_eq!(pool_len(), MAX_POOLED_CLIENTS);
        assert!(is_pooled(&kept));
        // Besides it, the 31 most recently inserted, and none older.
        let newest = 100 - (MAX_POOLED_CLIENTS - 1);
        assert!((newest..100).all(|region| is_pooled(&settings(region))));
        assert!((1..newest).all(|region| !is_pooled(&settings(region))));
        assert_eq!(clear_clients(), MAX_POOLED_CLIENTS);
    }

    /// Settings with these keys, on server options that differ by nothing else.
    fn keyed(access_key: &str, server_keys: bool, role: bool) -> ConnectionSettings {
        let keys = StaticKeys {
            access_key_id: access_key.into(),
            secret_access_key: format!("{access_key}-secret"),
            session_token: None,
        };
        let server = ServerOptions {
            region: Some("test-region-keys".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            keys: server_keys.then(|| keys.clone()),
            assume_role: role.then(|| crate::options::AssumeRole {
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
                session_name: "s".into(),
                external_id: None,
                duration: None,
            }),
            ..ServerOptions::default()
        };
        ConnectionSettings::new(server, (!server_keys).then_some(keys))
    }

    #[tokio::test]
    async fn static_keys_share_one_client_and_bring_their_own_keys() {
        clear_clients();
        // Two members' mappings, and a server with keys of its own: one client.
        let (a, b, own) = (
            keyed("AKIAMEMBERA", false, false),
            keyed("AKIAMEMBERB", false, false),
            keyed("AKIASERVER", true, false),
        );
        let (first, second, third) = (
            pooled_client(&a).await,
            pooled_client(&b).await,
            pooled_client(&own).await,
        );
        assert_eq!(pool_len(), 1);
        assert!(Arc::ptr_eq(
            &first.credentials_expiry,
            &second.credentials_expiry
        ));
        assert!(Arc::ptr_eq(
            &first.credentials_expiry,
            &third.credentials_expiry
        ));
        let key_of = |pooled: &PooledClient| {
            pooled
                .call_keys
                .as_ref()
                .map(|keys| keys.access_key_id().to_string())
        };
        assert_eq!(key_of(&first).as_deref(), Some("AKIAMEMBERA"));
        assert_eq!(key_of(&second).as_deref(), Some("AKIAMEMBERB"));
        assert_eq!(key_of(&third).as_deref(), Some("AKIASERVER"));
        // A role to assume: the client resolves (and caches) credentials, one per settings.
        let (role_a, role_b) = (
            keyed("AKIAMEMBERA", false, true),
            keyed("AKIAMEMBERB", false, true),
        );
        let role_client = pooled_client(&role_a).await;
        assert!(role_client.call_keys.is_none());
        pooled_client(&role_b).await;
        assert_eq!(pool_len(), 3);
        // Forgetting one member's settings forgets the shared client (it holds no keys).
        assert!(forget_client(&a));
        assert!(!is_pooled(&b));
        assert_eq!(clear_clients(), 2);
    }

    #[tokio::test]
    async fn forget_client_drops_exactly_that_client() {
        let (a, b, c) = (settings(1), settings(2), settings(3));
        pooled_client(&a).await;
        let forgotten = liveness(&pooled_client(&b).await);
        pooled_client(&c).await;
        assert!(forget_client(&b));
        assert_eq!(pool_len(), 2);
        assert!(is_pooled(&a) && !is_pooled(&b) && is_pooled(&c));
        assert!(
            forgotten.upgrade().is_none(),
            "the forgotten client was freed"
        );
        assert!(!forget_client(&b), "nothing left to forget");
        assert_eq!(pool_len(), 2);
        // The next call for those settings builds a new client.
        pooled_client(&b).await;
        assert!(is_pooled(&b));
        assert_eq!(clear_clients(), 3);
    }

    #[tokio::test]
    async fn an_edited_ca_bundle_rebuilds_the_client() {
        let bundle = std::env::temp_dir().join(format!("aws_sts-pool-{}.pem", std::process::id()));
        std::fs::write(&bundle, "first").unwrap();
        let mut with_bundle = settings(7);
        with_bundle.server.ca_bundle = Some(bundle.to_string_lossy().into_owned());
        let first = pooled_client(&with_bundle).await;
        let same = pooled_client(&with_bundle).await;
        assert!(Arc::ptr_eq(
            &first.credentials_expiry,
            &same.credentials_expiry
        ));
        // Fixed in place (another length, so that the change shows whatever the clock).
        std::fs::write(&bundle, "second, longer").unwrap();
        let rebuilt = pooled_client(&with_bundle).await;
        assert!(!Arc::ptr_eq(
            &first.credentials_expiry,
            &rebuilt.credentials_expiry
        ));
        assert!(Arc::ptr_eq(
            &rebuilt.credentials_expiry,
            &pooled_client(&with_bundle).await.credentials_expiry
        ));
        assert!(forget_client(&with_bundle));
        std::fs::remove_file(&bundle).unwrap();
    }

    /// Records the URL of the request about to be sent, and stops it there: nothing is sent.
    #[derive(Debug, Clone, Default)]
    struct CaptureUrl(Arc<Mutex<Option<String>>>);

    impl Intercept for CaptureUrl {
        fn name(&self) -> &'static str {
            "aws_sts test URL capture"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            *self.0.lock().unwrap() = Some(context.request().uri().to_string());
            Err("stopped before sending".into())
        }
    }

    /// Whether the environment leaves endpoints to the SDK's rules, so that the URLs below
    /// are the rules' own.
    fn environment_is_plain() -> bool {
        [
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_STS",
            "AWS_USE_FIPS_ENDPOINT",
            "AWS_USE_DUALSTACK_ENDPOINT",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
        ]
        .iter()
        .all(|variable| std::env::var_os(variable).is_none())
    }

    /// Settings for a request to STS in `region`, with keys (nothing is read for them).
    fn endpoint_settings(
        region: &str,
        tweak: impl FnOnce(&mut ServerOptions),
    ) -> ConnectionSettings {
        let mut server = ServerOptions {
            region: Some(region.into()),
            max_attempts: 1,
            ..ServerOptions::default()
        };
        tweak(&mut server);
        ConnectionSettings::new(
            server,
            Some(StaticKeys {
                access_key_id: "AKIAENDPOINT".into(),
                secret_access_key: "endpoint-secret".into(),
                session_token: None,
            }),
        )
    }

    /// The URL GetCallerIdentity with these settings is sent to, if the SDK builds the
    /// request; it is stopped before it is sent.
    async fn request_url(settings: &ConnectionSettings) -> Option<String> {
        let capture = CaptureUrl::default();
        let result = pooled_client(settings)
            .await
            .get_caller_identity()
            .interceptor(capture.clone())
            .send()
            .await;
        assert!(result.is_err(), "nothing was sent, so nothing answered");
        let url = capture.0.lock().unwrap().clone();
        url
    }

    #[tokio::test]
    async fn requests_go_to_the_endpoint_messages_name() {
        let cases = [
            (
                endpoint_settings("us-east-1", |_| {}),
                "https://sts.us-east-1.amazonaws.com/",
            ),
            (
                endpoint_settings("us-east-1", |s| s.use_fips = Some(true)),
                "https://sts-fips.us-east-1.amazonaws.com/",
            ),
            (
                endpoint_settings("us-east-1", |s| s.use_dual_stack = Some(true)),
                "https://sts.us-east-1.api.aws/",
            ),
            (
                endpoint_settings("us-east-1", |s| {
                    s.use_fips = Some(true);
                    s.use_dual_stack = Some(true);
                }),
                "https://sts-fips.us-east-1.api.aws/",
            ),
            (
                endpoint_settings("cn-north-1", |s| s.use_fips = Some(false)),
                "https://sts.cn-north-1.amazonaws.com.cn/",
            ),
            (
                endpoint_settings("eu-west-1", |s| {
                    s.endpoint_url = Some("http://127.0.0.1:9".into())
                }),
                "http://127.0.0.1:9/",
            ),
        ];
        let plain = environment_is_plain();
        for (settings, rules) in cases {
            let sent = request_url(&settings).await;
            let region = settings.server.region.as_deref().unwrap();
            match super::super::resolve_endpoint(&settings.server, region).await {
                Ok(said) => {
                    let sent = sent.expect("a request was built");
                    assert_eq!(sent.trim_end_matches('/'), said.url, "{settings:?}");
                    if plain {
                        assert_eq!(sent, rules);
                    }
                }
                // The environment makes these settings impossible: the SDK built nothing.
                Err(why) => assert_eq!(sent, None, "{why}"),
            }
        }
        clear_clients();
    }

    /// Set in the child processes of the test below: the URL the request must go to.
    const CHILD_EXPECTS: &str = "AWS_STS_TEST_EXPECTED_URL";

    /// The test below, in a child process with the environment it was given.
    #[tokio::test]
    async fn in_a_child_the_request_goes_where_messages_say() {
        let Ok(expected) = std::env::var(CHILD_EXPECTS) else {
            return;
        };
        let settings = endpoint_settings("eu-west-1", |_| {});
        let sent = request_url(&settings).await;
        let said = super::super::endpoint_for_messages(&settings.server, "eu-west-1").await;
        match sent {
            Some(sent) => {
                assert_eq!(sent, expected);
                assert!(
                    said.starts_with(sent.trim_end_matches('/')),
                    "sent to {sent}, messages say {said}"
                );
            }
            // The SDK refused to build the request: messages say why.
            None => assert!(
                expected == "none" && said.starts_with("none ("),
                "no request, messages say {said}"
            ),
        }
        println!("checked: {expected} / {said}");
    }

    /// What the SDK reads of the process's environment and shared config file for the
    /// endpoint, it reads for the real call as `endpoint.rs` does for messages: each case
    /// runs in a child process that has only that environment.
    #[test]
    fn the_environment_and_the_profile_steer_requests_as_messages_say() {
        if std::env::var_os(CHILD_EXPECTS).is_some() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("aws_sts-endpoints-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config");
        std::fs::write(
            &config,
            "[default]\nservices = local\n[services local]\nsts =\n  endpoint_url = http://127.0.0.1:4004\n\
             [profile bare]\nendpoint_url = http://127.0.0.1:4005\n\
             [profile fips]\nuse_fips_endpoint = true\n",
        )
        .unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "").unwrap();
        let (config, empty) = (config.to_str().unwrap(), empty.to_str().unwrap());
        let sts = ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4001");
        let global = ("AWS_ENDPOINT_URL", "http://127.0.0.1:4002");
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![sts, global], "http://127.0.0.1:4001/"),
            (vec![global], "http://127.0.0.1:4002/"),
            (
                vec![("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"), sts, global],
                "https://sts.eu-west-1.amazonaws.com/",
            ),
            (
                vec![("AWS_USE_FIPS_ENDPOINT", "true")],
                "https://sts-fips.eu-west-1.amazonaws.com/",
            ),
            (
                vec![("AWS_USE_DUALSTACK_ENDPOINT", "true")],
                "https://sts.eu-west-1.api.aws/",
            ),
            (vec![("AWS_CONFIG_FILE", config)], "http://127.0.0.1:4004/"),
            (
                vec![("AWS_CONFIG_FILE", config), ("AWS_PROFILE", "bare")],
                "http://127.0.0.1:4005/",
            ),
            (
                vec![("AWS_CONFIG_FILE", config), ("AWS_PROFILE", "fips")],
                "https://sts-fips.eu-west-1.amazonaws.com/",
            ),
            // FIPS from the profile and a custom endpoint from the environment: the SDK
            // builds no request, and messages say why.
            (
                vec![("AWS_CONFIG_FILE", config), ("AWS_PROFILE", "fips"), global],
                "none",
            ),
        ];
        let this_test = "sts::client::tests::in_a_child_the_request_goes_where_messages_say";
        for (variables, expected) in cases {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap());
            child.args(["--exact", this_test, "--nocapture", "--test-threads=1"]);
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("AWS_") {
                    child.env_remove(name);
                }
            }
            child
                .env("AWS_CONFIG_FILE", empty)
                .env("AWS_SHARED_CREDENTIALS_FILE", empty)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .envs(variables.iter().copied())
                .env(CHILD_EXPECTS, expected);
            let output = child.output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && stdout.contains("checked: "),
                "{variables:?}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn six_hundred_settings_leave_at_most_32_clients_alive() {
        // As 600 ALTER SERVERs, each followed by a query, in one backend.
        let mut handles = Vec::new();
        for region in 0..600 {
            handles.push(liveness(&pooled_client(&settings(region)).await));
            assert!(pool_len() <= MAX_POOLED_CLIENTS, "{} clients", pool_len());
        }
        // Evicted clients are freed, not merely unlisted.
        let alive = handles
            .iter()
            .filter(|handle| handle.strong_count() > 0)
            .count();
        assert_eq!(alive, MAX_POOLED_CLIENTS);
        assert_eq!(clear_clients(), MAX_POOLED_CLIENTS);
        assert!(handles.iter().all(|handle| handle.strong_count() == 0));
    }
}
