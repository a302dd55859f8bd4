//! aws_sts through a real PostgreSQL 15 and a real STS emulator (moto), both on 127.0.0.1.
//! Start them with `tests/cluster.sh start` (`make test` does it all).

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;

const IDENTITY_QUERY: &str =
    "SELECT arn, user_id, title, akas::text, partition, account_id, sp_connection_name, \
     sp_ctx::text, _ctx::text FROM {schema}.aws_sts_caller_identity";

fn identity_row(client: &mut postgres::Client, schema: &str) -> Vec<Option<String>> {
    let row = client
        .query_one(&IDENTITY_QUERY.replace("{schema}", schema), &[])
        .unwrap();
    (0..row.len())
        .map(|index| row.get::<_, Option<String>>(index))
        .collect()
}

fn expected_row(arn: &str, user_id: &str, server: &str) -> Vec<Option<String>> {
    let ctx = format!(
        r#"{{"version": "{}", "extension": "aws_sts", "connection_name": "{server}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    [
        arn,
        user_id,
        user_id,
        &format!(r#"["{arn}"]"#),
        "aws",
        "123456789012",
        server,
        &ctx,
        &ctx,
    ]
    .iter()
    .map(|value| Some(value.to_string()))
    .collect()
}

#[test]
fn seed_scenarios_return_every_column_exactly() {
    let mut client = connect();
    let moto = format!("endpoint_url '{}'", moto_endpoint());

    server_with_keys(
        &mut client,
        "it_default",
        &moto,
        Some(&Keys::new("AKIAIOSFODNN7EXAMPLE", "any")),
    );
    assert_eq!(
        identity_row(&mut client, "it_default"),
        expected_row(
            "arn:aws:sts::123456789012:user/moto",
            "AKIAIOSFODNN7EXAMPLE",
            "it_default"
        )
    );

    let (alice_keys, alice_id) = create_iam_user("AliceIt");
    server_with_keys(&mut client, "it_alice", &moto, Some(&alice_keys));
    assert_eq!(
        identity_row(&mut client, "it_alice"),
        expected_row(
            "arn:aws:iam::123456789012:user/AliceIt",
            &alice_id,
            "it_alice"
        )
    );

    let (role_keys, assumed_role_id) = assume_role("it-role-name", "my-role-session-name");
    assert!(
        assumed_role_id.starts_with("AROA") && assumed_role_id.ends_with(":my-role-session-name")
    );
    server_with_keys(&mut client, "it_role", &moto, Some(&role_keys));
    assert_eq!(
        identity_row(&mut client, "it_role"),
        expected_row(
            "arn:aws:sts::123456789012:assumed-role/it-role-name/my-role-session-name",
            &assumed_role_id,
            "it_role"
        )
    );
}

#[test]
fn seed_join_against_iam_users() {
    let mut client = connect();
    let (keys, user_id) = create_iam_user("JoinAlice");
    server_with_keys(
        &mut client,
        "it_join",
        &format!("endpoint_url '{}'", moto_endpoint()),
        Some(&keys),
    );
    client
        .batch_execute(&format!(
            "CREATE TABLE it_join.aws_iam_user (name text, user_id text, create_date timestamptz, password_last_used timestamptz);
             INSERT INTO it_join.aws_iam_user VALUES ('JoinAlice', '{user_id}', '2026-01-02 03:04:05+00', NULL),
                                                     ('Other', 'AIDAOTHER', now(), now());"
        ))
        .unwrap();
    let rows = client
        .query(
            "SELECT caller_identity.arn, caller_identity.user_id, caller_identity.title, caller_identity.account_id,
                    u.name, u.create_date::text, u.password_last_used::text
             FROM it_join.aws_sts_caller_identity AS caller_identity, it_join.aws_iam_user AS u
             WHERE caller_identity.user_id = u.user_id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        row.get::<_, String>(0),
        "arn:aws:iam::123456789012:user/JoinAlice"
    );
    assert_eq!(row.get::<_, String>(1), user_id);
    assert_eq!(row.get::<_, String>(2), user_id);
    assert_eq!(row.get::<_, String>(3), "123456789012");
    assert_eq!(row.get::<_, String>(4), "JoinAlice");
    assert_eq!(row.get::<_, String>(5), "2026-01-02 03:04:05+00");
    assert_eq!(row.get::<_, Option<String>>(6), None);
}

#[test]
fn two_servers_with_different_credentials_in_one_query() {
    let mut client = connect();
    let moto = format!("endpoint_url '{}'", moto_endpoint());
    let (bob_keys, _) = create_iam_user("BobTwo");
    let (carol_keys, _) = create_iam_user("CarolTwo");
    server_with_keys(&mut client, "it_bob", &moto, Some(&bob_keys));
    server_with_keys(&mut client, "it_carol", &moto, Some(&carol_keys));
    let rows = client
        .query(
            "SELECT arn, sp_connection_name FROM it_bob.aws_sts_caller_identity
             UNION ALL SELECT arn, sp_connection_name FROM it_carol.aws_sts_caller_identity ORDER BY 2",
            &[],
        )
        .unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(
        got,
        vec![
            (
                "arn:aws:iam::123456789012:user/BobTwo".to_string(),
                "it_bob".to_string()
            ),
            (
                "arn:aws:iam::123456789012:user/CarolTwo".to_string(),
                "it_carol".to_string()
            ),
        ]
    );
    let joined = client
        .query_one(
            "SELECT b.arn, c.arn FROM it_bob.aws_sts_caller_identity b JOIN it_carol.aws_sts_caller_identity c
             ON b.account_id = c.account_id",
            &[],
        )
        .unwrap();
    assert_eq!(
        joined.get::<_, String>(0),
        "arn:aws:iam::123456789012:user/BobTwo"
    );
    assert_eq!(
        joined.get::<_, String>(1),
        "arn:aws:iam::123456789012:user/CarolTwo"
    );
}

#[test]
fn missing_credentials_fail_fast_naming_the_server() {
    let mut client = connect();
    // No user mapping, a superuser, and a cluster whose environment has no AWS credentials.
    server_with_keys(
        &mut client,
        "it_nocreds",
        &format!("endpoint_url '{}'", moto_endpoint()),
        None,
    );
    let started = Instant::now();
    let error = client
        .query("SELECT arn FROM it_nocreds.aws_sts_caller_identity", &[])
        .unwrap_err();
    let elapsed = started.elapsed();
    let (code, message, detail, hint) = db_error(&error);
    assert_eq!(code, "HV00N");
    assert_eq!(
        message,
        "aws_sts server \"it_nocreds\": no AWS credentials found"
    );
    assert!(detail.contains("environment variables"), "{detail}");
    assert!(
        hint.contains("CREATE USER MAPPING FOR CURRENT_USER SERVER"),
        "{hint}"
    );
    println!("no-credentials error after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    // The backend survives.
    assert_eq!(
        client.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0),
        1
    );
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    let mut client = connect();
    let url = closed_port_url();
    server_with_keys(
        &mut client,
        "it_closed",
        &format!("endpoint_url '{url}'"),
        Some(&Keys::new("AKIAX", "s3cr3t-closed")),
    );
    let error = client
        .query("SELECT * FROM it_closed.aws_sts_caller_identity", &[])
        .unwrap_err();
    let (code, message, detail, hint) = db_error(&error);
    assert_eq!(code, "HV00N");
    // Connection errors are retried with backoff (9 attempts by default, as in Steampipe).
    let prefix =
        format!("aws_sts server \"it_closed\": could not reach the STS endpoint {url} after ");
    assert!(
        message.starts_with(&prefix) && message.ends_with(" attempts"),
        "{message}"
    );
    assert!(
        detail.contains("of at most 9 attempts (max_error_retry_attempts) made."),
        "{detail}"
    );
    assert!(hint.contains("endpoint_url"), "{hint}");
    assert!(!format!("{message}{detail}{hint}").contains("s3cr3t-closed"));
    assert_eq!(
        client.query_one("SELECT 2", &[]).unwrap().get::<_, i32>(0),
        2
    );
}

#[test]
fn hung_endpoint_ends_at_the_timeout() {
    let mut client = connect();
    let hung = HungEndpoint::start();
    server_with_keys(
        &mut client,
        "it_hung",
        &format!("endpoint_url '{}', timeout '1s'", hung.url),
        Some(&Keys::new("AKIAX", "s3cr3t-hung")),
    );
    let started = Instant::now();
    let error = client
        .query("SELECT * FROM it_hung.aws_sts_caller_identity", &[])
        .unwrap_err();
    let elapsed = started.elapsed();
    let (code, message, _, hint) = db_error(&error);
    assert_eq!(code, "HV00N");
    assert_eq!(
        message,
        format!("aws_sts server \"it_hung\": GetCallerIdentity at {} did not finish within the timeout of 1s", hung.url)
    );
    assert!(hint.contains("timeout"), "{hint}");
    println!("hung endpoint error after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(hung.connection_count() >= 1);
    assert_eq!(
        client.query_one("SELECT 3", &[]).unwrap().get::<_, i32>(0),
        3
    );
}

fn hung_server(client: &mut postgres::Client, name: &str) -> HungEndpoint {
    let hung = HungEndpoint::start();
    server_with_keys(
        client,
        name,
        &format!("endpoint_url '{}', timeout '60s'", hung.url),
        Some(&Keys::new("AKIAX", "s3cr3t")),
    );
    hung
}

#[test]
fn cancel_ends_an_in_flight_call() {
    let mut client = connect();
    let hung = hung_server(&mut client, "it_cancel");
    let pid = backend_pid(&mut client);
    let canceller = thread::spawn(move || {
        let mut other = connect();
        wait_until(|| hung.connection_count() >= 1);
        let cancelled_at = Instant::now();
        let sent: bool = other
            .query_one("SELECT pg_cancel_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        assert!(sent);
        cancelled_at
    });
    let error = client
        .query("SELECT * FROM it_cancel.aws_sts_caller_identity", &[])
        .unwrap_err();
    let ended_at = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    let (code, message, _, _) = db_error(&error);
    assert_eq!(code, "57014");
    assert_eq!(message, "canceling statement due to user request");
    let latency = ended_at.duration_since(cancelled_at);
    println!("cancel latency {latency:?}");
    assert!(latency < Duration::from_secs(1), "cancel took {latency:?}");
    assert_eq!(
        client.query_one("SELECT 4", &[]).unwrap().get::<_, i32>(0),
        4
    );
}

#[test]
fn statement_timeout_ends_an_in_flight_call() {
    let mut client = connect();
    hung_server(&mut client, "it_stmt_timeout");
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .unwrap();
    let started = Instant::now();
    let error = client
        .query("SELECT * FROM it_stmt_timeout.aws_sts_caller_identity", &[])
        .unwrap_err();
    let elapsed = started.elapsed();
    let (code, message, _, _) = db_error(&error);
    assert_eq!(code, "57014");
    assert_eq!(message, "canceling statement due to statement timeout");
    println!("statement_timeout of 300ms ended the query after {elapsed:?}");
    assert!(elapsed < Duration::from_millis(1300), "took {elapsed:?}");
    client.batch_execute("RESET statement_timeout").unwrap();
    assert_eq!(
        client.query_one("SELECT 5", &[]).unwrap().get::<_, i32>(0),
        5
    );
}

#[test]
fn terminate_ends_an_in_flight_call() {
    let mut client = connect();
    let hung = hung_server(&mut client, "it_terminate");
    let pid = backend_pid(&mut client);
    let terminator = thread::spawn(move || {
        let mut other = connect();
        wait_until(|| hung.connection_count() >= 1);
        let _: bool = other
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        // The backend is gone within a second.
        let started = Instant::now();
        loop {
            let alive: bool = other
                .query_one(
                    "SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .unwrap()
                .get(0);
            if !alive {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "backend {pid} still alive"
            );
            thread::sleep(Duration::from_millis(20));
        }
    });
    let error = client
        .query("SELECT * FROM it_terminate.aws_sts_caller_identity", &[])
        .unwrap_err();
    let gone_after = terminator.join().unwrap();
    println!("terminated backend gone after {gone_after:?}: {error}");
    assert!(gone_after < Duration::from_secs(1));
    // Other sessions are unaffected: the postmaster did not restart.
    assert_eq!(
        connect()
            .query_one("SELECT 6", &[])
            .unwrap()
            .get::<_, i32>(0),
        6
    );
}

#[test]
fn explain_makes_no_call_and_shows_no_secret() {
    let mut client = connect();
    let hung = HungEndpoint::start();
    server_with_keys(
        &mut client,
        "it_explain",
        &format!("endpoint_url '{}', region 'eu-west-1'", hung.url),
        Some(&Keys::new("AKIAEXPLAIN", "s3cr3t-explain")),
    );
    let lines: Vec<String> = client
        .query(
            "EXPLAIN SELECT * FROM it_explain.aws_sts_caller_identity",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = lines.join("\n");
    assert!(plan.contains("rows=1 "), "{plan}");
    assert!(plan.contains("AWS Server: it_explain"), "{plan}");
    assert!(plan.contains("AWS Region: eu-west-1"), "{plan}");
    assert!(
        plan.contains(&format!("AWS Endpoint: {}", hung.url)),
        "{plan}"
    );
    assert!(plan.contains("AWS Credentials: user mapping"), "{plan}");
    assert!(
        !plan.contains("s3cr3t") && !plan.contains("AKIAEXPLAIN"),
        "{plan}"
    );
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        hung.connection_count(),
        0,
        "EXPLAIN connected to the endpoint"
    );
}

#[test]
fn secrets_never_reach_errors_or_the_server_log() {
    let mut client = connect();
    let secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYzzLogCheck";
    let token = "FwoGZXIvYXdzTokenThatMustStayHidden";
    remember_secret(secret);
    remember_secret(token);
    let url = closed_port_url();
    client
        .batch_execute(&format!(
            "CREATE SERVER it_secret FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url '{url}', timeout '2s');
             CREATE USER MAPPING FOR CURRENT_USER SERVER it_secret
                 OPTIONS (access_key 'AKIASECRETTEST', secret_key '{secret}', session_token '{token}');
             CREATE SCHEMA it_secret;
             IMPORT FOREIGN SCHEMA aws FROM SERVER it_secret INTO it_secret;"
        ))
        .unwrap();
    let mut texts = Vec::new();
    for sql in [
        "SELECT * FROM it_secret.aws_sts_caller_identity",
        "EXPLAIN (ANALYZE) SELECT * FROM it_secret.aws_sts_caller_identity",
    ] {
        let error = client.query(sql, &[]).unwrap_err();
        let (_, message, detail, hint) = db_error(&error);
        texts.push(format!("{message}\n{detail}\n{hint}"));
    }
    let plan: Vec<String> = client
        .query(
            "EXPLAIN (VERBOSE) SELECT * FROM it_secret.aws_sts_caller_identity",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    texts.push(plan.join("\n"));
    for text in &texts {
        assert!(
            !text.contains(secret) && !text.contains(token),
            "secret leaked: {text}"
        );
    }
    // Every error above reached the server log too; none of them carries a secret.
    let log = server_log();
    assert!(
        log.contains("aws_sts server \"it_secret\""),
        "the errors were logged"
    );
    assert!(
        !log.contains(secret) && !log.contains(token),
        "secret in the server log"
    );
}

#[test]
fn a_non_superuser_needs_keys_or_ambient_credentials_from_a_superuser() {
    let mut admin = connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS it_user; CREATE ROLE it_user LOGIN;
             CREATE SERVER it_ambient FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'http://127.0.0.1:1');
             GRANT USAGE ON FOREIGN SERVER it_ambient TO it_user;
             CREATE SCHEMA it_ambient AUTHORIZATION it_user;",
        )
        .unwrap();
    let mut user = connect_as("it_user");
    user.batch_execute("IMPORT FOREIGN SCHEMA aws FROM SERVER it_ambient INTO it_ambient")
        .unwrap();
    let error = user
        .query("SELECT arn FROM it_ambient.aws_sts_caller_identity", &[])
        .unwrap_err();
    let (code, message, _, hint) = db_error(&error);
    assert_eq!(code, "42501");
    assert_eq!(
        message,
        "aws_sts server \"it_ambient\": user \"it_user\" has no AWS keys for this server and may not use the database server's own credentials"
    );
    assert!(
        hint.contains("CREATE USER MAPPING FOR \"it_user\" SERVER it_ambient"),
        "{hint}"
    );

    let error = user
        .batch_execute("CREATE USER MAPPING FOR CURRENT_USER SERVER it_ambient OPTIONS (ambient_credentials 'true')")
        .unwrap_err();
    assert_eq!(db_error(&error).0, "42501");

    // A superuser grants ambient credentials: the user now reaches the (closed) endpoint.
    admin
        .batch_execute("CREATE USER MAPPING FOR it_user SERVER it_ambient OPTIONS (ambient_credentials 'true')")
        .unwrap();
    let error = user
        .query("SELECT arn FROM it_ambient.aws_sts_caller_identity", &[])
        .unwrap_err();
    assert_eq!(db_error(&error).0, "HV00N", "{error}");

    // Keys in the user's own mapping work for the user.
    let (keys, _) = create_iam_user("NonSuper");
    admin
        .batch_execute("DROP USER MAPPING FOR it_user SERVER it_ambient")
        .unwrap();
    admin
        .batch_execute(&format!(
            "ALTER SERVER it_ambient OPTIONS (SET endpoint_url '{}')",
            moto_endpoint()
        ))
        .unwrap();
    user.batch_execute(&format!(
        "CREATE USER MAPPING FOR CURRENT_USER SERVER it_ambient OPTIONS (access_key '{}', secret_key '{}')",
        keys.access_key, keys.secret_key
    ))
    .unwrap();
    let arn: String = user
        .query_one("SELECT arn FROM it_ambient.aws_sts_caller_identity", &[])
        .unwrap()
        .get(0);
    assert_eq!(arn, "arn:aws:iam::123456789012:user/NonSuper");
}

#[test]
fn a_view_uses_its_owners_mapping() {
    let mut admin = connect();
    let (keys, _) = create_iam_user("ViewOwner");
    server_with_keys(
        &mut admin,
        "it_view",
        &format!("endpoint_url '{}'", moto_endpoint()),
        Some(&keys),
    );
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS it_viewer; CREATE ROLE it_viewer LOGIN;
             CREATE VIEW it_view.whoami AS SELECT arn FROM it_view.aws_sts_caller_identity;
             GRANT USAGE ON SCHEMA it_view TO it_viewer; GRANT SELECT ON it_view.whoami TO it_viewer;",
        )
        .unwrap();
    let mut viewer = connect_as("it_viewer");
    let arn: String = viewer
        .query_one("SELECT arn FROM it_view.whoami", &[])
        .unwrap()
        .get(0);
    assert_eq!(arn, "arn:aws:iam::123456789012:user/ViewOwner");
}

#[test]
fn rescans_and_repeated_scans_return_the_same_row() {
    let mut client = connect();
    server_with_keys(
        &mut client,
        "it_rescan",
        &format!("endpoint_url '{}'", moto_endpoint()),
        Some(&Keys::new("AKIAIOSFODNN7EXAMPLE", "x")),
    );
    // A nested loop rescans the inner foreign scan once per outer row.
    client
        .batch_execute(
            "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off",
        )
        .unwrap();
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM generate_series(1, 5) g JOIN it_rescan.aws_sts_caller_identity c ON c.account_id <> g::text",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 5);
    let in_subquery: i64 = client
        .query_one(
            "SELECT count(*) FROM generate_series(1, 3) g
             WHERE EXISTS (SELECT 1 FROM it_rescan.aws_sts_caller_identity c WHERE c.user_id || g::text <> '')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(in_subquery, 3);
}

fn explain(client: &mut postgres::Client, sql: &str) -> String {
    let rows = client.query(&format!("EXPLAIN {sql}"), &[]).unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// (AWS Calls, AWS Cache Hits) of one EXPLAIN ANALYZE of the table.
fn calls_and_hits(client: &mut postgres::Client, table: &str) -> (u64, u64) {
    let plan = explain(client, &format!("(ANALYZE) SELECT * FROM {table}"));
    let number = |label: &str| -> u64 {
        let line = plan
            .lines()
            .find(|line| line.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label} in {plan}"));
        line.rsplit(": ").next().unwrap().trim().parse().unwrap()
    };
    assert!(plan.contains("AWS Call Time: "), "{plan}");
    (number("AWS Calls:"), number("AWS Cache Hits:"))
}

#[test]
fn the_cache_answers_repeats_and_forgets_on_alter() {
    let mut client = connect();
    let (alice, _) = create_iam_user("CacheAlice");
    let (bob, _) = create_iam_user("CacheBob");
    server_with_keys(
        &mut client,
        "it_cache",
        &format!("endpoint_url '{}'", moto_endpoint()),
        Some(&alice),
    );
    let table = "it_cache.aws_sts_caller_identity";
    client
        .query_one("SELECT aws_sts_clear_cache()", &[])
        .unwrap();

    assert!(explain(&mut client, &format!("SELECT * FROM {table}"))
        .contains("AWS Cache: miss (the scan will call STS)"));
    assert_eq!(calls_and_hits(&mut client, table), (1, 0));
    assert_eq!(calls_and_hits(&mut client, table), (0, 1));
    assert!(explain(&mut client, &format!("SELECT * FROM {table}")).contains("AWS Cache: hit"));

    // New keys in the user mapping: the cached identity is not used for them.
    client
        .batch_execute(&format!(
            "ALTER USER MAPPING FOR CURRENT_USER SERVER it_cache OPTIONS (SET access_key '{}', SET secret_key '{}')",
            bob.access_key, bob.secret_key
        ))
        .unwrap();
    let arn: String = client
        .query_one(&format!("SELECT arn FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(arn, "arn:aws:iam::123456789012:user/CacheBob");

    // Another session's ALTER SERVER that changes no option still clears this backend's cache.
    assert_eq!(calls_and_hits(&mut client, table), (0, 1));
    connect()
        .batch_execute("ALTER SERVER it_cache VERSION '2'")
        .unwrap();
    assert_eq!(calls_and_hits(&mut client, table), (1, 0));

    // aws_sts_clear_cache() empties it and says how many identities it held.
    let cleared: i64 = client
        .query_one("SELECT aws_sts_clear_cache()", &[])
        .unwrap()
        .get(0);
    assert!(cleared >= 1, "{cleared}");
    assert_eq!(calls_and_hits(&mut client, table), (1, 0));

    // cache 'false' and cache_ttl '0' turn it off.
    for off in ["cache 'false'", "cache_ttl '0'"] {
        client
            .batch_execute(&format!("ALTER SERVER it_cache OPTIONS (ADD {off})"))
            .unwrap();
        assert!(explain(&mut client, &format!("SELECT * FROM {table}")).contains("AWS Cache: off"));
        assert_eq!(calls_and_hits(&mut client, table), (1, 0));
        assert_eq!(calls_and_hits(&mut client, table), (1, 0));
        let option = off.split(' ').next().unwrap();
        client
            .batch_execute(&format!("ALTER SERVER it_cache OPTIONS (DROP {option})"))
            .unwrap();
    }
}

#[test]
fn two_servers_share_nothing_but_identical_settings() {
    let mut client = connect();
    let (keys, _) = create_iam_user("SharedSettings");
    let moto = format!("endpoint_url '{}'", moto_endpoint());
    server_with_keys(&mut client, "it_share_a", &moto, Some(&keys));
    server_with_keys(&mut client, "it_share_b", &moto, Some(&keys));
    client
        .query_one("SELECT aws_sts_clear_cache()", &[])
        .unwrap();
    assert_eq!(
        calls_and_hits(&mut client, "it_share_a.aws_sts_caller_identity"),
        (1, 0)
    );
    // Same credentials, same endpoint: the same identity, so the cache answers...
    assert_eq!(
        calls_and_hits(&mut client, "it_share_b.aws_sts_caller_identity"),
        (0, 1)
    );
    // ...and each row still names its own server.
    let name: String = client
        .query_one(
            "SELECT sp_connection_name FROM it_share_b.aws_sts_caller_identity",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(name, "it_share_b");
}

/// A backend keeps parsed options and column plans between scans; every catalog change
/// that affects them, from any session, is seen by the next scan.
#[test]
fn catalog_changes_from_other_sessions_reach_the_next_scan() {
    let mut admin = connect();
    let (alice, alice_id) = create_iam_user("CatalogAlice");
    server_with_keys(
        &mut admin,
        "it_catalog",
        &format!("endpoint_url '{}', cache 'false'", moto_endpoint()),
        Some(&alice),
    );
    admin
        .batch_execute(
            "CREATE FOREIGN TABLE it_catalog.typed (account_id bigint, who varchar(60) OPTIONS (column_name 'arn'),
                 akas text, sp_ctx json, title name) SERVER it_catalog",
        )
        .unwrap();
    let mut session = connect();
    let typed = session
        .prepare("SELECT account_id, who, akas, sp_ctx::text, title::text FROM it_catalog.typed")
        .unwrap();
    let row = session.query_one(&typed, &[]).unwrap();
    assert_eq!(row.get::<_, i64>(0), 123456789012);
    assert_eq!(
        row.get::<_, String>(1),
        "arn:aws:iam::123456789012:user/CatalogAlice"
    );
    assert_eq!(
        row.get::<_, String>(2),
        "[\"arn:aws:iam::123456789012:user/CatalogAlice\"]"
    );
    assert!(row
        .get::<_, String>(3)
        .contains("\"connection_name\":\"it_catalog\""));
    assert_eq!(row.get::<_, String>(4), alice_id);

    // Column options changed elsewhere: the prepared statement reads the new column.
    admin
        .batch_execute(
            "ALTER FOREIGN TABLE it_catalog.typed ALTER COLUMN who OPTIONS (SET column_name 'user_id')",
        )
        .unwrap();
    let row = session.query_one(&typed, &[]).unwrap();
    assert_eq!(row.get::<_, String>(1), alice_id);

    // Server options changed elsewhere: the next scan goes to the new endpoint.
    admin
        .batch_execute(&format!(
            "ALTER SERVER it_catalog OPTIONS (SET endpoint_url '{}', ADD max_error_retry_attempts '1')",
            closed_port_url()
        ))
        .unwrap();
    let error = session.query_one(&typed, &[]).unwrap_err();
    assert!(
        db_error(&error)
            .1
            .contains("could not reach the STS endpoint"),
        "{error}"
    );
    admin
        .batch_execute(&format!(
            "ALTER SERVER it_catalog OPTIONS (SET endpoint_url '{}')",
            moto_endpoint()
        ))
        .unwrap();
    // The user mapping's keys changed elsewhere: the next scan uses the new ones.
    admin
        .batch_execute(
            "ALTER USER MAPPING FOR postgres SERVER it_catalog OPTIONS (SET access_key 'AKIAOTHERUNKNOWN')",
        )
        .unwrap();
    let row = session.query_one(&typed, &[]).unwrap();
    assert_eq!(
        row.get::<_, String>(2),
        "[\"arn:aws:sts::123456789012:user/moto\"]"
    );

    // A superuser demoted elsewhere loses the server's own credentials at once.
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS it_demoted; CREATE ROLE it_demoted LOGIN SUPERUSER;
             DROP SERVER IF EXISTS it_ambient_only CASCADE;
             CREATE SERVER it_ambient_only FOREIGN DATA WRAPPER aws_sts OPTIONS (instance_metadata 'false');
             CREATE FOREIGN TABLE public.it_ambient_only (arn text) SERVER it_ambient_only;
             GRANT SELECT ON public.it_ambient_only TO it_demoted;
             GRANT USAGE ON FOREIGN SERVER it_ambient_only TO it_demoted;",
        )
        .unwrap();
    let mut demoted = connect_as("it_demoted");
    let error = demoted
        .query("SELECT arn FROM public.it_ambient_only", &[])
        .unwrap_err();
    assert_eq!(db_error(&error).0, "HV00N", "a superuser may look: {error}");
    admin
        .batch_execute("ALTER ROLE it_demoted NOSUPERUSER")
        .unwrap();
    let error = demoted
        .query("SELECT arn FROM public.it_ambient_only", &[])
        .unwrap_err();
    assert_eq!(db_error(&error).0, "42501", "{error}");
}

/// A server named by an SQL keyword: IMPORT FOREIGN SCHEMA's statement and the hints quote
/// it, so both can be run as written.
#[test]
fn a_server_named_by_a_keyword_is_quoted() {
    let mut admin = connect();
    let (keys, user_id) = create_iam_user("KeywordServerUser");
    admin
        .batch_execute(&format!(
            r#"DROP SCHEMA IF EXISTS it_keyword CASCADE; DROP SERVER IF EXISTS "default" CASCADE;
               DROP ROLE IF EXISTS it_keyword_user; CREATE ROLE it_keyword_user LOGIN;
               CREATE SERVER "default" FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url '{moto}', region 'us-east-1');
               CREATE SCHEMA it_keyword; IMPORT FOREIGN SCHEMA aws FROM SERVER "default" INTO it_keyword;
               GRANT USAGE ON FOREIGN SERVER "default" TO it_keyword_user;
               GRANT USAGE ON SCHEMA it_keyword TO it_keyword_user;
               GRANT SELECT ON it_keyword.aws_sts_caller_identity TO it_keyword_user;"#,
            moto = moto_endpoint()
        ))
        .unwrap();
    // The user without keys is told how to map them, in SQL that runs as written.
    let mut user = connect_as("it_keyword_user");
    let error = query_arn(&mut user, "it_keyword").unwrap_err();
    let (code, _, _, hint) = db_error(&error);
    assert_eq!(code, "42501");
    assert!(hint.contains(r#"SERVER "default""#), "{hint}");
    admin
        .batch_execute(&format!(
            r#"CREATE USER MAPPING FOR it_keyword_user SERVER "default" OPTIONS (access_key '{}', secret_key '{}')"#,
            keys.access_key, keys.secret_key
        ))
        .unwrap();
    let mut user = connect_as("it_keyword_user");
    let row = user
        .query_one(
            "SELECT user_id FROM it_keyword.aws_sts_caller_identity",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), user_id);
}
