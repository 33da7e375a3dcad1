//! Origin connections on the worker's runtime: connect, send a request head, read the
//! response head and body under deadlines, keep-alive pooling, and one retry.
//!
//! Deadlines ([`Deadlines`]): `connect` bounds the TCP handshake; `first_byte` bounds the
//! wait from the request's last byte to the complete response head; `idle` bounds each wait
//! for more body bytes. An expired deadline is [`OriginError::Timeout`], answered 504; every
//! other failure is 502 ([`OriginError::status`]).
//!
//! Pooling ([`Pool`], one per worker, never shared): a connection returns to the pool only
//! after its response body was read to its end and the response allowed persistence
//! (RFC 9112 §9.3); idle ones older than [`Pool::idle_timeout`] are closed instead of used.
//!
//! Retry (RFC 9110 §9.2.2, RFC 9112 §9.3.1): a pooled connection may have been closed by the
//! origin while idle. When a request on a reused connection fails before any byte of the
//! response arrived, an idempotent request is sent once more on a new connection. After the
//! first byte nothing is retried: the answer is the origin's.
//!
//! Cancellation: dropping a future here drops its connection (closing it); nothing is pooled
//! half-read. Body bytes are copied once from the read buffer into the caller's sink.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::origin::chunked::{ChunkError, ChunkedDecoder, Decoded};
use crate::origin::head::{
    parse_head, BodyFraming, HeadError, HeadLimits, HeadParse, ResponseHead,
};

/// Read buffer size per connection.
const READ_BYTES: usize = 64 * 1024;

/// Deadlines of one origin exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// TCP connect.
    pub(crate) connect: Duration,
    /// From the request sent to the complete response head.
    pub(crate) first_byte: Duration,
    /// Between two reads of the body.
    pub(crate) idle: Duration,
}

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connecting.
    Connect,
    /// Waiting for the response head.
    FirstByte,
    /// Waiting for body bytes.
    Body,
}

/// Why an origin exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OriginError {
    /// A deadline expired.
    #[error("origin {addr}: timed out ({phase:?})")]
    Timeout { addr: SocketAddr, phase: Phase },
    /// Connecting, sending or receiving failed.
    #[error("origin {addr}: {op}: {source}")]
    Io { addr: SocketAddr, op: &'static str, source: io::Error },
    /// The origin closed the connection before a complete response head.
    #[error("origin {addr}: closed before a complete response head")]
    ClosedBeforeHead { addr: SocketAddr },
    /// The response head is unusable.
    #[error("origin {addr}: {source}")]
    Head { addr: SocketAddr, source: HeadError },
    /// The chunked body is malformed.
    #[error("origin {addr}: {source}")]
    Chunked { addr: SocketAddr, source: ChunkError },
    /// The body ended before its announced length (or its last chunk).
    #[error("origin {addr}: body truncated after {received} bytes")]
    Truncated { addr: SocketAddr, received: u64 },
    /// The caller's sink refused the bytes (e.g. the store failed); the connection is closed.
    #[error("origin {addr}: body not consumed: {reason}")]
    Sink { addr: SocketAddr, reason: String },
}

impl OriginError {
    /// The status the client gets: 504 for a timeout, 502 for anything else (RFC 9110
    /// §15.6.3, §15.6.5).
    pub(crate) fn status(&self) -> u16 {
        match self {
            OriginError::Timeout { .. } => 504,
            _ => 502,
        }
    }

    /// Whether a failure on a connection that received no response byte may be retried: the
    /// connection was closed or reset (not a timeout, not a bad answer).
    fn retriable(&self) -> bool {
        matches!(self, OriginError::ClosedBeforeHead { .. } | OriginError::Io { .. })
    }
}

/// One connection to an origin.
#[derive(Debug)]
pub(crate) struct OriginConn {
    addr: SocketAddr,
    stream: TcpStream,
    /// Received and not yet consumed.
    pending: Vec<u8>,
    /// Whether any response byte arrived for the current request.
    got_bytes: bool,
}

impl OriginConn {
    /// Connects within `deadlines.connect`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        deadlines: &Deadlines,
    ) -> Result<Self, OriginError> {
        let stream = match monoio::time::timeout(deadlines.connect, TcpStream::connect(addr)).await
        {
            Err(_) => return Err(OriginError::Timeout { addr, phase: Phase::Connect }),
            Ok(Err(source)) => return Err(OriginError::Io { addr, op: "connect", source }),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(OriginConn { addr, stream, pending: Vec::new(), got_bytes: false })
    }

    /// Sends a request head ([`crate::origin::request::write_head`]).
    async fn send(&mut self, head: Vec<u8>) -> Result<(), OriginError> {
        self.got_bytes = false;
        let (res, _) = self.stream.write_all(head).await;
        res.map(drop).map_err(|source| OriginError::Io { addr: self.addr, op: "send", source })
    }

    /// Reads more bytes into `pending` within `limit`; returns how many (0: end of stream).
    async fn read_more(&mut self, limit: Duration, phase: Phase) -> Result<usize, OriginError> {
        let buf = Vec::with_capacity(READ_BYTES);
        let (res, buf) = match monoio::time::timeout(limit, self.stream.read(buf)).await {
            Err(_) => return Err(OriginError::Timeout { addr: self.addr, phase }),
            Ok(r) => r,
        };
        let op = if phase == Phase::FirstByte { "receive head" } else { "receive body" };
        let n = res.map_err(|source| OriginError::Io { addr: self.addr, op, source })?;
        if n > 0 {
            self.got_bytes = true;
        }
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Reads the final response head (interim 1xx heads are skipped), all of it within
    /// `deadlines.first_byte`.
    async fn read_head(
        &mut self,
        request_was_head: bool,
        limits: &HeadLimits,
        deadlines: &Deadlines,
    ) -> Result<ResponseHead, OriginError> {
        let until = Instant::now() + deadlines.first_byte;
        loop {
            match parse_head(&self.pending, request_was_head, limits) {
                Ok(HeadParse::Complete { head, head_len }) => {
                    self.pending.drain(..head_len);
                    return Ok(head);
                }
                Ok(HeadParse::Informational { head_len }) => {
                    self.pending.drain(..head_len);
                    continue;
                }
                Ok(HeadParse::Partial) => {}
                Err(source) => return Err(OriginError::Head { addr: self.addr, source }),
            }
            let left = until.saturating_duration_since(Instant::now());
            let got = match self.read_more(left, Phase::FirstByte).await {
                // A reset before any response byte is the same case as a close.
                Err(OriginError::Io { source, .. })
                    if !self.got_bytes && source.kind() == io::ErrorKind::ConnectionReset =>
                {
                    0
                }
                other => other?,
            };
            if got == 0 {
                return Err(OriginError::ClosedBeforeHead { addr: self.addr });
            }
        }
    }

    /// Reads the body framed by `framing`, handing every byte to `sink` in order. Returns the
    /// body length and whether the connection may be reused.
    async fn read_body(
        &mut self,
        framing: BodyFraming,
        deadlines: &Deadlines,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<u64, OriginError> {
        let addr = self.addr;
        let mut received = 0u64;
        let mut give = |bytes: &[u8], received: &mut u64| -> Result<(), OriginError> {
            if bytes.is_empty() {
                return Ok(());
            }
            sink(bytes).map_err(|reason| OriginError::Sink { addr, reason })?;
            *received += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            Ok(())
        };
        match framing {
            BodyFraming::Length(len) => {
                while received < len {
                    if self.pending.is_empty()
                        && self.read_more(deadlines.idle, Phase::Body).await? == 0
                    {
                        return Err(OriginError::Truncated { addr, received });
                    }
                    let want = usize::try_from(len - received).unwrap_or(usize::MAX);
                    let take = want.min(self.pending.len());
                    give(&self.pending[..take], &mut received)?;
                    self.pending.drain(..take);
                }
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                loop {
                    let mut at = 0;
                    let mut done = false;
                    while at < self.pending.len() {
                        let (n, what) = decoder
                            .decode(&self.pending[at..])
                            .map_err(|source| OriginError::Chunked { addr, source })?;
                        match what {
                            Decoded::Data(d) => give(d, &mut received)?,
                            Decoded::NeedMore => {}
                            Decoded::Done => done = true,
                        }
                        at += n;
                        if done {
                            break;
                        }
                    }
                    self.pending.drain(..at);
                    if done {
                        break;
                    }
                    if self.read_more(deadlines.idle, Phase::Body).await? == 0 {
                        return Err(OriginError::Truncated { addr, received });
                    }
                }
            }
            BodyFraming::UntilClose => loop {
                give(&self.pending, &mut received)?;
                self.pending.clear();
                if self.read_more(deadlines.idle, Phase::Body).await? == 0 {
                    break;
                }
            },
        }
        Ok(received)
    }
}

/// A worker's idle origin connections, by origin address.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: RefCell<HashMap<SocketAddr, Vec<(OriginConn, Instant)>>>,
    max_idle_per_origin: usize,
    idle_timeout: Duration,
}

impl Pool {
    /// An empty pool keeping up to `max_idle_per_origin` connections per origin, each for at
    /// most `idle_timeout`.
    pub(crate) fn new(max_idle_per_origin: usize, idle_timeout: Duration) -> Self {
        Pool { idle: RefCell::new(HashMap::new()), max_idle_per_origin, idle_timeout }
    }

    /// How long an idle connection is kept.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The most recently used idle connection to `addr` still within its idle timeout.
    fn take(&self, addr: SocketAddr) -> Option<OriginConn> {
        let mut idle = self.idle.borrow_mut();
        let conns = idle.get_mut(&addr)?;
        while let Some((conn, since)) = conns.pop() {
            if since.elapsed() < self.idle_timeout {
                return Some(conn);
            }
        }
        None
    }

    fn put(&self, conn: OriginConn) {
        let mut idle = self.idle.borrow_mut();
        let conns = idle.entry(conn.addr).or_default();
        if conns.len() < self.max_idle_per_origin {
            conns.push((conn, Instant::now()));
        }
    }

    /// Idle connections held for `addr`.
    pub(crate) fn idle_count(&self, addr: SocketAddr) -> usize {
        self.idle.borrow().get(&addr).map_or(0, Vec::len)
    }
}

/// A response whose head has arrived; its body is still on the connection.
#[derive(Debug)]
pub(crate) struct Response {
    /// The head.
    pub(crate) head: ResponseHead,
    /// Whether the request went on a pooled connection.
    pub(crate) reused: bool,
    /// Whether it was sent twice (the first attempt's reused connection had failed).
    pub(crate) retried: bool,
    conn: OriginConn,
}

/// One request to an origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange<'a> {
    /// The origin's address.
    pub(crate) addr: SocketAddr,
    /// The request head's bytes.
    pub(crate) head: &'a [u8],
    /// The request is HEAD (the response has no body).
    pub(crate) is_head: bool,
    /// The method is idempotent (GET, HEAD): one retry allowed.
    pub(crate) idempotent: bool,
}

/// Sends `ex` on a pooled or new connection and reads the response head.
pub(crate) async fn request(
    pool: &Pool,
    ex: &Exchange<'_>,
    limits: &HeadLimits,
    deadlines: &Deadlines,
) -> Result<Response, OriginError> {
    let mut retried = false;
    loop {
        let (mut conn, reused) = match pool.take(ex.addr) {
            Some(c) => (c, true),
            None => (OriginConn::connect(ex.addr, deadlines).await?, false),
        };
        let attempt = async {
            conn.send(ex.head.to_vec()).await?;
            conn.read_head(ex.is_head, limits, deadlines).await
        };
        match attempt.await {
            Ok(head) => return Ok(Response { head, reused, retried, conn }),
            Err(e) if reused && ex.idempotent && !retried && !conn.got_bytes && e.retriable() => {
                tracing::debug!("{e}; retrying on a new connection");
                retried = true;
                // A pooled connection failed: the others to this origin are as old or older.
                pool.idle.borrow_mut().remove(&ex.addr);
            }
            Err(e) => return Err(e),
        }
    }
}

impl Response {
    /// Reads the body into `sink` and returns the connection to `pool` when it may be reused.
    /// Returns the body length. A truncated or malformed body is an error, and the
    /// connection is closed.
    pub(crate) async fn body(
        mut self,
        pool: &Pool,
        deadlines: &Deadlines,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<u64, OriginError> {
        let len = self.conn.read_body(self.head.framing, deadlines, sink).await?;
        // Extra bytes after a complete response would be a protocol error on reuse.
        if self.head.keep_alive && self.conn.pending.is_empty() {
            pool.put(self.conn);
        }
        Ok(len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cache::fields::Fields;
    use crate::origin::request::{write_head, EdgeIdentity, OriginRequest};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Child, Command, Stdio};

    const LIMITS: HeadLimits = HeadLimits { max_head_bytes: 32 * 1024 };
    const DEADLINES: Deadlines = Deadlines {
        connect: Duration::from_secs(5),
        first_byte: Duration::from_secs(10),
        idle: Duration::from_secs(10),
    };

    /// The counting origin fixture (`tests/fixtures/origin.py`) serving a temporary directory.
    pub(crate) struct Fixture {
        child: Child,
        pub(crate) addr: SocketAddr,
        pub(crate) root: std::path::PathBuf,
    }

    impl Fixture {
        pub(crate) fn start(name: &str) -> Fixture {
            let root =
                std::env::temp_dir().join(format!("ringcast-origin-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/origin.py");
            let mut child = Command::new("python3")
                .args([script, "--root"])
                .arg(&root)
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 runs the origin fixture");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            let addr =
                line.trim().strip_prefix("listening on ").expect("fixture banner").parse().unwrap();
            Fixture { child, addr, root }
        }

        pub(crate) fn control(&self, target: &str) -> String {
            let mut s = std::net::TcpStream::connect(self.addr).unwrap();
            let method = if target.starts_with("/_control/log") { "GET" } else { "POST" };
            write!(s, "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out.split_once("\r\n\r\n").unwrap().1.to_string()
        }

        /// The recorded requests as (path, range, connection number).
        pub(crate) fn log(&self) -> Vec<(String, Option<String>, u64)> {
            let json = self.control("/_control/log");
            // The fixture's JSON is flat and regular: pick the three fields per entry.
            json.split("{\"method\"")
                .skip(1)
                .map(|e| {
                    let field = |name: &str| {
                        let at = e.find(&format!("\"{name}\": ")).unwrap() + name.len() + 4;
                        let rest = &e[at..];
                        let end = rest.find([',', '}']).unwrap();
                        rest[..end].trim().to_string()
                    };
                    let range = field("range");
                    let range = (range != "null").then(|| range.trim_matches('"').to_string());
                    (
                        field("path").trim_matches('"').to_string(),
                        range,
                        field("connection").parse().unwrap(),
                    )
                })
                .collect()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    /// Both drivers where io_uring is available (`true`), epoll alone otherwise.
    pub(crate) fn runtimes() -> Vec<bool> {
        if monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build().is_ok() {
            vec![true, false]
        } else {
            vec![false]
        }
    }

    /// Runs `fut` on a fresh monoio runtime (with timers) of the given driver on this thread.
    pub(crate) fn block_on<F: std::future::Future>(uring: bool, fut: F) -> F::Output {
        if uring {
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()
                .unwrap()
                .block_on(fut)
        } else {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .unwrap()
                .block_on(fut)
        }
    }

    fn get(target: &str, range: Option<&str>) -> Vec<u8> {
        let id = EdgeIdentity { via_name: "ringcast".into(), cdn_id: "test-edge".into() };
        let fields = Fields::new();
        let req = OriginRequest {
            method: "GET",
            target,
            host: "origin.test",
            client_fields: &fields,
            client_minor_version: 1,
            range,
            conditional: None,
        };
        let mut out = Vec::new();
        write_head(&req, &id, &mut out);
        out
    }

    /// GET `target` and read the body; returns the status, body and the response's reuse flag.
    async fn fetch(
        pool: &Pool,
        addr: SocketAddr,
        target: &str,
        range: Option<&str>,
        d: &Deadlines,
    ) -> Result<(u16, Vec<u8>, bool), OriginError> {
        let head = get(target, range);
        let ex = Exchange { addr, head: &head, is_head: false, idempotent: true };
        let resp = request(pool, &ex, &LIMITS, d).await?;
        let (status, reused) = (resp.head.status, resp.reused);
        let mut body = Vec::new();
        let len = resp
            .body(pool, d, &mut |b| {
                body.extend_from_slice(b);
                Ok(())
            })
            .await?;
        assert_eq!(len, u64::try_from(body.len()).unwrap());
        Ok((status, body, reused))
    }

    /// Deterministic content of `len` bytes.
    pub(crate) fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| u8::try_from((i * 7 + i / 251) % 256).unwrap()).collect()
    }

    #[test]
    fn bodies_arrive_whole_by_length_and_chunked_on_reused_connections() {
        for uring in runtimes() {
            let fx = Fixture::start(&format!("bodies-{uring}"));
            let data = content(300_000);
            std::fs::write(fx.root.join("a.bin"), &data).unwrap();
            std::fs::write(fx.root.join("c.bin"), &data[..123_457]).unwrap();
            fx.control("/_control/mode?path=/c.bin&mode=chunked");
            let pool = Pool::new(4, Duration::from_secs(30));
            block_on(uring, async {
                let (s, body, reused) =
                    fetch(&pool, fx.addr, "/a.bin", None, &DEADLINES).await.unwrap();
                assert!(s == 200 && body == data && !reused);
                assert_eq!(pool.idle_count(fx.addr), 1);
                let (s, body, reused) =
                    fetch(&pool, fx.addr, "/c.bin", None, &DEADLINES).await.unwrap();
                assert!(s == 200 && body == data[..123_457] && reused);
                let (s, body, reused) =
                    fetch(&pool, fx.addr, "/a.bin", Some("bytes=1048-2047"), &DEADLINES)
                        .await
                        .unwrap();
                assert!(s == 206 && body == data[1048..2048] && reused);
                let (s, _, _) = fetch(&pool, fx.addr, "/missing", None, &DEADLINES).await.unwrap();
                assert_eq!(s, 404);
            });
            let log = fx.log();
            assert_eq!(log.len(), 4);
            // One connection carried every request.
            assert!(log.iter().all(|(_, _, c)| *c == log[0].2), "{log:?}");
            assert_eq!(log[2].1.as_deref(), Some("bytes=1048-2047"));
        }
    }

    #[test]
    fn bad_framing_truncation_and_stalls_are_errors_and_not_pooled() {
        for uring in runtimes() {
            let fx = Fixture::start(&format!("errors-{uring}"));
            let data = content(200_000);
            for name in ["cut.bin", "both.bin", "stall.bin", "late.bin"] {
                std::fs::write(fx.root.join(name), &data).unwrap();
            }
            fx.control("/_control/mode?path=/cut.bin&mode=close-mid-body");
            fx.control("/_control/mode?path=/both.bin&mode=both-lengths");
            fx.control("/_control/mode?path=/stall.bin&mode=stall&arg=30");
            fx.control("/_control/mode?path=/late.bin&mode=stall-head&arg=30");
            let short = Deadlines {
                first_byte: Duration::from_millis(300),
                idle: Duration::from_millis(300),
                ..DEADLINES
            };
            let pool = Pool::new(4, Duration::from_secs(30));
            block_on(uring, async {
                let e = fetch(&pool, fx.addr, "/cut.bin", None, &DEADLINES).await.unwrap_err();
                assert!(matches!(e, OriginError::Truncated { received: 100_000, .. }), "{e}");
                assert_eq!(e.status(), 502);
                let e = fetch(&pool, fx.addr, "/both.bin", None, &DEADLINES).await.unwrap_err();
                assert!(
                    matches!(
                        e,
                        OriginError::Head { source: HeadError::LengthAndTransferEncoding, .. }
                    ),
                    "{e}"
                );
                let e = fetch(&pool, fx.addr, "/stall.bin", None, &short).await.unwrap_err();
                assert!(matches!(e, OriginError::Timeout { phase: Phase::Body, .. }), "{e}");
                assert_eq!(e.status(), 504);
                let e = fetch(&pool, fx.addr, "/late.bin", None, &short).await.unwrap_err();
                assert!(matches!(e, OriginError::Timeout { phase: Phase::FirstByte, .. }), "{e}");
                assert_eq!(pool.idle_count(fx.addr), 0);
                // Nothing listens on the fixture's port once it is gone: a connect error.
            });
            let addr = fx.addr;
            drop(fx);
            let e = block_on(
                uring,
                fetch(&Pool::new(1, Duration::from_secs(1)), addr, "/a", None, &DEADLINES),
            )
            .unwrap_err();
            assert!(matches!(e, OriginError::Io { op: "connect", .. }), "{e}");
            assert_eq!(e.status(), 502);
        }
    }

    /// An origin that answers one request per connection, then closes the connection when
    /// the next request arrives, without answering: the pooled connection fails before any
    /// byte, so an idempotent request is sent again on a new connection.
    fn one_per_connection_origin(
        connections: usize,
    ) -> (SocketAddr, std::thread::JoinHandle<usize>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut served = 0;
            for _ in 0..connections {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0);
                    head.extend_from_slice(&buf[..n]);
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
                served += 1;
                // Wait for the next request on this connection, then close unanswered.
                let _ = s.read(&mut buf);
            }
            served
        });
        (addr, t)
    }

    #[test]
    fn a_reused_connection_that_fails_before_any_byte_is_retried_once() {
        for uring in runtimes() {
            let (addr, origin) = one_per_connection_origin(2);
            let pool = Pool::new(4, Duration::from_secs(30));
            block_on(uring, async {
                let (s, body, reused) = fetch(&pool, addr, "/x", None, &DEADLINES).await.unwrap();
                assert!(s == 200 && body == b"ok" && !reused);
                let head = get("/x", None);
                let ex = Exchange { addr, head: &head, is_head: false, idempotent: true };
                let resp = request(&pool, &ex, &LIMITS, &DEADLINES).await.unwrap();
                assert!(resp.retried && !resp.reused && resp.head.status == 200);
                let mut body = Vec::new();
                resp.body(&pool, &DEADLINES, &mut |b| {
                    body.extend_from_slice(b);
                    Ok(())
                })
                .await
                .unwrap();
                assert_eq!(body, b"ok");
            });
            drop(pool);
            assert_eq!(origin.join().unwrap(), 2);

            // Not idempotent: no retry, the failure is the answer.
            let (addr, origin) = one_per_connection_origin(1);
            let pool = Pool::new(4, Duration::from_secs(30));
            block_on(uring, async {
                fetch(&pool, addr, "/x", None, &DEADLINES).await.unwrap();
                let head = get("/x", None);
                let ex = Exchange { addr, head: &head, is_head: false, idempotent: false };
                let e = request(&pool, &ex, &LIMITS, &DEADLINES).await.unwrap_err();
                assert!(
                    matches!(e, OriginError::ClosedBeforeHead { .. } | OriginError::Io { .. }),
                    "{e}"
                );
            });
            assert_eq!(origin.join().unwrap(), 1);
        }
    }

    #[test]
    fn the_sink_can_refuse_and_the_connection_is_dropped() {
        let fx = Fixture::start("sink");
        std::fs::write(fx.root.join("a.bin"), content(1000)).unwrap();
        let pool = Pool::new(4, Duration::from_millis(1));
        assert_eq!(pool.idle_timeout(), Duration::from_millis(1));
        block_on(false, async {
            let head = get("/a.bin", None);
            let ex = Exchange { addr: fx.addr, head: &head, is_head: false, idempotent: true };
            let resp = request(&pool, &ex, &LIMITS, &DEADLINES).await.unwrap();
            let e =
                resp.body(&pool, &DEADLINES, &mut |_| Err("disk full".into())).await.unwrap_err();
            assert!(matches!(e, OriginError::Sink { .. }), "{e}");
            assert_eq!(pool.idle_count(fx.addr), 0);
            // A pooled connection past the idle timeout is not used.
            let (_, _, reused) = fetch(&pool, fx.addr, "/a.bin", None, &DEADLINES).await.unwrap();
            assert!(!reused && pool.idle_count(fx.addr) == 1);
            std::thread::sleep(Duration::from_millis(20));
            let (_, _, reused) = fetch(&pool, fx.addr, "/a.bin", None, &DEADLINES).await.unwrap();
            assert!(!reused);
        });
    }
}
