//! Helpers of the SQLite extension's tests: a system-SQLite connection with the built
//! extension loaded, the identities `tests/seed_moto.sh` created in moto, and a proxy that
//! counts the STS requests a scan makes.
//!
//! `make test-sqlite` builds the extension, starts moto, seeds it and runs these tests with
//! the seed's values in the environment.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;

use rusqlite::Connection;

/// The project's fault-injection STS endpoint (the Postgres tests' own), for the AWS error
/// codes moto never answers with.
#[path = "../../tests/common/faults.rs"]
pub mod faults;

/// The moto port, as tests/env.sh and the Postgres tests read it.
pub fn moto_port() -> u16 {
    std::env::var("AWS_STS_TEST_MOTO_PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(47123)
}

pub fn moto_endpoint() -> String {
    format!("http://127.0.0.1:{}", moto_port())
}

/// The access key moto answers for as `arn:aws:sts::123456789012:user/moto`.
pub const DEFAULT_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const DEFAULT_ARN: &str = "arn:aws:sts::123456789012:user/moto";
pub const ALICE_ARN: &str = "arn:aws:iam::123456789012:user/Alice";
pub const ROLE_ARN: &str =
    "arn:aws:sts::123456789012:assumed-role/my-role-name/my-role-session-name";
pub const ACCOUNT_ID: &str = "123456789012";

/// A value `tests/seed_moto.sh` exported.
pub fn seeded(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run these tests with `make test-sqlite` (it seeds moto)")
    })
}

static ENVIRONMENT: Once = Once::new();

/// Makes the AWS default chain of this process find moto's default identity: static keys
/// and moto's endpoint in the environment, no shared files, no instance metadata. Runs
/// once, before any test opens a connection (the SDK reads the environment when a client
/// is built, which only happens after this).
fn use_moto_environment() {
    ENVIRONMENT.call_once(|| {
        for name in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"] {
            std::env::remove_var(name);
        }
        for (name, value) in [
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", "moto-does-not-check".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", moto_endpoint()),
            ("AWS_CONFIG_FILE", "/dev/null".to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ] {
            std::env::set_var(name, value);
        }
    });
}

/// The extension as `make sqlite` leaves it (override with AWS_STS_SQLITE_EXTENSION). It is
/// loaded without naming the entry point, so SQLite derives `sqlite3_awssts_init` from the
/// file name, as `.load` in the shell does.
pub fn extension_path() -> PathBuf {
    match std::env::var_os("AWS_STS_SQLITE_EXTENSION") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/sqlite/aws_sts"),
    }
}

/// An in-memory system-SQLite connection with the extension loaded.
pub fn connect() -> Connection {
    use_moto_environment();
    let connection = Connection::open_in_memory().expect("open an in-memory database");
    let path = extension_path();
    // SAFETY: loading is enabled only for the one trusted library the build produced, and
    // disabled again right after.
    unsafe {
        connection
            .load_extension_enable()
            .expect("enable extension loading");
        connection
            .load_extension(&path, None::<&str>)
            .unwrap_or_else(|error| {
                panic!(
                    "load {}: {error} (build it with `make sqlite`)",
                    path.display()
                )
            });
    }
    connection
        .load_extension_disable()
        .expect("disable extension loading");
    connection
}

/// A Steampipe HCL config for static keys at an endpoint.
pub fn keys_config(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    token: Option<&str>,
) -> String {
    let mut config = format!(
        "access_key = \"{access_key}\"\nsecret_key = \"{secret_key}\"\nendpoint_url = \"{endpoint}\"\n"
    );
    if let Some(token) = token {
        config.push_str(&format!("session_token = \"{token}\"\n"));
    }
    config
}

/// Alice's keys (an IAM user's access key) at `endpoint`.
pub fn alice_config(endpoint: &str) -> String {
    keys_config(
        endpoint,
        &seeded("ALICE_ACCESS_KEY"),
        &seeded("ALICE_SECRET_KEY"),
        None,
    )
}

/// AssumeRole session credentials at `endpoint`.
pub fn role_config(endpoint: &str) -> String {
    keys_config(
        endpoint,
        &seeded("ROLE_ACCESS_KEY"),
        &seeded("ROLE_SECRET_KEY"),
        Some(&seeded("ROLE_SESSION_TOKEN")),
    )
}

/// A TCP proxy to moto that counts the HTTP requests passing through it: how a test sees
/// how many times a query called STS.
pub struct CountingProxy {
    pub endpoint: String,
    requests: Arc<AtomicUsize>,
}

impl CountingProxy {
    pub fn start() -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let endpoint = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("proxy address").port()
        );
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let counter = counter.clone();
                thread::spawn(move || relay(client, counter));
            }
        });
        CountingProxy { endpoint, requests }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Relays one client connection to moto; every request line going upstream is counted.
fn relay(mut client: TcpStream, requests: Arc<AtomicUsize>) {
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", moto_port())) else {
        return;
    };
    let (Ok(mut client_reader), Ok(mut upstream_writer)) =
        (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let downstream = thread::spawn(move || {
        let _ = std::io::copy(&mut upstream, &mut client);
        let _ = client.shutdown(Shutdown::Both);
    });
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match client_reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                // The SDK sends each request in one write, starting with its request line.
                if buffer[..read].starts_with(b"POST ") || buffer[..read].starts_with(b"GET ") {
                    requests.fetch_add(1, Ordering::SeqCst);
                }
                if upstream_writer.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = upstream_writer.shutdown(Shutdown::Both);
    let _ = downstream.join();
}

/// A port nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("port").port()
}

/// Creates `aws_iam_user` (Steampipe's columns the seed's join uses) from moto's IAM users,
/// as `tests/seed_moto.sh` wrote them to IAM_USERS_CSV (name, user_id, arn, created).
pub fn create_iam_user_table(connection: &Connection) -> usize {
    let csv_path = seeded("IAM_USERS_CSV");
    let csv = std::fs::read_to_string(&csv_path)
        .unwrap_or_else(|error| panic!("read {csv_path}: {error}"));
    connection
        .execute_batch(
            "CREATE TABLE aws_iam_user (name TEXT, user_id TEXT, arn TEXT, create_date TEXT, \
             password_last_used TEXT)",
        )
        .expect("create aws_iam_user");
    let mut rows = 0;
    for line in csv.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "unexpected line in {csv_path}: {line}");
        connection
            .execute(
                "INSERT INTO aws_iam_user (name, user_id, arn, create_date) VALUES (?1, ?2, ?3, ?4)",
                [fields[0], fields[1], fields[2], fields[3]],
            )
            .expect("insert an IAM user");
        rows += 1;
    }
    rows
}
