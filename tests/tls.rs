//! Certificates and proxies, against moto serving HTTPS with a private CA's certificate and
//! small loopback stand-ins (no PostgreSQL): `ca_bundle` and AWS_CA_BUNDLE make the private
//! CA trusted (the option winning); a certificate that fails (unknown issuer, expired, for
//! another name) fails in one attempt, at once, saying what is wrong with it; `proxy_url`
//! and HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY carry requests through a CONNECT
//! proxy, and a proxy that fails is named; instance metadata never goes through a proxy.
//!
//! The environment is process-wide: every test holds [`ENVIRONMENT`] and starts from an
//! environment without any CA bundle or proxy variable.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use aws_sts::error::{FdwError, SqlState};
use aws_sts::options::parse_server;
use aws_sts::sts::{clear_clients, get_caller_identity, Answer, ConnectionSettings};
use common::connection_settings;
use common::faults::{Fault, FaultServer, FAULT_ARN};
use common::proxy::ConnectProxy;
use common::tls::{fixture, TlsEndpoint, Validity, STUB_ARN};

static ENVIRONMENT: Mutex<()> = Mutex::new(());

const PROXY_VARIABLES: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Holds the environment for one test, cleared of CA bundles and proxies, with a new pool
/// of clients (the environment is read as a client is built).
fn environment() -> MutexGuard<'static, ()> {
    let guard = ENVIRONMENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    std::env::remove_var("AWS_CA_BUNDLE");
    for name in PROXY_VARIABLES {
        std::env::remove_var(name);
    }
    clear_clients();
    guard
}

/// Keys in the server's options (moto takes any), 9 attempts, a 10 s timeout, and `extra`.
fn settings(extra: &[(&str, &str)]) -> ConnectionSettings {
    let mut options = vec![
        ("region", "us-east-1"),
        ("timeout", "10s"),
        ("max_error_retry_attempts", "9"),
        ("min_error_retry_delay", "10"),
        ("access_key", "AKIATLSTESTS"),
        ("secret_key", "tls-tests-secret"),
    ];
    options.extend_from_slice(extra);
    connection_settings(&options)
}

fn call(settings: &ConnectionSettings) -> (Result<Answer, FdwError>, Duration) {
    let started = Instant::now();
    let result =
        aws_sts::runtime::block_on_interruptible(get_caller_identity(settings), || false, || {})
            .expect("not interrupted");
    (result, started.elapsed())
}

fn assert_moto_answered(result: Result<Answer, FdwError>) {
    let answer = result.expect("moto answers over TLS");
    assert_eq!(answer.identity.account_id, "123456789012");
    assert!(answer.identity.arn.starts_with("arn:aws:"), "{answer:?}");
}

fn detail(error: &FdwError) -> &str {
    error.detail.as_deref().unwrap_or_default()
}

fn hint(error: &FdwError) -> &str {
    error.hint.as_deref().unwrap_or_default()
}

// --- CA bundles ------------------------------------------------------------------------------

#[test]
fn moto_over_tls_answers_with_ca_bundle() {
    let _environment = environment();
    let fixture = fixture();
    let ca = fixture.pki.ca_file();
    for host in ["localhost", "127.0.0.1"] {
        let url = fixture.moto_url(host);
        let (result, elapsed) = call(&settings(&[("endpoint_url", &url), ("ca_bundle", &ca)]));
        println!("{url} with ca_bundle: {elapsed:?}");
        assert_moto_answered(result);
    }
}

#[test]
fn aws_ca_bundle_in_the_environment_is_trusted() {
    let _environment = environment();
    let fixture = fixture();
    std::env::set_var("AWS_CA_BUNDLE", fixture.pki.ca_file());
    let url = fixture.moto_url("localhost");
    let (result, _) = call(&settings(&[("endpoint_url", &url)]));
    assert_moto_answered(result);
}

#[test]
fn ca_bundle_wins_over_aws_ca_bundle() {
    let _environment = environment();
    let fixture = fixture();
    let url = fixture.moto_url("localhost");
    // The environment's bundle does not hold the CA; the option's does.
    std::env::set_var("AWS_CA_BUNDLE", fixture.other.ca_file());
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
    ]));
    assert_moto_answered(result);
    // And the other way round: the option's bundle is the one that counts.
    std::env::set_var("AWS_CA_BUNDLE", fixture.pki.ca_file());
    clear_clients();
    let other = fixture.other.ca_file();
    let (result, _) = call(&settings(&[("endpoint_url", &url), ("ca_bundle", &other)]));
    let error = result.expect_err("the option's bundle lacks the CA");
    assert!(error.message.ends_with("(UnknownIssuer)"), "{error}");
    assert!(
        detail(&error).contains(&format!("Trusted: the CAs in {other} (ca_bundle).")),
        "{error}"
    );
}

/// What a rejected certificate costs: one connection, one failed handshake, no retry.
fn assert_rejected_once(
    name: &str,
    endpoint: &TlsEndpoint,
    error: &FdwError,
    elapsed: Duration,
    code: &str,
) {
    println!(
        "{name}: {elapsed:?}, {} connection(s), {} handshake(s): {error}",
        endpoint.connection_count(),
        endpoint.handshake_count()
    );
    assert_eq!(
        error.state,
        SqlState::UnableToEstablishConnection,
        "{error}"
    );
    assert!(error.message.ends_with(&format!("({code})")), "{error}");
    assert!(hint(error).contains("ca_bundle"), "{error}");
    assert!(detail(error).contains("1 of at most 9 attempts"), "{error}");
    assert!(!error.message.contains("after"), "{error}");
    assert_eq!(endpoint.connection_count(), 1, "retried");
    assert_eq!(endpoint.handshake_count(), 0);
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
    assert!(!error.to_string().contains("tls-tests-secret"), "{error}");
}

#[test]
fn without_a_bundle_a_private_ca_is_an_unknown_issuer_after_one_attempt() {
    let _environment = environment();
    let fixture = fixture();
    let leaf = fixture
        .pki
        .leaf("unknown", &["localhost", "127.0.0.1"], Validity::Current);
    let endpoint = TlsEndpoint::start(&leaf);
    let url = format!("https://127.0.0.1:{}", endpoint.port);
    let (result, elapsed) = call(&settings(&[("endpoint_url", &url)]));
    let error = result.expect_err("the system does not trust the private CA");
    assert_rejected_once(
        "unknown issuer",
        &endpoint,
        &error,
        elapsed,
        "UnknownIssuer",
    );
    assert_eq!(
        error.message,
        format!("the certificate of {url} is not issued by a trusted CA (UnknownIssuer)")
    );
    assert!(
        detail(&error).contains("Trusted: the system's CAs"),
        "{error}"
    );
    assert!(
        detail(&error).contains("Not retried: another attempt would meet the same certificate."),
        "{error}"
    );
    assert!(hint(&error).contains("AWS_CA_BUNDLE"), "{error}");
}

#[test]
fn an_expired_certificate_fails_once_and_says_so() {
    let _environment = environment();
    let fixture = fixture();
    let leaf = fixture
        .pki
        .leaf("expired", &["localhost", "127.0.0.1"], Validity::Expired);
    let endpoint = TlsEndpoint::start(&leaf);
    let url = format!("https://localhost:{}", endpoint.port);
    let (result, elapsed) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
    ]));
    let error = result.expect_err("an expired certificate");
    assert_rejected_once("expired", &endpoint, &error, elapsed, "Expired");
    assert_eq!(
        error.message,
        format!("the certificate of {url} has expired (Expired)")
    );
    assert!(detail(&error).contains("certificate expired"), "{error}");
}

#[test]
fn a_certificate_for_another_name_fails_once_and_says_so() {
    let _environment = environment();
    let fixture = fixture();
    let leaf = fixture
        .pki
        .leaf("elsewhere", &["sts.elsewhere.example"], Validity::Current);
    let endpoint = TlsEndpoint::start(&leaf);
    let url = format!("https://localhost:{}", endpoint.port);
    let (result, elapsed) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
    ]));
    let error = result.expect_err("a certificate for another name");
    assert_rejected_once(
        "another name",
        &endpoint,
        &error,
        elapsed,
        "NotValidForName",
    );
    assert_eq!(
        error.message,
        format!("the certificate of {url} is not valid for the name localhost (NotValidForName)")
    );
    // rustls says which names it is valid for.
    assert!(detail(&error).contains("sts.elsewhere.example"), "{error}");
}

#[test]
fn the_stub_endpoint_answers_once_its_ca_is_trusted() {
    // The counterpart of the failures above: the same endpoint, trusted, answers.
    let _environment = environment();
    let fixture = fixture();
    let leaf = fixture
        .pki
        .leaf("stub", &["localhost", "127.0.0.1"], Validity::Current);
    let endpoint = TlsEndpoint::start(&leaf);
    let url = format!("https://127.0.0.1:{}", endpoint.port);
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
    ]));
    assert_eq!(result.expect("trusted").identity.arn, STUB_ARN);
    assert_eq!(endpoint.handshake_count(), 1);
}

#[test]
fn a_missing_ca_bundle_is_named_at_call_time() {
    let _environment = environment();
    let fixture = fixture();
    let missing = fixture.pki.dir.join("missing.pem");
    let missing = missing.to_string_lossy();
    let url = fixture.moto_url("localhost");
    let (result, elapsed) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &missing),
    ]));
    let error = result.expect_err("no such bundle");
    println!("missing bundle: {elapsed:?}: {error}");
    assert_eq!(error.state, SqlState::UnableToEstablishConnection);
    assert_eq!(
        error.message,
        format!(
            "could not use the CA bundle {missing} (ca_bundle): No such file or directory (os \
             error 2)"
        )
    );
    assert!(hint(&error).contains("PEM file"), "{error}");
    assert!(
        detail(&error).contains("1 of at most 9 attempts"),
        "{error}"
    );
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
    // Once the file is there, the same client reads it.
    std::fs::copy(fixture.pki.ca_file(), &*missing).unwrap();
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &missing),
    ]));
    assert_moto_answered(result);
    std::fs::remove_file(&*missing).unwrap();
}

#[test]
fn an_invalid_ca_bundle_is_named_at_call_time() {
    let _environment = environment();
    let fixture = fixture();
    let url = fixture.moto_url("localhost");
    let garbled = fixture.pki.dir.join("garbled.pem");
    std::fs::write(
        &garbled,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let garbled = garbled.to_string_lossy().into_owned();
    std::env::set_var("AWS_CA_BUNDLE", &garbled);
    let (result, _) = call(&settings(&[("endpoint_url", &url)]));
    let error = result.expect_err("not a CA certificate");
    assert!(
        error.message.starts_with(&format!(
            "could not use the CA bundle {garbled} (AWS_CA_BUNDLE): certificate 1 of it is not \
             a valid CA certificate"
        )),
        "{error}"
    );
    // A key is not a certificate.
    let key = fixture
        .pki
        .dir
        .join("moto.key")
        .to_string_lossy()
        .into_owned();
    std::env::set_var("AWS_CA_BUNDLE", &key);
    clear_clients();
    let (result, _) = call(&settings(&[("endpoint_url", &url)]));
    let error = result.expect_err("no certificate");
    assert_eq!(
        error.message,
        format!(
            "could not use the CA bundle {key} (AWS_CA_BUNDLE): it holds no PEM certificate \
             (-----BEGIN CERTIFICATE-----)"
        )
    );
}

#[test]
fn a_bundle_only_matters_to_https() {
    let _environment = environment();
    std::env::set_var("AWS_CA_BUNDLE", "/nonexistent/aws_sts-ca.pem");
    let server = FaultServer::start(vec![], Fault::Answer);
    let (result, _) = call(&settings(&[("endpoint_url", &server.url)]));
    assert_eq!(result.expect("plain HTTP").identity.arn, FAULT_ARN);
}

// --- Proxies ---------------------------------------------------------------------------------

#[test]
fn proxy_url_tunnels_https_to_moto() {
    let _environment = environment();
    let fixture = fixture();
    let proxy = ConnectProxy::start();
    let url = fixture.moto_url("localhost");
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
        ("proxy_url", &proxy.url),
    ]));
    assert_moto_answered(result);
    assert_eq!(
        proxy.seen(),
        vec![format!("CONNECT localhost:{}", fixture.moto.port)]
    );
}

#[test]
fn proxy_url_forwards_plain_http() {
    let _environment = environment();
    let proxy = ConnectProxy::start();
    let server = FaultServer::start(vec![], Fault::Answer);
    let (result, _) = call(&settings(&[
        ("endpoint_url", &server.url),
        ("proxy_url", &proxy.url),
    ]));
    assert_eq!(result.expect("through the proxy").identity.arn, FAULT_ARN);
    assert_eq!(proxy.seen(), vec![format!("POST {}/", server.url)]);
}

#[test]
fn https_proxy_in_the_environment_carries_loopback_endpoints_too() {
    // The proxy matcher exempts no host by default, loopback included: only NO_PROXY does.
    let _environment = environment();
    let fixture = fixture();
    let proxy = ConnectProxy::start();
    std::env::set_var("HTTPS_PROXY", &proxy.url);
    let url = fixture.moto_url("127.0.0.1");
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
    ]));
    assert_moto_answered(result);
    assert_eq!(
        proxy.seen(),
        vec![format!("CONNECT 127.0.0.1:{}", fixture.moto.port)]
    );
}

#[test]
fn no_proxy_bypasses_the_proxy_for_hosts_as_written() {
    let _environment = environment();
    let fixture = fixture();
    let proxy = ConnectProxy::start();
    std::env::set_var("HTTPS_PROXY", &proxy.url);
    std::env::set_var("NO_PROXY", "127.0.0.1");
    let ca = fixture.pki.ca_file();
    let direct = fixture.moto_url("127.0.0.1");
    let (result, _) = call(&settings(&[("endpoint_url", &direct), ("ca_bundle", &ca)]));
    assert_moto_answered(result);
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    // NO_PROXY compares hosts as the URL writes them: localhost is not 127.0.0.1.
    let named = fixture.moto_url("localhost");
    let (result, _) = call(&settings(&[("endpoint_url", &named), ("ca_bundle", &ca)]));
    assert_moto_answered(result);
    assert_eq!(
        proxy.seen(),
        vec![format!("CONNECT localhost:{}", fixture.moto.port)]
    );
}

#[test]
fn lower_case_and_all_proxy_variables_are_read() {
    let _environment = environment();
    let fixture = fixture();
    let ca = fixture.pki.ca_file();
    let url = fixture.moto_url("localhost");
    let expected = vec![format!("CONNECT localhost:{}", fixture.moto.port)];
    // Lower case first, as curl and Python read them.
    let (lower, upper) = (ConnectProxy::start(), ConnectProxy::start());
    std::env::set_var("https_proxy", &lower.url);
    std::env::set_var("HTTPS_PROXY", &upper.url);
    assert_moto_answered(call(&settings(&[("endpoint_url", &url), ("ca_bundle", &ca)])).0);
    assert_eq!(lower.seen(), expected);
    assert!(upper.seen().is_empty());
    std::env::remove_var("https_proxy");
    std::env::remove_var("HTTPS_PROXY");
    clear_clients();
    // ALL_PROXY stands in for a scheme without its own variable.
    let all = ConnectProxy::start();
    std::env::set_var("ALL_PROXY", &all.url);
    assert_moto_answered(call(&settings(&[("endpoint_url", &url), ("ca_bundle", &ca)])).0);
    assert_eq!(all.seen(), expected);
    // HTTP_PROXY carries plain HTTP endpoints.
    std::env::remove_var("ALL_PROXY");
    let http = ConnectProxy::start();
    std::env::set_var("HTTP_PROXY", &http.url);
    clear_clients();
    let server = FaultServer::start(vec![], Fault::Answer);
    let (result, _) = call(&settings(&[("endpoint_url", &server.url)]));
    assert_eq!(result.expect("through HTTP_PROXY").identity.arn, FAULT_ARN);
    assert_eq!(http.seen(), vec![format!("POST {}/", server.url)]);
}

#[test]
fn proxy_credentials_from_the_environment_are_used_and_never_shown() {
    let _environment = environment();
    let fixture = fixture();
    let proxy = ConnectProxy::start();
    let with_credentials = proxy
        .url
        .replace("http://", "http://proxyuser:proxy-password-42@");
    std::env::set_var("HTTPS_PROXY", &with_credentials);
    let url = fixture.moto_url("localhost");
    let ca = fixture.pki.ca_file();
    assert_moto_answered(call(&settings(&[("endpoint_url", &url), ("ca_bundle", &ca)])).0);
    assert_eq!(proxy.seen().len(), 1);
    // A proxy that is not there is named without them.
    let closed =
        common::closed_port_url().replace("http://", "http://proxyuser:proxy-password-42@");
    std::env::set_var("HTTPS_PROXY", &closed);
    clear_clients();
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &ca),
        ("max_error_retry_attempts", "1"),
    ]));
    let error = result.expect_err("no proxy there");
    assert!(
        error
            .message
            .starts_with("could not connect to proxy http://127.0.0.1:"),
        "{error}"
    );
    assert!(!error.to_string().contains("proxy-password-42"), "{error}");
    assert!(!error.to_string().contains("proxyuser"), "{error}");
}

#[test]
fn proxy_url_wins_over_the_environment() {
    let _environment = environment();
    let fixture = fixture();
    let (chosen, ignored) = (ConnectProxy::start(), ConnectProxy::start());
    std::env::set_var("HTTPS_PROXY", &ignored.url);
    // NO_PROXY is the environment's too: it does not apply to proxy_url.
    std::env::set_var("NO_PROXY", "localhost");
    let url = fixture.moto_url("localhost");
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
        ("proxy_url", &chosen.url),
    ]));
    assert_moto_answered(result);
    assert_eq!(chosen.seen().len(), 1);
    assert!(ignored.seen().is_empty());
}

#[test]
fn an_unreachable_proxy_is_named() {
    let _environment = environment();
    let fixture = fixture();
    let url = fixture.moto_url("localhost");
    let ca = fixture.pki.ca_file();
    let closed = common::closed_port_url();
    let (result, elapsed) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &ca),
        ("proxy_url", &closed),
        ("max_error_retry_attempts", "2"),
    ]));
    let error = result.expect_err("no proxy there");
    println!("unreachable proxy_url: {elapsed:?}: {error}");
    assert_eq!(error.state, SqlState::UnableToEstablishConnection);
    // Retried as an unreachable endpoint is.
    assert_eq!(
        error.message,
        format!("could not connect to proxy {closed} (proxy_url) after 2 attempts")
    );
    assert!(hint(&error).starts_with("Check proxy_url"), "{error}");
    // The same from the environment, for a plain HTTP endpoint.
    std::env::set_var("HTTP_PROXY", &closed);
    clear_clients();
    let server = FaultServer::start(vec![], Fault::Answer);
    let (result, _) = call(&settings(&[
        ("endpoint_url", &server.url),
        ("max_error_retry_attempts", "1"),
    ]));
    let error = result.expect_err("no proxy there");
    assert_eq!(
        error.message,
        format!("could not connect to proxy {closed} (HTTP_PROXY)")
    );
    assert!(hint(&error).contains("NO_PROXY"), "{error}");
}

#[test]
fn a_proxy_that_refuses_the_tunnel_is_named_and_not_retried() {
    let _environment = environment();
    let fixture = fixture();
    let proxy = ConnectProxy::refusing("403 Forbidden");
    std::env::set_var("HTTPS_PROXY", &proxy.url);
    let url = fixture.moto_url("localhost");
    let (result, elapsed) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
    ]));
    let error = result.expect_err("the proxy says no");
    println!("refused tunnel: {elapsed:?}: {error}");
    assert_eq!(
        error.message,
        format!(
            "proxy {} (HTTPS_PROXY) refused to open a tunnel to localhost:{}",
            proxy.url, fixture.moto.port
        )
    );
    assert_eq!(proxy.seen().len(), 1, "retried");
    let authenticating = ConnectProxy::refusing("407 Proxy Authentication Required");
    std::env::set_var("HTTPS_PROXY", &authenticating.url);
    clear_clients();
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
    ]));
    let error = result.expect_err("the proxy wants credentials");
    assert_eq!(
        error.message,
        format!(
            "proxy {} (HTTPS_PROXY) requires authentication (407)",
            authenticating.url
        )
    );
    assert!(
        hint(&error).contains("http://user:password@host:port"),
        "{error}"
    );
}

#[test]
fn a_proxy_aws_sts_cannot_talk_to_is_named() {
    let _environment = environment();
    std::env::set_var("ALL_PROXY", "socks5://127.0.0.1:1080");
    let fixture = fixture();
    let url = fixture.moto_url("localhost");
    let (result, _) = call(&settings(&[("endpoint_url", &url)]));
    let error = result.expect_err("a SOCKS proxy");
    assert_eq!(
        error.message,
        "ALL_PROXY names a proxy aws_sts cannot use: socks5://127.0.0.1:1080"
    );
    assert!(
        detail(&error).contains("1 of at most 9 attempts"),
        "{error}"
    );
    // NO_PROXY still bypasses it.
    std::env::set_var("NO_PROXY", "localhost");
    clear_clients();
    let (result, _) = call(&settings(&[
        ("endpoint_url", &url),
        ("ca_bundle", &fixture.pki.ca_file()),
    ]));
    assert_moto_answered(result);
}

#[test]
fn a_certificate_failure_through_a_proxy_names_the_proxy() {
    let _environment = environment();
    let fixture = fixture();
    let proxy = ConnectProxy::start();
    let url = fixture.moto_url("localhost");
    let (result, elapsed) = call(&settings(&[
        ("endpoint_url", &url),
        ("proxy_url", &proxy.url),
    ]));
    let error = result.expect_err("the private CA is not trusted");
    println!("unknown issuer through a proxy: {elapsed:?}");
    assert!(error.message.ends_with("(UnknownIssuer)"), "{error}");
    assert!(
        detail(&error).contains(&format!(
            "The connection went through proxy {} (proxy_url).",
            proxy.url
        )),
        "{error}"
    );
    assert_eq!(proxy.seen().len(), 1, "retried");
}

// --- Instance metadata -----------------------------------------------------------------------

/// A stand-in for the instance metadata service handing out keys moto takes.
struct MetadataService {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl MetadataService {
    fn start() -> MetadataService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buffer = [0u8; 8192];
                let read = stream.read(&mut buffer).unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, body) = match path.as_str() {
                    "/latest/api/token" => ("200 OK", "tls-imds-token".to_string()),
                    "/latest/meta-data/iam/security-credentials/" => {
                        ("200 OK", "tls-role".to_string())
                    }
                    "/latest/meta-data/iam/security-credentials/tls-role" => (
                        "200 OK",
                        "{\"Code\":\"Success\",\"LastUpdated\":\"2026-01-01T00:00:00Z\",\
                         \"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"AKIAMETADATA\",\
                         \"SecretAccessKey\":\"metadata-secret\",\"Token\":\"metadata-token\",\
                         \"Expiration\":\"2099-01-01T00:00:00Z\"}"
                            .to_string(),
                    ),
                    _ => ("404 Not Found", String::new()),
                };
                let ttl = if path == "/latest/api/token" {
                    "x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"
                } else {
                    ""
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{ttl}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        MetadataService { url, requests }
    }
}

#[test]
fn instance_metadata_never_goes_through_the_proxy() {
    let _environment = environment();
    let fixture = fixture();
    let metadata = MetadataService::start();
    for name in [
        "AWS_EC2_METADATA_DISABLED",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(name);
    }
    std::env::set_var("AWS_CONFIG_FILE", "/dev/null");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    std::env::set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &metadata.url);
    let proxy = ConnectProxy::start();
    std::env::set_var("HTTP_PROXY", &proxy.url);
    std::env::set_var("HTTPS_PROXY", &proxy.url);
    let url = fixture.moto_url("localhost");
    let options: Vec<(String, String)> = [
        ("region", "us-east-1"),
        ("endpoint_url", url.as_str()),
        ("ca_bundle", &fixture.pki.ca_file()),
        ("max_error_retry_attempts", "1"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    let settings = ConnectionSettings::new(parse_server(&options).unwrap(), None);
    let (result, _) = call(&settings);
    std::env::remove_var("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    assert_moto_answered(result);
    assert!(metadata.requests.load(Ordering::SeqCst) >= 2);
    // STS went through the proxy; instance metadata did not.
    assert_eq!(
        proxy.seen(),
        vec![format!("CONNECT localhost:{}", fixture.moto.port)]
    );
}

#[test]
fn tls_to_a_plain_port_fails_once_saying_so() {
    let _environment = environment();
    let server = FaultServer::start(vec![], Fault::Answer);
    let https = server.url.replace("http://", "https://");
    let (result, elapsed) = call(&settings(&[("endpoint_url", &https)]));
    let error = result.expect_err("no TLS there");
    println!("TLS to a plain port: {elapsed:?}: {error}");
    assert_eq!(error.state, SqlState::UnableToEstablishConnection);
    assert_eq!(
        error.message,
        format!("the TLS handshake with {https} failed")
    );
    assert!(hint(&error).contains("http://"), "{error}");
    assert_eq!(server.request_count(), 1, "retried");
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
}
