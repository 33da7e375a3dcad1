//! Test harness: a real `ringcast` process on `127.0.0.1:0`, raw-bytes HTTP/1.1 over
//! `std::net::TcpStream`, and a fixture tree on disk.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Both event-loop drivers: every behaviour is checked on each.
pub const DRIVERS: [&str; 2] = ["uring", "epoll"];

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub log_path: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `ringcast` on `root` with the given driver and extra arguments.
    pub fn start(root: &Path, driver: &str, extra: &[&str]) -> Server {
        Self::start_with(Command::new(env!("CARGO_BIN_EXE_ringcast")), root, driver, extra)
    }

    /// Starts the server through `cmd` (e.g. a `prlimit` wrapper whose last argument is the
    /// binary).
    pub fn start_with(mut cmd: Command, root: &Path, driver: &str, extra: &[&str]) -> Server {
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
            .arg(driver)
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
        Server { child, addr, root: root.to_path_buf(), log_path, _stdout: stdout }
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

    /// A new connection with generous timeouts.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        s
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

/// Reads until the server closes; true if it closed (EOF or reset) within the read timeout.
pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
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
