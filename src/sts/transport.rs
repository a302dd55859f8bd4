//! How requests leave the process: which CAs an endpoint's certificate must chain to, and
//! which HTTP proxy carries a request. Both come from the server's options (`ca_bundle`,
//! `proxy_url`), else from the environment as the AWS CLI and boto3 read it
//! (`AWS_CA_BUNDLE`; `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).
//!
//! A [`TransportConfig`] is resolved for each call (the pooled STS client is built anew when
//! it changes, as when a CA bundle is edited); the HTTP clients (src/sts/http.rs) are
//! cached per configuration, and say what went wrong with a certificate, a CA bundle or a
//! proxy as a [`TransportError`].

use std::fmt;
use std::io::Read;
use std::time::SystemTime;

use aws_smithy_runtime_api::client::result::ConnectorError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::options::ServerOptions;

/// The environment variable that names a CA bundle, as the AWS CLI and boto3 read it.
pub const CA_BUNDLE_VARIABLE: &str = "AWS_CA_BUNDLE";

/// The most of a CA bundle aws_sts reads (the whole Mozilla set is about 220 KiB).
const MAX_BUNDLE_BYTES: u64 = 16 << 20;

/// Everything that decides how a request leaves the process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct TransportConfig {
    pub(super) trust: Trust,
    pub(super) proxies: Proxies,
}

impl TransportConfig {
    /// The server's options, else the environment.
    pub(super) fn for_server(server: &ServerOptions) -> Self {
        TransportConfig {
            trust: Trust::for_server(server),
            proxies: Proxies::for_server(server),
        }
    }

    /// The same trust without any proxy: for instance metadata and container credentials,
    /// link-local endpoints no proxy can reach, whose answers must not pass through one.
    pub(super) fn direct(&self) -> Self {
        TransportConfig {
            trust: self.trust.clone(),
            proxies: Proxies::default(),
        }
    }
}

/// The CAs an endpoint's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Trust {
    /// The system's store, as rustls-native-certs finds it: SSL_CERT_FILE or SSL_CERT_DIR when
    /// set, else the operating system's (on Debian, /etc/ssl/certs).
    System,
    /// A PEM bundle, instead of the system's store (as boto3 takes AWS_CA_BUNDLE).
    Bundle(Bundle),
}

/// A CA bundle: a PEM file of CA certificates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Bundle {
    pub(super) path: String,
    /// What named it: `ca_bundle` or `AWS_CA_BUNDLE`.
    pub(super) named_by: &'static str,
    /// The file's modification time and length when the configuration was resolved: an
    /// edited or replaced file makes another configuration, so the pooled client is built
    /// anew and reads it.
    stamp: Option<(SystemTime, u64)>,
}

impl Trust {
    fn for_server(server: &ServerOptions) -> Trust {
        let (path, named_by) = match &server.ca_bundle {
            Some(path) => (path.clone(), "ca_bundle"),
            None => match std::env::var(CA_BUNDLE_VARIABLE) {
                Ok(path) if !path.trim().is_empty() => (path, CA_BUNDLE_VARIABLE),
                _ => return Trust::System,
            },
        };
        let stamp = std::fs::metadata(&path)
            .ok()
            .and_then(|meta| Some((meta.modified().ok()?, meta.len())));
        Trust::Bundle(Bundle {
            path,
            named_by,
            stamp,
        })
    }

    /// The CAs trusted, for messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Trust::Bundle(bundle) => {
                format!("the CAs in {} ({})", bundle.path, bundle.named_by)
            }
            Trust::System => {
                let named = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
                    .into_iter()
                    .filter_map(|name| {
                        std::env::var(name)
                            .ok()
                            .filter(|value| !value.is_empty())
                            .map(|value| format!("{name} {value}"))
                    })
                    .collect::<Vec<_>>();
                if named.is_empty() {
                    "the system's CAs".to_string()
                } else {
                    format!("the system's CAs ({})", named.join(", "))
                }
            }
        }
    }
}

impl Bundle {
    /// The bundle's PEM text, checked as the TLS client will take it: at least one
    /// certificate, each a valid trust anchor (the client would panic on anything else).
    pub(super) fn load(&self) -> Result<Vec<u8>, Box<TransportError>> {
        let unusable = |problem: String| {
            Box::new(TransportError::CaBundle {
                path: self.path.clone(),
                named_by: self.named_by,
                problem,
            })
        };
        let mut pem = Vec::new();
        std::fs::File::open(&self.path)
            .and_then(|file| file.take(MAX_BUNDLE_BYTES + 1).read_to_end(&mut pem))
            .map_err(|error| unusable(error.to_string()))?;
        if pem.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(unusable(format!(
                "it is larger than the {} MiB aws_sts reads of a CA bundle",
                MAX_BUNDLE_BYTES >> 20
            )));
        }
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| unusable(format!("it is not valid PEM: {error}")))?;
        if certificates.is_empty() {
            return Err(unusable(
                "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        let mut store = rustls::RootCertStore::empty();
        for (index, certificate) in certificates.into_iter().enumerate() {
            store.add(certificate).map_err(|error| {
                unusable(format!(
                    "certificate {} of it is not a valid CA certificate: {error}",
                    index + 1
                ))
            })?;
        }
        Ok(pem)
    }
}

/// One HTTP proxy, and what named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Proxy {
    /// As given: from the environment it may carry user information (proxy credentials).
    url: String,
    /// `proxy_url`, or the environment variable that named it (`HTTPS_PROXY`, `https_proxy`...).
    pub(super) named_by: &'static str,
}

impl Proxy {
    /// The URL as the client takes it: http:// when the environment gives none, as curl does.
    pub(super) fn url(&self) -> String {
        if self.url.contains("://") {
            self.url.clone()
        } else {
            format!("http://{}", self.url)
        }
    }

    /// Whether aws_sts can talk to it: plain HTTP, with a host.
    pub(super) fn usable(&self) -> bool {
        let url = self.url();
        url.parse::<http::Uri>().is_ok_and(|uri| {
            uri.scheme_str() == Some("http") && uri.host().is_some_and(|host| !host.is_empty())
        })
    }

    /// The scheme, host and port, for messages: never the user information.
    pub(super) fn shown(&self) -> String {
        let url = self.url();
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", &url));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority
            .rsplit_once('@')
            .map_or(authority, |(_, after)| after);
        format!("{scheme}://{host_port}")
    }
}

/// The proxies of the two schemes, and the hosts that bypass them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(super) struct Proxies {
    pub(super) http: Option<Proxy>,
    pub(super) https: Option<Proxy>,
    /// NO_PROXY's rules, as curl reads them: host names (with their subdomains), IP
    /// addresses and networks, `*`; hosts are compared as the URL writes them.
    pub(super) no_proxy: String,
}

impl Proxies {
    /// `proxy_url` for both schemes and every host (NO_PROXY included, it is the
    /// environment's); else the environment, each variable in lower case first, as curl and
    /// Python read them: `ALL_PROXY` stands in for a scheme without its own.
    fn for_server(server: &ServerOptions) -> Proxies {
        if let Some(url) = &server.proxy_url {
            let proxy = Proxy {
                url: url.clone(),
                named_by: "proxy_url",
            };
            return Proxies {
                http: Some(proxy.clone()),
                https: Some(proxy),
                no_proxy: String::new(),
            };
        }
        let variable = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                std::env::var(name)
                    .ok()
                    .map(|value| value.trim().to_string())
                    .filter(|value| !value.is_empty())
                    .map(|url| Proxy {
                        url,
                        named_by: name,
                    })
            })
        };
        let all = variable(["all_proxy", "ALL_PROXY"]);
        Proxies {
            http: variable(["http_proxy", "HTTP_PROXY"]).or_else(|| all.clone()),
            https: variable(["https_proxy", "HTTPS_PROXY"]).or(all),
            no_proxy: variable(["no_proxy", "NO_PROXY"])
                .map(|rules| rules.url)
                .unwrap_or_default(),
        }
    }
}

/// What went wrong on the way to an endpoint, before any answer: a failed connector call
/// carries it (as a user error when no new attempt can help, so the SDK does not retry).
#[derive(Debug)]
pub(super) enum TransportError {
    /// The CA bundle could not be read, or is not a PEM file of CA certificates.
    CaBundle {
        path: String,
        named_by: &'static str,
        problem: String,
    },
    /// The TLS handshake failed: the certificate was rejected, or the endpoint does not
    /// speak TLS as rustls does.
    Tls {
        /// The scheme, host and port the request went to.
        origin: String,
        host: String,
        /// The proxy the connection went through, shown with what named it.
        proxy: Option<String>,
        /// The CAs trusted, described.
        trust: String,
        error: rustls::Error,
        cause: Box<ConnectorError>,
    },
    /// The request's proxy failed it, or cannot be used.
    Proxy {
        /// The proxy's scheme, host and port.
        proxy: String,
        named_by: &'static str,
        /// The host and port the request was for.
        target: String,
        failure: ProxyFailure,
        cause: Option<Box<ConnectorError>>,
    },
}

/// How a proxy failed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProxyFailure {
    /// No connection to the proxy.
    Connect,
    /// No connection through the proxy within connect_timeout.
    Timeout,
    /// The proxy answered CONNECT with something other than 200.
    TunnelRefused,
    /// The proxy answered 407.
    AuthenticationRequired,
    /// The tunnel failed some other way.
    Tunnel,
    /// Not a proxy aws_sts can talk to (not http://).
    Unusable,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::CaBundle {
                path,
                named_by,
                problem,
            } => write!(
                f,
                "could not use the CA bundle {path} ({named_by}): {problem}"
            ),
            TransportError::Tls { origin, error, .. } => {
                write!(f, "the TLS handshake with {origin} failed: {error}")
            }
            TransportError::Proxy {
                proxy,
                named_by,
                target,
                failure,
                ..
            } => match failure {
                ProxyFailure::Connect => {
                    write!(f, "could not connect to proxy {proxy} ({named_by})")
                }
                ProxyFailure::Timeout => write!(
                    f,
                    "could not connect to {target} through proxy {proxy} ({named_by}) in time"
                ),
                ProxyFailure::TunnelRefused => write!(
                    f,
                    "proxy {proxy} ({named_by}) refused to open a tunnel to {target}"
                ),
                ProxyFailure::AuthenticationRequired => write!(
                    f,
                    "proxy {proxy} ({named_by}) requires authentication (407)"
                ),
                ProxyFailure::Tunnel => write!(
                    f,
                    "proxy {proxy} ({named_by}) failed to open a tunnel to {target}"
                ),
                ProxyFailure::Unusable => {
                    write!(f, "{named_by} names a proxy aws_sts cannot use: {proxy}")
                }
            },
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Tls { cause, .. } => Some(cause.as_ref()),
            TransportError::Proxy {
                cause: Some(cause), ..
            } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(url: &str) -> Proxy {
        Proxy {
            url: url.into(),
            named_by: "HTTPS_PROXY",
        }
    }

    #[test]
    fn a_proxy_is_shown_without_its_credentials() {
        assert_eq!(
            proxy("http://user:pa%40ss@proxy.example.com:3128/").shown(),
            "http://proxy.example.com:3128"
        );
        assert_eq!(proxy("proxy:3128").shown(), "http://proxy:3128");
        assert_eq!(proxy("proxy:3128").url(), "http://proxy:3128");
        assert_eq!(
            proxy("socks5://u:p@[::1]:1080").shown(),
            "socks5://[::1]:1080"
        );
    }

    #[test]
    fn only_plain_http_proxies_are_usable() {
        assert!(proxy("http://127.0.0.1:3128").usable());
        assert!(proxy("proxy.example.com:3128").usable());
        assert!(proxy("http://u:p@proxy:3128").usable());
        assert!(!proxy("https://proxy:3128").usable());
        assert!(!proxy("socks5://proxy:1080").usable());
        assert!(!proxy("http://").usable());
    }

    #[test]
    fn the_option_wins_over_the_environment_for_both_schemes() {
        let server = ServerOptions {
            proxy_url: Some("http://127.0.0.1:3128".into()),
            ca_bundle: Some("/etc/ssl/private-ca.pem".into()),
            ..ServerOptions::default()
        };
        let config = TransportConfig::for_server(&server);
        let expected = Some(Proxy {
            url: "http://127.0.0.1:3128".into(),
            named_by: "proxy_url",
        });
        assert_eq!(config.proxies.http, expected);
        assert_eq!(config.proxies.https, expected);
        assert_eq!(config.proxies.no_proxy, "");
        match &config.trust {
            Trust::Bundle(bundle) => {
                assert_eq!(bundle.path, "/etc/ssl/private-ca.pem");
                assert_eq!(bundle.named_by, "ca_bundle");
                assert_eq!(bundle.stamp, None, "no such file");
            }
            Trust::System => panic!("the option names a bundle"),
        }
        assert_eq!(
            config.trust.describe(),
            "the CAs in /etc/ssl/private-ca.pem (ca_bundle)"
        );
        let direct = config.direct();
        assert_eq!(direct.proxies, Proxies::default());
        assert_eq!(direct.trust, config.trust);
    }

    #[test]
    fn the_systems_own_bundle_is_a_valid_bundle() {
        // As AWS_CA_BUNDLE often names it (Debian's, here).
        let path = "/etc/ssl/certs/ca-certificates.crt";
        if std::path::Path::new(path).exists() {
            let bundle = Bundle {
                path: path.into(),
                named_by: CA_BUNDLE_VARIABLE,
                stamp: None,
            };
            let pem = bundle.load().expect("every CA of the system's bundle");
            assert!(pem.len() > 10_000);
        }
    }

    #[test]
    fn a_bundle_must_hold_valid_certificates() {
        let dir = std::env::temp_dir().join(format!("aws_sts-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = |name: &str, content: &str| {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            Bundle {
                path: path.to_string_lossy().into_owned(),
                named_by: "ca_bundle",
                stamp: None,
            }
        };
        let problem = |bundle: Bundle| match bundle.load().map_err(|error| *error) {
            Err(TransportError::CaBundle { problem, path, .. }) => {
                assert_eq!(path, bundle.path);
                problem
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problem(bundle("empty.pem", "")),
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        assert_eq!(
            problem(bundle(
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            )),
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        let garbled = problem(bundle(
            "garbled.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        ));
        assert!(garbled.starts_with("it is not valid PEM"), "{garbled}");
        let not_a_certificate = problem(bundle(
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ));
        assert!(
            not_a_certificate.starts_with("certificate 1 of it is not a valid CA certificate"),
            "{not_a_certificate}"
        );
        let missing = problem(Bundle {
            path: dir.join("missing.pem").to_string_lossy().into_owned(),
            named_by: CA_BUNDLE_VARIABLE,
            stamp: None,
        });
        assert!(missing.contains("No such file"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
