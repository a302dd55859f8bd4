//! Without ca_bundle or AWS_CA_BUNDLE the system's store is trusted, as rustls-native-certs
//! finds it: SSL_CERT_FILE (or SSL_CERT_DIR) when set. The store is loaded once per process,
//! so this binary holds one test, which sets SSL_CERT_FILE before any TLS client exists.

mod common;

use aws_sts::options::parse_server;
use aws_sts::sts::{get_caller_identity, ConnectionSettings};
use common::tls::{Pki, TlsEndpoint, Validity, STUB_ARN};

#[test]
fn ssl_cert_file_still_chooses_the_system_store() {
    let pki = Pki::new("system");
    let leaf = pki.leaf("endpoint", &["localhost", "127.0.0.1"], Validity::Current);
    let endpoint = TlsEndpoint::start(&leaf);
    std::env::remove_var("AWS_CA_BUNDLE");
    std::env::remove_var("SSL_CERT_DIR");
    std::env::set_var("SSL_CERT_FILE", pki.ca_file());
    let url = format!("https://localhost:{}", endpoint.port);
    let options: Vec<(String, String)> = [
        ("region", "us-east-1"),
        ("endpoint_url", url.as_str()),
        ("access_key", "AKIASYSTEMROOTS"),
        ("secret_key", "system-roots-secret"),
        ("max_error_retry_attempts", "1"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    let settings = ConnectionSettings::new(parse_server(&options).unwrap(), None);
    let answer =
        aws_sts::runtime::block_on_interruptible(get_caller_identity(&settings), || false, || {})
            .expect("not interrupted")
            .expect("the CA in SSL_CERT_FILE is trusted");
    assert_eq!(answer.identity.arn, STUB_ARN);
    assert_eq!(endpoint.handshake_count(), 1);
}
