//! Steampipe's pruning operators on an aggregator: `LIKE`, `ILIKE`, `NOT LIKE`, `NOT ILIKE`
//! and `<>` on `sp_connection_name` (and `account_id`), with constants when planning and
//! with parameters (PREPARE under force_generic_plan, PL/pgSQL) when the scan begins. Every
//! member has its own key on the concurrent responder, which counts the calls each one
//! gets: a pruned member is never called, and a pruned unreachable one never fails a query.

mod common;

use std::time::Duration;

use common::responder::{account_for, Responder};
use common::*;

const MEMBERS: [&str; 3] = ["alpha", "bravo", "Charlie"];

fn key(prefix: &str, member: &str) -> String {
    format!("AKIA{}{}", prefix.to_uppercase(), member.to_uppercase())
}

/// Members `<prefix>_alpha`, `_bravo` and `_Charlie` (a quoted name) on the responder,
/// `<prefix>_down` on a closed port (calling it fails the query: on_error 'fail'), and the
/// aggregator `<prefix>` over them all.
fn setup(client: &mut postgres::Client, prefix: &str, responder: &Responder, cache: bool) {
    let secret = format!("{prefix}-pruning-secret");
    remember_secret(&secret);
    let common = format!(
        "cache '{cache}', max_error_retry_attempts '1', timeout '2s', connect_timeout '1s'"
    );
    let mut sql = format!(
        "DROP SCHEMA IF EXISTS {prefix} CASCADE; DROP SERVER IF EXISTS {prefix} CASCADE;
         DROP SERVER IF EXISTS {prefix}_down CASCADE;
         CREATE SERVER {prefix}_down FOREIGN DATA WRAPPER aws_sts
             OPTIONS (endpoint_url '{}', {common});
         CREATE USER MAPPING FOR CURRENT_USER SERVER {prefix}_down
             OPTIONS (access_key '{}', secret_key '{secret}');\n",
        closed_port_url(),
        key(prefix, "down")
    );
    for member in MEMBERS {
        sql.push_str(&format!(
            "DROP SERVER IF EXISTS \"{prefix}_{member}\" CASCADE;
             CREATE SERVER \"{prefix}_{member}\" FOREIGN DATA WRAPPER aws_sts
                 OPTIONS (endpoint_url '{}', {common});
             CREATE USER MAPPING FOR CURRENT_USER SERVER \"{prefix}_{member}\"
                 OPTIONS (access_key '{}', secret_key '{secret}');\n",
            responder.url,
            key(prefix, member)
        ));
    }
    sql.push_str(&format!(
        "CREATE SERVER {prefix} FOREIGN DATA WRAPPER aws_sts
             OPTIONS (type 'aggregator', connections '{prefix}_*');
         CREATE SCHEMA {prefix};
         IMPORT FOREIGN SCHEMA aws FROM SERVER {prefix} INTO {prefix};"
    ));
    client.batch_execute(&sql).unwrap();
}

/// Calls per member so far, in MEMBERS' order.
fn calls(responder: &Responder, prefix: &str) -> Vec<usize> {
    MEMBERS
        .iter()
        .map(|member| responder.requests_for(&key(prefix, member)))
        .collect()
}

/// Runs `sql` (its first column the member names) and checks the rows and that exactly those
/// members were called, once each.
fn check(
    client: &mut postgres::Client,
    responder: &Responder,
    prefix: &str,
    sql: &str,
    expected: &[&str],
) {
    let before = calls(responder, prefix);
    let rows = client
        .query(sql, &[])
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    let mut got: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    got.sort();
    let mut want: Vec<String> = expected
        .iter()
        .map(|member| format!("{prefix}_{member}"))
        .collect();
    want.sort();
    assert_eq!(got, want, "{sql}");
    let called: Vec<usize> = calls(responder, prefix)
        .iter()
        .zip(before)
        .map(|(after, before)| after - before)
        .collect();
    let want_calls: Vec<usize> = MEMBERS
        .iter()
        .map(|member| usize::from(expected.contains(member)))
        .collect();
    assert_eq!(called, want_calls, "calls per member of {MEMBERS:?}: {sql}");
}

#[test]
fn pruning_operators_with_constants_call_only_the_members_that_can_match() {
    let responder = Responder::start(Duration::ZERO);
    let mut client = connect();
    setup(&mut client, "lk", &responder, false);
    let select = "SELECT sp_connection_name FROM lk.aws_sts_caller_identity WHERE";
    let cases: [(&str, &[&str]); 10] = [
        ("sp_connection_name LIKE 'lk\\_a%'", &["alpha"]),
        ("sp_connection_name LIKE 'lk_ch%'", &[]),
        ("sp_connection_name LIKE 'lk___ravo'", &[]),
        ("sp_connection_name LIKE 'lk_b_avo'", &["bravo"]),
        ("sp_connection_name ILIKE 'LK_CH%'", &["Charlie"]),
        ("sp_connection_name NOT LIKE '%down'", &["alpha", "bravo", "Charlie"]),
        (
            "sp_connection_name NOT ILIKE '%O' AND sp_connection_name NOT LIKE '%n'",
            &["alpha", "Charlie"],
        ),
        ("sp_connection_name <> 'lk_down'", &["alpha", "bravo", "Charlie"]),
        (
            "'lk_down' <> sp_connection_name AND sp_connection_name <> 'lk_alpha'",
            &["bravo", "Charlie"],
        ),
        (
            "NOT (sp_connection_name LIKE 'lk_d%') AND sp_connection_name IN ('lk_alpha', 'lk_bravo')",
            &["alpha", "bravo"],
        ),
    ];
    for (qual, expected) in cases {
        check(
            &mut client,
            &responder,
            "lk",
            &format!("{select} {qual}"),
            expected,
        );
        // EXPLAIN names exactly the members chosen.
        let plan = explain(&mut client, &format!("{select} {qual}"));
        let mut names: Vec<String> = expected.iter().map(|m| format!("lk_{m}")).collect();
        names.sort();
        let listed = if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        };
        assert!(
            plan.contains(&format!("AWS Servers: {listed}\n")),
            "{qual}: {plan}"
        );
    }
    // Without pruning, the unreachable member fails the query: the cases above prove it
    // was never called.
    let error = client
        .query(
            "SELECT sp_connection_name FROM lk.aws_sts_caller_identity",
            &[],
        )
        .unwrap_err();
    assert!(
        db_error(&error).1.contains("\"lk_down\""),
        "{:?}",
        db_error(&error)
    );
}

#[test]
fn pruning_operators_with_parameters_choose_members_at_execution() {
    let responder = Responder::start(Duration::ZERO);
    let mut client = connect();
    setup(&mut client, "lkp", &responder, false);
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE lkp_like(text) AS SELECT sp_connection_name FROM lkp.aws_sts_caller_identity
                 WHERE sp_connection_name LIKE $1;
             PREPARE lkp_ilike(text) AS SELECT sp_connection_name FROM lkp.aws_sts_caller_identity
                 WHERE sp_connection_name ILIKE $1;
             PREPARE lkp_not(text, text) AS SELECT sp_connection_name FROM lkp.aws_sts_caller_identity
                 WHERE sp_connection_name NOT LIKE $1 AND sp_connection_name NOT ILIKE $2;
             PREPARE lkp_ne(text) AS SELECT sp_connection_name FROM lkp.aws_sts_caller_identity
                 WHERE sp_connection_name <> $1 AND sp_connection_name <> 'lkp_down'",
        )
        .unwrap();
    let plan = explain(&mut client, "EXECUTE lkp_like('lkp\\_a%')");
    assert!(
        plan.contains("AWS Servers: chosen at execution among"),
        "{plan}"
    );
    let cases: [(&str, &[&str]); 8] = [
        ("EXECUTE lkp_like('lkp\\_a%')", &["alpha"]),
        ("EXECUTE lkp_like('lkp_b%')", &["bravo"]),
        ("EXECUTE lkp_like(NULL)", &[]),
        ("EXECUTE lkp_ilike('LKP_CHARLIE')", &["Charlie"]),
        ("EXECUTE lkp_ilike(NULL)", &[]),
        ("EXECUTE lkp_not('%down', '%O')", &["alpha", "Charlie"]),
        ("EXECUTE lkp_not('%down', NULL)", &[]),
        ("EXECUTE lkp_ne('lkp_bravo')", &["alpha", "Charlie"]),
    ];
    for (sql, expected) in cases {
        check(&mut client, &responder, "lkp", sql, expected);
    }
    // EXPLAIN ANALYZE lists the members the scan called.
    let analyzed = explain(
        &mut client,
        "(ANALYZE, TIMING OFF) EXECUTE lkp_ilike('%RAVO')",
    );
    assert!(analyzed.contains("AWS Servers: lkp_bravo\n"), "{analyzed}");

    // PL/pgSQL: its variables are parameters of the statements it plans.
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION lkp_members(pattern text) RETURNS SETOF text
             LANGUAGE plpgsql AS $$
             BEGIN
                 RETURN QUERY SELECT sp_connection_name FROM lkp.aws_sts_caller_identity
                     WHERE sp_connection_name ILIKE pattern AND sp_connection_name <> 'lkp_down';
             END $$",
        )
        .unwrap();
    for _ in 0..6 {
        check(
            &mut client,
            &responder,
            "lkp",
            "SELECT * FROM lkp_members('%A%')",
            &["alpha", "bravo", "Charlie"],
        );
        check(
            &mut client,
            &responder,
            "lkp",
            "SELECT * FROM lkp_members('lkp\\_c%')",
            &["Charlie"],
        );
    }
}

/// account_id filters prune the members whose account is known before calling (here: from
/// their cached identities); the others are called and filtered by the executor.
#[test]
fn account_id_filters_prune_members_whose_account_is_known() {
    let responder = Responder::start(Duration::ZERO);
    let mut client = connect();
    setup(&mut client, "lka", &responder, true);
    let all = "SELECT sp_connection_name, account_id FROM lka.aws_sts_caller_identity \
               WHERE sp_connection_name <> 'lka_down'";
    assert_eq!(client.query(all, &[]).unwrap().len(), 3);
    let alpha = account_for(&key("lka", "alpha"));
    let plan = explain(
        &mut client,
        &format!("SELECT * FROM lka.aws_sts_caller_identity WHERE account_id <> '{alpha}'"),
    );
    // lka_down's account is unknown: it stays, as for `=`.
    assert!(
        plan.contains("AWS Servers: lka_Charlie, lka_bravo, lka_down\n"),
        "{plan}"
    );
    // The members whose (cached) account starts as alpha's, and those whose does not.
    let prefix = &alpha[..6];
    let (mut like, mut unlike): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for member in MEMBERS {
        let name = format!("lka_{member}");
        if account_for(&key("lka", member)).starts_with(prefix) {
            like.push(name);
        } else {
            unlike.push(name);
        }
    }
    like.sort();
    unlike.sort();
    assert_eq!(like, vec!["lka_alpha".to_string()]);
    for (op, members) in [("LIKE", &like), ("NOT ILIKE", &unlike)] {
        let plan = explain(
            &mut client,
            &format!(
                "SELECT * FROM lka.aws_sts_caller_identity WHERE account_id {op} '{prefix}%' \
                 AND sp_connection_name NOT LIKE '%down'"
            ),
        );
        assert!(
            plan.contains(&format!("AWS Servers: {}\n", members.join(", "))),
            "{op}: {plan}"
        );
    }
}
