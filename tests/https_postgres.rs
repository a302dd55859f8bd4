//! HTTPS with private CAs through PostgreSQL (tests/tls.rs tests the same against the core):
//! moto serving a private CA's certificate answers a server with `ca_bundle`; without it,
//! or with an expired certificate or one for another name, a scan fails in one attempt, at
//! once, saying what is wrong; a missing bundle is named, and a bundle fixed in place is
//! read by the next scan; only a superuser sets `ca_bundle`. Each holds through
//! PREPARE/EXECUTE with a generic plan, PL/pgSQL and another role in the same backend.
//! tests/https_proxy.rs has `proxy_url`, tests/https_options.rs EXPLAIN's endpoints and
//! `ignore_error_messages`, tests/https_environment.rs what the database server's
//! environment does.

mod common;

use std::time::Duration;

use common::tls::{fixture, TlsEndpoint, Validity, STUB_ARN};
use common::*;

const SECRET: &str = "https-postgres-secret-51";

fn keys() -> Keys {
    Keys::new("AKIAHTTPSPG", SECRET)
}

/// A server calling `url` with this file's keys (see [`server_calling`]).
fn https_server(client: &mut postgres::Client, name: &str, url: &str, extra: &str) {
    server_calling(client, name, url, extra, &keys());
}

/// A certificate the scan rejects costs one connection, no completed handshake and no
/// retry, well under a second; the message names the server and the reason, the hint
/// `ca_bundle`, and no secret shows.
fn assert_rejected_once(
    client: &mut postgres::Client,
    server: &str,
    endpoint: &TlsEndpoint,
    expected_message: &str,
) -> String {
    let (connections, handshakes) = (endpoint.connection_count(), endpoint.handshake_count());
    let ((state, message, detail, hint), elapsed) = failure(
        client,
        &format!("SELECT arn FROM {server}.aws_sts_caller_identity"),
    );
    println!("{server}: {elapsed:?}: {message} / {detail} / {hint}");
    assert_eq!(state, "HV00N", "{message}");
    assert_eq!(
        message,
        format!("aws_sts server \"{server}\": {expected_message}")
    );
    assert!(detail.contains("1 of at most 9 attempts"), "{detail}");
    assert!(
        detail.contains("Not retried: another attempt would meet the same certificate."),
        "{detail}"
    );
    assert!(hint.contains("ca_bundle"), "{hint}");
    assert_eq!(endpoint.connection_count(), connections + 1, "retried");
    assert_eq!(endpoint.handshake_count(), handshakes);
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(!format!("{message}{detail}{hint}").contains(SECRET));
    detail
}

#[test]
fn moto_over_tls_answers_the_seed_query_with_ca_bundle() {
    let mut client = connect();
    let fixture = fixture();
    let ca = fixture.pki.ca_file();
    for (server, host) in [("hp_moto_name", "localhost"), ("hp_moto_ip", "127.0.0.1")] {
        https_server(
            &mut client,
            server,
            &fixture.moto_url(host),
            &format!("ca_bundle '{ca}'"),
        );
        let row = client
            .query_one(
                &format!(
                    "SELECT arn, user_id, title, account_id, akas = jsonb_build_array(arn), \
                     partition, sp_connection_name FROM {server}.aws_sts_caller_identity"
                ),
                &[],
            )
            .unwrap();
        let arn: String = row.get(0);
        println!("{server}: {arn}");
        assert!(arn.starts_with("arn:aws:"), "{arn}");
        assert!(!row.get::<_, String>(1).is_empty());
        assert_eq!(row.get::<_, String>(1), row.get::<_, String>(2));
        assert_eq!(row.get::<_, String>(3), "123456789012");
        assert!(row.get::<_, bool>(4), "akas holds the ARN");
        assert_eq!(row.get::<_, String>(5), "aws");
        assert_eq!(row.get::<_, String>(6), server);
    }
}

#[test]
fn without_ca_bundle_a_private_ca_fails_once_naming_ca_bundle() {
    let mut client = connect();
    let fixture = fixture();
    let endpoint = fixture.pki.endpoint("hp-unknown", Validity::Current);
    let url = format!("https://localhost:{}", endpoint.port);
    https_server(&mut client, "hp_unknown", &url, "");
    let detail = assert_rejected_once(
        &mut client,
        "hp_unknown",
        &endpoint,
        &format!("the certificate of {url} is not issued by a trusted CA (UnknownIssuer)"),
    );
    assert!(detail.contains("Trusted: the system's CAs."), "{detail}");
    // Trusting the CA is the fix: the same endpoint answers.
    client
        .batch_execute(&format!(
            "ALTER SERVER hp_unknown OPTIONS (ADD ca_bundle '{}')",
            fixture.pki.ca_file()
        ))
        .unwrap();
    assert_eq!(query_arn(&mut client, "hp_unknown").unwrap(), STUB_ARN);
    assert_eq!(endpoint.handshake_count(), 1);
}

#[test]
fn expired_certificates_and_certificates_for_another_name_say_so() {
    let mut client = connect();
    let fixture = fixture();
    let ca = format!("ca_bundle '{}'", fixture.pki.ca_file());
    // The server, the certificate's names and dates, what the message says after the URL,
    // and what rustls' detail adds.
    let cases = [
        (
            "hp_expired",
            ["localhost", "127.0.0.1"].as_slice(),
            Validity::Expired,
            "has expired (Expired)",
            "certificate expired",
        ),
        (
            "hp_elsewhere",
            ["sts.elsewhere.example"].as_slice(),
            Validity::Current,
            "is not valid for the name localhost (NotValidForName)",
            "sts.elsewhere.example",
        ),
    ];
    for (server, names, validity, reason, in_detail) in cases {
        let endpoint = TlsEndpoint::start(&fixture.pki.leaf(server, names, validity));
        let url = format!("https://localhost:{}", endpoint.port);
        https_server(&mut client, server, &url, &ca);
        let detail = assert_rejected_once(
            &mut client,
            server,
            &endpoint,
            &format!("the certificate of {url} {reason}"),
        );
        assert!(detail.contains(in_detail), "{detail}");
    }
}

#[test]
fn a_missing_ca_bundle_file_is_named() {
    let mut client = connect();
    let fixture = fixture();
    let missing = fixture.pki.dir.join("hp-missing.pem");
    let missing = missing.to_string_lossy();
    let _ = std::fs::remove_file(&*missing);
    https_server(
        &mut client,
        "hp_missing",
        &fixture.moto_url("localhost"),
        &format!("ca_bundle '{missing}'"),
    );
    let ((state, message, detail, hint), elapsed) = failure(
        &mut client,
        "SELECT arn FROM hp_missing.aws_sts_caller_identity",
    );
    println!("missing bundle: {elapsed:?}: {message}");
    assert_eq!(state, "HV00N");
    assert_eq!(
        message,
        format!(
            "aws_sts server \"hp_missing\": could not use the CA bundle {missing} (ca_bundle): \
             No such file or directory (os error 2)"
        )
    );
    assert!(detail.contains("1 of at most 9 attempts"), "{detail}");
    assert!(hint.contains("PEM file"), "{hint}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // Once the file is there, the same backend reads it.
    std::fs::copy(fixture.pki.ca_file(), &*missing).unwrap();
    let arn = query_arn(&mut client, "hp_missing").unwrap();
    assert!(arn.starts_with("arn:aws:"), "{arn}");
}

#[test]
fn a_ca_bundle_fixed_in_place_is_read_by_the_next_scan() {
    // The file ca_bundle names, without the endpoint's CA, then fixed, then broken again:
    // the same backend (as behind a pooler) follows the file, with no reconnect, ALTER
    // SERVER or aws_sts_clear_cache().
    let mut client = connect();
    let fixture = fixture();
    let bundle = fixture.pki.dir.join("hp-rotated.pem");
    let bundle = bundle.to_string_lossy().into_owned();
    // Each version has another length than the last, so the change shows whatever the
    // clock's resolution.
    let broken = fixture.other.ca_pem.clone();
    let fixed = format!("{broken}{}", fixture.pki.ca_pem);
    std::fs::write(&bundle, &broken).unwrap();
    https_server(
        &mut client,
        "hp_rotated",
        &fixture.moto_url("localhost"),
        &format!("ca_bundle '{bundle}', cache 'false'"),
    );
    let statement = "SELECT arn FROM hp_rotated.aws_sts_caller_identity";
    let unknown_issuer = |client: &mut postgres::Client| {
        let ((state, message, _, _), _) = failure(client, statement);
        assert_eq!(state, "HV00N");
        assert!(message.ends_with("(UnknownIssuer)"), "{message}");
    };
    unknown_issuer(&mut client);
    std::fs::write(&bundle, &fixed).unwrap();
    let arn = query_arn(&mut client, "hp_rotated").unwrap();
    assert!(arn.starts_with("arn:aws:"), "{arn}");
    std::fs::write(&bundle, &broken).unwrap();
    unknown_issuer(&mut client);
}

#[test]
fn only_a_superuser_sets_ca_bundle() {
    let mut client = connect();
    let ca = fixture().pki.ca_file();
    client
        .batch_execute(
            "DROP SERVER IF EXISTS hp_owned CASCADE; DROP ROLE IF EXISTS hp_owner;
             CREATE ROLE hp_owner LOGIN;
             GRANT USAGE ON FOREIGN DATA WRAPPER aws_sts TO hp_owner;
             CREATE SERVER hp_owned FOREIGN DATA WRAPPER aws_sts OPTIONS (region 'us-east-1');
             ALTER SERVER hp_owned OWNER TO hp_owner;",
        )
        .unwrap();
    let mut owner = connect_as("hp_owner");
    let add = format!("ALTER SERVER hp_owned OPTIONS (ADD ca_bundle '{ca}')");
    let attempts = [
        format!("CREATE SERVER hp_mine FOREIGN DATA WRAPPER aws_sts OPTIONS (ca_bundle '{ca}')"),
        add.clone(),
        // PL/pgSQL runs the same validator.
        format!("DO $$ BEGIN EXECUTE {}; END $$", literal(&add)),
    ];
    for statement in &attempts {
        let ((state, message, _, hint), _) = failure(&mut owner, statement);
        assert_eq!(state, "42501", "{statement}: {message}");
        assert!(
            message.contains("only a superuser may set ca_bundle"),
            "{message}"
        );
        assert!(hint.contains("AWS_CA_BUNDLE"), "{hint}");
    }
    // A superuser session acting as the owner is the owner.
    let ((state, _, _, _), _) = failure(&mut client, &format!("SET ROLE hp_owner; {add}"));
    assert_eq!(state, "42501");
    client.batch_execute("RESET ROLE").unwrap();
    // A superuser may; the owner may then drop it, but change nothing else while it is set
    // (the validator sees every option, as postgres_fdw's password_required).
    client.batch_execute(&add).unwrap();
    let ((state, _, _, _), _) = failure(
        &mut owner,
        "ALTER SERVER hp_owned OPTIONS (SET region 'eu-west-1')",
    );
    assert_eq!(state, "42501");
    owner
        .batch_execute("ALTER SERVER hp_owned OPTIONS (DROP ca_bundle)")
        .unwrap();
    owner
        .batch_execute("ALTER SERVER hp_owned OPTIONS (SET region 'eu-west-1')")
        .unwrap();
}

#[test]
fn certificate_checks_hold_for_prepared_statements_plpgsql_another_role_and_aggregators() {
    let (mut client, notices) = connect_collecting_notices();
    let fixture = fixture();
    let endpoint = fixture.pki.endpoint("hp-attack", Validity::Current);
    let url = format!("https://localhost:{}", endpoint.port);
    // Two servers for the same endpoint and keys, only one trusting its CA; nothing cached,
    // so that every scan calls.
    let ca = format!("ca_bundle '{}', cache 'false'", fixture.pki.ca_file());
    https_server(&mut client, "hp_trusting", &url, &ca);
    https_server(&mut client, "hp_distrusting", &url, "cache 'false'");
    let reason = format!("the certificate of {url} is not issued by a trusted CA (UnknownIssuer)");
    let rejected = format!("aws_sts server \"hp_distrusting\": {reason}");
    // In one backend, a trusted connection to the endpoint (pooled) does not carry the
    // other server's scan, before or after.
    assert_eq!(query_arn(&mut client, "hp_trusting").unwrap(), STUB_ARN);
    assert_rejected_once(&mut client, "hp_distrusting", &endpoint, &reason);
    assert_eq!(query_arn(&mut client, "hp_trusting").unwrap(), STUB_ARN);

    // A generic plan, executed more than once.
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE hp_trusted AS SELECT arn FROM hp_trusting.aws_sts_caller_identity;
             PREPARE hp_rejected AS SELECT arn FROM hp_distrusting.aws_sts_caller_identity;",
        )
        .unwrap();
    for _ in 0..3 {
        let arn: String = client.query_one("EXECUTE hp_trusted", &[]).unwrap().get(0);
        assert_eq!(arn, STUB_ARN);
        let connections = endpoint.connection_count();
        let ((state, message, _, _), elapsed) = failure(&mut client, "EXECUTE hp_rejected");
        assert_eq!((state.as_str(), message.as_str()), ("HV00N", &*rejected));
        assert_eq!(endpoint.connection_count(), connections + 1, "retried");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    }

    // PL/pgSQL sees the SQLSTATE and the message.
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION hp_whoami(server text) RETURNS text LANGUAGE plpgsql AS $$
             DECLARE answer text;
             BEGIN
               EXECUTE format('SELECT arn FROM %I.aws_sts_caller_identity', server) INTO answer;
               RETURN answer;
             EXCEPTION WHEN SQLSTATE 'HV00N' THEN
               RETURN 'HV00N: ' || SQLERRM;
             END $$;
             GRANT EXECUTE ON FUNCTION hp_whoami(text) TO PUBLIC;",
        )
        .unwrap();
    let whoami = |client: &mut postgres::Client, server: &str| -> String {
        client
            .query_one("SELECT hp_whoami($1)", &[&server])
            .unwrap()
            .get(0)
    };
    assert_eq!(whoami(&mut client, "hp_trusting"), STUB_ARN);
    assert_eq!(
        whoami(&mut client, "hp_distrusting"),
        format!("HV00N: {rejected}")
    );

    // Another role, with its own keys, in the same backend: the superuser's ca_bundle
    // serves it, and the other server still rejects the certificate.
    client
        .batch_execute(
            "DROP ROLE IF EXISTS hp_user; CREATE ROLE hp_user;
             GRANT USAGE ON FOREIGN SERVER hp_trusting, hp_distrusting TO hp_user;
             GRANT USAGE ON SCHEMA hp_trusting, hp_distrusting TO hp_user;
             GRANT SELECT ON hp_trusting.aws_sts_caller_identity,
                             hp_distrusting.aws_sts_caller_identity TO hp_user;
             CREATE USER MAPPING FOR hp_user SERVER hp_trusting
                 OPTIONS (access_key 'AKIAHTTPSUSER', secret_key 'https-user-secret-52');
             CREATE USER MAPPING FOR hp_user SERVER hp_distrusting
                 OPTIONS (access_key 'AKIAHTTPSUSER', secret_key 'https-user-secret-52');
             SET ROLE hp_user;",
        )
        .unwrap();
    remember_secret("https-user-secret-52");
    assert_eq!(query_arn(&mut client, "hp_trusting").unwrap(), STUB_ARN);
    assert_eq!(
        whoami(&mut client, "hp_distrusting"),
        format!("HV00N: {rejected}")
    );
    let ((state, message, _, _), _) = failure(
        &mut client,
        "SELECT arn FROM hp_distrusting.aws_sts_caller_identity",
    );
    assert_eq!((state.as_str(), message.as_str()), ("HV00N", &*rejected));
    client.batch_execute("RESET ROLE").unwrap();

    // An aggregator over both: the same keys at the same endpoint, but not the same trust,
    // so not one identity: each member is called, and only the trusting one answers.
    client
        .batch_execute(
            "CREATE SERVER hp_both FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator',
                 connections 'hp_trusting, hp_distrusting', on_error 'skip');
             CREATE SCHEMA hp_both;
             IMPORT FOREIGN SCHEMA aws FROM SERVER hp_both INTO hp_both;",
        )
        .unwrap();
    let connections = endpoint.connection_count();
    let rows: Vec<(String, String)> = client
        .query(
            "SELECT sp_connection_name, arn FROM hp_both.aws_sts_caller_identity",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(rows, [("hp_trusting".to_string(), STUB_ARN.to_string())]);
    assert!(
        endpoint.connection_count() > connections,
        "the member was called"
    );
    let warnings = notices.lock().unwrap().join("\n");
    assert!(
        warnings.contains(&format!("01000: {rejected}")),
        "{warnings}"
    );
}
