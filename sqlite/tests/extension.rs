//! The SQLite extension loaded into the system SQLite, against moto: the default identity
//! from the environment, keys through `aws_sts_configure` and module arguments, every
//! column's value, errors, the per-connection cache and the seed's join.

use std::time::{Duration, Instant};

use aws_sts_sqlite_tests::faults::{Fault, FaultServer};
use aws_sts_sqlite_tests::*;
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

const ALL_COLUMNS: &str =
    "arn, user_id, title, akas, partition, account_id, sp_connection_name, sp_ctx, _ctx";

/// The one row of a scan, as text, in ALL_COLUMNS order.
fn scan(connection: &Connection, table: &str) -> rusqlite::Result<Vec<Option<String>>> {
    connection.query_row(&format!("SELECT {ALL_COLUMNS} FROM {table}"), [], |row| {
        (0..9).map(|index| row.get(index)).collect()
    })
}

fn configure(connection: &Connection, config: &str) -> rusqlite::Result<String> {
    connection.query_row("SELECT aws_sts_configure(?1)", [config], |row| row.get(0))
}

fn error_text(error: rusqlite::Error) -> String {
    error.to_string()
}

/// Checks every column of a row against an identity, as Steampipe derives them.
fn assert_row(row: &[Option<String>], arn: &str, user_id: &str, connection_name: &str) {
    let text = |index: usize| {
        row[index]
            .as_deref()
            .unwrap_or_else(|| panic!("column {index} is NULL"))
    };
    assert_eq!(text(0), arn, "arn");
    assert_eq!(text(1), user_id, "user_id");
    // Steampipe's title is the UserId (transform.FromField("UserId")).
    assert_eq!(text(2), user_id, "title");
    let akas: Value = serde_json::from_str(text(3)).expect("akas is JSON");
    assert_eq!(akas, serde_json::json!([arn]), "akas");
    assert_eq!(text(4), "aws", "partition");
    assert_eq!(text(5), ACCOUNT_ID, "account_id");
    assert_eq!(text(6), connection_name, "sp_connection_name");
    for (index, name) in [(7, "sp_ctx"), (8, "_ctx")] {
        let context: Value =
            serde_json::from_str(text(index)).unwrap_or_else(|_| panic!("{name} is JSON"));
        assert_eq!(context["connection_name"], connection_name, "{name}");
        assert_eq!(context["extension"], "aws_sts", "{name}");
        assert!(context["version"].is_string(), "{name}: {context}");
    }
}

#[test]
fn the_default_identity_comes_from_the_environment() {
    let connection = connect();
    let row = scan(&connection, "aws_sts_caller_identity").expect("scan");
    assert_row(&row, DEFAULT_ARN, DEFAULT_ACCESS_KEY, "aws");
    // Exactly one row.
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM aws_sts_caller_identity", [], |row| {
            row.get(0)
        })
        .expect("count");
    assert_eq!(rows, 1);
}

fn arn_of(connection: &Connection) -> String {
    connection
        .query_row("SELECT arn FROM aws_sts_caller_identity", [], |row| {
            row.get(0)
        })
        .expect("scan")
}

#[test]
fn alices_keys_through_aws_sts_configure() {
    let connection = connect();
    let secret = seeded("ALICE_SECRET_KEY");
    let summary = configure(&connection, &alice_config(&moto_endpoint())).expect("configure");
    assert!(summary.contains(&moto_endpoint()), "{summary}");
    assert!(
        !summary.contains(&secret),
        "the summary shows a secret: {summary}"
    );
    let row = scan(&connection, "aws_sts_caller_identity").expect("scan");
    assert_row(&row, ALICE_ARN, &seeded("ALICE_USER_ID"), "aws");

    // NULL goes back to the environment's identity.
    let _: String = connection
        .query_row("SELECT aws_sts_configure(NULL)", [], |row| row.get(0))
        .expect("reset");
    assert_eq!(arn_of(&connection), DEFAULT_ARN);
}

#[test]
fn steampipes_function_name_configures_too() {
    let connection = connect();
    let _: String = connection
        .query_row(
            "SELECT steampipe_configure_aws(?1)",
            [alice_config(&moto_endpoint())],
            |row| row.get(0),
        )
        .expect("configure");
    assert_eq!(arn_of(&connection), ALICE_ARN);
}

#[test]
fn assume_role_session_credentials() {
    let connection = connect();
    configure(&connection, &role_config(&moto_endpoint())).expect("configure");
    let row = scan(&connection, "aws_sts_caller_identity").expect("scan");
    let user_id = row[1].clone().expect("user_id");
    // moto answers AssumeRole sessions with the role's id and the session name.
    let (role_id, session) = user_id.split_once(':').expect("role id:session");
    assert!(role_id.starts_with("AROA"), "{user_id}");
    assert_eq!(session, "my-role-session-name");
    assert_row(&row, ROLE_ARN, &user_id, "aws");
}

#[test]
fn each_connection_has_its_own_configuration() {
    let alice = connect();
    let default = connect();
    configure(&alice, &alice_config(&moto_endpoint())).expect("configure");
    assert_eq!(arn_of(&alice), ALICE_ARN);
    assert_eq!(arn_of(&default), DEFAULT_ARN);
}

#[test]
fn a_bad_config_fails_with_the_parsers_message_and_changes_nothing() {
    let connection = connect();
    configure(&connection, &alice_config(&moto_endpoint())).expect("configure");
    let error = configure(&connection, "regions = [\"us-east-1\"\nnot valid hcl = =")
        .expect_err("an invalid config");
    let text = error_text(error);
    assert!(text.starts_with("aws_sts_configure: "), "{text}");
    assert!(
        text.contains("line"),
        "the parser's message names the line: {text}"
    );
    let error = configure(&connection, "no_such_key = \"x\"").expect_err("an unknown key");
    assert!(error_text(error).contains("no_such_key"));
    // The last good configuration still holds.
    assert_eq!(arn_of(&connection), ALICE_ARN);
}

#[test]
fn an_unreachable_endpoint_fails_quickly_and_clearly() {
    let connection = connect();
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let secret = seeded("ALICE_SECRET_KEY");
    let config = format!("{}max_error_retry_attempts = 1\n", alice_config(&endpoint));
    configure(&connection, &config).expect("configure");
    let started = Instant::now();
    let error = scan(&connection, "aws_sts_caller_identity").expect_err("nothing listens there");
    let elapsed = started.elapsed();
    let text = error_text(error);
    assert!(
        text.contains(&format!("could not reach the STS endpoint {endpoint}")),
        "{text}"
    );
    assert!(
        text.contains("DETAIL: ") && text.contains("HINT: "),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
    assert!(
        !text.contains(&secret),
        "an error shows the secret key: {text}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[test]
fn ignore_error_codes_turn_a_matching_aws_error_into_zero_rows() {
    // moto never refuses GetCallerIdentity, so the refusal comes from the fault endpoint.
    let refusing = FaultServer::start(vec![], Fault::Error(403, "AccessDenied"));
    let connection = connect();
    let base = format!(
        "{}max_error_retry_attempts = 1\n",
        keys_config(&refusing.url, "AKIAREFUSED", "refused-secret", None)
    );
    configure(&connection, &base).expect("configure");
    let error = scan(&connection, "aws_sts_caller_identity").expect_err("refused");
    let text = error_text(error);
    assert!(text.contains("(AccessDenied)"), "{text}");
    assert!(!text.contains("refused-secret"), "{text}");

    configure(
        &connection,
        &format!("{base}ignore_error_codes = [\"Access*\"]\n"),
    )
    .expect("configure");
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM aws_sts_caller_identity", [], |row| {
            row.get(0)
        })
        .expect("an ignored error is an empty table");
    assert_eq!(rows, 0);

    // Another code still fails.
    configure(
        &connection,
        &format!("{base}ignore_error_codes = [\"Throttling\"]\n"),
    )
    .expect("configure");
    assert!(scan(&connection, "aws_sts_caller_identity").is_err());
}

#[test]
fn module_arguments_make_a_configured_table() {
    let connection = connect();
    connection
        .execute_batch(&format!(
            "CREATE VIRTUAL TABLE alice USING aws_sts_caller_identity(config='{}', connection_name='alice')",
            alice_config(&moto_endpoint()).replace('\'', "''")
        ))
        .expect("create virtual table");
    let row = scan(&connection, "alice").expect("scan");
    assert_row(&row, ALICE_ARN, &seeded("ALICE_USER_ID"), "alice");
    // Two identities in one query: the configured table and the eponymous one.
    let (left, right): (String, String) = connection
        .query_row(
            "SELECT a.arn, d.arn FROM alice AS a, aws_sts_caller_identity AS d",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("two tables");
    assert_eq!((left.as_str(), right.as_str()), (ALICE_ARN, DEFAULT_ARN));

    let error = connection
        .execute_batch(
            "CREATE VIRTUAL TABLE bad USING aws_sts_caller_identity(region='not a region')",
        )
        .expect_err("an invalid region");
    assert!(error_text(error).contains("region"));
    let error = connection
        .execute_batch("CREATE VIRTUAL TABLE bad USING aws_sts_caller_identity(oops)")
        .expect_err("not name=value");
    assert!(error_text(error).contains("name='value'"));
}

#[test]
fn a_join_calls_sts_once_and_later_scans_use_the_cache() {
    let proxy = CountingProxy::start();
    let connection = connect();
    let users = create_iam_user_table(&connection);
    assert!(users >= 2, "the seed creates Alice and Bob");
    // A table whose requests go through the proxy (keys from the environment).
    connection
        .execute_batch(&format!(
            "CREATE VIRTUAL TABLE counted USING aws_sts_caller_identity(endpoint_url='{}')",
            proxy.endpoint
        ))
        .expect("create virtual table");

    // CROSS JOIN makes SQLite rescan the virtual table for every user: only the cache keeps
    // that to one STS call.
    let started = Instant::now();
    let rows: i64 = connection
        .query_row(
            "SELECT count(*) FROM aws_iam_user AS u CROSS JOIN counted AS c WHERE c.arn = ?1",
            [DEFAULT_ARN],
            |row| row.get(0),
        )
        .expect("join");
    let uncached = started.elapsed();
    assert_eq!(rows, users as i64);
    assert_eq!(proxy.requests(), 1, "one STS call for the whole join");

    let started = Instant::now();
    for _ in 0..10 {
        scan(&connection, "counted").expect("scan");
    }
    let cached = started.elapsed() / 10;
    assert_eq!(proxy.requests(), 1, "later scans come from the cache");
    eprintln!("join with one STS call: {uncached:?}; cached scan: {cached:?}");

    // Another connection has a cache of its own.
    let other = connect();
    other
        .execute_batch(&format!(
            "CREATE VIRTUAL TABLE counted USING aws_sts_caller_identity(endpoint_url='{}')",
            proxy.endpoint
        ))
        .expect("create virtual table");
    scan(&other, "counted").expect("scan");
    assert_eq!(proxy.requests(), 2);

    // cache_ttl '0' turns caching off: every scan asks STS.
    connection
        .execute_batch(&format!(
            "CREATE VIRTUAL TABLE uncached USING aws_sts_caller_identity(endpoint_url='{}', cache_ttl='0')",
            proxy.endpoint
        ))
        .expect("create virtual table");
    scan(&connection, "uncached").expect("scan");
    scan(&connection, "uncached").expect("scan");
    assert_eq!(proxy.requests(), 4);
}

#[test]
fn configuring_again_forgets_the_cache() {
    let proxy = CountingProxy::start();
    let connection = connect();
    configure(&connection, &alice_config(&proxy.endpoint)).expect("configure");
    scan(&connection, "aws_sts_caller_identity").expect("scan");
    scan(&connection, "aws_sts_caller_identity").expect("scan");
    assert_eq!(proxy.requests(), 1);
    configure(&connection, &alice_config(&proxy.endpoint)).expect("configure");
    scan(&connection, "aws_sts_caller_identity").expect("scan");
    assert_eq!(proxy.requests(), 2, "configuring is how to ask STS again");
}

/// The seed's sqlite queries, verbatim, as sqlite/tests/shell.sh runs them.
const SEED_QUERIES: &str = include_str!("sql/seed_queries.sql");

/// The statement of SEED_QUERIES that contains `marker`.
fn seed_query(marker: &str) -> String {
    SEED_QUERIES
        .split(';')
        .find(|statement| statement.contains(marker))
        .map(|statement| format!("{};", statement.trim()))
        .unwrap_or_else(|| panic!("no seed query with {marker}"))
}

#[test]
fn the_seed_join_against_aws_iam_user() {
    let connection = connect();
    create_iam_user_table(&connection);
    let seed_join = |filter: &str| -> Vec<(String, String, String)> {
        // The seed's sqlite join, verbatim from seed_queries.sql, with the ARN filter given.
        let sql = seed_query("'%assumed%'").replace("'%assumed%'", &format!("'{filter}'"));
        let mut statement = connection.prepare(&sql).expect("prepare the seed query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(4)?)))
            .expect("run the seed query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    };

    // Alice is an IAM user: the join finds her, but she is neither assumed nor federated.
    configure(&connection, &alice_config(&moto_endpoint())).expect("configure");
    let alice_id = seeded("ALICE_USER_ID");
    assert_eq!(
        seed_join("%"),
        vec![(ALICE_ARN.to_string(), alice_id.clone(), "Alice".to_string())]
    );
    assert!(seed_join("%assumed%").is_empty());
    assert!(seed_join("%federated%").is_empty());
    let password_last_used: Option<Option<String>> = connection
        .query_row(
            "SELECT u.password_last_used FROM aws_sts_caller_identity AS c JOIN aws_iam_user AS u \
             ON c.user_id = u.user_id",
            [],
            |row| row.get(0),
        )
        .optional()
        .expect("join");
    assert_eq!(password_last_used, Some(None), "Alice never signed in");

    // An assumed-role session's user_id is ROLEID:session, no IAM user's: the seed query
    // filters on the ARN correctly but the join finds no user.
    configure(&connection, &role_config(&moto_endpoint())).expect("configure");
    let assumed: i64 = connection
        .query_row(
            "SELECT count(*) FROM aws_sts_caller_identity WHERE arn like '%assumed%'",
            [],
            |row| row.get(0),
        )
        .expect("filter");
    assert_eq!(assumed, 1);
    assert!(seed_join("%assumed%").is_empty());
}

/// What only Postgres users understand; no error SQLite shows may say it.
const POSTGRES_WORDS: [&str; 7] = [
    "server option",
    "user mapping",
    "database server",
    "ALTER SERVER",
    "CREATE USER MAPPING",
    "the server's",
    "<server>",
];

fn assert_sqlite_words(what: &str, text: &str) {
    for word in POSTGRES_WORDS {
        assert!(
            !text.to_lowercase().contains(&word.to_lowercase()),
            "{what}: {word:?} in {text}"
        );
    }
    assert!(
        text.contains("HINT: ") || what.starts_with("option"),
        "{what}: no hint in {text}"
    );
}

/// The error of a scan of a table made with these module arguments.
fn scan_error(connection: &Connection, name: &str, arguments: &str) -> String {
    connection
        .execute_batch(&format!(
            "CREATE VIRTUAL TABLE {name} USING aws_sts_caller_identity({arguments})"
        ))
        .expect("create virtual table");
    error_text(scan(connection, name).expect_err("the scan fails"))
}

#[test]
fn sqlite_errors_speak_sqlite() {
    let connection = connect();
    let closed = format!("http://127.0.0.1:{}", closed_port());

    // No credentials: a profile neither shared file defines (the environment's keys do not
    // count for a named profile).
    let text = scan_error(
        &connection,
        "nocreds",
        &format!("profile='nope', endpoint_url='{closed}', max_error_retry_attempts='1'"),
    );
    assert!(
        text.contains("no AWS credentials found: profile \"nope\" is not defined"),
        "{text}"
    );
    assert!(text.contains("of the user running this process"), "{text}");
    assert_sqlite_words("no credentials", &text);

    // A timeout.
    let hung = FaultServer::start(vec![], Fault::Hang);
    let text = scan_error(
        &connection,
        "slow",
        &format!(
            "endpoint_url='{}', timeout='1s', max_error_retry_attempts='1'",
            hung.url
        ),
    );
    assert!(
        text.contains("did not finish within the timeout of 1s"),
        "{text}"
    );
    assert!(text.contains("raise the timeout module argument"), "{text}");
    assert_sqlite_words("timeout", &text);

    // An endpoint nothing listens on.
    let text = scan_error(
        &connection,
        "unreachable",
        &format!("endpoint_url='{closed}', max_error_retry_attempts='1'"),
    );
    assert!(text.contains("could not reach the STS endpoint"), "{text}");
    assert!(text.contains("reachable from this process"), "{text}");
    assert_sqlite_words("bad endpoint", &text);

    // AssumeRole refused, with keys from the config as the source credentials.
    let refusing = FaultServer::start(vec![], Fault::Error(403, "AccessDenied"));
    configure(
        &connection,
        &format!(
            "{}assume_role_arn = \"arn:aws:iam::123456789012:role/r\"\nmax_error_retry_attempts = 1\n",
            keys_config(&refusing.url, "AKIASOURCE", "source-secret", None)
        ),
    )
    .expect("configure");
    let text = error_text(scan(&connection, "aws_sts_caller_identity").expect_err("refused"));
    assert!(text.contains("could not assume role"), "{text}");
    assert!(
        text.contains("source credentials: the keys in the config"),
        "{text}"
    );
    assert_sqlite_words("assume role", &text);

    // Options that only the Postgres extension knows, as module arguments and in a config.
    for (name, value) in [
        ("type", "aggregator"),
        ("connections", "aws_*"),
        ("concurrency", "4"),
        ("on_error", "skip"),
        ("ambient_credentials", "true"),
    ] {
        let error = connection
            .execute_batch(&format!(
                "CREATE VIRTUAL TABLE agg_{name} USING aws_sts_caller_identity({name}='{value}')"
            ))
            .expect_err("does not apply");
        let text = error_text(error);
        assert!(
            text.contains(&format!("option \"{name}\" does not apply to SQLite")),
            "{text}"
        );
        assert_sqlite_words(&format!("option {name}"), &text);
    }
    let error = configure(
        &connection,
        "connection \"all\" {\n  type = \"aggregator\"\n  connections = [\"aws_*\"]\n}\n",
    )
    .expect_err("an aggregator config");
    let text = error_text(error);
    assert!(
        text.contains("key \"type\" in config (line 2) does not apply to SQLite"),
        "{text}"
    );
    assert_sqlite_words("aggregator config", &text);

    // A setting given twice, half a key pair, a bad profile name, keys in the endpoint.
    for (what, arguments, expected) in [
        (
            "twice",
            "config='profile = \"a\"', profile='b'",
            "is set both as a module argument and in config (line 1)",
        ),
        (
            "half pair",
            "access_key='AKIAHALF'",
            "requires secret_key among the module arguments",
        ),
        ("profile", "profile='two words'", "for option \"profile\""),
        (
            "userinfo",
            "endpoint_url='https://u:p@sts.amazonaws.com'",
            "user information in the URL is not allowed",
        ),
    ] {
        let error = connection
            .execute_batch(&format!(
                "CREATE VIRTUAL TABLE bad_args USING aws_sts_caller_identity({arguments})"
            ))
            .expect_err(what);
        let text = error_text(error);
        assert!(text.contains(expected), "{what}: {text}");
        assert_sqlite_words(what, &text);
    }
}
