//! The floor of `make bench`'s uncached comparison: the least a Rust program can spend on one
//! STS GetCallerIdentity, with one aws-sdk-sts client reused on a current-thread runtime, as
//! the extension does, and nothing else (no Postgres, no cache).
//!
//!   cargo bench --no-default-features --bench sts_floor -- <endpoint_url> <iterations>
//!       [<members> [client|raw]]
//!
//! Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the
//! region from AWS_REGION (else us-east-1). Prints `mean_ms=<mean latency> calls=<n>`.
//!
//! With a third argument, `members`, it is the aggregator's floor instead (tests/bench/
//! aggregate.sh): `members` calls at once, each with its own keys (AKIABENCH0000, ...), on
//! one client as the cheapest the SDK allows (keys given per call) with fresh connections,
//! on one thread, as a backend makes them. Prints `round_ms=<the fastest of <iterations>
//! rounds> calls=<members>`.
//!
//! With `client` after `members`, the same calls signed with aws-sigv4 and sent through the
//! SDK's HTTP client (hyper) with nothing of the SDK around it; with `raw`, the machine's
//! floor under both: the signed calls written as HTTP/1.1 on a fresh socket each, with no
//! HTTP client (neither has retries, timeouts or checks beyond the status and the ARN).
use std::time::{Instant, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// The body of every GetCallerIdentity request (the SDK's, byte for byte).
const CALL: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// What makes an aggregator floor's calls.
#[derive(Clone, Copy, PartialEq)]
enum Floor {
    /// aws-sdk-sts, one client, keys per call.
    Sdk,
    /// Signed requests sent through the SDK's HTTP client (hyper's pool) with no SDK
    /// around it: no orchestrator, retries, interceptors or parsing beyond the checks.
    Client,
    /// Signed requests written on a fresh socket each, with no HTTP client at all.
    Raw,
}

/// `members` calls at once as signed HTTP/1.1 requests, through an HTTP client or on raw
/// sockets.
async fn signed_round(endpoint: &str, region: &str, members: u32, floor: Floor) -> f64 {
    let host = endpoint
        .strip_prefix("http://")
        .expect("the signed floors speak plain HTTP")
        .trim_end_matches('/');
    let client = aws_smithy_http_client::Connector::builder().build_http();
    let client = &client;
    let start = Instant::now();
    let calls = (0..members).map(|member| async move {
        let headers = signed_headers(host, region, &format!("AKIABENCH{member:04}"));
        let answer = if floor == Floor::Raw {
            let mut socket = tokio::net::TcpStream::connect(host).await.expect("connect");
            socket.set_nodelay(true).expect("TCP_NODELAY");
            let mut request = String::from("POST / HTTP/1.1\r\n");
            for (name, value) in &headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str("\r\n");
            request.push_str(CALL);
            socket
                .write_all(request.as_bytes())
                .await
                .expect("write the request");
            read_answer(&mut socket).await
        } else {
            let mut request = http::Request::builder()
                .method("POST")
                .uri(format!("http://{host}/"));
            for (name, value) in &headers {
                request = request.header(name.as_str(), value.as_str());
            }
            let request = request.body(SdkBody::from(CALL)).expect("a request");
            let request = HttpRequest::try_from(request).expect("a request");
            let response = client.call(request).await.expect("an answer");
            let status = response.status().as_u16();
            let body = ByteStream::new(response.into_body())
                .collect()
                .await
                .expect("a body");
            format!(
                "HTTP/1.1 {status}\r\n\r\n{}",
                String::from_utf8_lossy(&body.into_bytes())
            )
        };
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains("<Arn>"),
            "not an identity: {answer}"
        );
    });
    futures_util::future::join_all(calls).await;
    start.elapsed().as_secs_f64() * 1000.0
}

/// The headers of a GetCallerIdentity request signed (SigV4) with `access_key`.
fn signed_headers(host: &str, region: &str, access_key: &str) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity = Credentials::new(access_key, "aggregate-bench", None, None, "sts_floor").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let mut headers = vec![
        ("host".to_string(), host.to_string()),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ),
        ("content-length".into(), CALL.len().to_string()),
    ];
    let url = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(CALL.as_bytes()),
    )
    .expect("a signable request");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let added = instructions
        .headers()
        .map(|(name, value)| (name.to_string(), value.to_string()));
    headers.extend(added);
    headers
}

/// One HTTP/1.1 answer with a Content-Length, as text.
async fn read_answer(socket: &mut tokio::net::TcpStream) -> String {
    let mut answer = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 4096];
        let read = socket.read(&mut chunk).await.expect("read the answer");
        assert!(read > 0, "the endpoint closed before answering");
        answer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .expect("a Content-Length");
            if body.len() >= length {
                return text.into_owned();
            }
        }
    }
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
    let (endpoint, iterations, members, floor) = match args.as_slice() {
        [endpoint, iterations] => (endpoint.clone(), positive(iterations), None, Floor::Sdk),
        [endpoint, iterations, members, floor @ ..] if floor.len() <= 1 => {
            let floor = match floor.first().map(String::as_str) {
                None => Floor::Sdk,
                Some("client") => Floor::Client,
                Some("raw") => Floor::Raw,
                Some(other) => panic!("no floor named {other}: client or raw"),
            };
            (
                endpoint.clone(),
                positive(iterations),
                Some(positive(members)),
                floor,
            )
        }
        _ => {
            eprintln!("usage: sts_floor <endpoint_url> <iterations> [members [client|raw]]");
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
                let ms = if floor == Floor::Sdk {
                    round(&endpoint, &region, members).await
                } else {
                    signed_round(&endpoint, &region, members, floor).await
                };
                fastest = fastest.min(ms);
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
