//! Interrupts that do not cancel the query (the client-connection check, a request to log
//! memory contexts) leave an in-flight call alone: one request, answered as if nothing
//! happened; the server's `timeout` still ends a hung call on time.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::faults::{Fault, FaultServer, FAULT_ARN};
use common::*;

/// A server on the fault endpoint: one attempt, no cache, the given timeout.
fn server_on(client: &mut postgres::Client, name: &str, url: &str, timeout: &str) {
    server_with_keys(
        client,
        name,
        &format!(
            "endpoint_url '{url}', timeout '{timeout}', max_error_retry_attempts '1', cache 'false'"
        ),
        Some(&Keys::new("AKIAINTERRUPT", "s3cr3t-interrupt")),
    );
}

#[test]
fn the_client_connection_check_does_not_restart_a_call() {
    let mut client = connect();
    let endpoint = FaultServer::start(vec![], Fault::Delayed(Duration::from_secs(1)));
    server_on(&mut client, "int_check", &endpoint.url, "3s");
    client
        .batch_execute("SET client_connection_check_interval = '300ms'")
        .unwrap();
    let started = Instant::now();
    let arn: String = client
        .query_one("SELECT arn FROM int_check.aws_sts_caller_identity", &[])
        .unwrap()
        .get(0);
    let elapsed = started.elapsed();
    assert_eq!(arn, FAULT_ARN);
    assert_eq!(endpoint.request_count(), 1, "one request per attempt");
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(2000),
        "answered after {elapsed:?}"
    );
}

#[test]
fn the_timeout_fires_whatever_interrupts_arrive() {
    let mut client = connect();
    let endpoint = FaultServer::start(vec![], Fault::Hang);
    server_on(&mut client, "int_timeout", &endpoint.url, "2s");
    client
        .batch_execute("SET client_connection_check_interval = '200ms'")
        .unwrap();
    let started = Instant::now();
    let error = client
        .query("SELECT arn FROM int_timeout.aws_sts_caller_identity", &[])
        .expect_err("a hung endpoint must time out");
    let elapsed = started.elapsed();
    let (code, message, _, _) = db_error(&error);
    assert_eq!(code, "HV00N", "{message}");
    assert!(
        message.contains("did not finish within the timeout of 2s"),
        "{message}"
    );
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_millis(3500),
        "failed after {elapsed:?}"
    );
    assert_eq!(endpoint.request_count(), 1);
}

#[test]
fn logging_memory_contexts_mid_call_changes_nothing() {
    let mut client = connect();
    let endpoint = FaultServer::start(vec![], Fault::Delayed(Duration::from_secs(1)));
    server_on(&mut client, "int_memctx", &endpoint.url, "3s");
    let pid = backend_pid(&mut client);
    let signaller = thread::spawn(move || {
        let mut other = connect();
        for _ in 0..4 {
            thread::sleep(Duration::from_millis(200));
            let logged: bool = other
                .query_one("SELECT pg_log_backend_memory_contexts($1)", &[&pid])
                .unwrap()
                .get(0);
            assert!(logged);
        }
    });
    let started = Instant::now();
    let arn: String = client
        .query_one("SELECT arn FROM int_memctx.aws_sts_caller_identity", &[])
        .unwrap()
        .get(0);
    let elapsed = started.elapsed();
    signaller.join().unwrap();
    assert_eq!(arn, FAULT_ARN);
    assert_eq!(endpoint.request_count(), 1);
    assert!(elapsed < Duration::from_millis(2000), "{elapsed:?}");
}

#[test]
fn a_cancel_still_ends_the_call_at_once() {
    let mut client = connect();
    let endpoint = FaultServer::start(vec![], Fault::Hang);
    server_on(&mut client, "int_cancel", &endpoint.url, "10s");
    client
        .batch_execute("SET client_connection_check_interval = '100ms'")
        .unwrap();
    let pid = backend_pid(&mut client);
    let canceller = thread::spawn(move || {
        let mut other = connect();
        thread::sleep(Duration::from_millis(500));
        let at = Instant::now();
        other
            .query_one("SELECT pg_cancel_backend($1)", &[&pid])
            .unwrap();
        at
    });
    let error = client
        .query("SELECT arn FROM int_cancel.aws_sts_caller_identity", &[])
        .expect_err("cancelled");
    let ended = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    let (code, _, _, _) = db_error(&error);
    assert_eq!(code, "57014");
    assert!(
        ended.duration_since(cancelled_at) < Duration::from_millis(500),
        "{:?}",
        ended.duration_since(cancelled_at)
    );
    assert_eq!(endpoint.request_count(), 1);
}

#[test]
fn statement_timeout_in_plpgsql_ends_the_call() {
    let mut client = connect();
    let endpoint = FaultServer::start(vec![], Fault::Hang);
    server_on(&mut client, "int_plpgsql", &endpoint.url, "10s");
    let started = Instant::now();
    let error = client
        .batch_execute(
            "SET statement_timeout = '700ms';
             DO $$ BEGIN PERFORM arn FROM int_plpgsql.aws_sts_caller_identity; END $$;",
        )
        .expect_err("statement_timeout");
    let elapsed = started.elapsed();
    let (code, _, _, _) = db_error(&error);
    assert_eq!(code, "57014");
    assert!(elapsed < Duration::from_millis(1700), "{elapsed:?}");
    client.batch_execute("RESET statement_timeout").unwrap();
}
