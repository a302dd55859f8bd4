//! A backend's STS clients follow its servers and user mappings: altering one drops the
//! clients built for its old settings, and the pool is bounded, so key rotation in a
//! pooled backend does not grow it without end.

mod common;

use common::*;

#[test]
fn altering_servers_and_mappings_does_not_grow_the_backend() {
    let mut client = connect();
    let (keys, _) = create_iam_user("PoolRotation");
    server_with_keys(
        &mut client,
        "it_pool",
        &format!(
            "endpoint_url '{}', cache 'false', timeout '5000ms'",
            moto_endpoint()
        ),
        Some(&keys),
    );
    let pid = backend_pid(&mut client);
    let round = |client: &mut postgres::Client, n: usize| {
        // A new timeout, then new keys (as a rotation would): each a new set of settings.
        let statement = if n.is_multiple_of(2) {
            format!(
                "ALTER SERVER it_pool OPTIONS (SET timeout '{}ms')",
                5000 + n
            )
        } else {
            let secret = format!("rotated-secret-{n:04}");
            remember_secret(&secret);
            format!(
                "ALTER USER MAPPING FOR CURRENT_USER SERVER it_pool OPTIONS (SET secret_key '{secret}')"
            )
        };
        client.batch_execute(&statement).unwrap();
        let arn: String = client
            .query_one("SELECT arn FROM it_pool.aws_sts_caller_identity", &[])
            .unwrap()
            .get(0);
        assert!(arn.ends_with(":user/PoolRotation"), "{arn}");
    };
    // Warm up: the runtime, the first clients, the catalog caches.
    for n in 0..60 {
        round(&mut client, n);
    }
    let before = proc_status_kib(pid, "VmRSS");
    for n in 60..660 {
        round(&mut client, n);
    }
    let after = proc_status_kib(pid, "VmRSS");
    let growth = after.saturating_sub(before);
    println!("VmRSS {before} KiB -> {after} KiB (+{growth} KiB) over 600 alterations");
    assert!(
        growth < 4 * 1024,
        "600 alterations grew the backend by {growth} KiB"
    );
}

/// Uncached queries of one server, and small aggregator scans, reuse the backend's
/// keep-alive connections from query to query (against real AWS, each new connection is a
/// TLS handshake): only a scan of more than 8 calls at once closes its idle connections.
#[test]
fn small_scans_keep_their_keep_alive_connections() {
    let responder = common::responder::Responder::start(std::time::Duration::ZERO);
    let mut client = connect();
    let keys = Keys::new("AKIAKEEPALIVE", "keep-alive-secret");
    server_calling(
        &mut client,
        "it_keepalive",
        &responder.url,
        "cache 'false'",
        &keys,
    );
    for _ in 0..5 {
        query_arn(&mut client, "it_keepalive").unwrap();
    }
    assert_eq!(responder.requests(), 5);
    assert_eq!(
        responder.connections(),
        1,
        "five queries of one server share one connection"
    );

    // Eight members, each with its own keys, called at once: eight connections, kept.
    let mut sql = String::from(
        "DROP SCHEMA IF EXISTS it_keep_all CASCADE; DROP SERVER IF EXISTS it_keep_all CASCADE;\n",
    );
    for member in 0..8 {
        let secret = format!("keep-member-secret-{member}");
        remember_secret(&secret);
        sql.push_str(&format!(
            "DROP SERVER IF EXISTS it_keep_{member} CASCADE;
             CREATE SERVER it_keep_{member} FOREIGN DATA WRAPPER aws_sts
                 OPTIONS (region 'us-east-1', endpoint_url '{}', cache 'false');
             CREATE USER MAPPING FOR CURRENT_USER SERVER it_keep_{member}
                 OPTIONS (access_key 'AKIAKEEP{member}', secret_key '{secret}');\n",
            responder.url
        ));
    }
    sql.push_str(
        "CREATE SERVER it_keep_all FOREIGN DATA WRAPPER aws_sts
             OPTIONS (type 'aggregator', connections 'it_keep_?', concurrency '8');
         CREATE SCHEMA it_keep_all;
         IMPORT FOREIGN SCHEMA aws FROM SERVER it_keep_all INTO it_keep_all;",
    );
    client.batch_execute(&sql).unwrap();
    let before = responder.connections();
    for _ in 0..3 {
        let rows = client
            .query("SELECT arn FROM it_keep_all.aws_sts_caller_identity", &[])
            .unwrap();
        assert_eq!(rows.len(), 8);
    }
    assert_eq!(responder.requests(), 5 + 3 * 8);
    assert!(
        responder.connections() - before <= 8,
        "{} connections for three scans of 8 members",
        responder.connections() - before
    );
}
