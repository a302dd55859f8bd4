//! Drivers prepare statements, and after five executions (or with plan_cache_mode =
//! force_generic_plan, or in PL/pgSQL) Postgres plans them once for any parameter: an
//! aggregator still calls only the members the parameters pick, chosen at execution.

mod common;

use common::faults::{Fault, FaultServer};
use common::*;

/// Members `<p>_a` and `<p>_b` answer on their own fault endpoints (counted); `<p>_down`'s
/// endpoint is closed, so calling it fails the scan (on_error 'fail'). The aggregator `<p>`
/// spans all three; nothing is cached.
fn setup(client: &mut postgres::Client, prefix: &str) -> (FaultServer, FaultServer) {
    let a = FaultServer::start(vec![], Fault::Answer);
    let b = FaultServer::start(vec![], Fault::Answer);
    let keys = Keys::new("AKIAGENERIC", "generic-plan-secret");
    let options = |url: &str| {
        format!("endpoint_url '{url}', cache 'false', max_error_retry_attempts '1', timeout '2s'")
    };
    server_with_keys(
        client,
        &format!("{prefix}_a"),
        &options(&a.url),
        Some(&keys),
    );
    server_with_keys(
        client,
        &format!("{prefix}_b"),
        &options(&b.url),
        Some(&keys),
    );
    server_with_keys(
        client,
        &format!("{prefix}_down"),
        &options(&closed_port_url()),
        Some(&keys),
    );
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {prefix} CASCADE; DROP SERVER IF EXISTS {prefix} CASCADE;
             CREATE SERVER {prefix} FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', connections '{prefix}_*');
             CREATE SCHEMA {prefix};
             IMPORT FOREIGN SCHEMA aws FROM SERVER {prefix} INTO {prefix};"
        ))
        .unwrap();
    (a, b)
}

fn names(rows: &[postgres::Row]) -> Vec<String> {
    rows.iter().map(|row| row.get(0)).collect()
}

#[test]
fn a_generic_plan_calls_only_the_member_the_parameter_names() {
    let mut client = connect();
    let (a, b) = setup(&mut client, "gp_eq");
    // A driver's named statement, executed more than five times.
    let statement = client
        .prepare(
            "SELECT sp_connection_name FROM gp_eq.aws_sts_caller_identity WHERE sp_connection_name = $1",
        )
        .unwrap();
    for _ in 0..8 {
        let rows = client.query(&statement, &[&"gp_eq_a"]).unwrap();
        assert_eq!(names(&rows), vec!["gp_eq_a".to_string()]);
    }
    // psql's PREPARE under force_generic_plan.
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE gp_eq_q(text) AS
                 SELECT sp_connection_name FROM gp_eq.aws_sts_caller_identity WHERE sp_connection_name = $1",
        )
        .unwrap();
    for _ in 0..3 {
        let rows = client.query("EXECUTE gp_eq_q('gp_eq_b')", &[]).unwrap();
        assert_eq!(names(&rows), vec!["gp_eq_b".to_string()]);
    }
    assert_eq!(a.request_count(), 8);
    assert_eq!(b.request_count(), 3);
    // A NULL parameter matches no member: nothing is called.
    assert!(client
        .query("EXECUTE gp_eq_q(NULL)", &[])
        .unwrap()
        .is_empty());
    assert_eq!(a.request_count() + b.request_count(), 11);

    // EXPLAIN of the generic plan says the choice waits for execution; EXPLAIN ANALYZE
    // names the member called.
    let plan = explain(&mut client, "EXECUTE gp_eq_q('gp_eq_a')");
    assert!(
        plan.contains("AWS Servers: chosen at execution among gp_eq_a, gp_eq_b, gp_eq_down"),
        "{plan}"
    );
    let plan = explain(
        &mut client,
        "(ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE gp_eq_q('gp_eq_a')",
    );
    assert!(plan.contains("AWS Servers: gp_eq_a\n"), "{plan}");
    assert!(plan.contains("AWS Calls: 1"), "{plan}");
    client.batch_execute("RESET plan_cache_mode").unwrap();
}

#[test]
fn in_lists_and_array_parameters_prune_at_execution() {
    let mut client = connect();
    let (a, b) = setup(&mut client, "gp_in");
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE gp_in_list(text, text) AS
                 SELECT sp_connection_name FROM gp_in.aws_sts_caller_identity
                 WHERE sp_connection_name IN ($1, $2) ORDER BY 1;
             PREPARE gp_in_any(text[]) AS
                 SELECT sp_connection_name FROM gp_in.aws_sts_caller_identity
                 WHERE sp_connection_name = ANY($1) ORDER BY 1;
             PREPARE gp_in_both(text, text[]) AS
                 SELECT sp_connection_name FROM gp_in.aws_sts_caller_identity
                 WHERE sp_connection_name = ANY($2) AND sp_connection_name = $1;",
        )
        .unwrap();
    let rows = client
        .query("EXECUTE gp_in_list('gp_in_a', 'gp_in_b')", &[])
        .unwrap();
    assert_eq!(names(&rows), vec!["gp_in_a", "gp_in_b"]);
    let rows = client
        .query("EXECUTE gp_in_any(ARRAY['gp_in_b', 'nonexistent'])", &[])
        .unwrap();
    assert_eq!(names(&rows), vec!["gp_in_b"]);
    let rows = client
        .query(
            "EXECUTE gp_in_both('gp_in_a', ARRAY['gp_in_a', 'gp_in_down'])",
            &[],
        )
        .unwrap();
    assert_eq!(names(&rows), vec!["gp_in_a"]);
    assert_eq!(a.request_count(), 2);
    assert_eq!(b.request_count(), 2);
    client.batch_execute("RESET plan_cache_mode").unwrap();
}

#[test]
fn plpgsql_parameters_prune_too() {
    let mut client = connect();
    let (a, b) = setup(&mut client, "gp_fn");
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION gp_fn_arn(member text) RETURNS text
             LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
             BEGIN
                 RETURN (SELECT sp_connection_name FROM gp_fn.aws_sts_caller_identity
                         WHERE sp_connection_name = member);
             END $$;",
        )
        .unwrap();
    for _ in 0..7 {
        let name: String = client
            .query_one("SELECT gp_fn_arn('gp_fn_b')", &[])
            .unwrap()
            .get(0);
        assert_eq!(name, "gp_fn_b");
    }
    assert_eq!(a.request_count(), 0);
    assert_eq!(b.request_count(), 7);
}

#[test]
fn account_id_parameters_prune_members_whose_account_is_known() {
    let mut client = connect();
    let one = FaultServer::start(vec![], Fault::Answer);
    let two = FaultServer::start(vec![], Fault::Answer);
    let keys = Keys::new("AKIAGENERICACCT", "generic-account-secret");
    // An assumed role's account is known before any call, from its ARN.
    for (name, url, account) in [
        ("gpacct_1", &one.url, "111111111111"),
        ("gpacct_2", &two.url, "222222222222"),
    ] {
        server_with_keys(
            &mut client,
            name,
            &format!(
                "endpoint_url '{url}', cache 'false', max_error_retry_attempts '1', \
                 role_arn 'arn:aws:iam::{account}:role/r'"
            ),
            Some(&keys),
        );
    }
    client
        .batch_execute(
            "DROP SCHEMA IF EXISTS gpacct CASCADE; DROP SERVER IF EXISTS gpacct CASCADE;
             CREATE SERVER gpacct FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', connections 'gpacct_*', on_error 'skip');
             CREATE SCHEMA gpacct;
             IMPORT FOREIGN SCHEMA aws FROM SERVER gpacct INTO gpacct;
             SET plan_cache_mode = force_generic_plan;
             PREPARE gpacct_q(text) AS SELECT arn FROM gpacct.aws_sts_caller_identity WHERE account_id = $1;",
        )
        .unwrap();
    for _ in 0..3 {
        // The fault endpoint cannot assume roles: the member that is called fails (skipped).
        client
            .query("EXECUTE gpacct_q('222222222222')", &[])
            .unwrap();
    }
    assert_eq!(
        one.request_count(),
        0,
        "the other account's member was called"
    );
    assert!(two.request_count() >= 3);
    client.batch_execute("RESET plan_cache_mode").unwrap();
}
