//! A small HTTP/1.1 server for integration tests, on plain std threads, over TCP or TLS.
//!
//! It serves every request with a caller-supplied handler, counts the
//! requests it saw, and runs until the test process exits. [`Server::start_tls`]
//! serves the same over rustls (`StreamOwned` on a std `TcpStream`) with a
//! certificate for `localhost` and `127.0.0.1` issued by a CA made at start-up,
//! and counts full and resumed handshakes as the server saw them.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the server does for one request.
pub struct Reply {
    /// Bytes written back.
    pub bytes: Vec<u8>,
    /// Sleep before replying.
    pub delay: Duration,
    /// Close the connection after replying.
    pub close: bool,
}

impl Reply {
    /// A 200 with `body` and a Content-Length.
    pub fn ok(body: &[u8]) -> Self {
        let mut bytes =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(body);
        Self { bytes, delay: Duration::ZERO, close: false }
    }

    /// Raw bytes, then close.
    pub fn raw_then_close(bytes: &[u8]) -> Self {
        Self { bytes: bytes.to_vec(), delay: Duration::ZERO, close: true }
    }
}

/// Handler: (global request number starting at 0, request head) → reply.
pub type Handler = dyn Fn(u64, &str) -> Reply + Send + Sync;

/// A running test server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
    tls: Option<TlsSide>,
}

/// The TLS side of a test server.
struct TlsSide {
    /// PEM file of the CA that issued the server's certificate.
    ca_file: std::path::PathBuf,
    counts: Arc<HandshakeCounts>,
}

/// Handshakes as the server saw them, and the server names clients sent.
#[derive(Default)]
pub struct HandshakeCounts {
    full: AtomicU64,
    resumed: AtomicU64,
    sni: std::sync::Mutex<Vec<Option<String>>>,
}

/// TLS versions a test server accepts.
#[derive(Clone, Copy, Debug)]
pub enum TlsVersions {
    /// TLS 1.3 and 1.2.
    Both,
    /// TLS 1.2 only (session IDs for resumption).
    Tls12,
}

impl Server {
    /// Starts a server on 127.0.0.1:0.
    pub fn start(handler: impl Fn(u64, &str) -> Reply + Send + Sync + 'static) -> Self {
        Self::listen(handler, None)
    }

    /// Starts a TLS server on 127.0.0.1:0 (with session resumption, rustls' defaults).
    pub fn start_tls(
        versions: TlsVersions,
        handler: impl Fn(u64, &str) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let (config, ca_pem) = tls_server_config(versions);
        let ca_file = temp_path("pem");
        std::fs::write(&ca_file, ca_pem).expect("write CA file");
        let counts = Arc::new(HandshakeCounts::default());
        let mut server = Self::listen(handler, Some((config, counts.clone())));
        server.tls = Some(TlsSide { ca_file, counts });
        server
    }

    fn listen(
        handler: impl Fn(u64, &str) -> Reply + Send + Sync + 'static,
        tls: Option<(Arc<rustls::ServerConfig>, Arc<HandshakeCounts>)>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicU64::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let counter = counter.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    match tls {
                        None => serve(stream, &*handler, &counter, |_| {}),
                        Some((config, counts)) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                            let mut seen = false;
                            let tls_stream = rustls::StreamOwned::new(conn, stream);
                            serve(tls_stream, &*handler, &counter, |s| {
                                // Counted once per connection, after its first request arrived.
                                if !std::mem::replace(&mut seen, true) {
                                    counts.saw(&s.conn);
                                }
                            });
                        }
                    }
                });
            }
        });
        Self { addr, requests, tls: None }
    }

    /// `http://127.0.0.1:PORT{path}` (`https://` for a TLS server).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// `https://localhost:PORT{path}`: the name is sent as SNI and checked against the certificate.
    pub fn url_by_name(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// The CA file to pass as `--cacert`.
    pub fn ca_file(&self) -> &str {
        self.tls.as_ref().expect("a TLS server").ca_file.to_str().expect("utf-8 path")
    }

    /// (full, resumed) handshakes the server completed.
    pub fn handshakes(&self) -> (u64, u64) {
        let c = &self.tls.as_ref().expect("a TLS server").counts;
        (c.full.load(Ordering::SeqCst), c.resumed.load(Ordering::SeqCst))
    }

    /// The server name (SNI) each TLS connection sent, in the order they were served.
    pub fn server_names(&self) -> Vec<Option<String>> {
        self.tls.as_ref().expect("a TLS server").counts.sni.lock().unwrap().clone()
    }

    /// Request heads received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl HandshakeCounts {
    fn saw(&self, conn: &rustls::ServerConnection) {
        let counter = match conn.handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => &self.resumed,
            _ => &self.full,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        self.sni.lock().unwrap().push(conn.server_name().map(str::to_owned));
    }
}

/// A server configuration with a fresh CA and a certificate for localhost/127.0.0.1; the
/// CA's PEM comes back for the client to trust.
fn tls_server_config(versions: TlsVersions) -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "ringcast-load test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("leaf params");
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).expect("leaf certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    #[allow(deprecated, reason = "the ring provider is the one this workspace builds")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match versions {
        TlsVersions::Both => rustls::ALL_VERSIONS,
        TlsVersions::Tls12 => &[&rustls::version::TLS12],
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server certificate");
    (Arc::new(config), ca.pem())
}

fn serve<S: Read + Write>(
    mut stream: S,
    handler: &Handler,
    counter: &AtomicU64,
    mut on_request: impl FnMut(&S),
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        on_request(&stream);
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let reply = handler(n, &head);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        if stream.write_all(&reply.bytes).and_then(|()| stream.flush()).is_err() || reply.close {
            return;
        }
    }
}

/// Runs the real binary with `args`.
pub fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringcast-load"))
        .args(args)
        .output()
        .expect("run ringcast-load")
}

/// Runs the binary with `--json` into a temporary file and returns the parsed document.
pub fn load_json(args: &[&str]) -> serde_json::Value {
    let path = temp_path("json");
    let mut all: Vec<&str> = args.to_vec();
    let path_str = path.to_str().expect("utf-8 temp path").to_owned();
    all.extend_from_slice(&["-q", "--json", &path_str]);
    let out = load(&all);
    assert!(
        out.status.success(),
        "ringcast-load {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("json written");
    let _ = std::fs::remove_file(&path);
    serde_json::from_str(&text).expect("valid json")
}

/// A fresh path in the temp directory.
pub fn temp_path(ext: &str) -> std::path::PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "ringcast-load-test-{}-{}.{ext}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ))
}

/// `doc[key]` as u64.
pub fn u(doc: &serde_json::Value, key: &str) -> u64 {
    doc[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {doc}"))
}
