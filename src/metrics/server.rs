//! The metrics listener: one plain thread on `--metrics-listen`, serving `GET /metrics` and
//! nothing else.
//!
//! It is deliberately not a worker: it never sees the data port, never opens a file and never
//! touches a worker's runtime. Each connection gets one response and is closed; a client has
//! [`CLIENT_TIMEOUT`] to send its request head, so a stuck scraper cannot wedge the thread for
//! long. Any other path or method gets 404 or 405. The thread lives until the process exits.
//!
//! In edge mode it is also the only place that accepts `PURGE` (the data port answers it with
//! 405): `PURGE /path` deletes that object, `PURGE /prefix*` every object whose path starts
//! with `/prefix`, and a `Purge-Mode: soft` field marks them stale instead of deleting them.
//! The answer is 200 with the count, or 404 when nothing matched.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use super::{render, Registry, CONTENT_TYPE};
use crate::http::request::{parse, Limits, Method, Parsed};
use crate::http::response::Status;

/// How long a scraper may take to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head read from a scraper.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Carries out a purge: `(target, prefix, soft)` → objects purged (the edge cache's
/// `edge::Shared::purge`).
pub type Purger = Arc<dyn Fn(&str, bool, bool) -> u64 + Send + Sync>;

/// Binds `addr` and serves the registry (and purges, given a `purger`) from a new thread.
/// Returns the bound address.
pub fn spawn(
    addr: SocketAddr,
    registry: Arc<Registry>,
    purger: Option<Purger>,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("ringcast-metrics".into()).spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(s) => {
                    if let Err(e) = serve(s, &registry, purger.as_ref()) {
                        debug!(error = %e, "metrics client");
                    }
                }
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    })?;
    Ok(local)
}

/// What a request to the metrics listener gets.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Metrics {
        head_only: bool,
    },
    NotFound,
    MethodNotAllowed,
    /// `PURGE target` (with `*` at the end: a prefix); soft by `Purge-Mode: soft`.
    Purge {
        target: String,
        prefix: bool,
        soft: bool,
    },
    /// The head could not be parsed, or never arrived whole: the parser's status.
    Invalid(Status),
}

/// Routes a request head with the data port's parser (`http::request::parse`), so both
/// listeners judge a request line and its fields by the same rules.
fn route(head: &[u8]) -> Answer {
    let limits = Limits { max_head_bytes: MAX_HEAD_BYTES, max_target_bytes: MAX_HEAD_BYTES };
    let req = match parse(head, &limits) {
        Ok(Parsed::Complete(req, _)) => req,
        Ok(Parsed::Partial) => return Answer::Invalid(Status::BadRequest),
        Err(e) => return Answer::Invalid(e.status()),
    };
    let path = req.target.split(|&b| b == b'?').next().unwrap_or_default();
    if req.method_token == "PURGE" {
        let target = String::from_utf8_lossy(&req.target);
        let (target, prefix) = match target.strip_suffix('*') {
            Some(t) => (t.to_string(), true),
            None => (target.into_owned(), false),
        };
        let soft = head.split(|&b| b == b'\n').any(|line| {
            let line = String::from_utf8_lossy(line).to_ascii_lowercase();
            line.strip_prefix("purge-mode:").is_some_and(|v| v.trim() == "soft")
        });
        return Answer::Purge { target, prefix, soft };
    }
    match (req.method, path) {
        (Method::Get, b"/metrics") => Answer::Metrics { head_only: false },
        (Method::Head, b"/metrics") => Answer::Metrics { head_only: true },
        (Method::Get | Method::Head, _) => Answer::NotFound,
        _ => Answer::MethodNotAllowed,
    }
}

fn serve(mut s: TcpStream, registry: &Registry, purger: Option<&Purger>) -> io::Result<()> {
    s.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_HEAD_BYTES {
            break;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let (status, body, head_only) = match route(&head) {
        Answer::Metrics { head_only } => {
            let mut text = String::with_capacity(16 * 1024);
            render(registry, &mut text);
            (Status::Ok, text, head_only)
        }
        Answer::NotFound => (Status::NotFound, "not found: try /metrics\n".into(), false),
        Answer::Purge { target, prefix, soft } => match purger {
            Some(purge) => match purge(&target, prefix, soft) {
                0 => (Status::NotFound, "nothing to purge\n".into(), false),
                n => (Status::Ok, format!("purged {n}\n"), false),
            },
            None => (Status::MethodNotAllowed, "method not allowed\n".into(), false),
        },
        Answer::MethodNotAllowed => {
            (Status::MethodNotAllowed, "method not allowed\n".into(), false)
        }
        Answer::Invalid(status) => {
            debug!(status = status.code(), "metrics client sent a bad request");
            (status, format!("{}\n", status.reason().to_ascii_lowercase()), false)
        }
    };
    let content_type = if status == Status::Ok { CONTENT_TYPE } else { "text/plain" };
    // RFC 9110 §15.5.6: a 405 lists the methods the resource allows.
    let allow = match (status, purger) {
        (Status::MethodNotAllowed, None) => "Allow: GET, HEAD\r\n",
        (Status::MethodNotAllowed, Some(_)) => "Allow: GET, HEAD, PURGE\r\n",
        _ => "",
    };
    let mut out = format!(
        "{}Content-Type: {content_type}\r\nContent-Length: {}\r\n{allow}\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        status.line(),
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    s.write_all(&out)?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let bad = Answer::Invalid(Status::BadRequest);
        let cases: &[(&[u8], Answer)] = &[
            (b"GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n", Answer::Metrics { head_only: false }),
            (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", Answer::Metrics { head_only: false }),
            (b"HEAD /metrics HTTP/1.1\r\nHost: m\r\n\r\n", Answer::Metrics { head_only: true }),
            (b"GET / HTTP/1.1\r\nHost: m\r\n\r\n", Answer::NotFound),
            (b"GET /index.html HTTP/1.1\r\nHost: m\r\n\r\n", Answer::NotFound),
            (b"GET /metrics/../etc/passwd HTTP/1.1\r\nHost: m\r\n\r\n", Answer::NotFound),
            (b"POST /metrics HTTP/1.1\r\nHost: m\r\n\r\n", Answer::MethodNotAllowed),
            (
                b"PURGE /a/b.mp4?x=1 HTTP/1.1\r\nHost: m\r\n\r\n",
                Answer::Purge { target: "/a/b.mp4?x=1".into(), prefix: false, soft: false },
            ),
            (
                b"PURGE /a/* HTTP/1.1\r\nHost: m\r\nPurge-Mode: Soft\r\n\r\n",
                Answer::Purge { target: "/a/".into(), prefix: true, soft: true },
            ),
            (b"OPTIONS * HTTP/1.1\r\nHost: m\r\n\r\n", Answer::MethodNotAllowed),
            // The parser's rules, as on the data port (RFC 9112 §3, §3.2).
            (b"GET /metrics HTTP/1.1\r\n\r\n", bad),
            (b"GET /met rics HTTP/1.1\r\nHost: m\r\n\r\n", Answer::Invalid(Status::BadRequest)),
            (
                b"GET /metrics HTTP/2.0\r\nHost: m\r\n\r\n",
                Answer::Invalid(Status::HttpVersionNotSupported),
            ),
            (b"nonsense\r\n\r\n", Answer::Invalid(Status::BadRequest)),
            (b"GET /metrics HTTP/1.1\r\nHost: m\r\n", Answer::Invalid(Status::BadRequest)),
            (b"", Answer::Invalid(Status::BadRequest)),
        ];
        for (head, want) in cases {
            assert_eq!(&route(head), want, "{}", String::from_utf8_lossy(head));
        }
    }
}
