//! `proxy_url` through PostgreSQL (tests/tls.rs tests the same against the core): HTTPS
//! goes through a CONNECT tunnel and plain HTTP as absolute-URI requests, for the superuser
//! and another role in the same backend, and the answer is right; a proxy that is down or
//! refuses the tunnel is named, not the endpoint, from a prepared statement and PL/pgSQL
//! too; a proxy URL with credentials is refused and its statement kept out of the log; an
//! endpoint or proxy that never answers is cancelled by statement_timeout.
//! tests/https_environment.rs has the environment's proxy variables.

mod common;

use std::time::Duration;

use common::proxy::ConnectProxy;
use common::tls::fixture;
use common::*;

const SECRET: &str = "https-proxy-secret-59";

fn keys() -> Keys {
    Keys::new("AKIAHTTPSPROXY", SECRET)
}

/// A server calling `url` with this file's keys (see [`server_calling`]).
fn https_server(client: &mut postgres::Client, name: &str, url: &str, extra: &str) {
    server_calling(client, name, url, extra, &keys());
}

#[test]
fn a_handshake_that_never_comes_is_cancelled() {
    // An https:// endpoint (or a proxy) that accepts the connection and never answers:
    // statement_timeout ends the scan, and the backend goes on.
    let mut client = connect();
    let hung = HungEndpoint::start();
    let proxy = HungEndpoint::start();
    let https = hung.url.replace("http://", "https://");
    https_server(&mut client, "hp_hung", &https, "timeout '30s'");
    https_server(
        &mut client,
        "hp_hung_proxy",
        &fixture().moto_url("localhost"),
        &format!("timeout '30s', proxy_url '{}'", proxy.url),
    );
    for server in ["hp_hung", "hp_hung_proxy"] {
        let ((state, message, _, _), elapsed) = failure(
            &mut client,
            &format!(
                "SET statement_timeout = '300ms'; SELECT arn FROM {server}.aws_sts_caller_identity"
            ),
        );
        println!("{server}: {elapsed:?}: {message}");
        assert_eq!(state, "57014", "{message}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        client.batch_execute("RESET statement_timeout").unwrap();
    }
    assert_eq!((hung.connection_count(), proxy.connection_count()), (1, 1));
    let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
}

#[test]
fn proxy_url_carries_https_and_http_and_the_answer_is_right() {
    let mut client = connect();
    let fixture = fixture();
    let proxy = ConnectProxy::start();
    https_server(
        &mut client,
        "hp_proxied",
        &fixture.moto_url("localhost"),
        &format!(
            "ca_bundle '{}', proxy_url '{}'",
            fixture.pki.ca_file(),
            proxy.url
        ),
    );
    let arn = query_arn(&mut client, "hp_proxied").unwrap();
    assert!(arn.starts_with("arn:aws:"), "{arn}");
    assert_eq!(
        proxy.seen(),
        vec![format!("CONNECT localhost:{}", fixture.moto.port)]
    );
    // Plain HTTP goes as an absolute-URI request, with an IAM user's keys: the row is that
    // user's, for the superuser and, in the same backend, for another role.
    let (alice, alice_id) = create_iam_user("HttpsProxyAlice");
    server_with_keys(
        &mut client,
        "hp_proxied_http",
        &format!(
            "endpoint_url '{}', proxy_url '{}', cache 'false'",
            moto_endpoint(),
            proxy.url
        ),
        Some(&alice),
    );
    let row = client
        .query_one(
            "SELECT arn, user_id FROM hp_proxied_http.aws_sts_caller_identity",
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "arn:aws:iam::123456789012:user/HttpsProxyAlice"
    );
    assert_eq!(row.get::<_, String>(1), alice_id);
    let absolute = format!("POST {}/", moto_endpoint());
    assert_eq!(proxy.seen()[1..], *std::slice::from_ref(&absolute));
    client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS hp_proxy_user; CREATE ROLE hp_proxy_user;
             GRANT USAGE ON FOREIGN SERVER hp_proxied_http TO hp_proxy_user;
             GRANT USAGE ON SCHEMA hp_proxied_http TO hp_proxy_user;
             GRANT SELECT ON hp_proxied_http.aws_sts_caller_identity TO hp_proxy_user;
             CREATE USER MAPPING FOR hp_proxy_user SERVER hp_proxied_http
                 OPTIONS (access_key '{}', secret_key '{}');
             SET ROLE hp_proxy_user;",
            alice.access_key, alice.secret_key
        ))
        .unwrap();
    assert_eq!(
        query_arn(&mut client, "hp_proxied_http").unwrap(),
        "arn:aws:iam::123456789012:user/HttpsProxyAlice"
    );
    client.batch_execute("RESET ROLE").unwrap();
    // The backend may send it on its pooled connection to the proxy, which the proxy logs
    // once: whatever it saw is the same request.
    assert!(
        proxy.seen()[1..].iter().all(|line| *line == absolute),
        "{:?}",
        proxy.seen()
    );
}

#[test]
fn a_proxy_that_is_down_or_refuses_is_named_not_the_endpoint() {
    let mut client = connect();
    let fixture = fixture();
    let closed = closed_port_url();
    let url = fixture.moto_url("localhost");
    https_server(
        &mut client,
        "hp_proxy_down",
        &url,
        &format!(
            "ca_bundle '{}', proxy_url '{closed}', max_error_retry_attempts '2'",
            fixture.pki.ca_file()
        ),
    );
    let statement = "SELECT arn FROM hp_proxy_down.aws_sts_caller_identity";
    let ((state, message, detail, hint), elapsed) = failure(&mut client, statement);
    println!("proxy down: {elapsed:?}: {message} / {detail} / {hint}");
    assert_eq!(state, "HV00N");
    // Retried as an unreachable endpoint is.
    assert_eq!(
        message,
        format!(
            "aws_sts server \"hp_proxy_down\": could not connect to proxy {closed} (proxy_url) \
             after 2 attempts"
        )
    );
    assert!(hint.starts_with("Check proxy_url"), "{hint}");
    // The same error from a prepared statement and from PL/pgSQL.
    client
        .batch_execute(&format!("PREPARE hp_down AS {statement}"))
        .unwrap();
    let ((_, prepared, _, _), _) = failure(&mut client, "EXECUTE hp_down");
    assert_eq!(prepared, message);
    let ((_, plpgsql, _, _), _) = failure(
        &mut client,
        "DO $$ BEGIN PERFORM arn FROM hp_proxy_down.aws_sts_caller_identity; END $$",
    );
    assert_eq!(plpgsql, message);

    let refusing = ConnectProxy::refusing("403 Forbidden");
    https_server(
        &mut client,
        "hp_proxy_refusing",
        &url,
        &format!("proxy_url '{}'", refusing.url),
    );
    let ((state, message, _, _), _) = failure(
        &mut client,
        "SELECT arn FROM hp_proxy_refusing.aws_sts_caller_identity",
    );
    assert_eq!(state, "HV00N");
    assert_eq!(
        message,
        format!(
            "aws_sts server \"hp_proxy_refusing\": proxy {} (proxy_url) refused to open a \
             tunnel to localhost:{}",
            refusing.url, fixture.moto.port
        )
    );
    assert_eq!(refusing.seen().len(), 1, "retried");
}

#[test]
fn a_proxy_url_with_credentials_is_refused_and_kept_out_of_the_log() {
    // Every user can read a server's options: proxy credentials belong in the environment.
    // The refused statement holds the password, so Postgres must not log its text.
    let mut client = connect();
    let password = "hp-proxy-url-password-58";
    remember_secret(password);
    let start = server_log().len();
    let url = format!("http://proxyuser:{password}@127.0.0.1:3128");
    let create = format!(
        "CREATE SERVER hp_proxy_credentials FOREIGN DATA WRAPPER aws_sts OPTIONS (proxy_url '{url}')"
    );
    for statement in [
        create.clone(),
        format!("DO $$ BEGIN EXECUTE {}; END $$", literal(&create)),
        format!(
            "CREATE SERVER hp_endpoint_credentials FOREIGN DATA WRAPPER aws_sts \
             OPTIONS (endpoint_url 'http://user:{password}@127.0.0.1:9')"
        ),
    ] {
        let ((state, message, detail, hint), _) = failure(&mut client, &statement);
        assert_eq!(state, "HV024", "{message}");
        assert!(!format!("{message}{detail}{hint}").contains(password));
    }
    let gained = server_log()[start..].to_string();
    assert!(
        gained.contains("user information in the URL is not allowed"),
        "the errors were logged: {gained}"
    );
    assert!(!gained.contains(password), "{gained}");
}
