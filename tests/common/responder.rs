//! A concurrent GetCallerIdentity responder on 127.0.0.1: any access key is an IAM user named
//! after it ([`arn_for`]), answered after a set latency, on as many HTTP/1.1 keep-alive
//! connections at once as clients open (on one thread's event loop). moto serves one request
//! at a time, so only this shows what an aggregator itself costs. It counts requests (per access key),
//! connections accepted and the peak of connections open at once. Used by the tests (a
//! module of tests/common) and by `make bench` (tests/bench/sts_responder.rs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The 12-digit account of the identity `key` signs as: derived from the key (FNV-1a), so
/// that members with different keys are in different accounts.
pub fn account_for(key: &str) -> String {
    let hash = key.bytes().fold(0xcbf29ce484222325u64, |hash, byte| {
        (hash ^ byte as u64).wrapping_mul(0x100000001b3)
    });
    format!("{:012}", hash % 1_000_000_000_000)
}

/// The ARN of the identity `key` signs as.
pub fn arn_for(key: &str) -> String {
    format!("arn:aws:iam::{}:user/{key}", account_for(key))
}

/// The access key of a SigV4 `Authorization` header (`... Credential=<key>/<date>/...`).
pub fn signing_key(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    credential.split('/').next().filter(|key| !key.is_empty())
}

#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    connections: AtomicUsize,
    open: AtomicUsize,
    peak: AtomicUsize,
    by_key: Mutex<HashMap<String, usize>>,
}

impl Stats {
    fn json(&self) -> String {
        let count = |counter: &AtomicUsize| counter.load(Ordering::SeqCst);
        format!(
            "{{\"requests\": {}, \"connections\": {}, \"open\": {}, \"peak\": {}}}",
            count(&self.requests),
            count(&self.connections),
            count(&self.open),
            count(&self.peak)
        )
    }

    fn reset(&self) {
        self.requests.store(0, Ordering::SeqCst);
        self.connections.store(0, Ordering::SeqCst);
        self.peak
            .store(self.open.load(Ordering::SeqCst), Ordering::SeqCst);
        self.by_key.lock().unwrap().clear();
    }
}

/// A listener on 127.0.0.1 whose backlog holds a 1,000-member aggregator's connects at once
/// (std's 128 would drop SYNs, and a dropped SYN is sent again a second later).
fn listen() -> std::net::TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a socket for the responder");
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind the responder");
    socket.listen(4096).expect("listen");
    socket
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    socket.into()
}

pub struct Responder {
    pub url: String,
    pub port: u16,
    stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Responder {
    /// Starts a responder on a free port answering every request after `latency`: one thread
    /// with an event loop (a thread per connection would cost more than the client it
    /// measures, at 1,000 connections on two cores).
    pub fn start(latency: Duration) -> Responder {
        let listener = listen();
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = oneshot::channel();
        let seen = stats.clone();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the responder's runtime");
            // Returning drops the runtime, and with it every connection still open.
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("the responder's listener");
                tokio::select! {
                    _ = stopped => {}
                    _ = accept(listener, latency, seen) => {}
                }
            });
        });
        Responder {
            url: format!("http://127.0.0.1:{port}"),
            port,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// GetCallerIdentity requests answered so far.
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// Requests signed with `key` so far.
    pub fn requests_for(&self, key: &str) -> usize {
        self.stats
            .by_key
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Connections open now (accepted and not yet closed by either side).
    pub fn open(&self) -> usize {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// The most connections open at once since the start or the last [`Responder::reset`].
    pub fn peak(&self) -> usize {
        self.stats.peak.load(Ordering::SeqCst)
    }

    /// Sets the counts back to zero (the peak to the connections open now).
    pub fn reset(&self) {
        self.stats.reset();
    }

    /// The counts as one JSON object, as `GET /stats` answers them.
    pub fn stats_json(&self) -> String {
        self.stats.json()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Counts a connection open for as long as it lives.
struct Open(Arc<Stats>);

impl Open {
    fn new(seen: &Arc<Stats>) -> Open {
        seen.connections.fetch_add(1, Ordering::SeqCst);
        let open = seen.open.fetch_add(1, Ordering::SeqCst) + 1;
        seen.peak.fetch_max(open, Ordering::SeqCst);
        Open(seen.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept(listener: TcpListener, latency: Duration, seen: Arc<Stats>) {
    loop {
        match listener.accept().await {
            Ok((connection, _)) => {
                let open = Open::new(&seen);
                tokio::spawn(async move {
                    serve(connection, latency, &open.0).await;
                    drop(open);
                });
            }
            // Out of descriptors here: wait rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// One request's head: its request line and the headers the responder reads.
struct Request {
    line: String,
    authorization: Option<String>,
    close: bool,
}

/// Reads one request (its head and a Content-Length body); None when the peer closed.
async fn read_request<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut request = Request {
        line: line.trim_end().to_string(),
        authorization: None,
        close: false,
    };
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "authorization" => request.authorization = Some(value.to_string()),
            "connection" => request.close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(request)
}

fn answer(key: &str, request_id: usize) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><Arn>{}</Arn><UserId>AIDA{key}</UserId>\
         <Account>{}</Account></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>responder-{request_id}</RequestId></ResponseMetadata>\
         </GetCallerIdentityResponse>",
        arn_for(key),
        account_for(key)
    )
}

fn error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>responder</RequestId></ErrorResponse>"
    )
}

async fn serve(stream: TcpStream, latency: Duration, seen: &Stats) {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    while let Some(request) = read_request(&mut reader).await {
        let (status, content_type, body) = if request.line.starts_with("GET /stats") {
            // The bench's window on the counts (no AWS client sends a GET here).
            (200, "application/json", seen.json())
        } else if request.line.starts_with("POST /reset") {
            seen.reset();
            (200, "application/json", "{}".to_string())
        } else {
            let number = seen.requests.fetch_add(1, Ordering::SeqCst) + 1;
            match request.authorization.as_deref().and_then(signing_key) {
                Some(key) => {
                    *seen
                        .by_key
                        .lock()
                        .unwrap()
                        .entry(key.to_string())
                        .or_default() += 1;
                    tokio::time::sleep(latency).await;
                    (200, "text/xml", answer(key, number))
                }
                None => (
                    403,
                    "text/xml",
                    error(
                        "MissingAuthenticationToken",
                        "Request is missing Authentication Token",
                    ),
                ),
            }
        };
        let answer = format!(
            "HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).await.is_err() || request.close {
            return;
        }
    }
}
