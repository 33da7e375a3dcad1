//! A small HTTP/1.1 server for integration tests, on plain std threads.
//!
//! It serves every request with a caller-supplied handler, counts the
//! requests it saw, and runs until the test process exits.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
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
}

impl Server {
    /// Starts a server on 127.0.0.1:0.
    pub fn start(handler: impl Fn(u64, &str) -> Reply + Send + Sync + 'static) -> Self {
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
                std::thread::spawn(move || serve(stream, &*handler, &counter));
            }
        });
        Self { addr, requests }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Request heads received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, counter: &AtomicU64) {
    let _ = stream.set_nodelay(true);
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
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let reply = handler(n, &head);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        if stream.write_all(&reply.bytes).is_err() || reply.close {
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
