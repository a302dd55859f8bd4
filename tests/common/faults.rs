//! A fault-injection STS endpoint on 127.0.0.1: answers each request with the next fault of
//! its script (then with its default), so tests can drive aws_sts through every way an
//! endpoint can misbehave.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
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
}

pub struct FaultServer {
    pub url: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    requests: Arc<AtomicUsize>,
}

impl FaultServer {
    /// Starts a server that answers with `script` in order, then with `default` forever.
    pub fn start(script: Vec<Fault>, default: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let requests = Arc::new(AtomicUsize::new(0));
        let (queue, counter) = (script.clone(), requests.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (queue, counter, default) = (queue.clone(), counter.clone(), default.clone());
                thread::spawn(move || serve(stream, &queue, &counter, &default));
            }
        });
        FaultServer {
            url,
            script,
            requests,
        }
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

fn serve(
    mut stream: TcpStream,
    script: &Mutex<VecDeque<Fault>>,
    requests: &AtomicUsize,
    default: &Fault,
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
        }
    }
}
