//! The database server's own credentials (default chain, profiles) go only where a
//! superuser sends them: a server owner who is not a superuser cannot point them at an
//! endpoint of their own, and EXPLAIN and pruning follow the scan's rule, reading nothing
//! (profile files, identities another role cached) that the current user may not use.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use common::*;

/// The tests here write the cluster's shared AWS files: one at a time.
static FILES: Mutex<()> = Mutex::new(());

const AMBIENT_KEY: &str = "AKIAAMBIENTCAPTURE01";
const AMBIENT_SECRET: &str = "wJalrAmbientSecretOfTheDatabaseServer";

/// The cluster's ~/.aws/credentials and ~/.aws/config, removed on drop.
struct SharedFiles(Vec<String>);

impl SharedFiles {
    fn write(credentials: &str, config: &str) -> SharedFiles {
        use std::os::unix::fs::PermissionsExt;
        let dir = format!("{}/.aws", cluster_home());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut paths = Vec::new();
        for (name, text) in [("credentials", credentials), ("config", config)] {
            let path = format!("{dir}/{name}");
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            paths.push(path);
        }
        SharedFiles(paths)
    }
}

impl Drop for SharedFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An endpoint that keeps every request it gets (to look for the ambient key's signature)
/// and answers none of them usefully.
struct Capture {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    fn start() -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut buffer = [0u8; 8192];
                let read = stream.read(&mut buffer).unwrap_or(0);
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buffer[..read]).into_owned());
                let _ = stream.write_all(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Capture { url, requests }
    }

    fn signed_with_ambient_key(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|request| request.contains(AMBIENT_KEY))
            .count()
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn ambient_files() -> SharedFiles {
    remember_secret(AMBIENT_SECRET);
    SharedFiles::write(
        &format!(
            "[default]\naws_access_key_id = {AMBIENT_KEY}\naws_secret_access_key = {AMBIENT_SECRET}\n"
        ),
        "[profile it_explained]\nregion = eu-north-1\n",
    )
}

fn query_arn(client: &mut postgres::Client, schema: &str) -> Result<String, postgres::Error> {
    client
        .query_one(
            &format!("SELECT arn FROM {schema}.aws_sts_caller_identity"),
            &[],
        )
        .map(|row| row.get(0))
}

#[test]
fn a_server_owner_who_is_not_a_superuser_cannot_send_ambient_credentials() {
    let _files = FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let _shared = ambient_files();
    let capture = Capture::start();
    let mut admin = connect();
    admin
        .batch_execute(
            "DROP SCHEMA IF EXISTS it_owned CASCADE; DROP SERVER IF EXISTS it_owned CASCADE;
             DROP ROLE IF EXISTS it_owner; CREATE ROLE it_owner LOGIN;
             GRANT USAGE ON FOREIGN DATA WRAPPER aws_sts TO it_owner;
             CREATE SCHEMA it_owned AUTHORIZATION it_owner;",
        )
        .unwrap();
    let mut owner = connect_as("it_owner");
    owner
        .batch_execute(&format!(
            "CREATE SERVER it_owned FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url '{}', max_error_retry_attempts '1');
             IMPORT FOREIGN SCHEMA aws FROM SERVER it_owned INTO it_owned;",
            moto_endpoint()
        ))
        .unwrap();
    // A superuser trusts the owner with the database server's credentials...
    admin
        .batch_execute(
            "CREATE USER MAPPING FOR it_owner SERVER it_owned OPTIONS (ambient_credentials 'true')",
        )
        .unwrap();
    // ...and the owner points the server at an endpoint of their own, or at a role, or a
    // profile: whatever they change, no request signed with those credentials leaves.
    for change in [
        format!("SET endpoint_url '{}'", capture.url),
        "ADD role_arn 'arn:aws:iam::123456789012:role/it-capture'".to_string(),
        "ADD profile 'default'".to_string(),
        "ADD duration_seconds '900'".to_string(),
    ] {
        owner
            .batch_execute(&format!("ALTER SERVER it_owned OPTIONS ({change})"))
            .unwrap();
        for (who, client) in [("owner", &mut owner), ("superuser", &mut admin)] {
            let error = query_arn(client, "it_owned").unwrap_err();
            let (code, message, _, hint) = db_error(&error);
            assert_eq!(code, "42501", "{who} after {change}: {message}");
            assert_eq!(
                message,
                "aws_sts server \"it_owned\": the server is owned by \"it_owner\", who is not a superuser, so it may not use the database server's own AWS credentials",
                "{who} after {change}"
            );
            assert!(hint.contains("ALTER SERVER it_owned OWNER TO"), "{hint}");
        }
        // EXPLAIN resolves nothing for it either.
        let plan: Vec<String> = owner
            .query(
                "EXPLAIN SELECT arn FROM it_owned.aws_sts_caller_identity",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            plan.iter()
                .any(|line| line.contains("not usable by this user")),
            "{plan:?}"
        );
    }
    assert_eq!(capture.count(), 0, "a request reached the capture endpoint");
    assert_eq!(capture.signed_with_ambient_key(), 0);

    // Keys of the owner's own go wherever the owner likes.
    admin
        .batch_execute(
            "DROP USER MAPPING FOR it_owner SERVER it_owned;
             CREATE USER MAPPING FOR it_owner SERVER it_owned OPTIONS (access_key 'AKIAOWNERSOWN', secret_key 'owner-secret-4242');",
        )
        .unwrap();
    remember_secret("owner-secret-4242");
    owner
        .batch_execute(
            "ALTER SERVER it_owned OPTIONS (DROP role_arn, DROP profile, DROP duration_seconds)",
        )
        .unwrap();
    assert!(query_arn(&mut owner, "it_owned").is_err());
    assert!(capture.count() >= 1, "the owner's own keys were sent");
    assert_eq!(capture.signed_with_ambient_key(), 0);

    // Owned by a superuser, the same server may use them again.
    admin
        .batch_execute(&format!(
            "ALTER SERVER it_owned OWNER TO CURRENT_USER;
             ALTER SERVER it_owned OPTIONS (SET endpoint_url '{}');",
            moto_endpoint()
        ))
        .unwrap();
    assert!(query_arn(&mut admin, "it_owned").is_ok());
}

#[test]
fn explain_and_pruning_read_nothing_the_user_may_not_use() {
    let _files = FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let _shared = ambient_files();
    let mut admin = connect();
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS it_explained CASCADE; DROP SERVER IF EXISTS it_explained CASCADE;
             DROP SCHEMA IF EXISTS it_chain_cached CASCADE; DROP SERVER IF EXISTS it_chain_cached CASCADE;
             DROP SCHEMA IF EXISTS it_agg_cached CASCADE; DROP SERVER IF EXISTS it_agg_cached CASCADE;
             DROP ROLE IF EXISTS it_nobody; CREATE ROLE it_nobody LOGIN;
             CREATE SERVER it_explained FOREIGN DATA WRAPPER aws_sts OPTIONS (profile 'it_explained', endpoint_url '{moto}');
             CREATE SCHEMA it_explained; IMPORT FOREIGN SCHEMA aws FROM SERVER it_explained INTO it_explained;
             CREATE SERVER it_chain_cached FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url '{moto}', region 'us-east-1');
             CREATE SCHEMA it_chain_cached; IMPORT FOREIGN SCHEMA aws FROM SERVER it_chain_cached INTO it_chain_cached;
             CREATE SERVER it_agg_cached FOREIGN DATA WRAPPER aws_sts OPTIONS (type 'aggregator', connections 'it_chain_cached');
             CREATE SCHEMA it_agg_cached; IMPORT FOREIGN SCHEMA aws FROM SERVER it_agg_cached INTO it_agg_cached;
             GRANT USAGE ON FOREIGN SERVER it_explained, it_chain_cached, it_agg_cached TO it_nobody;
             GRANT USAGE ON SCHEMA it_explained, it_chain_cached, it_agg_cached TO it_nobody;
             GRANT SELECT ON it_explained.aws_sts_caller_identity, it_chain_cached.aws_sts_caller_identity,
                             it_agg_cached.aws_sts_caller_identity TO it_nobody;",
            moto = moto_endpoint()
        ))
        .unwrap();
    let plan_of = |client: &mut postgres::Client, schema: &str, quals: &str| {
        explain(
            client,
            &format!("SELECT arn FROM {schema}.aws_sts_caller_identity {quals}"),
        )
    };
    // The superuser's EXPLAIN reads the profile's region; the other user's reads nothing.
    assert!(plan_of(&mut admin, "it_explained", "").contains("eu-north-1"));
    let mut nobody = connect_as("it_nobody");
    let plan = plan_of(&mut nobody, "it_explained", "");
    assert!(!plan.contains("eu-north-1"), "{plan}");
    assert!(plan.contains("not usable by this user"), "{plan}");

    // The superuser's scan caches the database server's identity; after SET ROLE in the
    // same backend, EXPLAIN and account_id pruning do not use it.
    admin
        .query_one(
            "SELECT arn FROM it_chain_cached.aws_sts_caller_identity",
            &[],
        )
        .unwrap();
    assert!(plan_of(&mut admin, "it_chain_cached", "").contains("AWS Cache: hit"));
    admin.batch_execute("SET ROLE it_nobody").unwrap();
    let plan = plan_of(&mut admin, "it_chain_cached", "");
    assert!(!plan.contains("AWS Cache: hit"), "{plan}");
    // Pruning by the cached account would answer "no such account" with zero rows, telling
    // the user something of an identity they may not use; the member is refused instead.
    let error = admin
        .query(
            "SELECT arn FROM it_agg_cached.aws_sts_caller_identity WHERE account_id = '999999999999'",
            &[],
        )
        .unwrap_err();
    assert_eq!(db_error(&error).0, "42501", "{error}");
    let plan = plan_of(
        &mut admin,
        "it_agg_cached",
        "WHERE account_id = '999999999999'",
    );
    assert!(plan.contains("+1 this user may not use"), "{plan}");
    admin.batch_execute("RESET ROLE").unwrap();
}

#[test]
fn a_credential_process_output_is_for_superusers_only() {
    let _files = FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let _shared = SharedFiles::write(
        "",
        "[profile it_process]\ncredential_process = sh -c 'echo PROCESS-OUTPUT-LINE-ONE >&2; echo PROCESS-OUTPUT-LINE-TWO >&2; exit 1'\n",
    );
    let mut admin = connect();
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS it_process CASCADE; DROP SERVER IF EXISTS it_process CASCADE;
             DROP ROLE IF EXISTS it_process_user; CREATE ROLE it_process_user LOGIN;
             CREATE SERVER it_process FOREIGN DATA WRAPPER aws_sts OPTIONS (profile 'it_process', endpoint_url '{}');
             CREATE SCHEMA it_process; IMPORT FOREIGN SCHEMA aws FROM SERVER it_process INTO it_process;
             GRANT USAGE ON FOREIGN SERVER it_process TO it_process_user;
             GRANT USAGE ON SCHEMA it_process TO it_process_user;
             GRANT SELECT ON it_process.aws_sts_caller_identity TO it_process_user;
             CREATE USER MAPPING FOR it_process_user SERVER it_process OPTIONS (ambient_credentials 'true');",
            moto_endpoint()
        ))
        .unwrap();
    // A superuser sees the first line the process printed, and no more.
    let error = query_arn(&mut admin, "it_process").unwrap_err();
    let (_, message, detail, _) = db_error(&error);
    assert!(
        detail.contains("PROCESS-OUTPUT-LINE-ONE"),
        "{message} | {detail}"
    );
    assert!(!detail.contains("PROCESS-OUTPUT-LINE-TWO"), "{detail}");
    // Anyone else sees none of it.
    let mut user = connect_as("it_process_user");
    let error = query_arn(&mut user, "it_process").unwrap_err();
    let (_, message, detail, hint) = db_error(&error);
    let shown = format!("{message} | {detail} | {hint}");
    assert!(!shown.contains("PROCESS-OUTPUT"), "{shown}");
    assert!(detail.contains("superusers only"), "{shown}");
}
