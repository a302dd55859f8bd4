//! Aggregators at scale, through PostgreSQL and the concurrent responder: a scan of hundreds
//! of members keeps the backend's descriptors bounded (at most `concurrency` connections at
//! once, idle ones closed as the calls end), twice in a row and after a cancel.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use common::cluster::ExtraCluster;
use common::responder::{arn_for, Responder};
use common::*;

/// Members per aggregator: enough that one keep-alive connection per member would take
/// half of a default backend's 1,024 descriptors.
const MEMBERS: usize = 600;
/// What a scan may leave open in the backend: its own files and sockets, and a few idle
/// keep-alive connections.
const MAX_DESCRIPTORS_AFTER: usize = 64;
/// Connections the responder may still count open after the backend closed them (its
/// threads see a close only when they next read).
const CLOSING: usize = 8;
/// Descriptors a scan may open besides the connections of its calls in flight (the
/// runtime's, catalog files).
const SCAN_DESCRIPTORS: usize = 16;

/// One big scan at a time: run together on two cores, three scans of hundreds of calls
/// each slow the others' runtimes, and what they measure is one backend's own bounds.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn descriptors(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// Samples the backend's descriptors until the returned flag is set; the thread returns
/// the most it saw.
fn sample_descriptors(pid: i32) -> (Arc<AtomicBool>, thread::JoinHandle<usize>) {
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let sampler = thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::SeqCst) {
            peak = peak.max(descriptors(pid));
            thread::sleep(Duration::from_millis(2));
        }
        peak
    });
    (done, sampler)
}

fn access_key(prefix: &str, member: usize) -> String {
    format!("AKIA{}{member:05}", prefix.to_uppercase())
}

/// `count` servers `<prefix>_NNNNN` on the responder, each with its own access key (so its
/// own identity), uncached, and an aggregator `<prefix>_all` over them.
fn members(client: &mut postgres::Client, prefix: &str, url: &str, count: usize, options: &str) {
    let secret = format!("{prefix}-scale-secret");
    remember_secret(&secret);
    let mut sql = format!(
        "DROP SCHEMA IF EXISTS {prefix}_all CASCADE; DROP SERVER IF EXISTS {prefix}_all CASCADE;\n"
    );
    for member in 0..count {
        let name = format!("{prefix}_{member:05}");
        sql.push_str(&format!(
            "DROP SERVER IF EXISTS {name} CASCADE;
             CREATE SERVER {name} FOREIGN DATA WRAPPER aws_sts
                 OPTIONS (endpoint_url '{url}', cache 'false', max_error_retry_attempts '1');
             CREATE USER MAPPING FOR CURRENT_USER SERVER {name}
                 OPTIONS (access_key '{}', secret_key '{secret}');\n",
            access_key(prefix, member)
        ));
    }
    sql.push_str(&format!(
        "CREATE SERVER {prefix}_all FOREIGN DATA WRAPPER aws_sts
             OPTIONS (type 'aggregator', connections '{prefix}_*', {options});
         CREATE SCHEMA {prefix}_all;
         IMPORT FOREIGN SCHEMA aws FROM SERVER {prefix}_all INTO {prefix}_all;"
    ));
    client.batch_execute(&sql).unwrap();
}

/// Scans the aggregator and checks every member's row: its own identity, named after its key.
fn scan_and_check(client: &mut postgres::Client, prefix: &str, count: usize) {
    let rows = client
        .query(
            &format!(
                "SELECT sp_connection_name, arn, account_id FROM {prefix}_all.aws_sts_caller_identity ORDER BY 1"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), count);
    for (member, row) in rows.iter().enumerate() {
        let key = access_key(prefix, member);
        assert_eq!(row.get::<_, String>(0), format!("{prefix}_{member:05}"));
        assert_eq!(row.get::<_, String>(1), arn_for(&key));
        assert_eq!(
            row.get::<_, String>(2),
            common::responder::account_for(&key)
        );
    }
}

/// Scans the aggregator `<prefix>_all` of `count` members called `concurrency` at a time,
/// checks every row, one call per member, at most `at_once` connections at once, and the
/// descriptors of the backend `pid` during and after the scan.
fn scan_within_bounds(
    client: &mut postgres::Client,
    responder: &Responder,
    pid: i32,
    prefix: &str,
    count: usize,
    (concurrency, at_once): (usize, usize),
) {
    responder.reset();
    let before = descriptors(pid);
    let (done, sampler) = sample_descriptors(pid);
    scan_and_check(client, prefix, count);
    done.store(true, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    let after = descriptors(pid);
    println!(
        "{count} members, concurrency {concurrency}: descriptors {before} before, {peak} at the \
         peak, {after} after; the responder saw {} connections, {} at once",
        responder.connections(),
        responder.peak()
    );
    assert_eq!(responder.requests(), count, "one call per member");
    assert!(
        responder.peak() <= at_once,
        "{} connections at once, concurrency {concurrency}, at most {at_once}",
        responder.peak()
    );
    assert!(
        peak <= before + at_once + SCAN_DESCRIPTORS,
        "{peak} descriptors during the scan, {before} before"
    );
    assert!(
        after <= MAX_DESCRIPTORS_AFTER,
        "{after} descriptors left open"
    );
    // Connections were reused.
    assert!(
        responder.connections() < count,
        "{} connections for {count} calls",
        responder.connections()
    );
}

#[test]
fn a_big_aggregator_scan_keeps_the_backends_descriptors_bounded() {
    let _serial = one_at_a_time();
    let responder = Responder::start(Duration::from_millis(20));
    let mut client = connect();
    let concurrency = 100;
    members(
        &mut client,
        "scale",
        &responder.url,
        MEMBERS,
        &format!("concurrency '{concurrency}'"),
    );
    let pid = backend_pid(&mut client);
    // Twice: the second scan reuses what the first left.
    for _ in 0..2 {
        let at_once = concurrency + CLOSING;
        scan_within_bounds(
            &mut client,
            &responder,
            pid,
            "scale",
            MEMBERS,
            (concurrency, at_once),
        );
        // The calls ran side by side.
        assert!(
            responder.peak() > concurrency / 2,
            "{} at once",
            responder.peak()
        );
    }
}

/// The backend's descriptor limit: the smaller of max_files_per_process and its soft
/// RLIMIT_NOFILE.
fn descriptor_limit(client: &mut postgres::Client, pid: i32) -> usize {
    let max_files: String = client
        .query_one("SHOW max_files_per_process", &[])
        .unwrap()
        .get(0);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft: usize = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(usize::MAX);
    max_files.parse::<usize>().unwrap().min(soft)
}

#[test]
fn concurrency_is_capped_by_the_descriptors_the_backend_may_hold() {
    let _serial = one_at_a_time();
    // A backend that may hold 200 descriptors: concurrency 1000 is capped at 100, which
    // 600 members called at once would exceed six times over.
    let cluster = ExtraCluster::start(5, "-c max_files_per_process=200", &[]);
    let responder = Responder::start(Duration::from_millis(50));
    let mut client = cluster.client();
    members(
        &mut client,
        "capped",
        &responder.url,
        MEMBERS,
        "concurrency '1000'",
    );
    let pid = backend_pid(&mut client);
    let cap = descriptor_limit(&mut client, pid) / 2;
    assert_eq!(cap, 100);
    let plan = explain(
        &mut client,
        "SELECT * FROM capped_all.aws_sts_caller_identity",
    );
    assert!(
        plan.contains(
            "AWS Concurrency: 100 (concurrency 1000 capped: this backend may hold 200 descriptors)"
        ),
        "{plan}"
    );
    scan_within_bounds(
        &mut client,
        &responder,
        pid,
        "capped",
        MEMBERS,
        (cap, cap + CLOSING),
    );
}

#[test]
fn a_cancelled_big_scan_closes_its_connections() {
    let _serial = one_at_a_time();
    // Slow enough that the cancel comes while every call is in flight.
    let responder = Responder::start(Duration::from_secs(5));
    let mut client = connect();
    members(
        &mut client,
        "cancelled",
        &responder.url,
        300,
        "concurrency '200'",
    );
    let pid = backend_pid(&mut client);
    let before = descriptors(pid);
    let canceller = {
        let mut admin = connect();
        let opened = Arc::new(AtomicBool::new(false));
        let seen = opened.clone();
        let open = move || responder.open();
        let handle = thread::spawn(move || {
            wait_until_long(|| open() >= 150);
            seen.store(true, Ordering::SeqCst);
            admin
                .query_one("SELECT pg_cancel_backend($1)", &[&pid])
                .unwrap();
            open
        });
        (handle, opened)
    };
    let error = client
        .query("SELECT arn FROM cancelled_all.aws_sts_caller_identity", &[])
        .expect_err("cancelled");
    assert_eq!(db_error(&error).0, "57014", "{error}");
    let open = canceller.0.join().unwrap();
    assert!(canceller.1.load(Ordering::SeqCst));
    // The backend closed the connections of the calls in flight (150 or more) at once, not
    // at its next AWS call; the responder sees them closed once its threads wake up.
    let after = descriptors(pid);
    assert!(
        after <= before + 16 && after <= MAX_DESCRIPTORS_AFTER,
        "{after} descriptors after the cancel, {before} before"
    );
    wait_until_long(|| open() == 0);
    // The backend goes on: a scan of one member works.
    client
        .query_one(
            "SELECT arn FROM cancelled_all.aws_sts_caller_identity WHERE sp_connection_name = 'cancelled_00007'",
            &[],
        )
        .unwrap();
}

/// As [`wait_until`], for up to 20 s (hundreds of servers to resolve and connect first).
fn wait_until_long(mut condition: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if condition() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("condition not reached within 20 s");
}
