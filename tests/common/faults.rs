//! A fault-injection STS endpoint on 127.0.0.1: answers each request with the next fault of
//! its script (then with its default), so tests can drive aws_sts through every way an
//! endpoint can misbehave.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub const FAULT_ARN: &str = "arn:aws:iam::123456789012:user/FaultFree";
pub const FAULT_USER_ID: &str = "AIDAFAULTFREE";

#[derive(Debug, Clone)]
pub enum Fault {
    /// A valid GetCallerIdentity answer.
    Answer,
    /// A valid answer after this delay (a distant endpoint).
    Delayed(Duration),
    /// An AWS error document with this HTTP status and error code.
    Error(u16, &'static str),
    /// HTTP 200 carrying an AWS error document instead of an answer.
    ErrorWith200,
    /// Content-Length promises more than is sent, then the connection closes.
    Truncated,
    /// HTTP 200 with a body that is not XML.
    Garbage,
    /// HTTP 200 with this many bytes of deeply nested XML.
    Huge(usize),
    /// HTTP 200 with an HTML page.
    WrongContentType,
    /// Headers, then the body one byte at a time with this pause between bytes.
    SlowDrip(Duration),
    /// The connection is reset (RST) after the request is read.
    Reset,
    /// The request is read and never answered.
    Hang,
    /// HTTP 200 whose body never ends, written as fast as the socket takes it until the
    /// client closes: announced as 1 GiB (Content-Length), or chunked with no length.
    Endless(Framing),
    /// HTTP 200, chunked, 1 KiB of body after each pause, until the client closes.
    Trickle(Duration),
}

/// How an endless body is framed.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// Content-Length: 1 GiB.
    Announced,
    /// Transfer-Encoding: chunked.
    Chunked,
}

/// What the endpoint saw of the answers it streamed: body bytes the socket accepted, and
/// how many connections the client closed while the endpoint was still writing.
#[derive(Default)]
struct Stream {
    written: AtomicU64,
    closed_by_client: AtomicUsize,
}

pub struct FaultServer {
    pub url: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    requests: Arc<AtomicUsize>,
    stream: Arc<Stream>,
}

impl FaultServer {
    /// Starts a server that answers with `script` in order, then with `default` forever.
    pub fn start(script: Vec<Fault>, default: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let requests = Arc::new(AtomicUsize::new(0));
        let stream = Arc::new(Stream::default());
        let (queue, counter, seen) = (script.clone(), requests.clone(), stream.clone());
        thread::spawn(move || {
            for connection in listener.incoming().flatten() {
                let (queue, counter, default) = (queue.clone(), counter.clone(), default.clone());
                let seen = seen.clone();
                thread::spawn(move || serve(connection, &queue, &counter, &default, &seen));
            }
        });
        FaultServer {
            url,
            script,
            requests,
            stream,
        }
    }

    /// Bytes of endless or trickled body the client's socket accepted, over all requests.
    pub fn bytes_written(&self) -> u64 {
        self.stream.written.load(Ordering::SeqCst)
    }

    /// Connections the client closed while an endless or trickled body was being written.
    pub fn closed_by_client(&self) -> usize {
        self.stream.closed_by_client.load(Ordering::SeqCst)
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn remaining_script(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

/// Reads one HTTP request (headers and a Content-Length body); false when the peer closed.
fn read_request(stream: &mut TcpStream) -> bool {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = headers
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return false,
                    Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                }
            }
            return true;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
        if buffer.len() > 1 << 20 {
            // Not HTTP (a TLS handshake, say): answer anyway.
            return true;
        }
        if buffer.first() == Some(&0x16) {
            return true;
        }
    }
}

fn answer_xml() -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><Arn>{FAULT_ARN}</Arn><UserId>{FAULT_USER_ID}</UserId>\
         <Account>123456789012</Account></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>fault-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
    )
}

fn error_xml(code: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>injected {code}</Message></Error><RequestId>fault-1</RequestId></ErrorResponse>"
    )
}

/// A response head announcing `length` bytes of body.
fn head(status: u16, content_type: &str, length: usize) -> String {
    format!("HTTP/1.1 {status} Injected\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n")
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let _ = stream.write_all(head(status, content_type, body.len()).as_bytes());
    let _ = stream.write_all(body);
}

/// Writes all of `bytes`, counting what the socket accepts; false once the client closed.
fn write_counted(stream: &mut TcpStream, bytes: &[u8], seen: &Stream) -> bool {
    let mut rest = bytes;
    while !rest.is_empty() {
        match stream.write(rest) {
            Ok(0) | Err(_) => {
                seen.closed_by_client.fetch_add(1, Ordering::SeqCst);
                return false;
            }
            Ok(written) => {
                seen.written.fetch_add(written as u64, Ordering::SeqCst);
                rest = &rest[written..];
            }
        }
    }
    true
}

/// An answer that never ends (see [`Fault::Endless`] and [`Fault::Trickle`]): the answer's
/// opening tags, then filler XML in `piece`-sized writes with `pause` between them.
fn endless(stream: &mut TcpStream, framing: Framing, piece: usize, pause: Duration, seen: &Stream) {
    let head = match framing {
        Framing::Announced => head(200, "text/xml", 1 << 30),
        Framing::Chunked => {
            "HTTP/1.1 200 Injected\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_string()
        }
    };
    let frame = |data: &[u8]| match framing {
        Framing::Announced => data.to_vec(),
        Framing::Chunked => {
            let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
            chunk.extend_from_slice(data);
            chunk.extend_from_slice(b"\r\n");
            chunk
        }
    };
    let filler: Vec<u8> = b"<Arn>x</Arn>"
        .iter()
        .copied()
        .cycle()
        .take(piece)
        .collect();
    let filler = frame(&filler);
    if stream.write_all(head.as_bytes()).is_err()
        || !write_counted(
            stream,
            &frame(b"<GetCallerIdentityResponse><GetCallerIdentityResult>"),
            seen,
        )
    {
        return;
    }
    while write_counted(stream, &filler, seen) {
        thread::sleep(pause);
    }
}

fn serve(
    mut stream: TcpStream,
    script: &Mutex<VecDeque<Fault>>,
    requests: &AtomicUsize,
    default: &Fault,
    seen: &Stream,
) {
    loop {
        let next = script
            .lock()
            .unwrap()
            .front()
            .cloned()
            .unwrap_or_else(|| default.clone());
        if let Fault::Reset = next {
            script.lock().unwrap().pop_front();
            // Closing with the request unread in the socket's buffer makes the kernel send a
            // RST instead of a FIN.
            thread::sleep(Duration::from_millis(50));
            requests.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if !read_request(&mut stream) {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let fault = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| default.clone());
        match fault {
            Fault::Answer => respond(&mut stream, 200, "text/xml", answer_xml().as_bytes()),
            Fault::Delayed(delay) => {
                thread::sleep(delay);
                respond(&mut stream, 200, "text/xml", answer_xml().as_bytes())
            }
            Fault::Error(status, code) => {
                respond(&mut stream, status, "text/xml", error_xml(code).as_bytes())
            }
            Fault::ErrorWith200 => respond(
                &mut stream,
                200,
                "text/xml",
                error_xml("InvalidClientTokenId").as_bytes(),
            ),
            Fault::Truncated => {
                let body = answer_xml();
                let _ = stream.write_all(head(200, "text/xml", body.len() + 500).as_bytes());
                let _ = stream.write_all(&body.as_bytes()[..body.len() / 2]);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Fault::Garbage => respond(
                &mut stream,
                200,
                "text/xml",
                b"<<<\x00\xffthis is not XML at all",
            ),
            Fault::Huge(size) => {
                let mut body = String::with_capacity(size + 64);
                body.push_str("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">");
                while body.len() < size {
                    body.push_str("<a>");
                }
                respond(&mut stream, 200, "text/xml", body.as_bytes());
            }
            Fault::WrongContentType => respond(
                &mut stream,
                200,
                "text/html",
                b"<html><body><h1>Welcome to nginx!</h1></body></html>",
            ),
            Fault::SlowDrip(pause) => {
                let body = answer_xml();
                let _ = stream.write_all(head(200, "text/xml", body.len()).as_bytes());
                for byte in body.as_bytes() {
                    if stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                    thread::sleep(pause);
                }
            }
            Fault::Reset => unreachable!("handled before reading"),
            Fault::Hang => {
                thread::sleep(Duration::from_secs(120));
                return;
            }
            Fault::Endless(framing) => {
                endless(&mut stream, framing, 64 << 10, Duration::ZERO, seen);
                return;
            }
            Fault::Trickle(pause) => {
                endless(&mut stream, Framing::Chunked, 1 << 10, pause, seen);
                return;
            }
        }
    }
}
