//! The size limit on answers, against the fault endpoint on loopback (no PostgreSQL): an
//! endless answer, announced as 1 GiB or chunked without a length, ends in one attempt with
//! HV00M naming the limit, promptly, without reading (or keeping) more than the limit; and a
//! call dropped mid-answer closes its connection.

mod common;

use std::time::{Duration, Instant};

use aws_sts::error::{FdwError, SqlState};
use aws_sts::sts::{get_caller_identity, Answer, ConnectionSettings, MAX_RESPONSE_BYTES};
use common::connection_settings;
use common::faults::{Fault, FaultServer, Framing, FAULT_ARN};

/// The most an endpoint may get written before the client stops reading: the limit, plus
/// what the two sockets' kernel buffers take in the meantime.
const MAX_WRITTEN: u64 = 16 << 20;
/// The most the test process's peak memory may grow during one call.
const MAX_PEAK_GROWTH_KIB: u64 = 64 << 10;

/// Settings for the fault endpoint: keys in the server's options, 9 attempts, a 10 s
/// timeout (so that only the limit can end an endless answer quickly).
fn settings(url: &str, extra: &[(&str, &str)]) -> ConnectionSettings {
    let mut options = vec![
        ("endpoint_url", url),
        ("region", "us-east-1"),
        ("timeout", "10s"),
        ("max_error_retry_attempts", "9"),
        ("min_error_retry_delay", "10"),
        ("access_key", "AKIALIMITS"),
        ("secret_key", "limits-secret"),
    ];
    options.extend_from_slice(extra);
    connection_settings(&options)
}

/// The process's peak resident memory so far (VmHWM), in KiB.
fn peak_memory_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

struct Run {
    result: Result<Answer, FdwError>,
    elapsed: Duration,
    peak_growth_kib: u64,
}

fn call(settings: &ConnectionSettings) -> Run {
    let peak_before = peak_memory_kib();
    let started = Instant::now();
    let result =
        aws_sts::runtime::block_on_interruptible(get_caller_identity(settings), || false, || {})
            .expect("not interrupted");
    Run {
        result,
        elapsed: started.elapsed(),
        peak_growth_kib: peak_memory_kib().saturating_sub(peak_before),
    }
}

/// Checks that an endless answer ended as a too-large answer, in one attempt, promptly,
/// with little read and little memory.
fn assert_stopped_at_the_limit(name: &str, server: &FaultServer, run: Run) {
    let written = server.bytes_written();
    println!(
        "{name}: stopped after {:?}; the endpoint wrote {} bytes ({:.1} MiB); peak memory grew {} KiB",
        run.elapsed,
        written,
        written as f64 / f64::from(1 << 20),
        run.peak_growth_kib
    );
    let error = run.result.expect_err("an endless answer is an error");
    println!("{name}: {error}");
    assert_eq!(error.state, SqlState::UnableToCreateReply, "{error}");
    assert_eq!(
        error.message,
        format!("the answer from {} is larger than 1 MiB", server.url)
    );
    assert!(error.hint.is_some(), "{error}");
    assert!(!error.to_string().contains("limits-secret"), "{error}");
    assert_eq!(server.request_count(), 1, "the answer was asked for again");
    assert!(written < MAX_WRITTEN, "{written} bytes written");
    assert!(run.elapsed < Duration::from_secs(1), "{:?}", run.elapsed);
    assert!(
        run.peak_growth_kib < MAX_PEAK_GROWTH_KIB,
        "peak memory grew {} KiB",
        run.peak_growth_kib
    );
}

#[test]
fn the_limit_is_one_mib() {
    assert_eq!(MAX_RESPONSE_BYTES, 1 << 20);
}

#[test]
fn an_answer_announced_as_a_gibibyte_is_refused_after_one_attempt() {
    let server = FaultServer::start(vec![], Fault::Endless(Framing::Announced));
    let settings = settings(&server.url, &[]);
    let run = call(&settings);
    if let Err(error) = &run.result {
        assert!(
            error
                .detail
                .as_deref()
                .unwrap_or_default()
                .contains("1 of at most 9 attempts"),
            "{error}"
        );
    }
    assert_stopped_at_the_limit("announced 1 GiB", &server, run);
}

#[test]
fn an_endless_chunked_answer_stops_at_the_limit_after_one_attempt() {
    let server = FaultServer::start(vec![], Fault::Endless(Framing::Chunked));
    let settings = settings(&server.url, &[]);
    let run = call(&settings);
    assert_stopped_at_the_limit("chunked, no length", &server, run);
}

#[test]
fn an_endless_answer_to_assume_role_stops_at_the_limit() {
    let server = FaultServer::start(vec![], Fault::Endless(Framing::Chunked));
    let settings = settings(
        &server.url,
        &[("role_arn", "arn:aws:iam::123456789012:role/limits")],
    );
    let run = call(&settings);
    assert_stopped_at_the_limit("AssumeRole, chunked", &server, run);
}

#[test]
fn answers_under_the_limit_are_still_read() {
    let server = FaultServer::start(vec![Fault::Answer], Fault::Huge(MAX_RESPONSE_BYTES - 4096));
    let settings = settings(&server.url, &[("max_error_retry_attempts", "1")]);
    let answer = call(&settings).result.expect("a valid answer");
    assert_eq!(answer.identity.arn, FAULT_ARN);
    // Just under the limit, a deeply nested answer still reaches the XML parser.
    let error = call(&settings).result.expect_err("not an answer");
    assert_eq!(error.state, SqlState::UnableToCreateReply, "{error}");
    assert!(
        error.message.contains("could not understand the answer"),
        "{error}"
    );
    assert!(
        error
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("error parsing XML"),
        "{error}"
    );
}

#[test]
fn a_call_dropped_mid_answer_closes_its_connection() {
    let server = FaultServer::start(vec![], Fault::Trickle(Duration::from_millis(5)));
    let settings = settings(&server.url, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (closed_after, written_at_drop) = runtime.block_on(async {
        let call = tokio::time::timeout(Duration::from_millis(300), get_caller_identity(&settings));
        assert!(call.await.is_err(), "the call is dropped mid-answer");
        let dropped = Instant::now();
        let written_at_drop = server.bytes_written();
        while server.closed_by_client() == 0 && dropped.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (dropped.elapsed(), written_at_drop)
    });
    println!(
        "dropped after {written_at_drop} bytes; the endpoint saw the connection closed {closed_after:?} later"
    );
    assert!(written_at_drop > 0, "the answer had begun");
    assert_eq!(
        server.closed_by_client(),
        1,
        "the connection was not closed"
    );
    assert!(
        closed_after < Duration::from_millis(500),
        "{closed_after:?}"
    );
}

/// The connector reads answers itself now: a body that fails midway must still reach the
/// SDK as a response error, retried, with its own cause (as tests/faults.rs checks through
/// PostgreSQL).
#[test]
fn a_truncated_answer_is_still_retried_with_its_cause() {
    let server = FaultServer::start(vec![], Fault::Truncated);
    let settings = settings(&server.url, &[("max_error_retry_attempts", "3")]);
    let error = call(&settings).result.expect_err("a truncated answer");
    assert_eq!(error.state, SqlState::UnableToCreateReply, "{error}");
    assert!(
        error.message.starts_with("could not understand the answer")
            && error.message.ends_with("after 3 attempts"),
        "{error}"
    );
    assert!(
        error
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("end of file before message length reached"),
        "{error}"
    );
    assert_eq!(server.request_count(), 3);
}

/// ... and an answer that trickles in slower than the timeout still ends at the timeout.
#[test]
fn a_slow_drip_still_ends_at_the_timeout() {
    let server = FaultServer::start(vec![], Fault::SlowDrip(Duration::from_millis(200)));
    let settings = settings(&server.url, &[("timeout", "2s")]);
    let run = call(&settings);
    let error = run.result.expect_err("too slow");
    assert_eq!(
        error.state,
        SqlState::UnableToEstablishConnection,
        "{error}"
    );
    assert!(
        error
            .message
            .contains("did not finish within the timeout of 2s"),
        "{error}"
    );
    assert!(
        run.elapsed >= Duration::from_millis(1900) && run.elapsed < Duration::from_secs(4),
        "{:?}",
        run.elapsed
    );
}
