//! Endpoints and ignored AWS errors through PostgreSQL: EXPLAIN names the FIPS, dual-stack,
//! China and global endpoints as the SDK resolves them without calling any, and
//! `ignore_error_messages` (a plain option or a `config` key) empties the table for the AWS
//! errors it matches only; a pattern that is not a regular expression is refused by the
//! validator. Each holds through PREPARE/EXECUTE with a generic plan, PL/pgSQL and another
//! role in the same backend.

mod common;

use common::faults::{Fault, FaultServer};
use common::proxy::ConnectProxy;
use common::tls::{fixture, Validity};
use common::*;

const SECRET: &str = "https-options-secret-53";
const ROLE_SECRET: &str = "https-options-role-secret-54";

fn keys() -> Keys {
    Keys::new("AKIAHTTPSOPT", SECRET)
}

/// A role `role` (no login) that may read the servers' tables with keys of its own.
fn reader(client: &mut postgres::Client, role: &str, servers: &[&str]) {
    remember_secret(ROLE_SECRET);
    let mut sql = format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role};");
    for server in servers {
        sql.push_str(&format!(
            "GRANT USAGE ON FOREIGN SERVER {server} TO {role};
             GRANT USAGE ON SCHEMA {server} TO {role};
             GRANT SELECT ON {server}.aws_sts_caller_identity TO {role};
             CREATE USER MAPPING FOR {role} SERVER {server}
                 OPTIONS (access_key 'AKIAHTTPSROLE', secret_key '{ROLE_SECRET}');"
        ));
    }
    client.batch_execute(&sql).unwrap();
}

/// The value of EXPLAIN's `AWS Endpoint` line for `statement`.
fn explained_endpoint(client: &mut postgres::Client, statement: &str) -> String {
    let plan = explain(client, statement);
    plan.lines()
        .find_map(|line| line.trim().strip_prefix("AWS Endpoint: "))
        .unwrap_or_else(|| panic!("no AWS Endpoint in {plan}"))
        .to_string()
}

// --- EXPLAIN's endpoint ----------------------------------------------------------------------

#[test]
fn explain_names_fips_dual_stack_and_china_endpoints_without_calling() {
    let mut client = connect();
    // Were EXPLAIN to call, the call would go to this proxy on loopback, which refuses it:
    // nothing leaves the machine, and the proxy shows it.
    let guard = ConnectProxy::refusing("403 Forbidden");
    let cases = [
        (
            "hp_fips",
            "region 'us-east-1', use_fips_endpoint 'true'",
            "https://sts-fips.us-east-1.amazonaws.com",
        ),
        (
            "hp_dualstack",
            "region 'us-east-1', use_dualstack_endpoint 'true'",
            "https://sts.us-east-1.api.aws",
        ),
        (
            "hp_fips_dualstack",
            "region 'us-east-1', use_fips_endpoint 'true', use_dualstack_endpoint 'true'",
            "https://sts-fips.us-east-1.api.aws",
        ),
        (
            "hp_china",
            "region 'cn-north-1'",
            "https://sts.cn-north-1.amazonaws.com.cn",
        ),
        (
            "hp_china_config",
            "config 'default_region = \"cn-north-1\"'",
            "https://sts.cn-north-1.amazonaws.com.cn",
        ),
        (
            "hp_global",
            "region 'aws-global'",
            "https://sts.amazonaws.com",
        ),
        (
            "hp_regional",
            "region 'eu-west-1', use_fips_endpoint 'false'",
            "https://sts.eu-west-1.amazonaws.com",
        ),
    ];
    for (server, options, _) in &cases {
        server_with_keys(
            &mut client,
            server,
            &format!("{options}, proxy_url '{}'", guard.url),
            Some(&keys()),
        );
    }
    let servers: Vec<&str> = cases.iter().map(|(server, _, _)| *server).collect();
    reader(&mut client, "hp_explainer", &servers);
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION hp_endpoint(server text) RETURNS text LANGUAGE plpgsql AS $$
             DECLARE line text;
             BEGIN
               FOR line IN EXECUTE format('EXPLAIN SELECT * FROM %I.aws_sts_caller_identity', server) LOOP
                 IF trim(line) LIKE 'AWS Endpoint: %' THEN
                   RETURN substr(trim(line), length('AWS Endpoint: ') + 1);
                 END IF;
               END LOOP;
               RETURN NULL;
             END $$;
             SET plan_cache_mode = force_generic_plan;",
        )
        .unwrap();
    for (server, _, expected) in &cases {
        let select = format!("SELECT * FROM {server}.aws_sts_caller_identity");
        assert_eq!(
            explained_endpoint(&mut client, &select),
            *expected,
            "{server}"
        );
        // A prepared statement's generic plan, and PL/pgSQL.
        client
            .batch_execute(&format!("PREPARE {server}_q AS {select}"))
            .unwrap();
        assert_eq!(
            explained_endpoint(&mut client, &format!("EXECUTE {server}_q")),
            *expected
        );
        let from_plpgsql: String = client
            .query_one("SELECT hp_endpoint($1)", &[server])
            .unwrap()
            .get(0);
        assert_eq!(from_plpgsql, *expected);
        // Another role, with keys of its own, in the same backend.
        client.batch_execute("SET ROLE hp_explainer").unwrap();
        let plan = explain(&mut client, &select);
        client.batch_execute("RESET ROLE").unwrap();
        assert!(
            plan.contains(&format!("AWS Endpoint: {expected}")),
            "{plan}"
        );
        assert!(plan.contains("AWS Credentials: user mapping"), "{plan}");
        assert!(!plan.contains(SECRET) && !plan.contains(ROLE_SECRET));
    }
    assert!(
        guard.seen().is_empty(),
        "EXPLAIN called: {:?}",
        guard.seen()
    );
}

// --- ignore_error_messages -------------------------------------------------------------------

/// The rows of `server`'s table, or the failing scan's SQLSTATE and message.
fn count(client: &mut postgres::Client, server: &str) -> Result<i64, (String, String)> {
    client
        .query_one(
            &format!("SELECT count(*) FROM {server}.aws_sts_caller_identity"),
            &[],
        )
        .map(|row| row.get(0))
        .map_err(|error| {
            let (state, message, _, _) = db_error(&error);
            (state, message)
        })
}

#[test]
fn ignore_error_messages_turn_only_matching_aws_errors_into_zero_rows() {
    let mut client = connect();
    // Every answer is AccessDenied, "injected AccessDenied".
    let endpoint = FaultServer::start(vec![], Fault::Error(403, "AccessDenied"));
    let url = &endpoint.url;
    server_with_keys(
        &mut client,
        "hp_ignored",
        &format!("endpoint_url '{url}', ignore_error_messages E'rate exceeded\\n^injected Access'"),
        Some(&keys()),
    );
    server_with_keys(
        &mut client,
        "hp_ignored_config",
        &format!(
            "config $$endpoint_url = \"{url}\"
ignore_error_messages = [\"^a, b$\", \"(?i)INJECTED ACCESS\"]$$"
        ),
        Some(&keys()),
    );
    server_with_keys(
        &mut client,
        "hp_not_ignored",
        &format!("endpoint_url '{url}', ignore_error_messages '(?i)rate exceeded'"),
        Some(&keys()),
    );
    let denied = |server: &str| {
        (
            "HV00N".to_string(),
            format!("aws_sts server \"{server}\": AWS denied GetCallerIdentity (AccessDenied)"),
        )
    };
    assert_eq!(count(&mut client, "hp_ignored"), Ok(0));
    assert_eq!(count(&mut client, "hp_ignored_config"), Ok(0));
    assert_eq!(
        count(&mut client, "hp_not_ignored"),
        Err(denied("hp_not_ignored"))
    );
    // AccessDenied is not retried: one request each.
    assert_eq!(endpoint.request_count(), 3);
    // An ignored error is not cached as an answer: each scan asks again.
    assert_eq!(count(&mut client, "hp_ignored"), Ok(0));
    assert_eq!(endpoint.request_count(), 4);

    // A generic plan, PL/pgSQL and another role see the same.
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE hp_ignored_q AS SELECT count(*) FROM hp_ignored_config.aws_sts_caller_identity;
             CREATE OR REPLACE FUNCTION hp_rows(server text) RETURNS text LANGUAGE plpgsql AS $$
             DECLARE rows bigint;
             BEGIN
               EXECUTE format('SELECT count(*) FROM %I.aws_sts_caller_identity', server) INTO rows;
               RETURN rows::text;
             EXCEPTION WHEN OTHERS THEN
               RETURN SQLSTATE || ': ' || SQLERRM;
             END $$;
             GRANT EXECUTE ON FUNCTION hp_rows(text) TO PUBLIC;",
        )
        .unwrap();
    reader(
        &mut client,
        "hp_ignorer",
        &["hp_ignored", "hp_ignored_config", "hp_not_ignored"],
    );
    for role in ["postgres", "hp_ignorer"] {
        client.batch_execute(&format!("SET ROLE {role}")).unwrap();
        for _ in 0..2 {
            let rows: i64 = client
                .query_one("EXECUTE hp_ignored_q", &[])
                .unwrap()
                .get(0);
            assert_eq!(rows, 0, "{role}");
        }
        let rows = |client: &mut postgres::Client, server: &str| -> String {
            client
                .query_one("SELECT hp_rows($1)", &[&server])
                .unwrap()
                .get(0)
        };
        assert_eq!(rows(&mut client, "hp_ignored"), "0");
        let (state, message) = denied("hp_not_ignored");
        assert_eq!(
            rows(&mut client, "hp_not_ignored"),
            format!("{state}: {message}")
        );
        assert_eq!(count(&mut client, "hp_ignored"), Ok(0));
    }
    client.batch_execute("RESET ROLE").unwrap();
}

#[test]
fn a_pattern_never_ignores_a_failure_without_an_aws_message() {
    // A rejected certificate is no AWS error: '.' and '*' match every AWS error, not it.
    let mut client = connect();
    let fixture = fixture();
    let endpoint = fixture.pki.endpoint("hp-ignore-tls", Validity::Current);
    server_with_keys(
        &mut client,
        "hp_ignore_all",
        &format!(
            "endpoint_url 'https://127.0.0.1:{}', ignore_error_messages '.', \
             ignore_error_codes '*'",
            endpoint.port
        ),
        Some(&keys()),
    );
    let (state, message) = count(&mut client, "hp_ignore_all").unwrap_err();
    assert_eq!(state, "HV00N");
    assert!(message.ends_with("(UnknownIssuer)"), "{message}");
}

#[test]
fn a_pattern_that_is_not_a_regular_expression_is_refused_naming_it() {
    let mut client = connect();
    client
        .batch_execute(
            "DROP SERVER IF EXISTS hp_regex CASCADE;
             CREATE SERVER hp_regex FOREIGN DATA WRAPPER aws_sts
                 OPTIONS (ignore_error_messages 'fine');",
        )
        .unwrap();
    let plain = "invalid value \"(unclosed\" for option \"ignore_error_messages\": not a regular \
                 expression (unclosed group)";
    let in_config = "invalid value \"a[b\" for option \"ignore_error_messages\": not a regular \
                     expression (unclosed character class) (config line 2)";
    let config = "config $$profile = \"p\"
ignore_error_messages = [\"ok, with a comma\", \"a[b\"]$$";
    let attempts = [
        (
            "CREATE SERVER hp_bad_regex FOREIGN DATA WRAPPER aws_sts \
             OPTIONS (ignore_error_messages E'fine\\n(unclosed\\nalso fine')"
                .to_string(),
            plain,
        ),
        (
            "ALTER SERVER hp_regex OPTIONS (SET ignore_error_messages E'fine\\n(unclosed')"
                .to_string(),
            plain,
        ),
        (
            format!("CREATE SERVER hp_bad_regex FOREIGN DATA WRAPPER aws_sts OPTIONS ({config})"),
            in_config,
        ),
        (
            format!("ALTER SERVER hp_regex OPTIONS (DROP ignore_error_messages, ADD {config})"),
            in_config,
        ),
        (
            "DO $$ BEGIN EXECUTE 'ALTER SERVER hp_regex OPTIONS (SET ignore_error_messages \
             ''(unclosed'')'; END $$"
                .to_string(),
            plain,
        ),
    ];
    for (statement, expected) in attempts {
        let error = client.batch_execute(&statement).expect_err(&statement);
        let (state, message, _, hint) = db_error(&error);
        assert_eq!(state, "HV024", "{statement}: {message}");
        assert!(message.ends_with(expected), "{statement}: {message}");
        assert!(hint.contains("one regular expression per line"), "{hint}");
    }
    // Nothing changed.
    let options: Vec<String> = client
        .query_one(
            "SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'hp_regex'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(options, ["ignore_error_messages=fine"]);
}
