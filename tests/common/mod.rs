//! Test harness: a real `ringcast` process on `127.0.0.1:0`, raw-bytes HTTP/1.1 over
//! `std::net::TcpStream` or over a rustls client stream (a [`Conn`] either way), and a fixture
//! tree on disk. A [`Setup`] names the event-loop driver and the transport; [`SETUPS`] is every
//! combination, so a test body written once runs over plain HTTP and HTTPS on both drivers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use sha2::{Digest, Sha256};

/// Both event-loop drivers: every behaviour is checked on each.
pub const DRIVERS: [&str; 2] = ["uring", "epoll"];

/// How the test client reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 straight on TCP (`--listen`).
    Plain,
    /// HTTP/1.1 inside TLS (`--tls-listen`, a certificate from the test CA, ALPN `http/1.1`).
    Tls,
}

/// A driver and a transport: one way of running a server test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub driver: &'static str,
    pub transport: Transport,
}

impl Setup {
    pub const fn new(driver: &'static str, transport: Transport) -> Setup {
        Setup { driver, transport }
    }

    pub fn is_tls(self) -> bool {
        self.transport == Transport::Tls
    }
}

/// A bare driver name means plain HTTP.
impl From<&'static str> for Setup {
    fn from(driver: &'static str) -> Setup {
        Setup::new(driver, Transport::Plain)
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            Transport::Plain => "plain",
            Transport::Tls => "tls",
        };
        write!(f, "{}/{transport}", self.driver)
    }
}

/// Both drivers, each over plain HTTP and over TLS.
pub const SETUPS: [Setup; 4] = [
    Setup::new("uring", Transport::Plain),
    Setup::new("uring", Transport::Tls),
    Setup::new("epoll", Transport::Plain),
    Setup::new("epoll", Transport::Tls),
];

/// Runs `check` for every setup at once, one thread each, for checks that mostly wait (on a
/// timeout, a sleep): their waits overlap instead of adding up. A panic in any thread fails the
/// caller once all have finished.
pub fn each_setup_in_parallel(check: impl Fn(Setup) + Sync) {
    std::thread::scope(|scope| {
        for setup in SETUPS {
            let check = &check;
            scope.spawn(move || check(setup));
        }
    });
}

/// Where a client connects: the plain listener, or the TLS listener and the client
/// configuration that trusts the test CA. Cheap to clone into client threads.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
}

impl Client {
    /// A TCP connection to the listener of this transport, nothing sent yet.
    pub fn connect_tcp(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// A new connection with generous timeouts; over TLS, the handshake is done.
    pub fn connect(&self) -> Conn {
        let sock = self.connect_tcp();
        let Some(config) = &self.tls else {
            return Conn { sock, tls: None };
        };
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(Arc::clone(config), name).expect("client connection");
        let mut stream = StreamOwned::new(conn, sock.try_clone().unwrap());
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).expect("TLS handshake");
        }
        assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]), "ALPN");
        Conn { sock, tls: Some(Arc::new(Mutex::new(stream))) }
    }
}

/// One client connection, plain or TLS, read and written as plaintext HTTP bytes.
/// [`Conn::try_clone`] gives another handle on the same connection (over TLS, the same rustls
/// state), so one handle can sit in a `BufReader` while another writes.
pub struct Conn {
    /// The TCP socket (over TLS, a duplicate of the descriptor rustls reads and writes).
    sock: TcpStream,
    tls: Option<Arc<Mutex<StreamOwned<ClientConnection, TcpStream>>>>,
}

impl Conn {
    pub fn try_clone(&self) -> std::io::Result<Conn> {
        Ok(Conn { sock: self.sock.try_clone()?, tls: self.tls.clone() })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The TCP socket underneath, for socket options (timeouts, linger, non-blocking).
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    pub fn set_nonblocking(&self, on: bool) -> std::io::Result<()> {
        self.sock.set_nonblocking(on)
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        self.sock.set_read_timeout(d)
    }

    /// Sends `bytes` from another thread while this one reads, so the server can fill the
    /// socket with responses while requests are still arriving. Over TLS the bytes are
    /// encrypted here, all at once, and the thread writes the records on the duplicate socket;
    /// rustls needs to send nothing else while the responses are read.
    pub fn send_in_background(&self, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
        let mut sock = self.sock.try_clone().unwrap();
        let wire = match &self.tls {
            None => bytes,
            Some(tls) => {
                let mut tls = tls.lock().unwrap();
                tls.conn.set_buffer_limit(None);
                tls.conn.writer().write_all(&bytes).unwrap();
                let mut wire = Vec::new();
                while tls.conn.wants_write() {
                    tls.conn.write_tls(&mut wire).unwrap();
                }
                wire
            }
        };
        std::thread::spawn(move || sock.write_all(&wire).unwrap())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &self.tls {
            None => self.sock.read(buf),
            Some(tls) => tls.lock().unwrap().read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.tls {
            None => self.sock.write(buf),
            Some(tls) => tls.lock().unwrap().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &self.tls {
            None => self.sock.flush(),
            Some(tls) => tls.lock().unwrap().flush(),
        }
    }
}

/// A test CA, and leaf certificates it signs, as PEM files in `dir`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_der: CertificateDer<'static>,
    issuer: (rcgen::Certificate, rcgen::KeyPair),
}

impl Pki {
    /// A new CA (`ca.crt`, `ca.key`) in `dir`.
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "ringcast test CA");
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        std::fs::write(dir.join("ca.key"), ca_key.serialize_pem()).unwrap();
        Pki { dir: dir.to_path_buf(), ca_der: ca.der().clone(), issuer: (ca, ca_key) }
    }

    /// The CA and one ECDSA leaf, `ec`, for `localhost`: made once per test process.
    pub fn shared() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| {
            let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            // A process cannot remove its own at exit: remove those of earlier, finished runs.
            for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
                let name = entry.file_name();
                let pid = name.to_str().and_then(|n| n.strip_prefix("ringcast-pki-"));
                if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            let dir = tmp.join(format!("ringcast-pki-{}", std::process::id()));
            let pki = Pki::new(&dir);
            pki.ecdsa("ec", &["localhost"], (2020, 2099));
            pki
        })
    }

    /// An ECDSA leaf `name.crt` / `name.key` for `names`, valid from the start of the first
    /// year to the start of the second.
    pub fn ecdsa(&self, name: &str, names: &[&str], years: (i32, i32)) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        let cert = params.signed_by(&key, &self.issuer.0, &self.issuer.1).unwrap();
        std::fs::write(self.crt(name), cert.pem()).unwrap();
        std::fs::write(self.key(name), key.serialize_pem()).unwrap();
    }

    pub fn crt(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.crt"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// The CA certificate's path.
    pub fn ca(&self) -> String {
        self.dir.join("ca.crt").display().to_string()
    }

    /// The leaf certificate's DER.
    pub fn leaf_der(&self, name: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_file_iter(self.crt(name)).unwrap().next().unwrap().unwrap().to_vec()
    }

    /// A rustls client that trusts the CA and offers ALPN `http/1.1`, with ring's provider, as
    /// the server uses.
    #[allow(deprecated, reason = "ring's provider, as the server uses")]
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub log_path: PathBuf,
    pub setup: Setup,
    /// The TLS listener's address, with `Transport::Tls`.
    pub tls_addr: Option<SocketAddr>,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `ringcast` on `root` with the given setup (or bare driver name, for plain HTTP)
    /// and extra arguments. With `Transport::Tls` the server also listens for HTTPS, with the
    /// shared test certificate, and [`Server::connect`] speaks TLS.
    pub fn start(root: &Path, setup: impl Into<Setup>, extra: &[&str]) -> Server {
        Self::start_with(Command::new(env!("CARGO_BIN_EXE_ringcast")), root, setup, extra)
    }

    /// Starts the server through `cmd` (e.g. a `prlimit` wrapper whose last argument is the
    /// binary).
    pub fn start_with(
        mut cmd: Command,
        root: &Path,
        setup: impl Into<Setup>,
        extra: &[&str],
    ) -> Server {
        let setup = setup.into();
        if setup.is_tls() {
            let pki = Pki::shared();
            cmd.args(["--tls-listen", "127.0.0.1:0", "--tls-cert"])
                .arg(pki.crt("ec"))
                .arg("--tls-key")
                .arg(pki.key("ec"));
        }
        static LOGS: AtomicUsize = AtomicUsize::new(0);
        let log_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "ringcast-{}-{}.log",
            std::process::id(),
            LOGS.fetch_add(1, Ordering::Relaxed)
        ));
        let log = std::fs::File::create(&log_path).expect("create the server log");
        let mut child = cmd
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--driver")
            .arg(setup.driver)
            .args(extra)
            .arg(root)
            .env("RUST_LOG", "ringcast=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn ringcast");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the listening line");
        if line.is_empty() {
            let _ = child.wait();
            panic!(
                "ringcast exited before listening:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        let url = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let addr: SocketAddr = url.parse().expect("address in the listening line");
        let tls_addr = setup.is_tls().then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read the HTTPS listening line");
            let url = line
                .trim()
                .strip_prefix("listening on https://")
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"));
            url.parse().expect("address in the HTTPS listening line")
        });
        Server { child, addr, root: root.to_path_buf(), log_path, setup, tls_addr, _stdout: stdout }
    }

    /// The server's standard output after the `listening on` line (the access log with
    /// `--access-log -`).
    pub fn stdout(&mut self) -> &mut BufReader<ChildStdout> {
        &mut self._stdout
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A client of this server's transport.
    pub fn client(&self) -> Client {
        match self.tls_addr {
            Some(addr) => Client { addr, tls: Some(Pki::shared().client_config()) },
            None => Client { addr: self.addr, tls: None },
        }
    }

    /// A new connection with generous timeouts; over TLS, the handshake is done.
    pub fn connect(&self) -> Conn {
        self.client().connect()
    }

    /// A TCP connection to the listener of the server's transport, nothing sent yet.
    pub fn connect_tcp(&self) -> TcpStream {
        self.client().connect_tcp()
    }

    /// Sends raw bytes on a fresh connection and reads one response.
    pub fn exchange(&self, raw: &[u8]) -> Response {
        let mut s = self.connect();
        s.write_all(raw).unwrap();
        read_response(&mut BufReader::new(s), raw.starts_with(b"HEAD "))
    }

    /// `GET path` with `Host` and extra header lines.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.exchange(request("GET", path, headers).as_bytes())
    }

    /// Number of open descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap().count()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- server log ({}) ---\n{}", self.log_path.display(), self.log());
        }
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Formats a request with `Host`.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub status_line: String,
    /// Lower-cased names; repeated fields joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// Field names in order, as sent.
    pub raw_head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").map(|v| v.parse().expect("numeric Content-Length"))
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response; the body by `Content-Length` (none for HEAD, 1xx, 204, 304).
pub fn read_response(r: &mut impl BufRead, head_request: bool) -> Response {
    let mut raw_head = String::new();
    let mut status_line = String::new();
    r.read_line(&mut status_line).expect("status line");
    assert!(status_line.ends_with("\r\n"), "status line {status_line:?}");
    raw_head.push_str(&status_line);
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header line");
        raw_head.push_str(&line);
        assert!(line.ends_with("\r\n"), "header line {line:?}");
        if line == "\r\n" {
            break;
        }
        let (name, value) = line.trim_end().split_once(':').expect("colon in header");
        let key = name.to_ascii_lowercase();
        let value = value.trim().to_string();
        headers
            .entry(key)
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut resp = Response {
        status,
        status_line: status_line.trim_end().into(),
        headers,
        raw_head,
        body: Vec::new(),
    };
    let bodiless = head_request || status < 200 || status == 204 || status == 304;
    if !bodiless {
        let len = resp.content_length().expect("Content-Length on a response with a body");
        let mut body = vec![0; usize::try_from(len).unwrap()];
        r.read_exact(&mut body).expect("body");
        resp.body = body;
    }
    resp
}

/// Reads until the server closes; true if it closed within the read timeout: EOF or reset on
/// TCP; over TLS, close_notify, or EOF without it (rustls's `UnexpectedEof`).
pub fn closed_by_server(s: &mut impl Read) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof) => {
                return true
            }
            Err(_) => return false,
        }
    }
}

/// Reads everything up to the server's close (as [`closed_by_server`] counts it) and returns
/// it; panics on any other error, such as the read timeout.
pub fn read_to_close(s: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof) => {
                return all
            }
            Err(e) => panic!("read to the close after {} bytes: {e}", all.len()),
        }
    }
}

/// Hex SHA-256.
pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh fixture directory under the target dir (removed on drop).
pub struct Fixture {
    pub dir: PathBuf,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Fixture { dir }
    }

    /// Writes a file (creating parent directories) and returns its path.
    pub fn file(&self, rel: &str, content: &[u8]) -> PathBuf {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(rel)).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Deterministic pseudo-random bytes (xorshift64, eight bytes a step).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One part of a `multipart/byteranges` body (RFC 9110 §14.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPart {
    /// Lower-cased field names of the part's own head, with their values.
    pub headers: BTreeMap<String, String>,
    /// The part's data, byte for byte.
    pub body: Vec<u8>,
}

/// Splits a `multipart/byteranges` body strictly (RFC 2046 §5.1.1): it must start with the
/// first delimiter, every part must have a head ending in an empty line, and the body must end
/// with the close delimiter and CRLF, nothing after it. `content_type` is the response's
/// `Content-Type`, from which the boundary is taken. Panics on any deviation.
pub fn multipart_parts(body: &[u8], content_type: &str) -> Vec<BodyPart> {
    let (essence, params) = content_type.split_once(';').expect("boundary parameter");
    assert_eq!(essence.trim(), "multipart/byteranges", "{content_type}");
    let boundary = params
        .trim()
        .strip_prefix("boundary=")
        .unwrap_or_else(|| panic!("boundary in {content_type:?}"))
        .trim_matches('"');
    let delim = format!("--{boundary}");
    let next_delim = format!("\r\n--{boundary}");
    let mut rest = body.strip_prefix(delim.as_bytes()).expect("body starts with the delimiter");
    let mut parts = Vec::new();
    loop {
        if rest == b"--\r\n" {
            return parts;
        }
        rest = rest.strip_prefix(b"\r\n").expect("CRLF after a delimiter");
        let head_end = find_bytes(rest, b"\r\n\r\n").expect("end of a part head");
        let head = std::str::from_utf8(&rest[..head_end]).expect("ASCII part head");
        let mut headers = BTreeMap::new();
        for line in head.split("\r\n") {
            let (name, value) = line.split_once(':').expect("colon in a part field");
            headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
        }
        rest = &rest[head_end + 4..];
        let end = find_bytes(rest, next_delim.as_bytes()).expect("delimiter after a part");
        parts.push(BodyPart { headers, body: rest[..end].to_vec() });
        rest = &rest[end + next_delim.len()..];
    }
}

/// The first position of `needle` in `hay`.
pub fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
