//! The floor of `make bench`'s uncached comparison: the least a Rust program can spend on one
//! STS GetCallerIdentity, with one aws-sdk-sts client reused on a current-thread runtime, as
//! the extension does, and nothing else (no Postgres, no cache).
//!
//!   cargo bench --no-default-features --bench sts_floor -- <endpoint_url> <iterations>
//!
//! Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the
//! region from AWS_REGION (else us-east-1). Prints `mean_ms=<mean latency> calls=<n>`.
use std::time::Instant;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;

fn main() {
    // `cargo bench` appends `--bench` to the arguments of a harness-less bench: skip flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let (endpoint, iterations) = match args.as_slice() {
        [endpoint, iterations] => (
            endpoint.clone(),
            iterations
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .expect("iterations must be a positive integer"),
        ),
        _ => {
            eprintln!("usage: sts_floor <endpoint_url> <iterations>");
            std::process::exit(2);
        }
    };
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let credentials = Credentials::new(
        env("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID is not set"),
        env("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY is not set"),
        env("AWS_SESSION_TOKEN"),
        None,
        "sts_floor",
    );
    let region = env("AWS_REGION").unwrap_or_else(|| "us-east-1".into());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
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
