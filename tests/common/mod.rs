//! Shared helpers of the integration tests: the scratch cluster and moto started by
//! `tests/cluster.sh start` (as `make test` does), and small fake endpoints for faults.
#![allow(dead_code)]

pub mod cluster;
pub mod faults;
pub mod proxy;
pub mod responder;
pub mod tls;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::Duration;

pub const DATABASE: &str = "aws_sts_it";

pub fn pg_port() -> u16 {
    std::env::var("AWS_STS_TEST_PGPORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(28815)
}

pub fn moto_port() -> u16 {
    std::env::var("AWS_STS_TEST_MOTO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(47123)
}

pub fn moto_endpoint() -> String {
    format!("http://127.0.0.1:{}", moto_port())
}

/// The scratch cluster's HOME (tests/cluster.sh), where the AWS shared files live.
pub fn cluster_home() -> String {
    let scratch = std::env::var("AWS_STS_SCRATCH")
        .unwrap_or_else(|_| format!("/tmp/aws_sts-scratch-{}", pg_port()));
    format!("{scratch}/home")
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`, ...) of a backend.
pub fn proc_status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The ARN a scan of `<schema>.aws_sts_caller_identity` answers, or its error.
pub fn query_arn(client: &mut postgres::Client, schema: &str) -> Result<String, postgres::Error> {
    client
        .query_one(
            &format!("SELECT arn FROM {schema}.aws_sts_caller_identity"),
            &[],
        )
        .map(|row| row.get(0))
}

/// Connection settings parsed from server options, as the validator would take them.
pub fn connection_settings(options: &[(&str, &str)]) -> aws_sts::sts::ConnectionSettings {
    let options: Vec<(String, String)> = options
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    aws_sts::sts::ConnectionSettings::new(
        aws_sts::options::parse_server(&options).expect("valid options"),
        None,
    )
}

/// The lines of `EXPLAIN <statement>`, joined.
pub fn explain(client: &mut postgres::Client, statement: &str) -> String {
    client
        .query(&format!("EXPLAIN {statement}"), &[])
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scratch cluster's server log, to check what reached it.
pub fn server_log() -> String {
    // tests/env.sh's default, for tests run by hand.
    let scratch = std::env::var("AWS_STS_SCRATCH")
        .unwrap_or_else(|_| format!("/tmp/aws_sts-scratch-{}", pg_port()));
    std::fs::read_to_string(format!("{scratch}/postgres.log"))
        .expect("read the scratch cluster's log")
}

fn connect_to(database: &str, user: &str) -> postgres::Client {
    let config = format!(
        "host=127.0.0.1 port={} user={user} dbname={database}",
        pg_port()
    );
    postgres::Client::connect(&config, postgres::NoTls).unwrap_or_else(|error| {
        panic!(
            "cannot reach the scratch cluster ({config}): {error}; run the tests with `make test`"
        )
    })
}

static SETUP: Once = Once::new();

/// A superuser connection to a fresh test database with aws_sts installed (created once per
/// test binary run).
pub fn connect() -> postgres::Client {
    SETUP.call_once(|| {
        // Each test binary starts from an empty moto account (binaries run one at a time).
        let mut reset = TcpStream::connect(("127.0.0.1", moto_port())).expect("moto is running (make test starts it)");
        write!(reset, "POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        reset.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "moto reset: {answer}");
        let mut admin = connect_to("postgres", "postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .unwrap();
        let mut client = connect_to(DATABASE, "postgres");
        client.batch_execute("CREATE EXTENSION aws_sts").unwrap();
    });
    connect_to(DATABASE, "postgres")
}

/// A superuser connection that collects the notices (WARNINGs) the server sends.
pub fn connect_collecting_notices() -> (
    postgres::Client,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    connect();
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = notices.clone();
    let client = postgres::Config::new()
        .host("127.0.0.1")
        .port(pg_port())
        .user("postgres")
        .dbname(DATABASE)
        .notice_callback(move |notice| {
            sink.lock()
                .unwrap()
                .push(format!("{}: {}", notice.code().code(), notice.message()))
        })
        .connect(postgres::NoTls)
        .unwrap();
    (client, notices)
}

pub fn connect_as(user: &str) -> postgres::Client {
    connect();
    connect_to(DATABASE, user)
}

/// An SQL string literal (E'' so that \n in HCL stays a newline).
pub fn literal(text: &str) -> String {
    format!(
        "E'{}'",
        text.replace('\\', "\\\\")
            .replace('\'', "''")
            .replace('\n', "\\n")
    )
}

/// The SQLSTATE, message and hint of a failed statement.
pub fn db_error(error: &postgres::Error) -> (String, String, String, String) {
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {error}"));
    (
        db.code().code().to_string(),
        db.message().to_string(),
        db.detail().unwrap_or_default().to_string(),
        db.hint().unwrap_or_default().to_string(),
    )
}

/// Creates a server (with the given extra options) and a user mapping for the current user
/// with static keys, and a foreign table `<schema>.aws_sts_caller_identity` for it.
pub fn server_with_keys(
    client: &mut postgres::Client,
    name: &str,
    server_options: &str,
    keys: Option<&Keys>,
) {
    let options = if server_options.is_empty() {
        String::new()
    } else {
        format!("OPTIONS ({server_options})")
    };
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; DROP SERVER IF EXISTS {name} CASCADE;
             CREATE SERVER {name} FOREIGN DATA WRAPPER aws_sts {options};
             CREATE SCHEMA {name};
             IMPORT FOREIGN SCHEMA aws FROM SERVER {name} INTO {name};"
        ))
        .unwrap();
    if let Some(keys) = keys {
        let token = keys
            .session_token
            .as_ref()
            .map(|t| format!(", session_token '{t}'"))
            .unwrap_or_default();
        client
            .batch_execute(&format!(
                "CREATE USER MAPPING FOR CURRENT_USER SERVER {name} OPTIONS (access_key '{}', secret_key '{}'{token})",
                keys.access_key, keys.secret_key
            ))
            .unwrap();
    }
}

/// [`server_with_keys`] for a server that calls `url`, in us-east-1, retrying quickly up
/// to 9 times unless `extra` says otherwise (so that a retry would show), with `extra`
/// options.
pub fn server_calling(
    client: &mut postgres::Client,
    name: &str,
    url: &str,
    extra: &str,
    keys: &Keys,
) {
    let mut options =
        format!("region 'us-east-1', endpoint_url '{url}', min_error_retry_delay '10'");
    if !extra.contains("max_error_retry_attempts") {
        options.push_str(", max_error_retry_attempts '9'");
    }
    if !extra.is_empty() {
        options.push_str(&format!(", {extra}"));
    }
    server_with_keys(client, name, &options, Some(keys));
}

/// SQLSTATE, message, detail and hint of the failing `statement`, and how long it took.
pub fn failure(
    client: &mut postgres::Client,
    statement: &str,
) -> ((String, String, String, String), Duration) {
    let started = std::time::Instant::now();
    let error = client.batch_execute(statement).expect_err(statement);
    (db_error(&error), started.elapsed())
}

#[derive(Debug, Clone)]
pub struct Keys {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl Keys {
    pub fn new(access_key: &str, secret_key: &str) -> Keys {
        remember_secret(secret_key);
        Keys {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            session_token: None,
        }
    }
}

/// Records a secret a test hands to Postgres, so that `tests/run.sh` can check at the end
/// that none of them reached the server log.
pub fn remember_secret(secret: &str) {
    let scratch = std::env::var("AWS_STS_SCRATCH")
        .unwrap_or_else(|_| format!("/tmp/aws_sts-scratch-{}", pg_port()));
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{scratch}/test-secrets.txt"))
    {
        let _ = writeln!(file, "{secret}");
    }
}

/// One AWS query-protocol call to moto. moto does not check signatures; the Authorization
/// header only tells it which service and account the call is for.
pub fn moto_call(service: &str, params: &[(&str, &str)]) -> String {
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", aws_sts::error::percent_encode(v)))
        .collect();
    let body = body.join("&");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature=00\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        port = moto_port(),
        len = body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", moto_port()))
        .expect("moto is running (make test starts it)");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "moto {service}: {response}"
    );
    response
}

/// The text of the first `<tag>…</tag>` in an XML answer.
pub fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_string()
}

/// Creates an IAM user in moto with an access key; returns the keys and the user's UserId.
pub fn create_iam_user(name: &str) -> (Keys, String) {
    let user = moto_call(
        "iam",
        &[
            ("Action", "CreateUser"),
            ("UserName", name),
            ("Version", "2010-05-08"),
        ],
    );
    let key = moto_call(
        "iam",
        &[
            ("Action", "CreateAccessKey"),
            ("UserName", name),
            ("Version", "2010-05-08"),
        ],
    );
    (
        Keys::new(
            &xml_value(&key, "AccessKeyId"),
            &xml_value(&key, "SecretAccessKey"),
        ),
        xml_value(&user, "UserId"),
    )
}

/// Creates a role in moto and assumes it; returns the temporary keys and the AssumedRoleId.
pub fn assume_role(role: &str, session: &str) -> (Keys, String) {
    moto_call(
        "iam",
        &[
            ("Action", "CreateRole"),
            ("RoleName", role),
            (
                "AssumeRolePolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[]}"#,
            ),
            ("Version", "2010-05-08"),
        ],
    );
    let arn = format!("arn:aws:iam::123456789012:role/{role}");
    let answer = moto_call(
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", &arn),
            ("RoleSessionName", session),
            ("Version", "2011-06-15"),
        ],
    );
    let keys = Keys {
        session_token: Some(xml_value(&answer, "SessionToken")),
        ..Keys::new(
            &xml_value(&answer, "AccessKeyId"),
            &xml_value(&answer, "SecretAccessKey"),
        )
    };
    remember_secret(keys.session_token.as_deref().unwrap_or_default());
    (keys, xml_value(&answer, "AssumedRoleId"))
}

/// An endpoint that accepts connections and never answers, counting the connections.
pub struct HungEndpoint {
    pub url: String,
    pub connections: Arc<AtomicUsize>,
}

impl HungEndpoint {
    pub fn start() -> HungEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(stream); // never answered, closed when the test process exits
            }
        });
        HungEndpoint { url, connections }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn backend_pid(client: &mut postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

pub fn wait_until(mut condition: impl FnMut() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("condition not reached within 2 s");
}
