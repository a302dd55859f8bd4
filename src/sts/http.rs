//! The HTTP clients STS calls go through: one HTTPS and one plain HTTP client per backend,
//! both reading at most [`MAX_RESPONSE_BYTES`] of any answer.

use std::cell::OnceCell;
use std::fmt;
use std::pin::pin;
use std::task::Poll;

use aws_smithy_http_client::tls;
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

use crate::options::ServerOptions;

/// The most of an answer aws_sts reads: an STS answer is a few KiB, and anyone may point
/// endpoint_url at an endpoint of their own.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

thread_local! {
    /// One HTTPS client (TLS configuration, connection pool) for every STS client of the backend.
    static HTTP_CLIENT: OnceCell<SharedHttpClient> = const { OnceCell::new() };
    /// One plain HTTP client for `http://` endpoints (emulators, local proxies): they never
    /// need TLS, so they never pay for loading the system's trust store (~5 ms per backend).
    static PLAIN_HTTP_CLIENT: OnceCell<SharedHttpClient> = const { OnceCell::new() };
}

pub(super) fn shared_http_client() -> SharedHttpClient {
    HTTP_CLIENT.with(|cell| {
        cell.get_or_init(|| {
            limited(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .build_https(),
            )
        })
        .clone()
    })
}

fn plain_http_client() -> SharedHttpClient {
    PLAIN_HTTP_CLIENT.with(|cell| {
        cell.get_or_init(|| limited(aws_smithy_http_client::Builder::new().build_http()))
            .clone()
    })
}

/// The HTTP client for calls to the server's STS endpoint.
pub(super) fn http_client_for(server: &ServerOptions) -> SharedHttpClient {
    match &server.endpoint_url {
        Some(url) if url.starts_with("http://") => plain_http_client(),
        _ => shared_http_client(),
    }
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

/// Wraps a client so that every connector it hands out reads at most
/// [`MAX_RESPONSE_BYTES`] of an answer.
fn limited(inner: SharedHttpClient) -> SharedHttpClient {
    LimitedClient { inner }.into_shared()
}

#[derive(Debug)]
struct LimitedClient {
    inner: SharedHttpClient,
}

impl HttpClient for LimitedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        LimitedConnector {
            inner: self.inner.http_connector(settings, components),
        }
        .into_shared()
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct LimitedConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let origin = origin(request.uri());
        let response = self.inner.call(request);
        HttpConnectorFuture::new(async move { read_limited(response.await?, origin).await })
    }
}

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
    fn sizes_read_as_messages_say_them() {
        assert_eq!(human_size(MAX_RESPONSE_BYTES), "1 MiB");
        assert_eq!(human_size(64 << 10), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
