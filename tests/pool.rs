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
