//! The metrics listener: one plain thread on `--metrics-listen`, serving `GET /metrics` and
//! nothing else.
//!
//! It is deliberately not a worker: it never sees the data port, never opens a file and never
//! touches a worker's runtime. Each connection gets one response and is closed; a client has
//! [`CLIENT_TIMEOUT`] to send its request head, so a stuck scraper cannot wedge the thread for
//! long. Any other path or method gets 404 or 405. The thread lives until the process exits.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use super::{render, Registry, CONTENT_TYPE};

/// How long a scraper may take to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head read from a scraper.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Binds `addr` and serves the registry from a new thread. Returns the bound address.
pub fn spawn(addr: SocketAddr, registry: Arc<Registry>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("ringcast-metrics".into()).spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(s) => {
                    if let Err(e) = serve(s, &registry) {
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
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

fn route(head: &[u8]) -> Answer {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Answer::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Answer::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Answer::Metrics { head_only: false },
        ("HEAD", "/metrics") => Answer::Metrics { head_only: true },
        ("GET" | "HEAD", _) => Answer::NotFound,
        _ => Answer::MethodNotAllowed,
    }
}

fn serve(mut s: TcpStream, registry: &Registry) -> io::Result<()> {
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
            ("200 OK", text, head_only)
        }
        Answer::NotFound => ("404 Not Found", "not found: try /metrics\n".into(), false),
        Answer::MethodNotAllowed => {
            ("405 Method Not Allowed", "method not allowed\n".into(), false)
        }
        Answer::BadRequest => ("400 Bad Request", "bad request\n".into(), false),
    };
    let content_type = if status.starts_with("200") { CONTENT_TYPE } else { "text/plain" };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
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
        let cases: &[(&[u8], Answer)] = &[
            (b"GET /metrics HTTP/1.1\r\n\r\n", Answer::Metrics { head_only: false }),
            (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", Answer::Metrics { head_only: false }),
            (b"HEAD /metrics HTTP/1.1\r\n\r\n", Answer::Metrics { head_only: true }),
            (b"GET / HTTP/1.1\r\n\r\n", Answer::NotFound),
            (b"GET /index.html HTTP/1.1\r\n\r\n", Answer::NotFound),
            (b"GET /metrics/../etc/passwd HTTP/1.1\r\n\r\n", Answer::NotFound),
            (b"POST /metrics HTTP/1.1\r\n\r\n", Answer::MethodNotAllowed),
            (b"nonsense\r\n\r\n", Answer::BadRequest),
            (b"", Answer::BadRequest),
        ];
        for (head, want) in cases {
            assert_eq!(&route(head), want, "{}", String::from_utf8_lossy(head));
        }
    }
}
