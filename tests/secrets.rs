//! Keys never reach the server log: not through a misspelt option name, and not through the
//! CONTEXT lines of a statement run inside PL/pgSQL (DO, EXECUTE, a function).

mod common;

use common::*;

/// What the server log has gained since `start` bytes (the log outlives a run).
fn log_since(start: usize) -> String {
    server_log().get(start..).unwrap_or_default().to_string()
}

/// Runs a statement that must fail, and checks that neither the error nor what the server
/// log gained shows the secret.
fn fails_without_logging(client: &mut postgres::Client, statement: &str, secret: &str) {
    let start = server_log().len();
    let error = client.batch_execute(statement).unwrap_err();
    let (_, message, detail, hint) = db_error(&error);
    assert!(
        !format!("{message}{detail}{hint}").contains(secret),
        "{message} | {detail} | {hint}"
    );
    let log = log_since(start);
    assert!(
        !log.contains(secret),
        "the secret of `{statement}` reached the server log"
    );
}

/// A server to map users to; each test its own, as the tests run in parallel.
fn target_server(client: &mut postgres::Client, name: &str) {
    client
        .batch_execute(&format!(
            "DROP SERVER IF EXISTS {name} CASCADE;
             CREATE SERVER {name} FOREIGN DATA WRAPPER aws_sts"
        ))
        .unwrap();
}

#[test]
fn misspelt_key_options_stay_out_of_the_log() {
    let mut client = connect();
    target_server(&mut client, "it_secret_target");
    for (index, (key_name, secret_name)) in [
        ("acess_key", "secretkey"),
        ("access_key", "secret_access_key"),
        ("accesskey", "aws_secret_access_key"),
    ]
    .iter()
    .enumerate()
    {
        let secret = format!("wJalrMisspeltSecretNumber{index}MustNotBeLogged");
        remember_secret(&secret);
        fails_without_logging(
            &mut client,
            &format!(
                "CREATE USER MAPPING FOR CURRENT_USER SERVER it_secret_target OPTIONS ({key_name} 'AKIAMISSPELT', {secret_name} '{secret}')"
            ),
            &secret,
        );
        fails_without_logging(
            &mut client,
            &format!(
                "CREATE SERVER it_secret_misspelt FOREIGN DATA WRAPPER aws_sts OPTIONS ({secret_name} '{secret}')"
            ),
            &secret,
        );
    }
}

#[test]
fn key_statements_inside_plpgsql_stay_out_of_the_log() {
    let mut client = connect();
    target_server(&mut client, "it_secret_plpgsql");
    let secret = "wJalrPlpgsqlSecretMustNotBeLoggedInContext";
    remember_secret(secret);
    let mapping = format!(
        "CREATE USER MAPPING FOR CURRENT_USER SERVER it_secret_plpgsql OPTIONS (access_key ''AKIAPLPGSQL'', secret_key ''{secret}'', session_token ''x y'')"
    );
    // A DO block, EXECUTE of a string, and a function that runs the statement.
    fails_without_logging(
        &mut client,
        &format!("DO $$ BEGIN EXECUTE '{mapping}'; END $$"),
        secret,
    );
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION it_secret_fn(statement text) RETURNS void LANGUAGE plpgsql AS $f$
             BEGIN EXECUTE statement; END $f$",
        )
        .unwrap();
    fails_without_logging(
        &mut client,
        &format!("SELECT it_secret_fn('{mapping}')"),
        secret,
    );
    // A misspelt key inside PL/pgSQL, and a warning (server keys by a superuser) inside it.
    let misspelt = "wJalrPlpgsqlMisspeltSecretMustNotBeLogged";
    remember_secret(misspelt);
    fails_without_logging(
        &mut client,
        &format!(
            "DO $$ BEGIN EXECUTE 'CREATE USER MAPPING FOR CURRENT_USER SERVER it_secret_plpgsql OPTIONS (acess_key ''AKIAX'', secretkey ''{misspelt}'')'; END $$"
        ),
        misspelt,
    );
    let warned = "wJalrPlpgsqlServerKeyWarnedMustNotBeLogged";
    remember_secret(warned);
    let start = server_log().len();
    client
        .batch_execute(&format!(
            "DROP SERVER IF EXISTS it_secret_warned CASCADE;
             DO $$ BEGIN EXECUTE 'CREATE SERVER it_secret_warned FOREIGN DATA WRAPPER aws_sts OPTIONS (access_key ''AKIAWARN'', secret_key ''{warned}'')'; END $$;
             DROP SERVER it_secret_warned;"
        ))
        .unwrap();
    assert!(
        !log_since(start).contains(warned),
        "the WARNING's CONTEXT carried the key"
    );
}
