//! Aggregator servers through PostgreSQL and moto: one row per member server, pruning by
//! sp_connection_name, on_error, concurrency and per-member permissions.

mod common;

use std::time::{Duration, Instant};

use common::faults::{Fault, FaultServer, FAULT_ARN};
use common::*;

fn rows(client: &mut postgres::Client, sql: &str) -> Vec<(String, String)> {
    client
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Servers `<prefix>_a` and `_b` answer as the IAM users `<Prefix>A` and `<Prefix>B`, `_c`'s
/// endpoint is closed; `_other` does not match the `?` patterns.
fn members(client: &mut postgres::Client, prefix: &str) {
    let moto = format!("endpoint_url '{}'", moto_endpoint());
    let (a, _) = create_iam_user(&format!("{prefix}A"));
    let (b, _) = create_iam_user(&format!("{prefix}B"));
    let server = |suffix: &str| format!("{}_{suffix}", prefix.to_lowercase());
    server_with_keys(client, &server("a"), &moto, Some(&a));
    server_with_keys(client, &server("b"), &moto, Some(&b));
    server_with_keys(
        client,
        &server("c"),
        &format!(
            "endpoint_url '{}', max_error_retry_attempts '1'",
            closed_port_url()
        ),
        Some(&a),
    );
    server_with_keys(client, &server("other"), &moto, Some(&a));
}

fn aggregator(client: &mut postgres::Client, name: &str, options: &str) {
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; DROP SERVER IF EXISTS {name} CASCADE;
             CREATE SERVER {name} FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', {options});
             CREATE SCHEMA {name};
             IMPORT FOREIGN SCHEMA aws FROM SERVER {name} INTO {name};"
        ))
        .unwrap();
}

#[test]
fn an_aggregator_returns_one_row_per_member_and_skips_failures_with_a_warning() {
    let mut admin = connect();
    members(&mut admin, "Skip");
    aggregator(
        &mut admin,
        "agg_skip",
        "connections 'skip_?', on_error 'skip'",
    );
    let (mut client, notices) = connect_collecting_notices();
    let got = rows(
        &mut client,
        "SELECT sp_connection_name, arn FROM agg_skip.aws_sts_caller_identity ORDER BY 1",
    );
    assert_eq!(
        got,
        vec![
            (
                "skip_a".to_string(),
                "arn:aws:iam::123456789012:user/SkipA".to_string()
            ),
            (
                "skip_b".to_string(),
                "arn:aws:iam::123456789012:user/SkipB".to_string()
            ),
        ]
    );
    let notices = notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]
            .starts_with("01000: aws_sts server \"skip_c\": could not reach the STS endpoint"),
        "{notices:?}"
    );
}

#[test]
fn an_aggregator_fails_naming_the_member_by_default() {
    let mut client = connect();
    members(&mut client, "Fail");
    aggregator(&mut client, "agg_fail", "connections 'fail_?'");
    let error = client
        .query("SELECT * FROM agg_fail.aws_sts_caller_identity", &[])
        .unwrap_err();
    let (code, message, _, _) = db_error(&error);
    assert_eq!(code, "HV00N");
    assert!(
        message.starts_with("aws_sts server \"fail_c\": could not reach the STS endpoint"),
        "{message}"
    );
}

#[test]
fn sp_connection_name_quals_prune_members_before_any_call() {
    let mut client = connect();
    members(&mut client, "Prune");
    aggregator(&mut client, "agg_prune", "connections 'prune_*'");
    let table = "agg_prune.aws_sts_caller_identity";
    let plan = |client: &mut postgres::Client, sql: &str| -> String {
        client
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let all = plan(&mut client, &format!("EXPLAIN SELECT * FROM {table}"));
    assert!(all.contains("rows=4 "), "{all}");
    assert!(
        all.contains("AWS Servers: prune_a, prune_b, prune_c, prune_other"),
        "{all}"
    );
    assert!(all.contains("AWS Concurrency: 25"), "{all}");

    let one = plan(
        &mut client,
        &format!("EXPLAIN SELECT * FROM {table} WHERE sp_connection_name = 'prune_b'"),
    );
    assert!(
        one.contains("rows=1 ") && one.contains("AWS Servers: prune_b\n"),
        "{one}"
    );
    let two = plan(
        &mut client,
        &format!(
            "EXPLAIN SELECT * FROM {table} WHERE sp_connection_name IN ('prune_a', 'prune_b', 'nope')"
        ),
    );
    assert!(
        two.contains("rows=2 ") && two.contains("AWS Servers: prune_a, prune_b\n"),
        "{two}"
    );

    // The broken member is never called when the query pins the others.
    client
        .query_one("SELECT aws_sts_clear_cache()", &[])
        .unwrap();
    let got = rows(
        &mut client,
        &format!("SELECT sp_connection_name, arn FROM {table} WHERE sp_connection_name IN ('prune_a', 'prune_b') ORDER BY 1"),
    );
    assert_eq!(got.len(), 2);
    let analyzed = plan(
        &mut client,
        &format!("EXPLAIN (ANALYZE, TIMING OFF) SELECT * FROM {table} WHERE sp_connection_name = 'prune_a'"),
    );
    assert!(
        analyzed.contains("AWS Calls: 0") && analyzed.contains("AWS Cache Hits: 1"),
        "{analyzed}"
    );
    let none = rows(
        &mut client,
        &format!("SELECT sp_connection_name, arn FROM {table} WHERE sp_connection_name = 'nope'"),
    );
    assert!(none.is_empty());
}

#[test]
fn members_are_called_concurrently() {
    let mut client = connect();
    let delay = Duration::from_millis(400);
    let endpoints: Vec<FaultServer> = (0..10)
        .map(|_| FaultServer::start(vec![], Fault::Delayed(delay)))
        .collect();
    for (index, endpoint) in endpoints.iter().enumerate() {
        server_with_keys(
            &mut client,
            &format!("slow_{index}"),
            &format!("endpoint_url '{}', cache 'false'", endpoint.url),
            Some(&Keys::new("AKIASLOW", "slow")),
        );
    }
    aggregator(
        &mut client,
        "agg_slow",
        "connections 'slow_*', concurrency '10'",
    );
    let started = Instant::now();
    let got = rows(
        &mut client,
        "SELECT sp_connection_name, arn FROM agg_slow.aws_sts_caller_identity ORDER BY 1",
    );
    let elapsed = started.elapsed();
    println!("10 members answering in 400 ms each, concurrency 10: {elapsed:?}");
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|(_, arn)| arn == FAULT_ARN));
    assert_eq!(got[0].0, "slow_0");
    // One after another they would take 4 s.
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(endpoints
        .iter()
        .all(|endpoint| endpoint.request_count() == 1));
}

#[test]
fn a_member_without_usage_is_denied_to_that_user() {
    let mut admin = connect();
    members(&mut admin, "Perm");
    aggregator(
        &mut admin,
        "agg_perm",
        "connections 'perm_a, perm_b', on_error 'skip'",
    );
    let (keys, _) = create_iam_user("AggUser");
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS agg_user; CREATE ROLE agg_user LOGIN;
             GRANT USAGE ON SCHEMA agg_perm TO agg_user;
             GRANT SELECT ON agg_perm.aws_sts_caller_identity TO agg_user;
             GRANT USAGE ON FOREIGN SERVER perm_a TO agg_user;
             CREATE USER MAPPING FOR agg_user SERVER perm_a OPTIONS (access_key '{}', secret_key '{}');
             CREATE USER MAPPING FOR agg_user SERVER perm_b OPTIONS (access_key '{}', secret_key '{}');",
            keys.access_key, keys.secret_key, keys.access_key, keys.secret_key
        ))
        .unwrap();
    let mut user = connect_as("agg_user");
    let got = rows(
        &mut user,
        "SELECT sp_connection_name, arn FROM agg_perm.aws_sts_caller_identity",
    );
    assert_eq!(
        got,
        vec![(
            "perm_a".to_string(),
            "arn:aws:iam::123456789012:user/AggUser".to_string()
        )]
    );
}

/// `account_id = ...` leaves out members whose account is known before any call: from
/// their role_arn, or from a cached identity. Members whose account is unknown are called
/// (and their rows filtered by the executor as usual).
#[test]
fn account_id_quals_prune_members_whose_account_is_known() {
    let mut admin = connect();
    let (source, _) = create_iam_user("AcctSource");
    let moto = moto_endpoint();
    for (suffix, account) in [("x", "111111111111"), ("y", "222222222222")] {
        server_with_keys(
            &mut admin,
            &format!("acct_{suffix}"),
            &format!(
                "endpoint_url '{moto}', role_arn 'arn:aws:iam::{account}:role/it-acct-{suffix}', cache 'false'"
            ),
            Some(&source),
        );
    }
    // Account unknown until asked (and not cached yet).
    server_with_keys(
        &mut admin,
        "acct_z",
        &format!("endpoint_url '{moto}'"),
        Some(&source),
    );
    aggregator(&mut admin, "agg_acct", "connections 'acct_*'");
    let plan = |client: &mut postgres::Client, sql: &str| -> String {
        client
            .query(&format!("EXPLAIN {sql}"), &[])
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let pinned = "SELECT sp_connection_name, arn FROM agg_acct.aws_sts_caller_identity \
                  WHERE account_id = '111111111111'";
    let explained = plan(&mut admin, pinned);
    assert!(
        explained.contains("AWS Servers: acct_x, acct_z"),
        "{explained}"
    );
    assert!(explained.contains("rows=2 "), "{explained}");
    let got = rows(&mut admin, pinned);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "acct_x");
    assert!(
        got[0]
            .1
            .starts_with("arn:aws:sts::111111111111:assumed-role/it-acct-x/"),
        "{got:?}"
    );
    // acct_z's identity is cached now: its account (moto's 123456789012) is known.
    let explained = plan(&mut admin, pinned);
    assert!(explained.contains("AWS Servers: acct_x\n"), "{explained}");
    let explained = plan(
        &mut admin,
        "SELECT arn FROM agg_acct.aws_sts_caller_identity WHERE account_id IN ('222222222222', '123456789012')",
    );
    assert!(
        explained.contains("AWS Servers: acct_y, acct_z"),
        "{explained}"
    );
}

/// Two members with the same settings are the same identity: one STS call answers both,
/// and each still gets its own row.
#[test]
fn members_with_the_same_settings_share_one_call() {
    let mut admin = connect();
    let (twin, _) = create_iam_user("Twin");
    let options = format!("endpoint_url '{}', cache 'false'", moto_endpoint());
    server_with_keys(&mut admin, "twin_1", &options, Some(&twin));
    server_with_keys(&mut admin, "twin_2", &options, Some(&twin));
    aggregator(&mut admin, "agg_twin", "connections 'twin_?'");
    let got = rows(
        &mut admin,
        "SELECT sp_connection_name, arn FROM agg_twin.aws_sts_caller_identity ORDER BY 1",
    );
    assert_eq!(
        got.iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        vec!["twin_1", "twin_2"]
    );
    assert!(got
        .iter()
        .all(|(_, arn)| arn == "arn:aws:iam::123456789012:user/Twin"));
    let analyzed: String = admin
        .query(
            "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, SUMMARY OFF) SELECT * FROM agg_twin.aws_sts_caller_identity",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(analyzed.contains("AWS Calls: 1\n"), "{analyzed}");
    // PostgreSQL 18 prints actual rows with two decimals.
    assert!(
        analyzed.contains("rows=2 ") || analyzed.contains("rows=2.00 "),
        "{analyzed}"
    );
}
