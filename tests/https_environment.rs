//! What the database server's environment does to HTTPS, proxies and endpoints, through
//! PostgreSQL: clusters of their own (tests/common/cluster.rs) started with AWS_CA_BUNDLE,
//! SSL_CERT_FILE / SSL_CERT_DIR, HTTPS_PROXY / HTTP_PROXY / NO_PROXY, AWS_ENDPOINT_URL and
//! AWS_ENDPOINT_URL_STS, against moto serving a private CA's certificate
//! (tests/common/tls.rs) and loopback proxies that record what passes (tests/common/proxy.rs).
//! Each checks that no secret reached its cluster's log, as tests/run.sh does for the
//! scratch cluster's.

mod common;

use common::cluster::ExtraCluster;
use common::proxy::ConnectProxy;
use common::tls::{fixture, Pki, Validity, STUB_ARN};
use common::*;

const SECRET: &str = "https-environment-secret-55";
const ROLE_SECRET: &str = "https-environment-role-secret-56";
const PROXY_PASSWORD: &str = "https-proxy-password-57";

fn keys() -> Keys {
    remember_secret(ROLE_SECRET);
    remember_secret(PROXY_PASSWORD);
    Keys::new("AKIAHTTPSENV", SECRET)
}

/// The table of `server` answers as moto does (any keys: its default account).
fn assert_moto_answers(client: &mut postgres::Client, server: &str) {
    let row = client
        .query_one(
            &format!("SELECT arn, account_id FROM {server}.aws_sts_caller_identity"),
            &[],
        )
        .unwrap_or_else(|error| panic!("{server}: {:?}", error.as_db_error()));
    assert!(row.get::<_, String>(0).starts_with("arn:aws:"), "{server}");
    assert_eq!(row.get::<_, String>(1), "123456789012", "{server}");
}

fn endpoint_line(client: &mut postgres::Client, server: &str) -> String {
    let plan = explain(
        client,
        &format!("SELECT * FROM {server}.aws_sts_caller_identity"),
    );
    plan.lines()
        .find(|line| line.contains("AWS Endpoint: "))
        .unwrap_or_else(|| panic!("no AWS Endpoint in {plan}"))
        .trim()
        .to_string()
}

/// A server without endpoint_url: EXPLAIN names `endpoint` (from the environment), and the
/// scan gets moto's answer there.
fn answers_from_the_environment(client: &mut postgres::Client, server: &str, endpoint: &str) {
    server_with_keys(client, server, "region 'us-east-1'", Some(&keys()));
    assert_eq!(
        endpoint_line(client, server),
        format!("AWS Endpoint: {endpoint}")
    );
    assert_moto_answers(client, server);
}

fn assert_no_secret_in(cluster: &ExtraCluster) {
    let log = cluster.log();
    for secret in [SECRET, ROLE_SECRET, PROXY_PASSWORD] {
        assert!(!log.contains(secret), "{secret} reached the server log");
    }
}

#[test]
fn aws_ca_bundle_is_trusted_and_aws_endpoint_url_sts_wins() {
    let fixture = fixture();
    let sts = fixture.moto_url("localhost");
    let ca = format!("AWS_CA_BUNDLE={}", fixture.pki.ca_file());
    let general = format!("AWS_ENDPOINT_URL={}", closed_port_url());
    let specific = format!("AWS_ENDPOINT_URL_STS={sts}");
    let cluster = ExtraCluster::start(3, "", &[&ca, &general, &specific]);
    let mut client = cluster.client();
    // No endpoint_url: the environment's, the STS one winning; no ca_bundle: AWS_CA_BUNDLE.
    answers_from_the_environment(
        &mut client,
        "hp_env",
        &format!("{sts} (AWS_ENDPOINT_URL_STS)"),
    );
    // endpoint_url wins over both variables, and AWS_CA_BUNDLE still holds.
    let direct = fixture.moto_url("127.0.0.1");
    server_with_keys(
        &mut client,
        "hp_env_option",
        &format!("endpoint_url '{direct}'"),
        Some(&keys()),
    );
    assert_eq!(
        endpoint_line(&mut client, "hp_env_option"),
        format!("AWS Endpoint: {direct}")
    );
    assert_moto_answers(&mut client, "hp_env_option");
    // A role that is not a superuser, in the same backend: trusting the environment's CA is
    // nothing it needs a privilege for.
    client
        .batch_execute(&format!(
            "CREATE ROLE hp_env_user;
             GRANT USAGE ON FOREIGN SERVER hp_env TO hp_env_user;
             GRANT USAGE ON SCHEMA hp_env TO hp_env_user;
             GRANT SELECT ON hp_env.aws_sts_caller_identity TO hp_env_user;
             CREATE USER MAPPING FOR hp_env_user SERVER hp_env
                 OPTIONS (access_key 'AKIAHTTPSENVROLE', secret_key '{ROLE_SECRET}');
             SET ROLE hp_env_user;"
        ))
        .unwrap();
    assert_moto_answers(&mut client, "hp_env");
    client.batch_execute("RESET ROLE").unwrap();
    // ca_bundle wins over AWS_CA_BUNDLE: a bundle without the CA is an unknown issuer.
    let other = fixture.other.ca_file();
    server_with_keys(
        &mut client,
        "hp_env_other_ca",
        &format!("ca_bundle '{other}', max_error_retry_attempts '3'"),
        Some(&keys()),
    );
    let (state, message, detail, _) =
        db_error(&query_arn(&mut client, "hp_env_other_ca").unwrap_err());
    assert_eq!(state, "HV00N");
    assert_eq!(
        message,
        format!(
            "aws_sts server \"hp_env_other_ca\": the certificate of {sts} is not issued by a \
             trusted CA (UnknownIssuer)"
        )
    );
    assert!(
        detail.contains(&format!("Trusted: the CAs in {other} (ca_bundle).")),
        "{detail}"
    );
    assert!(detail.contains("1 of at most 3 attempts"), "{detail}");
    drop(client);
    assert_no_secret_in(&cluster);
}

#[test]
fn ssl_cert_file_and_ssl_cert_dir_choose_the_system_store_and_aws_endpoint_url_is_read() {
    // SSL_CERT_FILE holds the main CA, SSL_CERT_DIR a directory with the other one: both
    // are trusted, and a third CA is not.
    let fixture = fixture();
    let url = fixture.moto_url("127.0.0.1");
    let dir = fixture.pki.dir.join("hp-cert-dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture.other.ca_file(), dir.join("other.pem")).unwrap();
    let (file, dir) = (fixture.pki.ca_file(), dir.to_string_lossy().into_owned());
    let cluster = ExtraCluster::start(
        4,
        "",
        &[
            &format!("SSL_CERT_FILE={file}"),
            &format!("SSL_CERT_DIR={dir}"),
            &format!("AWS_ENDPOINT_URL={url}"),
        ],
    );
    let mut client = cluster.client();
    answers_from_the_environment(
        &mut client,
        "hp_store",
        &format!("{url} (AWS_ENDPOINT_URL)"),
    );
    let from_dir = fixture.other.endpoint("hp-from-dir", Validity::Current);
    server_with_keys(
        &mut client,
        "hp_from_dir",
        &format!("endpoint_url 'https://localhost:{}'", from_dir.port),
        Some(&keys()),
    );
    assert_eq!(query_arn(&mut client, "hp_from_dir").unwrap(), STUB_ARN);
    let third = Pki::new("hp-third");
    let stranger = third.endpoint("hp-stranger", Validity::Current);
    server_with_keys(
        &mut client,
        "hp_stranger",
        &format!("endpoint_url 'https://127.0.0.1:{}'", stranger.port),
        Some(&keys()),
    );
    let (state, message, detail, _) = db_error(&query_arn(&mut client, "hp_stranger").unwrap_err());
    assert_eq!(state, "HV00N");
    assert!(message.ends_with("(UnknownIssuer)"), "{message}");
    assert!(
        detail.contains(&format!(
            "Trusted: the system's CAs (SSL_CERT_FILE {file}, SSL_CERT_DIR {dir})."
        )),
        "{detail}"
    );
    assert_eq!(stranger.connection_count(), 1, "retried");
    drop(client);
    assert_no_secret_in(&cluster);
}

#[test]
fn proxy_variables_carry_requests_no_proxy_bypasses_and_proxy_url_wins() {
    // The scratch cluster's moto, reset once per test binary, holds the IAM user below.
    drop(connect());
    let fixture = fixture();
    let (https_proxy, http_proxy, chosen) = (
        ConnectProxy::start(),
        ConnectProxy::start(),
        ConnectProxy::start(),
    );
    // HTTPS_PROXY with credentials, which no message or log line may show.
    let with_credentials = https_proxy.url.replace(
        "http://",
        &format!("http://hp-proxy-user:{PROXY_PASSWORD}@"),
    );
    let cluster = ExtraCluster::start(
        5,
        "",
        &[
            &format!("HTTPS_PROXY={with_credentials}"),
            &format!("HTTP_PROXY={}", http_proxy.url),
            "NO_PROXY=127.0.0.1",
        ],
    );
    let mut client = cluster.client();
    let ca = format!("ca_bundle '{}', cache 'false'", fixture.pki.ca_file());
    let option = |url: &str| format!("endpoint_url '{url}', {ca}");
    let port = fixture.moto.port;

    // HTTPS to localhost goes through HTTPS_PROXY; to 127.0.0.1, NO_PROXY bypasses it.
    let named = fixture.moto_url("localhost");
    server_with_keys(&mut client, "hp_via_env", &option(&named), Some(&keys()));
    assert_moto_answers(&mut client, "hp_via_env");
    assert_eq!(https_proxy.seen(), [format!("CONNECT localhost:{port}")]);
    let direct = fixture.moto_url("127.0.0.1");
    server_with_keys(&mut client, "hp_bypass", &option(&direct), Some(&keys()));
    assert_moto_answers(&mut client, "hp_bypass");
    assert_eq!(https_proxy.seen().len(), 1, "{:?}", https_proxy.seen());

    // Plain HTTP goes through HTTP_PROXY as an absolute-URI request, unless NO_PROXY.
    let (alice, _) = create_iam_user("HttpsEnvAlice");
    let plain_named = format!("http://localhost:{}", moto_port());
    server_with_keys(
        &mut client,
        "hp_http_via_env",
        &format!("endpoint_url '{plain_named}', cache 'false'"),
        Some(&alice),
    );
    assert_eq!(
        query_arn(&mut client, "hp_http_via_env").unwrap(),
        "arn:aws:iam::123456789012:user/HttpsEnvAlice"
    );
    assert_eq!(http_proxy.seen(), [format!("POST {plain_named}/")]);
    server_with_keys(
        &mut client,
        "hp_http_bypass",
        &format!("endpoint_url '{}', cache 'false'", moto_endpoint()),
        Some(&alice),
    );
    assert_eq!(
        query_arn(&mut client, "hp_http_bypass").unwrap(),
        "arn:aws:iam::123456789012:user/HttpsEnvAlice"
    );
    assert_eq!(http_proxy.seen().len(), 1, "{:?}", http_proxy.seen());

    // proxy_url replaces the environment's proxies, NO_PROXY included.
    server_with_keys(
        &mut client,
        "hp_chosen",
        &format!("{}, proxy_url '{}'", option(&direct), chosen.url),
        Some(&keys()),
    );
    assert_moto_answers(&mut client, "hp_chosen");
    assert_eq!(chosen.seen(), [format!("CONNECT 127.0.0.1:{port}")]);
    assert_eq!(https_proxy.seen().len(), 1);

    // A failure through the environment's proxy names it, without its credentials.
    let stranger = fixture
        .other
        .endpoint("hp-proxied-stranger", Validity::Current);
    server_with_keys(
        &mut client,
        "hp_proxied_stranger",
        &option(&format!("https://localhost:{}", stranger.port)),
        Some(&keys()),
    );
    let (state, message, detail, hint) =
        db_error(&query_arn(&mut client, "hp_proxied_stranger").unwrap_err());
    assert_eq!(state, "HV00N");
    assert!(message.ends_with("(UnknownIssuer)"), "{message}");
    assert!(
        detail.contains(&format!(
            "The connection went through proxy {} (HTTPS_PROXY).",
            https_proxy.url
        )),
        "{detail}"
    );
    let everything = format!("{message}{detail}{hint}");
    assert!(!everything.contains(PROXY_PASSWORD) && !everything.contains("hp-proxy-user"));
    assert_eq!(stranger.connection_count(), 1, "retried");
    drop(client);
    assert_no_secret_in(&cluster);
}
