//! TLS for the tests: a private CA and certificates it signs (current, expired, for another
//! name), moto serving HTTPS with one of them, and a small rustls endpoint that counts the
//! connections and handshakes it gets and answers GetCallerIdentity once a handshake
//! completes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// What a certificate's validity period is, relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Current,
    Expired,
}

/// A private CA, with its certificate written as a PEM file.
pub struct Pki {
    pub dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    pub ca_pem: String,
}

/// A certificate and its key, as PEM files and as DER for rustls.
pub struct Leaf {
    pub cert_file: String,
    pub key_file: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl Pki {
    /// A new CA named `name`, its files in a fresh directory under target/tmp.
    pub fn new(name: &str) -> Pki {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("aws_sts test CA {name}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let ca_pem = params.self_signed(&key).unwrap().pem();
        std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
        Pki {
            dir,
            issuer: Issuer::new(params, key),
            ca_pem,
        }
    }

    /// The CA's certificate, as a PEM file.
    pub fn ca_file(&self) -> String {
        self.dir.join("ca.pem").to_string_lossy().into_owned()
    }

    /// A server certificate for `names` (host names or IP addresses) signed by the CA.
    pub fn leaf(&self, file_name: &str, names: &[&str], validity: Validity) -> Leaf {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // Fixed dates: no clock arithmetic, and years away from today either way.
        let (not_before, not_after) = match validity {
            Validity::Current => ((2020, 1, 1), (2099, 1, 1)),
            Validity::Expired => ((2020, 1, 1), (2021, 1, 1)),
        };
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert_file = self.dir.join(format!("{file_name}.pem"));
        let key_file = self.dir.join(format!("{file_name}.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        Leaf {
            cert_file: cert_file.to_string_lossy().into_owned(),
            key_file: key_file.to_string_lossy().into_owned(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

impl Pki {
    /// A [`TlsEndpoint`] serving a new certificate of this CA for localhost and 127.0.0.1.
    pub fn endpoint(&self, file_name: &str, validity: Validity) -> TlsEndpoint {
        TlsEndpoint::start(&self.leaf(file_name, &["localhost", "127.0.0.1"], validity))
    }
}

/// The process's own moto, serving HTTPS with the given certificate on a port of
/// 47300-47399 (or AWS_STS_TEST_TLS_MOTO_PORT); it exits within a second of the test process.
pub struct TlsMoto {
    pub port: u16,
}

impl TlsMoto {
    pub fn start(leaf: &Leaf) -> TlsMoto {
        let venv = std::env::var("AWS_STS_VENV")
            .unwrap_or_else(|_| format!("{}/.venv", env!("CARGO_MANIFEST_DIR")));
        let moto = format!("{venv}/bin/moto_server");
        assert!(
            std::path::Path::new(&moto).exists(),
            "{moto} is missing: tests/setup.sh installs moto"
        );
        let port = std::env::var("AWS_STS_TEST_TLS_MOTO_PORT")
            .ok()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| free_port(47300..47400));
        // A watchdog shell: moto goes when the test process does (statics are never dropped).
        let script = format!(
            "\"$0\" -H 127.0.0.1 -p {port} -c \"$1\" -k \"$2\" >/dev/null 2>&1 & moto=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 0.2; done; \
             kill $moto 2>/dev/null",
            parent = std::process::id()
        );
        let mut watchdog = Command::new("sh")
            .args(["-c", &script, &moto, &leaf.cert_file, &leaf.key_file])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        // Reaped whenever it ends (with moto, or with the test process).
        thread::spawn(move || watchdog.wait());
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto did not listen on {port} within 60 s"
            );
            thread::sleep(Duration::from_millis(100));
        }
        TlsMoto { port }
    }
}

/// What the HTTPS tests share, made once per test process: a private CA, a certificate of
/// it for localhost and 127.0.0.1, moto serving that certificate, and a second CA.
pub struct Fixture {
    pub pki: Pki,
    pub moto: TlsMoto,
    /// A second CA, trusted by nothing.
    pub other: Pki,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let pki = Pki::new("main");
        let leaf = pki.leaf("moto", &["localhost", "127.0.0.1"], Validity::Current);
        let started = Instant::now();
        let moto = TlsMoto::start(&leaf);
        println!(
            "moto over TLS on port {} after {:?}",
            moto.port,
            started.elapsed()
        );
        Fixture {
            pki,
            moto,
            other: Pki::new("other"),
        }
    })
}

impl Fixture {
    /// moto's HTTPS URL, with `host` (localhost or 127.0.0.1) in it.
    pub fn moto_url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.moto.port)
    }
}

/// A loopback port of `range` nothing listens on now.
pub fn free_port(range: std::ops::Range<u16>) -> u16 {
    range
        .into_iter()
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port")
}

pub const STUB_ARN: &str = "arn:aws:iam::123456789012:user/TlsStub";

/// A rustls endpoint on 127.0.0.1 that serves one certificate, counts the connections and
/// the completed handshakes, and answers each request that makes it through the handshake
/// with a GetCallerIdentity answer.
pub struct TlsEndpoint {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
}

impl TlsEndpoint {
    pub fn start(leaf: &Leaf) -> TlsEndpoint {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(
                    leaf.cert_der.clone(),
                )],
                rustls::pki_types::PrivateKeyDer::try_from(leaf.key_der.clone()).unwrap(),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (connected, shaken) = (connections.clone(), handshakes.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                connected.fetch_add(1, Ordering::SeqCst);
                let (config, shaken) = (config.clone(), shaken.clone());
                thread::spawn(move || serve_tls(stream, config, shaken));
            }
        });
        TlsEndpoint {
            port,
            connections,
            handshakes,
        }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn handshake_count(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

fn serve_tls(stream: TcpStream, config: Arc<rustls::ServerConfig>, handshakes: Arc<AtomicUsize>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let connection = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, stream);
    // The first read drives the handshake; a client that rejects the certificate ends here.
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return;
        }
    }
    handshakes.fetch_add(1, Ordering::SeqCst);
    loop {
        let Some(_request) = read_request(&mut tls) else {
            return;
        };
        let body = format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetCallerIdentityResult><Arn>{STUB_ARN}</Arn><UserId>AIDATLSSTUB</UserId>\
             <Account>123456789012</Account></GetCallerIdentityResult>\
             <ResponseMetadata><RequestId>tls-stub</RequestId></ResponseMetadata>\
             </GetCallerIdentityResponse>"
        );
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if tls
            .write_all(answer.as_bytes())
            .and_then(|()| tls.flush())
            .is_err()
        {
            return;
        }
    }
}

/// One HTTP/1.1 request's head and body, read whole.
pub fn read_request(stream: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(head + &String::from_utf8_lossy(&body))
}
