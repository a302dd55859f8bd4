//! The HTTP clients STS calls go through: one [`Transport`] per [`TransportConfig`] (trust
//! store and proxies) per backend, each a plain HTTP client and an HTTPS one built on its
//! first HTTPS request, both reading at most [`MAX_RESPONSE_BYTES`] of any answer, and
//! saying what went wrong with a certificate, a CA bundle or a proxy.

use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Connector, ConnectorBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use http_body::{Body, Frame};
use hyper_util::client::proxy::matcher::Matcher;

use super::transport::{Proxy, ProxyFailure, TransportConfig, TransportError, Trust};

/// The most of an answer aws_sts reads: an STS answer is a few KiB, and anyone may point
/// endpoint_url at an endpoint of their own.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The most transports a backend keeps: one per trust store and proxies in use, so a
/// handful at most; a CA bundle that keeps changing must not grow the list for ever.
const MAX_TRANSPORTS: usize = 8;

thread_local! {
    /// The backend's transports, least recently used first. Every STS client (and credential
    /// provider) of a configuration shares its connection pools.
    static TRANSPORTS: RefCell<Vec<(TransportConfig, Arc<Transport>)>> =
        const { RefCell::new(Vec::new()) };
}

/// The backend's HTTP client for this configuration, built on first use.
pub(super) fn transport_for(config: &TransportConfig) -> SharedHttpClient {
    TRANSPORTS.with(|transports| {
        let mut transports = transports.borrow_mut();
        if let Some(at) = transports.iter().position(|(key, _)| key == config) {
            let entry = transports.remove(at);
            let transport = entry.1.clone();
            transports.push(entry);
            return TransportClient(transport).into_shared();
        }
        if transports.len() >= MAX_TRANSPORTS {
            transports.remove(0);
        }
        let transport = Arc::new(Transport::new(config));
        transports.push((config.clone(), transport.clone()));
        TransportClient(transport).into_shared()
    })
}

/// Closes every idle keep-alive connection of the backend's transports (as an aggregator's
/// scan ends: it may have opened `concurrency` of them): each transport's clients are
/// replaced, and the old ones' pools dropped with their idle connections once no call uses
/// them. The connections' tasks close their sockets when the runtime next runs
/// ([`crate::runtime::settle`]).
pub fn close_idle_connections() {
    TRANSPORTS.with(|transports| {
        for (_, transport) in transports.borrow().iter() {
            transport.renew();
        }
    });
}

#[cfg(test)]
fn transport_count() -> usize {
    TRANSPORTS.with(|transports| transports.borrow().len())
}

/// Which proxy one of a transport's two clients sends a request through: the client applies
/// `config`, and `matcher`, built from the same rules, tells messages what it did.
struct Route {
    proxy: Option<Proxy>,
    /// Whether the client can talk to `proxy` (else requests it applies to fail, naming it).
    usable: bool,
    matcher: Matcher,
    config: ProxyConfig,
}

/// The requests a proxy applies to.
#[derive(Clone, Copy)]
enum Scope {
    All,
    Http,
    Https,
}

impl Route {
    fn new(proxy: Option<(Scope, &Proxy)>, no_proxy: &str) -> Route {
        let Some((scope, proxy)) = proxy else {
            return Route {
                proxy: None,
                usable: true,
                matcher: Matcher::builder().build(),
                config: ProxyConfig::disabled(),
            };
        };
        let url = proxy.url();
        let config = match scope {
            Scope::All => ProxyConfig::all(url.as_str()),
            Scope::Http => ProxyConfig::http(url.as_str()),
            Scope::Https => ProxyConfig::https(url.as_str()),
        }
        .ok()
        .filter(|_| proxy.usable())
        .map(|config| config.no_proxy(no_proxy));
        let usable = config.is_some();
        // An unusable proxy is matched under a stand-in URL, to know which requests it
        // would have carried.
        let matched = if usable {
            url
        } else {
            "http://unusable.invalid:9".to_string()
        };
        let builder = Matcher::builder().no(no_proxy.to_string());
        let matcher = match scope {
            Scope::All => builder.all(matched),
            Scope::Http => builder.http(matched),
            Scope::Https => builder.https(matched),
        }
        .build();
        Route {
            proxy: Some(proxy.clone()),
            usable,
            matcher,
            config: config.unwrap_or_else(ProxyConfig::disabled),
        }
    }

    /// The proxy a request to `uri` goes through, if any.
    fn proxy_for(&self, uri: &str) -> Option<&Proxy> {
        let proxy = self.proxy.as_ref()?;
        let uri = uri.parse::<http::Uri>().ok()?;
        self.matcher.intercept(&uri).map(|_| proxy)
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("proxy", &self.proxy.as_ref().map(Proxy::shown))
            .field("usable", &self.usable)
            .finish()
    }
}

/// A plain HTTP client and an HTTPS one for one [`TransportConfig`], each with its pool of
/// keep-alive connections, which [`close_idle_connections`] replaces.
#[derive(Debug)]
struct Transport {
    trust: Trust,
    plain: Mutex<SharedHttpClient>,
    plain_route: Route,
    /// Built on the first HTTPS request, so that plain HTTP endpoints (emulators, local
    /// proxies) never pay for loading the system's trust store (~5 ms per backend), and a
    /// CA bundle is read when it is needed; a bundle that cannot be used is tried again
    /// on the next request. The TLS context is kept for the clients that replace it.
    tls: Mutex<Option<(TlsContext, SharedHttpClient)>>,
    tls_route: Route,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A plain HTTP client through `route`'s proxy, if any.
fn plain_client(route: &Route) -> SharedHttpClient {
    let proxy = route.config.clone();
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        connector_builder(settings, components)
            .proxy_config(proxy.clone())
            .build_http()
    })
}

/// An HTTPS client with this trust, through `route`'s proxy, if any.
fn tls_client(context: TlsContext, route: &Route) -> SharedHttpClient {
    let proxy = route.config.clone();
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        connector_builder(settings, components)
            .proxy_config(proxy.clone())
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context.clone())
            .build()
    })
}

impl Transport {
    fn new(config: &TransportConfig) -> Transport {
        let proxies = &config.proxies;
        // The HTTPS client carries HTTPS requests, and the odd plain one (an
        // AWS_ENDPOINT_URL with http://) through HTTP_PROXY when it is the same proxy.
        let tls_proxy = match (&proxies.https, &proxies.http) {
            (Some(https), Some(http)) if https.url() == http.url() => Some((Scope::All, https)),
            (Some(https), _) => Some((Scope::Https, https)),
            (None, Some(http)) => Some((Scope::Http, http)),
            (None, None) => None,
        };
        let plain_route = Route::new(
            proxies.http.as_ref().map(|http| (Scope::Http, http)),
            &proxies.no_proxy,
        );
        Transport {
            trust: config.trust.clone(),
            plain: Mutex::new(plain_client(&plain_route)),
            plain_route,
            tls: Mutex::new(None),
            tls_route: Route::new(tls_proxy, &proxies.no_proxy),
        }
    }

    fn plain(&self) -> SharedHttpClient {
        lock(&self.plain).clone()
    }

    /// New clients in place of the current ones (the TLS context is reused).
    fn renew(&self) {
        *lock(&self.plain) = plain_client(&self.plain_route);
        if let Some((context, client)) = lock(&self.tls).as_mut() {
            *client = tls_client(context.clone(), &self.tls_route);
        }
    }

    /// The HTTPS client, built on first use with the configuration's trust store.
    fn tls_client(&self) -> Result<SharedHttpClient, Box<TransportError>> {
        let mut slot = lock(&self.tls);
        if let Some((_, client)) = &*slot {
            return Ok(client.clone());
        }
        let trust_store = match &self.trust {
            Trust::System => TrustStore::default(),
            // Instead of the system's CAs, as boto3 takes AWS_CA_BUNDLE.
            Trust::Bundle(bundle) => TrustStore::empty().with_pem_certificate(bundle.load()?),
        };
        let context = TlsContext::builder()
            .with_trust_store(trust_store)
            .build()
            .map_err(|error| {
                Box::new(TransportError::CaBundle {
                    path: String::new(),
                    named_by: "TLS configuration",
                    problem: error.to_string(),
                })
            })?;
        let client = tls_client(context.clone(), &self.tls_route);
        *slot = Some((context, client.clone()));
        Ok(client)
    }
}

/// A connector builder with the SDK's settings (timeouts) and sleep, as the SDK's own
/// clients start theirs; no proxy until one is given.
fn connector_builder(
    settings: Option<&HttpConnectorSettings>,
    components: Option<&RuntimeComponents>,
) -> ConnectorBuilder {
    let mut builder = Connector::builder();
    builder.set_connector_settings(settings.cloned());
    if let Some(components) = components {
        builder.set_sleep_impl(components.sleep_impl());
    }
    builder
}

/// Hands out [`TransportConnector`]s.
#[derive(Debug, Clone)]
struct TransportClient(Arc<Transport>);

impl HttpClient for TransportClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        TransportConnector {
            transport: self.0.clone(),
            settings: settings.clone(),
            components: components.clone(),
        }
        .into_shared()
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        // The HTTPS client is validated (its trust store loaded) on first use instead.
        self.0
            .plain()
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0
            .plain()
            .validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.plain().connector_metadata()
    }
}

#[derive(Debug)]
struct TransportConnector {
    transport: Arc<Transport>,
    settings: HttpConnectorSettings,
    components: RuntimeComponents,
}

impl HttpConnector for TransportConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let transport = &self.transport;
        let uri = request.uri().to_string();
        let https = uri.starts_with("https://");
        let route = if https {
            &transport.tls_route
        } else {
            &transport.plain_route
        };
        let failed = Failed {
            origin: origin(&uri),
            host: request
                .uri()
                .parse::<http::Uri>()
                .ok()
                .and_then(|uri| uri.host().map(str::to_string))
                .unwrap_or_default(),
            proxy: route.proxy_for(&uri).cloned(),
            https,
            trust: transport.trust.clone(),
        };
        if failed.proxy.is_some() && !route.usable {
            return HttpConnectorFuture::ready(Err(failed.unusable_proxy()));
        }
        let connector = if https {
            match transport.tls_client() {
                Ok(client) => client.http_connector(&self.settings, &self.components),
                Err(error) => return HttpConnectorFuture::ready(Err(ConnectorError::user(error))),
            }
        } else {
            transport
                .plain()
                .http_connector(&self.settings, &self.components)
        };
        let response = connector.call(request);
        let origin = failed.origin.clone();
        HttpConnectorFuture::new(async move {
            match response.await {
                Ok(response) => read_limited(response, origin).await,
                Err(error) => Err(failed.explain(error)),
            }
        })
    }
}

/// What a failed request was, to say why it failed.
struct Failed {
    origin: String,
    host: String,
    proxy: Option<Proxy>,
    https: bool,
    trust: Trust,
}

impl Failed {
    /// The host and port the request was for.
    fn target(&self) -> String {
        let authority = self.origin.split_once("://").map_or("", |(_, rest)| rest);
        if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:{}", if self.https { 443 } else { 80 })
        }
    }

    fn unusable_proxy(self) -> ConnectorError {
        let proxy = self.proxy.as_ref().expect("a proxy");
        ConnectorError::user(Box::new(TransportError::Proxy {
            proxy: proxy.shown(),
            named_by: proxy.named_by,
            target: self.target(),
            failure: ProxyFailure::Unusable,
            cause: None,
        }))
    }

    /// A failure the SDK's client reported, with what it means when that is a certificate
    /// or the proxy. A TLS failure is never retried: a new attempt meets the same
    /// certificate (the SDK would retry it as an I/O error, 9 attempts by default).
    fn explain(self, error: ConnectorError) -> ConnectorError {
        let tls = causes(&error)
            .find_map(|cause| cause.downcast_ref::<rustls::Error>())
            .cloned();
        if let Some(tls) = tls {
            return ConnectorError::user(Box::new(TransportError::Tls {
                origin: self.origin.clone(),
                host: self.host.clone(),
                proxy: self
                    .proxy
                    .as_ref()
                    .map(|proxy| format!("{} ({})", proxy.shown(), proxy.named_by)),
                trust: self.trust.describe(),
                error: tls,
                cause: Box::new(error),
            }));
        }
        let Some(proxy) = &self.proxy else {
            return error;
        };
        let tunnel = causes(&error)
            .map(|cause| cause.to_string())
            .find_map(|text| text.strip_prefix("tunnel error: ").map(str::to_string));
        let connect_failed = causes(&error).any(|cause| {
            cause
                .downcast_ref::<hyper_util::client::legacy::Error>()
                .is_some_and(hyper_util::client::legacy::Error::is_connect)
        });
        // hyper-util's tunnel errors are only known by their text.
        let failure = match tunnel.as_deref() {
            _ if error.is_timeout() => ProxyFailure::Timeout,
            Some("failed to create underlying connection") => ProxyFailure::Connect,
            Some("proxy authorization required") => ProxyFailure::AuthenticationRequired,
            Some("unsuccessful") => ProxyFailure::TunnelRefused,
            Some(_) => ProxyFailure::Tunnel,
            // Every connection of a plain HTTP request goes to the proxy.
            None if !self.https && connect_failed => ProxyFailure::Connect,
            None => return error,
        };
        let (timeout, io, user, kind) = (
            error.is_timeout(),
            error.is_io(),
            error.is_user(),
            error.as_other(),
        );
        let explained = Box::new(TransportError::Proxy {
            proxy: proxy.shown(),
            named_by: proxy.named_by,
            target: self.target(),
            failure,
            cause: Some(Box::new(error)),
        });
        match failure {
            // A proxy that says no says it again: not retried.
            ProxyFailure::TunnelRefused | ProxyFailure::AuthenticationRequired => {
                ConnectorError::user(explained)
            }
            _ if timeout => ConnectorError::timeout(explained),
            _ if io => ConnectorError::io(explained),
            _ if user => ConnectorError::user(explained),
            _ => ConnectorError::other(explained, kind),
        }
    }
}

/// An error and its causes, each `io::Error`'s payload included (`io::Error::source` skips
/// it, and rustls' errors travel inside two of them).
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&error| {
        match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => error.source(),
        }
    })
}

/// A size in the units messages use ("1 MiB").
pub(super) fn human_size(bytes: usize) -> String {
    match bytes {
        _ if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) => format!("{} MiB", bytes >> 20),
        _ if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) => format!("{} KiB", bytes >> 10),
        _ => format!("{bytes} bytes"),
    }
}

/// An answer larger than [`MAX_RESPONSE_BYTES`]: announced so, or found so while reading.
#[derive(Debug)]
pub(super) struct AnswerTooLarge {
    /// The scheme and authority the answer came from (never a path or query, which could
    /// carry credentials).
    pub(super) origin: String,
    /// The Content-Length the answer announced, if it announced one.
    pub(super) announced: Option<u64>,
}

impl fmt::Display for AnswerTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.announced {
            Some(length) => write!(
                f,
                "the answer from {} announces {length} bytes (Content-Length), more than the \
                 {MAX_RESPONSE_BYTES} bytes aws_sts reads",
                self.origin
            ),
            None => write!(
                f,
                "the answer from {} went on past the {MAX_RESPONSE_BYTES} bytes aws_sts reads",
                self.origin
            ),
        }
    }
}

impl std::error::Error for AnswerTooLarge {}

/// The scheme and authority of a URI, for messages.
fn origin(uri: &str) -> String {
    let authority_start = uri.find("://").map_or(0, |at| at + 3);
    let end = uri[authority_start..]
        .find(['/', '?', '#'])
        .map_or(uri.len(), |at| authority_start + at);
    uri[..end].to_string()
}

/// Reads the whole answer here, at most [`MAX_RESPONSE_BYTES`] of it, so that a too large
/// answer fails as a connector error: no retry classifier retries it (a failed body read
/// is a response error, which every SDK client retries), in the STS client and in the
/// credential providers alike. Dropping the future drops the body, which closes the
/// connection.
async fn read_limited(
    mut response: HttpResponse,
    origin: String,
) -> Result<HttpResponse, ConnectorError> {
    let too_large =
        |announced| ConnectorError::user(Box::new(AnswerTooLarge { origin, announced }));
    let announced = response
        .headers()
        .get("content-length")
        .and_then(|length| length.trim().parse::<u64>().ok());
    if let Some(length) = announced {
        if length > MAX_RESPONSE_BYTES as u64 {
            // Fail before reading any of it.
            return Err(too_large(Some(length)));
        }
    }
    let capacity = announced.map_or(0, |length| length as usize);
    let mut content = Vec::with_capacity(capacity);
    let mut body = pin!(response.take_body());
    loop {
        match std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            Some(Ok(frame)) => {
                // Trailers are dropped: no AWS answer aws_sts reads has any.
                if let Ok(data) = frame.into_data() {
                    if content.len() + data.len() > MAX_RESPONSE_BYTES {
                        return Err(too_large(None));
                    }
                    content.extend_from_slice(&data);
                }
            }
            Some(Err(error)) => {
                // Hand the read error to the SDK as it would have met it (a response
                // error, retried as before), after what arrived before it.
                *response.body_mut() = SdkBody::from_body_1_x(FailingBody {
                    content: Some(Bytes::from(content)),
                    error: Some(error),
                });
                return Ok(response);
            }
            None => break,
        }
    }
    *response.body_mut() = SdkBody::from(content);
    Ok(response)
}

/// A body that yields what was read, then the error that ended the read.
struct FailingBody {
    content: Option<Bytes>,
    error: Option<BoxError>,
}

impl Body for FailingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(content) = this.content.take().filter(|content| !content.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(content))));
        }
        Poll::Ready(this.error.take().map(Err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_keep_scheme_and_authority_only() {
        assert_eq!(origin("http://127.0.0.1:4566/"), "http://127.0.0.1:4566");
        assert_eq!(
            origin("https://sts.us-east-1.amazonaws.com/?Action=x"),
            "https://sts.us-east-1.amazonaws.com"
        );
        assert_eq!(origin("http://169.254.169.254"), "http://169.254.169.254");
    }

    #[test]
    fn transports_are_kept_per_trust_and_proxy_configuration() {
        use crate::options::ServerOptions;
        let dir = std::env::temp_dir().join(format!("aws_sts-transports-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("ca.pem");
        std::fs::write(&bundle, "one").unwrap();
        let server = |ca_bundle: Option<&str>, proxy_url: Option<&str>| ServerOptions {
            ca_bundle: ca_bundle.map(str::to_string),
            proxy_url: proxy_url.map(str::to_string),
            ..ServerOptions::default()
        };
        let path = bundle.to_string_lossy().into_owned();
        let with_bundle = TransportConfig::for_server(&server(Some(&path), None));
        let proxied =
            TransportConfig::for_server(&server(Some(&path), Some("http://127.0.0.1:3128")));
        assert_ne!(with_bundle, proxied);
        assert_eq!(
            with_bundle,
            TransportConfig::for_server(&server(Some(&path), None))
        );
        let before = transport_count();
        transport_for(&with_bundle);
        transport_for(&with_bundle);
        transport_for(&proxied);
        assert_eq!(transport_count(), before + 2);
        // An edited bundle is another configuration: the next client reads it anew.
        std::fs::write(&bundle, "two, longer").unwrap();
        let edited = TransportConfig::for_server(&server(Some(&path), None));
        assert_ne!(edited, with_bundle);
        transport_for(&edited);
        assert_eq!(transport_count(), before + 3);
        // However many bundles come and go, a backend keeps at most MAX_TRANSPORTS.
        for n in 0..3 * MAX_TRANSPORTS {
            let path = format!("/nonexistent/ca-{n}.pem");
            transport_for(&TransportConfig::for_server(&server(Some(&path), None)));
            assert!(transport_count() <= MAX_TRANSPORTS);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_read_as_messages_say_them() {
        assert_eq!(human_size(MAX_RESPONSE_BYTES), "1 MiB");
        assert_eq!(human_size(64 << 10), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
