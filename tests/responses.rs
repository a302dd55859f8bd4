//! Property test of the STS client on arbitrary answers (no PostgreSQL): whatever bytes an
//! endpoint sends back with HTTP 200 or an error status, aws_sts returns an answer or a
//! well-formed error within its timeout, and never panics. Bounded: 64 cases.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aws_sts::options::{ServerOptions, StaticKeys};
use aws_sts::sts::{self, ConnectionSettings};
use proptest::prelude::*;

/// Serves `body` with `status` to every request, forever.
fn serve(status: u16, body: Arc<Mutex<Vec<u8>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let body = body.lock().unwrap().clone();
            thread::spawn(move || {
                let mut request = [0u8; 8192];
                let _ = stream.read(&mut request);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    url
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let fragments = proptest::sample::select(vec![
        "<GetCallerIdentityResponse>",
        "</GetCallerIdentityResponse>",
        "<GetCallerIdentityResult>",
        "</GetCallerIdentityResult>",
        "<Arn>arn:aws:iam::1:user/x</Arn>",
        "<UserId>AIDA</UserId>",
        "<Account>1</Account>",
        "<ErrorResponse><Error><Code>Throttling</Code>",
        "</Error></ErrorResponse>",
        "<![CDATA[",
        "&amp;",
        "&#0;",
        "<?xml version=\"1.0\"?>",
        "\u{0}",
        "\u{feff}",
    ]);
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::collection::vec(fragments, 0..12).prop_map(|parts| parts.concat().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_answer_is_an_identity_or_a_clean_error(status in prop_oneof![Just(200u16), Just(400u16), Just(500u16)], body in body_strategy()) {
        let url = serve(status, Arc::new(Mutex::new(body)));
        let settings = ConnectionSettings {
            server: ServerOptions {
                endpoint_url: Some(url),
                region: Some("us-east-1".into()),
                timeout: Duration::from_secs(2),
                max_attempts: 2,
                min_retry_delay: Duration::from_millis(1),
                ..ServerOptions::default()
            },
            keys: Some(StaticKeys { access_key_id: "AKIAFUZZ".into(), secret_access_key: "fuzz-secret-value".into(), session_token: None }),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let started = Instant::now();
        let result = runtime.block_on(sts::get_caller_identity(&settings));
        prop_assert!(started.elapsed() < Duration::from_secs(4));
        if let Err(error) = result {
            prop_assert_eq!(error.state.code().len(), 5);
            prop_assert!(!error.message.is_empty());
            let text = error.to_string();
            prop_assert!(!text.contains("fuzz-secret-value"));
        }
    }
}
