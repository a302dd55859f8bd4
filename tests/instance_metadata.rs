//! EC2 instance metadata in the default chain, against loopback stand-ins for
//! 169.254.169.254 (AWS_EC2_METADATA_SERVICE_ENDPOINT): a hung one is given up on within
//! the 1 s budget, a working one hands out credentials that moto accepts, and
//! `instance_metadata 'false'` never asks it. The core is called directly (no Postgres: the
//! scratch cluster runs with metadata disabled), so this binary sets its own environment.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aws_sts::error::FdwError;
use aws_sts::options::parse_server;
use aws_sts::sts::{get_caller_identity, Answer, ConnectionSettings};

/// The environment is process-wide: one test at a time.
static ENVIRONMENT: Mutex<()> = Mutex::new(());

/// Points the default chain at `endpoint` for instance metadata and at nothing else.
fn metadata_only_environment(endpoint: &str) {
    for name in [
        "AWS_EC2_METADATA_DISABLED",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(name);
    }
    std::env::set_var("AWS_CONFIG_FILE", "/dev/null");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    std::env::set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint);
}

fn call(options: &[(&str, &str)]) -> (Result<Answer, FdwError>, Duration) {
    let options: Vec<(String, String)> = options
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let server = parse_server(&options).expect("valid options");
    let settings = ConnectionSettings::new(server, None);
    let started = Instant::now();
    let result =
        aws_sts::runtime::block_on_interruptible(get_caller_identity(&settings), || false, || {})
            .expect("not interrupted");
    (result, started.elapsed())
}

/// A stand-in for the instance metadata service: IMDSv2 token, role name, then the role's
/// credentials (here: keys moto knows). Counts the requests.
struct MetadataService {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl MetadataService {
    fn start(access_key: String, secret_key: String) -> MetadataService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buffer = [0u8; 8192];
                let read = stream.read(&mut buffer).unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, body) = match path.as_str() {
                    "/latest/api/token" => ("200 OK", "it-imds-token".to_string()),
                    "/latest/meta-data/iam/security-credentials/" => {
                        ("200 OK", "it-instance-role".to_string())
                    }
                    "/latest/meta-data/iam/security-credentials/it-instance-role" => (
                        "200 OK",
                        format!(
                            "{{\"Code\":\"Success\",\"LastUpdated\":\"2026-01-01T00:00:00Z\",\"Type\":\"AWS-HMAC\",\
                             \"AccessKeyId\":\"{access_key}\",\"SecretAccessKey\":\"{secret_key}\",\
                             \"Token\":\"it-imds-session-token\",\"Expiration\":\"2099-01-01T00:00:00Z\"}}"
                        ),
                    ),
                    _ => ("404 Not Found", String::new()),
                };
                // IMDSv2 tokens come with their lifetime.
                let ttl = if path == "/latest/api/token" {
                    "x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"
                } else {
                    ""
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{ttl}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        MetadataService { url, requests }
    }
}

#[test]
fn a_silent_metadata_endpoint_costs_at_most_the_budget() {
    let _guard = ENVIRONMENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hung = common::HungEndpoint::start();
    metadata_only_environment(&hung.url);
    let endpoint = common::moto_endpoint();
    let (result, elapsed) = call(&[("endpoint_url", &endpoint)]);
    println!("no credentials, metadata endpoint hung: error after {elapsed:?}");
    let error = result.expect_err("no credentials anywhere");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(error.message, "no AWS credentials found");
    let detail = error.detail.unwrap_or_default();
    // The metadata client's own timeouts, or the 1 s budget around it, gave up.
    assert!(
        detail.contains("Ec2InstanceMetadata:")
            && (detail.contains("timed out") || detail.contains("did not answer within 1s")),
        "{detail}"
    );
    assert!(
        hung.connection_count() >= 1,
        "the metadata endpoint was asked"
    );
}

#[test]
fn instance_metadata_credentials_are_used_when_present() {
    let _guard = ENVIRONMENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let user = format!("InstanceAlice{}", std::process::id());
    let (alice, alice_id) = common::create_iam_user(&user);
    let service = MetadataService::start(alice.access_key, alice.secret_key);
    metadata_only_environment(&service.url);
    let endpoint = common::moto_endpoint();
    let (result, _) = call(&[("endpoint_url", &endpoint)]);
    let answer = result.expect("credentials from instance metadata");
    assert_eq!(
        answer.identity.arn,
        format!("arn:aws:iam::123456789012:user/{user}")
    );
    assert_eq!(answer.identity.user_id, alice_id);
    // The credentials' expiry is recorded, so a cached identity expires with them.
    assert!(answer.credentials_expiry.is_some());
    assert!(service.requests.load(Ordering::SeqCst) >= 2);
}

#[test]
fn instance_metadata_false_never_asks() {
    let _guard = ENVIRONMENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let service = MetadataService::start("AKIAUNUSED".into(), "unused".into());
    metadata_only_environment(&service.url);
    let endpoint = common::moto_endpoint();
    let (result, elapsed) = call(&[("endpoint_url", &endpoint), ("instance_metadata", "false")]);
    let error = result.expect_err("no credentials without metadata");
    assert_eq!(error.message, "no AWS credentials found");
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("(instance_metadata is off)"));
    assert_eq!(service.requests.load(Ordering::SeqCst), 0);
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
}
