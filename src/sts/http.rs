//! The HTTP clients STS calls go through: one HTTPS and one plain HTTP client per backend.

use std::cell::OnceCell;

use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::options::ServerOptions;

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
pub(super) fn http_client_for(server: &ServerOptions) -> SharedHttpClient {
    match &server.endpoint_url {
        Some(url) if url.starts_with("http://") => plain_http_client(),
        _ => shared_http_client(),
    }
}
