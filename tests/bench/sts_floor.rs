//! The floor of `make bench`'s uncached comparison: the least a Rust program can spend on one
//! STS GetCallerIdentity, with one aws-sdk-sts client reused on a current-thread runtime, as
//! the extension does, and nothing else (no Postgres, no cache).
//!
//!   cargo bench --no-default-features --bench sts_floor -- <endpoint_url> <iterations>
//!
//! Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the
//! region from AWS_REGION (else us-east-1). Prints `mean_ms=<mean latency> calls=<n>`.
//!
//! With a third argument, `members`, it is the aggregator's floor instead (tests/bench/
//! aggregate.sh): `members` calls at once, each with its own keys (AKIABENCH0000, ...), on
//! one client as the cheapest the SDK allows (keys given per call) with fresh connections,
//! on one thread, as a backend makes them. Prints `round_ms=<the fastest of <iterations>
//! rounds> calls=<members>`.
use std::time::Instant;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;

/// `members` concurrent calls with their own keys, on a client built for the round.
async fn round(endpoint: &str, region: &str, members: u32) -> f64 {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .no_credentials()
        .identity_cache(aws_config::identity::IdentityCache::no_cache())
        .load()
        .await;
    let client = aws_sdk_sts::Client::new(&config);
    let start = Instant::now();
    let calls = (0..members).map(|member| {
        let keys = Credentials::new(
            format!("AKIABENCH{member:04}"),
            "aggregate-bench",
            None,
            None,
            "sts_floor",
        );
        client
            .get_caller_identity()
            .customize()
            .config_override(aws_sdk_sts::Config::builder().credentials_provider(keys))
            .send()
    });
    for answer in futures_util::future::join_all(calls).await {
        std::hint::black_box(answer.expect("GetCallerIdentity"));
    }
    start.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` appends `--bench` to the arguments of a harness-less bench: skip flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let positive = |text: &String| {
        text.parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .expect("iterations and members must be positive integers")
    };
    let (endpoint, iterations, members) = match args.as_slice() {
        [endpoint, iterations] => (endpoint.clone(), positive(iterations), None),
        [endpoint, iterations, members] => (
            endpoint.clone(),
            positive(iterations),
            Some(positive(members)),
        ),
        _ => {
            eprintln!("usage: sts_floor <endpoint_url> <iterations> [members]");
            std::process::exit(2);
        }
    };
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let region = env("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Some(members) = members {
        let fastest = runtime.block_on(async {
            let mut fastest = f64::MAX;
            for _ in 0..iterations {
                fastest = fastest.min(round(&endpoint, &region, members).await);
            }
            fastest
        });
        println!("round_ms={fastest:.1} calls={members}");
        return;
    }
    let credentials = Credentials::new(
        env("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID is not set"),
        env("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY is not set"),
        env("AWS_SESSION_TOKEN"),
        None,
        "sts_floor",
    );
    let mean_ms = runtime.block_on(async {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .load()
            .await;
        let client = aws_sdk_sts::Client::new(&config);
        // One untimed call: the client's first request resolves credentials and the endpoint.
        client
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity");
        let start = Instant::now();
        for _ in 0..iterations {
            let answer = client
                .get_caller_identity()
                .send()
                .await
                .expect("GetCallerIdentity");
            std::hint::black_box(answer);
        }
        start.elapsed().as_secs_f64() * 1000.0 / f64::from(iterations)
    });
    println!("mean_ms={mean_ms:.4} calls={iterations}");
}
