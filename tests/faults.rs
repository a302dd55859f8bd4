//! Every way an STS endpoint can misbehave, driven through a real PostgreSQL 15: each ends
//! in a clear ERROR that names the server (or in a row, once a retry succeeds), within the
//! server's timeout, and the backend stays usable.

mod common;

use std::time::{Duration, Instant};

use common::faults::{Fault, FaultServer, FAULT_ARN, FAULT_USER_ID};
use common::*;

/// A server on the fault endpoint: 3 attempts, 10 ms first backoff, 2 s timeout, no cache.
fn fault_server(client: &mut postgres::Client, name: &str, url: &str) {
    server_with_keys(
        client,
        name,
        &format!(
            "endpoint_url '{url}', timeout '2s', connect_timeout '1s', max_error_retry_attempts '3', \
             min_error_retry_delay '10', cache 'false'"
        ),
        Some(&Keys::new("AKIAFAULT", "s3cr3t-fault")),
    );
}

struct Outcome {
    code: String,
    message: String,
    detail: String,
    elapsed: Duration,
}

/// Runs the scan, expecting an error; checks the backend is still usable afterwards.
fn failing_scan(client: &mut postgres::Client, name: &str) -> Outcome {
    let started = Instant::now();
    let error = client
        .query(
            &format!("SELECT arn FROM {name}.aws_sts_caller_identity"),
            &[],
        )
        .expect_err("the scan should fail");
    let elapsed = started.elapsed();
    let (code, message, detail, hint) = db_error(&error);
    println!("{name}: {code} after {elapsed:?}: {message} | {detail} | {hint}");
    assert!(
        message.starts_with(&format!("aws_sts server \"{name}\": ")),
        "{message}"
    );
    assert!(!hint.is_empty(), "no hint for {message}");
    assert!(!format!("{message}{detail}{hint}").contains("s3cr3t-fault"));
    assert!(elapsed < Duration::from_secs(4), "{name} took {elapsed:?}");
    assert_eq!(
        client.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0),
        1
    );
    Outcome {
        code,
        message,
        detail,
        elapsed,
    }
}

fn fresh(name: &str, script: Vec<Fault>, default: Fault) -> (postgres::Client, FaultServer) {
    let mut client = connect();
    let server = FaultServer::start(script, default);
    fault_server(&mut client, name, &server.url);
    (client, server)
}

#[test]
fn server_errors_are_retried_until_an_answer() {
    let (mut client, server) = fresh(
        "fault_retry",
        vec![
            Fault::Error(503, "ServiceUnavailable"),
            Fault::Error(500, "InternalFailure"),
        ],
        Fault::Answer,
    );
    let row = client
        .query_one(
            "SELECT arn, user_id FROM fault_retry.aws_sts_caller_identity",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), FAULT_ARN);
    assert_eq!(row.get::<_, String>(1), FAULT_USER_ID);
    assert_eq!(server.request_count(), 3);
    assert_eq!(server.remaining_script(), 0);
}

#[test]
fn persistent_5xx_fails_after_every_attempt() {
    let (mut client, server) = fresh("fault_5xx", vec![], Fault::Error(500, "InternalFailure"));
    let outcome = failing_scan(&mut client, "fault_5xx");
    assert_eq!(outcome.code, "HV000");
    assert_eq!(
        outcome.message,
        "aws_sts server \"fault_5xx\": STS GetCallerIdentity failed (InternalFailure) after 3 attempts"
    );
    assert!(
        outcome
            .detail
            .contains("AWS error InternalFailure: injected InternalFailure"),
        "{}",
        outcome.detail
    );
    assert_eq!(server.request_count(), 3);
}

#[test]
fn throttling_is_retried_and_reported() {
    let (mut client, server) = fresh("fault_throttle", vec![], Fault::Error(400, "Throttling"));
    let outcome = failing_scan(&mut client, "fault_throttle");
    assert_eq!(outcome.code, "HV000");
    assert_eq!(
        outcome.message,
        "aws_sts server \"fault_throttle\": AWS throttled GetCallerIdentity (Throttling) after 3 attempts"
    );
    assert_eq!(server.request_count(), 3);
}

#[test]
fn a_client_error_is_not_retried() {
    let (mut client, server) = fresh(
        "fault_token",
        vec![],
        Fault::Error(403, "InvalidClientTokenId"),
    );
    let outcome = failing_scan(&mut client, "fault_token");
    assert_eq!(outcome.code, "HV00N");
    assert_eq!(
        outcome.message,
        "aws_sts server \"fault_token\": AWS does not recognise the access key or session token (InvalidClientTokenId)"
    );
    assert!(
        outcome.detail.contains("1 of at most 3 attempts"),
        "{}",
        outcome.detail
    );
    assert_eq!(server.request_count(), 1);
}

#[test]
fn expired_tokens_say_so() {
    let (mut client, _server) = fresh("fault_expired", vec![], Fault::Error(403, "ExpiredToken"));
    let outcome = failing_scan(&mut client, "fault_expired");
    assert_eq!(outcome.code, "HV00N");
    assert_eq!(
        outcome.message,
        "aws_sts server \"fault_expired\": the AWS credentials have expired (ExpiredToken)"
    );
}

#[test]
fn unparseable_answers_are_reply_errors() {
    for (name, fault) in [
        ("fault_garbage", Fault::Garbage),
        ("fault_html", Fault::WrongContentType),
        ("fault_200_error", Fault::ErrorWith200),
    ] {
        let (mut client, _server) = fresh(name, vec![], fault);
        let outcome = failing_scan(&mut client, name);
        assert_eq!(outcome.code, "HV00M", "{name}: {}", outcome.message);
        assert!(
            outcome
                .message
                .contains("could not understand the answer from http://127.0.0.1:"),
            "{}",
            outcome.message
        );
    }
}

#[test]
fn a_huge_deeply_nested_answer_neither_crashes_nor_hangs() {
    // Under the answer size limit, the XML parser refuses it...
    let (mut client, _server) = fresh("fault_huge", vec![], Fault::Huge(900 << 10));
    let outcome = failing_scan(&mut client, "fault_huge");
    assert_eq!(outcome.code, "HV00M", "{}", outcome.message);
    assert!(
        outcome.detail.contains("error parsing XML"),
        "{}",
        outcome.detail
    );
    // ...over it, nobody reads it.
    let (mut client, server) = fresh("fault_huger", vec![], Fault::Huge(8 << 20));
    let outcome = failing_scan(&mut client, "fault_huger");
    assert_eq!(outcome.code, "HV00M", "{}", outcome.message);
    assert!(
        outcome.message.contains("is larger than 1 MiB"),
        "{}",
        outcome.message
    );
    assert_eq!(server.request_count(), 1);
}

#[test]
fn an_endless_answer_stops_at_the_limit_within_the_backends_memory() {
    use common::faults::Framing;
    for (name, framing) in [
        ("fault_endless_announced", Framing::Announced),
        ("fault_endless_chunked", Framing::Chunked),
    ] {
        let (mut client, server) = fresh(name, vec![], Fault::Endless(framing));
        let pid = backend_pid(&mut client);
        client.query_one("SELECT 1", &[]).unwrap();
        let before = proc_status_kib(pid, "VmHWM");
        let outcome = failing_scan(&mut client, name);
        let growth = proc_status_kib(pid, "VmHWM").saturating_sub(before);
        println!(
            "{name}: {:?}, peak +{growth} KiB, {} bytes written",
            outcome.elapsed,
            server.bytes_written()
        );
        assert_eq!(outcome.code, "HV00M", "{}", outcome.message);
        assert!(
            outcome.message.contains("is larger than 1 MiB"),
            "{}",
            outcome.message
        );
        assert_eq!(server.request_count(), 1, "not retried");
        assert!(
            outcome.elapsed < Duration::from_secs(1),
            "{:?}",
            outcome.elapsed
        );
        assert!(growth < 8 * 1024, "the backend's peak grew by {growth} KiB");
    }
}

#[test]
fn a_cancel_while_reading_an_answer_ends_within_100ms() {
    let (mut client, _server) = fresh(
        "fault_trickle",
        vec![],
        Fault::Trickle(Duration::from_millis(5)),
    );
    let pid = backend_pid(&mut client);
    let canceller = std::thread::spawn(move || {
        let mut other = connect();
        std::thread::sleep(Duration::from_millis(600));
        let at = Instant::now();
        other
            .query_one("SELECT pg_cancel_backend($1)", &[&pid])
            .unwrap();
        at
    });
    let error = client
        .query("SELECT arn FROM fault_trickle.aws_sts_caller_identity", &[])
        .expect_err("cancelled");
    let ended = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    assert_eq!(db_error(&error).0, "57014");
    let latency = ended.duration_since(cancelled_at);
    println!("cancel while reading: {latency:?}");
    assert!(latency < Duration::from_millis(100), "{latency:?}");
}

#[test]
fn a_truncated_body_is_a_clear_error() {
    let (mut client, server) = fresh("fault_truncated", vec![], Fault::Truncated);
    let outcome = failing_scan(&mut client, "fault_truncated");
    assert_eq!(outcome.code, "HV00M", "{}", outcome.message);
    assert!(
        outcome.message.ends_with("after 3 attempts"),
        "{}",
        outcome.message
    );
    assert!(
        outcome
            .detail
            .contains("end of file before message length reached"),
        "{}",
        outcome.detail
    );
    assert_eq!(server.request_count(), 3);
}

#[test]
fn a_slow_drip_ends_at_the_timeout() {
    let (mut client, _server) = fresh(
        "fault_drip",
        vec![],
        Fault::SlowDrip(Duration::from_millis(200)),
    );
    let outcome = failing_scan(&mut client, "fault_drip");
    assert_eq!(outcome.code, "HV00N");
    assert!(
        outcome
            .message
            .contains("did not finish within the timeout of 2s"),
        "{}",
        outcome.message
    );
    assert!(
        outcome.elapsed >= Duration::from_millis(1900),
        "{:?}",
        outcome.elapsed
    );
}

#[test]
fn a_hung_answer_ends_at_the_timeout() {
    let (mut client, _server) = fresh("fault_hang", vec![], Fault::Hang);
    let outcome = failing_scan(&mut client, "fault_hang");
    assert_eq!(outcome.code, "HV00N");
    assert!(
        outcome
            .message
            .contains("did not finish within the timeout of 2s"),
        "{}",
        outcome.message
    );
}

#[test]
fn connection_resets_are_retried_then_reported() {
    let (mut client, server) = fresh("fault_reset", vec![], Fault::Reset);
    let outcome = failing_scan(&mut client, "fault_reset");
    assert_eq!(outcome.code, "HV00N");
    assert!(
        outcome.message.contains("could not reach the STS endpoint")
            && outcome.message.ends_with("after 3 attempts")
    );
    assert_eq!(server.request_count(), 3);
}

#[test]
fn a_reset_then_an_answer_succeeds() {
    let (mut client, _server) = fresh("fault_reset_once", vec![Fault::Reset], Fault::Answer);
    let arn: String = client
        .query_one(
            "SELECT arn FROM fault_reset_once.aws_sts_caller_identity",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(arn, FAULT_ARN);
}

#[test]
fn tls_to_a_plain_port_is_a_clear_error() {
    let mut client = connect();
    let server = FaultServer::start(vec![], Fault::Answer);
    let https = server.url.replace("http://", "https://");
    fault_server(&mut client, "fault_tls", &https);
    let outcome = failing_scan(&mut client, "fault_tls");
    assert_eq!(outcome.code, "HV00N");
    // A failed handshake is not retried: another attempt would meet the same answer.
    assert!(
        outcome
            .message
            .ends_with(&format!("the TLS handshake with {https} failed")),
        "{}",
        outcome.message
    );
    assert_eq!(server.request_count(), 1);
}
