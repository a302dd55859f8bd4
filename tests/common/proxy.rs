//! A small HTTP proxy on 127.0.0.1, as corporate networks have: it opens CONNECT tunnels
//! (HTTPS endpoints) and forwards absolute-URI requests (plain HTTP endpoints), and records
//! the first line of what passes through it. It can refuse every tunnel with a status
//! instead, as a proxy that does not allow the destination does.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use super::tls::read_request;

pub struct ConnectProxy {
    /// http://127.0.0.1:port
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    /// A proxy that carries everything.
    pub fn start() -> ConnectProxy {
        Self::start_answering(None)
    }

    /// A proxy that answers every CONNECT with this status line ("403 Forbidden").
    pub fn refusing(status: &'static str) -> ConnectProxy {
        Self::start_answering(Some(status))
    }

    fn start_answering(refusal: Option<&'static str>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = log.clone();
                thread::spawn(move || carry(client, &log, refusal));
            }
        });
        ConnectProxy { url, seen }
    }

    /// The first line of each request the proxy got ("CONNECT localhost:47301",
    /// "POST http://127.0.0.1:4566/"), in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn carry(mut client: TcpStream, log: &Mutex<Vec<String>>, refusal: Option<&str>) {
    let Some(request) = read_request(&mut client) else {
        return;
    };
    let first_line = request.lines().next().unwrap_or_default().to_string();
    let mut words = first_line.split_whitespace();
    let (method, target) = (
        words.next().unwrap_or_default().to_string(),
        words.next().unwrap_or_default().to_string(),
    );
    log.lock().unwrap().push(format!("{method} {target}"));
    if method == "CONNECT" {
        if let Some(status) = refusal {
            let _ = write!(client, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        let Ok(upstream) = TcpStream::connect(&target) else {
            let _ = write!(
                client,
                "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
            );
            return;
        };
        if write!(client, "HTTP/1.1 200 Connection Established\r\n\r\n").is_err() {
            return;
        }
        pipe(client, upstream, Vec::new());
        return;
    }
    // An absolute-URI request: forwarded in origin form, the rest of the connection as is.
    let Some(rest) = target.strip_prefix("http://") else {
        let _ = write!(
            client,
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
        );
        return;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let Ok(upstream) = TcpStream::connect(authority) else {
        let _ = write!(
            client,
            "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
        );
        return;
    };
    let version = words.next().unwrap_or("HTTP/1.1");
    let forwarded = request.replacen(&first_line, &format!("{method} {path} {version}"), 1);
    pipe(client, upstream, forwarded.into_bytes());
}

/// Copies both ways until either side closes, `first` sent upstream before.
fn pipe(client: TcpStream, mut upstream: TcpStream, first: Vec<u8>) {
    if upstream.write_all(&first).is_err() {
        return;
    }
    let (mut client_reader, mut upstream_writer) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut upstream_writer);
        let _ = upstream_writer.shutdown(Shutdown::Write);
    });
    let mut client_writer = client;
    let _ = std::io::copy(&mut upstream, &mut client_writer);
    let _ = client_writer.shutdown(Shutdown::Write);
    let _ = up.join();
}
