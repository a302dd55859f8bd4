//! The shared identity cache (shared_preload_libraries = 'aws_sts'): one STS call serves
//! every new connection, entries stay per credentials, altering a server or user mapping
//! anywhere removes them, and the aws_sts_cache / aws_sts_stats views show them. Each
//! test runs its own preloaded cluster (tests/common/cluster.rs); the last test checks that
//! without preloading the scratch cluster's backends keep caches of their own.

mod common;

use std::thread;
use std::time::Duration;

use common::cluster::ExtraCluster;
use common::faults::{Fault, FaultServer, FAULT_ARN};
use common::*;

const PRELOAD: &str = "-c shared_preload_libraries=aws_sts";

/// A server pointing at `endpoint` with a foreign table `<name>.aws_sts_caller_identity`,
/// and a user mapping with keys for `user`.
fn server_for(client: &mut postgres::Client, name: &str, endpoint: &str, user: &str, secret: &str) {
    remember_secret(secret);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; DROP SERVER IF EXISTS {name} CASCADE;
             CREATE SERVER {name} FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url '{endpoint}', max_error_retry_attempts '1');
             CREATE SCHEMA {name};
             IMPORT FOREIGN SCHEMA aws FROM SERVER {name} INTO {name};
             GRANT USAGE ON SCHEMA {name} TO PUBLIC;
             GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO PUBLIC;
             CREATE USER MAPPING FOR {user} SERVER {name} OPTIONS (access_key 'AKIAFAKE', secret_key '{secret}');"
        ))
        .unwrap();
}

fn arn_in_new_backend(
    cluster: &ExtraCluster,
    user: &str,
    schema: &str,
) -> Result<String, postgres::Error> {
    query_arn(&mut cluster.connect(DATABASE, user), schema)
}

fn count(client: &mut postgres::Client, query: &str) -> i64 {
    client.query_one(query, &[]).unwrap().get(0)
}

#[test]
fn new_connections_share_one_sts_call() {
    let cluster = ExtraCluster::start(0, PRELOAD, &[]);
    let endpoint = FaultServer::start(vec![], Fault::Answer);
    let mut admin = cluster.client();
    server_for(
        &mut admin,
        "shared_a",
        &endpoint.url,
        "postgres",
        "shared-secret-a",
    );
    for _ in 0..3 {
        assert_eq!(
            arn_in_new_backend(&cluster, "postgres", "shared_a").unwrap(),
            FAULT_ARN
        );
    }
    assert_eq!(
        endpoint.request_count(),
        1,
        "three new connections, one STS call"
    );

    let mut fresh = cluster.client();
    let plan = explain(
        &mut fresh,
        "SELECT arn FROM shared_a.aws_sts_caller_identity",
    );
    assert!(
        plan.contains("AWS Cache: shared, hit (expires in 4m 5"),
        "{plan}"
    );
    let row = fresh
        .query_one(
            "SELECT server, user_name, arn, account_id, hits, expires_at - cached_at FROM aws_sts_cache",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "shared_a");
    assert_eq!(row.get::<_, String>(1), "postgres");
    assert_eq!(row.get::<_, String>(2), FAULT_ARN);
    assert_eq!(row.get::<_, String>(3), "123456789012");
    assert_eq!(row.get::<_, i64>(4), 2);
    let stats = fresh
        .query_one(
            "SELECT calls, cache_hits, errors, retries, total_time > 0, max_time >= mean_time, last_error FROM aws_sts_stats WHERE server = 'shared_a'",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            stats.get::<_, i64>(0),
            stats.get::<_, i64>(1),
            stats.get::<_, i64>(2),
            stats.get::<_, i64>(3)
        ),
        (1, 2, 0, 0)
    );
    assert!(stats.get::<_, bool>(4) && stats.get::<_, bool>(5));
    assert_eq!(stats.get::<_, Option<String>>(6), None);

    // The shared memory is one named allocation, sized by aws_sts.shared_cache_entries.
    let size = count(
        &mut fresh,
        "SELECT size FROM pg_shmem_allocations WHERE name = 'aws_sts'",
    );
    assert!(size > 1024 * 2048, "{size}");

    // aws_sts_clear_cache() empties the shared cache for every backend.
    assert_eq!(count(&mut fresh, "SELECT aws_sts_clear_cache()"), 1);
    assert_eq!(
        count(&mut cluster.client(), "SELECT count(*) FROM aws_sts_cache"),
        0
    );
    arn_in_new_backend(&cluster, "postgres", "shared_a").unwrap();
    assert_eq!(endpoint.request_count(), 2);

    // Errors count, with their (secret-free) message.
    let failing = FaultServer::start(vec![], Fault::Error(403, "InvalidClientTokenId"));
    server_for(
        &mut admin,
        "shared_f",
        &failing.url,
        "postgres",
        "shared-secret-f",
    );
    arn_in_new_backend(&cluster, "postgres", "shared_f").unwrap_err();
    let row = admin
        .query_one(
            "SELECT calls, errors, last_error, last_error_at IS NOT NULL FROM aws_sts_stats WHERE server = 'shared_f'",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 1));
    let message: String = row.get(2);
    assert!(
        message.contains("rejected") || message.contains("InvalidClientTokenId"),
        "{message}"
    );
    assert!(!message.contains("shared-secret-f"));
    assert!(row.get::<_, bool>(3));
    // Retries count: a 503, then an answer, is one call with one retry.
    let flaky = FaultServer::start(vec![Fault::Error(503, "ServiceUnavailable")], Fault::Answer);
    server_for(
        &mut admin,
        "shared_r",
        &flaky.url,
        "postgres",
        "shared-secret-r",
    );
    admin
        .batch_execute("ALTER SERVER shared_r OPTIONS (SET max_error_retry_attempts '3', ADD min_error_retry_delay '1')")
        .unwrap();
    arn_in_new_backend(&cluster, "postgres", "shared_r").unwrap();
    assert_eq!(flaky.request_count(), 2);
    let row = admin
        .query_one(
            "SELECT calls, retries, errors FROM aws_sts_stats WHERE server = 'shared_r'",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        ),
        (1, 1, 0)
    );
    admin.batch_execute("SELECT aws_sts_stats_reset()").unwrap();
    assert_eq!(
        count(&mut cluster.client(), "SELECT count(*) FROM aws_sts_stats"),
        0
    );
}

#[test]
fn each_user_gets_the_identity_of_their_own_credentials() {
    // Resets moto once for this binary before users are created in it.
    connect();
    let cluster = ExtraCluster::start(1, PRELOAD, &[]);
    let mut admin = cluster.client();
    admin
        .batch_execute(
            "CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN; CREATE ROLE dave LOGIN;",
        )
        .unwrap();
    let (alice_keys, _) = create_iam_user("shared_alice");
    let (bob_keys, _) = create_iam_user("shared_bob");
    let name = "shared_m";
    admin
        .batch_execute(&format!(
            "CREATE SERVER {name} FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url '{}');
             CREATE SCHEMA {name};
             IMPORT FOREIGN SCHEMA aws FROM SERVER {name} INTO {name};
             GRANT USAGE ON SCHEMA {name} TO PUBLIC;
             GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO PUBLIC;
             GRANT USAGE ON FOREIGN SERVER {name} TO alice, bob, carol;
             CREATE USER MAPPING FOR alice SERVER {name} OPTIONS (access_key '{}', secret_key '{}');
             CREATE USER MAPPING FOR bob SERVER {name} OPTIONS (access_key '{}', secret_key '{}');",
            moto_endpoint(),
            alice_keys.access_key,
            alice_keys.secret_key,
            bob_keys.access_key,
            bob_keys.secret_key
        ))
        .unwrap();
    let alice = arn_in_new_backend(&cluster, "alice", name).unwrap();
    assert!(alice.ends_with("user/shared_alice"), "{alice}");
    let bob = arn_in_new_backend(&cluster, "bob", name).unwrap();
    assert!(bob.ends_with("user/shared_bob"), "{bob}");
    assert_eq!(arn_in_new_backend(&cluster, "alice", name).unwrap(), alice);
    // carol has no mapping: the usual error, not someone's cached identity.
    let error = arn_in_new_backend(&cluster, "carol", name).unwrap_err();
    assert_eq!(db_error(&error).0, "42501");
    // Roles switched in one backend each get their own entry, and carol still none.
    let mut switching = cluster.client();
    for (role, arn) in [("bob", &bob), ("alice", &alice)] {
        switching
            .batch_execute(&format!("SET ROLE {role}"))
            .unwrap();
        assert_eq!(&query_arn(&mut switching, name).unwrap(), arn);
    }
    switching.batch_execute("SET ROLE carol").unwrap();
    let error = query_arn(&mut switching, name).unwrap_err();
    assert_eq!(db_error(&error).0, "42501");

    // Plain users see their own cache entries, and the stats of servers they may use.
    let mut as_alice = cluster.connect(DATABASE, "alice");
    let rows = as_alice
        .query("SELECT arn, user_name, hits FROM aws_sts_cache", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), alice);
    assert_eq!(rows[0].get::<_, String>(1), "alice");
    assert_eq!(rows[0].get::<_, i64>(2), 2);
    assert_eq!(count(&mut admin, "SELECT count(*) FROM aws_sts_cache"), 2);
    assert_eq!(
        count(
            &mut as_alice,
            "SELECT calls * 10 + cache_hits FROM aws_sts_stats WHERE server = 'shared_m'"
        ),
        23
    );
    let mut as_dave = cluster.connect(DATABASE, "dave");
    assert_eq!(count(&mut as_dave, "SELECT count(*) FROM aws_sts_stats"), 0);
    assert_eq!(count(&mut as_dave, "SELECT count(*) FROM aws_sts_cache"), 0);
    // pg_read_all_stats members see every row.
    admin
        .batch_execute("GRANT pg_read_all_stats TO dave")
        .unwrap();
    let mut as_dave = cluster.connect(DATABASE, "dave");
    assert_eq!(count(&mut as_dave, "SELECT count(*) FROM aws_sts_cache"), 2);
    assert_eq!(count(&mut as_dave, "SELECT count(*) FROM aws_sts_stats"), 1);
    // Resetting the stats is for superusers, unless granted.
    let error = as_alice
        .batch_execute("SELECT aws_sts_stats_reset()")
        .unwrap_err();
    assert_eq!(db_error(&error).0, "42501");
    admin
        .batch_execute("GRANT EXECUTE ON FUNCTION aws_sts_stats_reset() TO alice")
        .unwrap();
    as_alice
        .batch_execute("SELECT aws_sts_stats_reset()")
        .unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) FROM aws_sts_stats"), 0);
}

#[test]
fn altering_a_server_or_mapping_is_seen_by_every_backend() {
    let cluster = ExtraCluster::start(2, PRELOAD, &[]);
    let endpoint = FaultServer::start(vec![], Fault::Answer);
    let mut admin = cluster.client();
    admin.batch_execute("CREATE ROLE erin LOGIN").unwrap();
    server_for(
        &mut admin,
        "shared_alt",
        &endpoint.url,
        "erin",
        "alter-secret-1",
    );
    admin
        .batch_execute(
            "CREATE FUNCTION shared_alt_arn() RETURNS text LANGUAGE plpgsql AS $$
             BEGIN RETURN (SELECT arn FROM shared_alt.aws_sts_caller_identity); END $$",
        )
        .unwrap();
    // A backend that keeps running across the alterations, through a generic plan and a
    // PL/pgSQL function (plans made before the change), and one-off backends.
    let mut long_lived = cluster.connect(DATABASE, "erin");
    long_lived
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE arn AS SELECT arn FROM shared_alt.aws_sts_caller_identity;
             EXECUTE arn; SELECT shared_alt_arn();",
        )
        .unwrap();
    arn_in_new_backend(&cluster, "erin", "shared_alt").unwrap();
    assert_eq!(endpoint.request_count(), 1);

    let mut other = cluster.client();
    remember_secret("alter-secret-2");
    other
        .batch_execute("ALTER USER MAPPING FOR erin SERVER shared_alt OPTIONS (SET secret_key 'alter-secret-2')")
        .unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) FROM aws_sts_cache"), 0);
    long_lived.batch_execute("EXECUTE arn").unwrap();
    assert_eq!(endpoint.request_count(), 2);
    arn_in_new_backend(&cluster, "erin", "shared_alt").unwrap();
    assert_eq!(endpoint.request_count(), 2);
    // Backends that hear of the change later (the one that made it too) leave the entry
    // filled since with the new settings alone.
    assert_eq!(count(&mut other, "SELECT count(*) FROM aws_sts_cache"), 1);
    assert_eq!(
        count(&mut long_lived, "SELECT count(*) FROM aws_sts_cache"),
        1
    );
    assert_eq!(count(&mut admin, "SELECT count(*) FROM aws_sts_cache"), 1);

    other
        .batch_execute("ALTER SERVER shared_alt OPTIONS (ADD timeout '5s')")
        .unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) FROM aws_sts_cache"), 0);
    long_lived.batch_execute("SELECT shared_alt_arn()").unwrap();
    assert_eq!(endpoint.request_count(), 3);
    arn_in_new_backend(&cluster, "erin", "shared_alt").unwrap();
    long_lived.batch_execute("EXECUTE arn").unwrap();
    assert_eq!(endpoint.request_count(), 3);

    other
        .batch_execute("DROP USER MAPPING FOR erin SERVER shared_alt")
        .unwrap();
    assert_eq!(count(&mut admin, "SELECT count(*) FROM aws_sts_cache"), 0);
    for statement in ["EXECUTE arn", "SELECT shared_alt_arn()"] {
        let error = long_lived.batch_execute(statement).unwrap_err();
        assert_eq!(db_error(&error).0, "42501", "{statement}");
    }
    assert_eq!(endpoint.request_count(), 3);
}

#[test]
fn entries_expire_and_a_full_cache_evicts() {
    let cluster = ExtraCluster::start(
        3,
        &format!("{PRELOAD} -c aws_sts.shared_cache_entries=16"),
        &[],
    );
    let endpoint = FaultServer::start(vec![], Fault::Answer);
    let mut admin = cluster.client();
    server_for(
        &mut admin,
        "shared_ttl",
        &endpoint.url,
        "postgres",
        "ttl-secret",
    );
    admin
        .batch_execute("ALTER SERVER shared_ttl OPTIONS (ADD cache_ttl '1')")
        .unwrap();
    arn_in_new_backend(&cluster, "postgres", "shared_ttl").unwrap();
    arn_in_new_backend(&cluster, "postgres", "shared_ttl").unwrap();
    assert_eq!(endpoint.request_count(), 1);
    thread::sleep(Duration::from_millis(1100));
    arn_in_new_backend(&cluster, "postgres", "shared_ttl").unwrap();
    assert_eq!(endpoint.request_count(), 2);
    admin
        .batch_execute("ALTER SERVER shared_ttl OPTIONS (SET cache_ttl '0')")
        .unwrap();
    arn_in_new_backend(&cluster, "postgres", "shared_ttl").unwrap();
    arn_in_new_backend(&cluster, "postgres", "shared_ttl").unwrap();
    assert_eq!(endpoint.request_count(), 4, "cache_ttl '0' caches nothing");

    // 40 servers' identities in a cache of 16: no error, never more than 16 entries.
    for index in 0..40 {
        let name = format!("shared_e{index}");
        server_for(
            &mut admin,
            &name,
            &endpoint.url,
            "postgres",
            &format!("evict-secret-{index}"),
        );
        arn_in_new_backend(&cluster, "postgres", &name).unwrap();
    }
    let entries = count(&mut admin, "SELECT count(*) FROM aws_sts_cache");
    assert!((8..=16).contains(&entries), "{entries}");
    for index in 0..40 {
        arn_in_new_backend(&cluster, "postgres", &format!("shared_e{index}")).unwrap();
    }
    assert!(count(&mut admin, "SELECT count(*) FROM aws_sts_cache") <= 16);
}

#[test]
fn cancelled_and_terminated_backends_leave_the_cache_usable() {
    let cluster = ExtraCluster::start(4, PRELOAD, &[]);
    let answering = FaultServer::start(vec![], Fault::Answer);
    let hanging = FaultServer::start(vec![], Fault::Hang);
    let mut admin = cluster.client();
    server_for(
        &mut admin,
        "shared_ok",
        &answering.url,
        "postgres",
        "cancel-secret-1",
    );
    server_for(
        &mut admin,
        "shared_hang",
        &hanging.url,
        "postgres",
        "cancel-secret-2",
    );
    arn_in_new_backend(&cluster, "postgres", "shared_ok").unwrap();
    for function in ["pg_cancel_backend", "pg_terminate_backend"] {
        let mut victim = cluster.client();
        let pid = backend_pid(&mut victim);
        let query = thread::spawn(move || query_arn(&mut victim, "shared_hang").is_err());
        wait_until(|| {
            count(
                &mut admin,
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND state = 'active'"
                ),
            ) == 1
        });
        thread::sleep(Duration::from_millis(200));
        admin
            .batch_execute(&format!("SELECT {function}({pid})"))
            .unwrap();
        assert!(query.join().unwrap());
        assert_eq!(
            arn_in_new_backend(&cluster, "postgres", "shared_ok").unwrap(),
            FAULT_ARN
        );
    }
    assert_eq!(answering.request_count(), 1);
    assert_eq!(count(&mut admin, "SELECT count(*) FROM aws_sts_cache"), 1);
}

#[test]
fn without_preloading_each_backend_has_its_own_cache() {
    let mut admin = connect();
    let endpoint = FaultServer::start(vec![], Fault::Answer);
    server_for(
        &mut admin,
        "local_c",
        &endpoint.url,
        "postgres",
        "local-secret",
    );
    let mut first = connect();
    query_arn(&mut first, "local_c").unwrap();
    query_arn(&mut first, "local_c").unwrap();
    let mut second = connect();
    query_arn(&mut second, "local_c").unwrap();
    assert_eq!(endpoint.request_count(), 2, "one call per backend");
    let plan = explain(
        &mut first,
        "SELECT arn FROM local_c.aws_sts_caller_identity",
    );
    assert!(
        plan.contains("AWS Cache: hit") && !plan.contains("shared"),
        "{plan}"
    );
    assert_eq!(
        count(
            &mut first,
            "SELECT count(*) FROM pg_shmem_allocations WHERE name = 'aws_sts'"
        ),
        0
    );
    // The views show this backend's cache and calls.
    assert_eq!(
        count(
            &mut first,
            "SELECT hits FROM aws_sts_cache WHERE server = 'local_c'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut first,
            "SELECT calls * 10 + cache_hits FROM aws_sts_stats WHERE server = 'local_c'"
        ),
        11
    );
    assert_eq!(
        count(&mut connect(), "SELECT count(*) FROM aws_sts_cache"),
        0
    );
    first.batch_execute("SELECT aws_sts_stats_reset()").unwrap();
    assert_eq!(count(&mut first, "SELECT count(*) FROM aws_sts_stats"), 0);

    // A plain user sees their own backend's entries, and stats only with USAGE.
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS local_viewer; CREATE ROLE local_viewer LOGIN;
             CREATE USER MAPPING FOR local_viewer SERVER local_c OPTIONS (access_key 'AKIAFAKE', secret_key 'local-secret');",
        )
        .unwrap();
    let mut viewer = connect_as("local_viewer");
    query_arn(&mut viewer, "local_c").unwrap();
    assert_eq!(count(&mut viewer, "SELECT count(*) FROM aws_sts_cache"), 1);
    assert_eq!(count(&mut viewer, "SELECT count(*) FROM aws_sts_stats"), 0);
    admin
        .batch_execute("GRANT USAGE ON FOREIGN SERVER local_c TO local_viewer")
        .unwrap();
    assert_eq!(count(&mut viewer, "SELECT count(*) FROM aws_sts_stats"), 1);
    let error = viewer
        .batch_execute("SELECT aws_sts_stats_reset()")
        .unwrap_err();
    assert_eq!(db_error(&error).0, "42501");
    admin
        .batch_execute("DROP OWNED BY local_viewer; DROP ROLE local_viewer")
        .unwrap();
}
