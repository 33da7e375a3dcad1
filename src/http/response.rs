//! Response heads (RFC 9112 §4, RFC 9110 §15): status lines and a small head writer.
//!
//! Heads are written into one `Vec<u8>` that the body strategy may extend with the body itself,
//! so a small response leaves in one `send`. Status lines are literals.

use std::fmt::Write as _;

/// The statuses ringcast sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 100 (RFC 9110 §15.2.1), interim answer to `Expect: 100-continue`.
    Continue,
    /// 200 (§15.3.1).
    Ok,
    /// 204 (§15.3.5).
    NoContent,
    /// 206 (§15.3.7).
    PartialContent,
    /// 301 (§15.4.2).
    MovedPermanently,
    /// 304 (§15.4.5).
    NotModified,
    /// 400 (§15.5.1).
    BadRequest,
    /// 403 (§15.5.4).
    Forbidden,
    /// 404 (§15.5.5).
    NotFound,
    /// 405 (§15.5.6).
    MethodNotAllowed,
    /// 408 (§15.5.9).
    RequestTimeout,
    /// 412 (§15.5.13).
    PreconditionFailed,
    /// 413 (§15.5.14).
    ContentTooLarge,
    /// 414 (§15.5.15).
    UriTooLong,
    /// 416 (§15.5.17).
    RangeNotSatisfiable,
    /// 417 (§15.5.18).
    ExpectationFailed,
    /// 431 (RFC 6585 §5).
    HeaderFieldsTooLarge,
    /// 500 (§15.6.1).
    InternalServerError,
    /// 501 (§15.6.2).
    NotImplemented,
    /// 503 (§15.6.4).
    ServiceUnavailable,
    /// 505 (§15.6.6).
    HttpVersionNotSupported,
    /// 502 (§15.6.3): the edge's origin failed.
    BadGateway,
    /// 504 (§15.6.5): the edge's origin did not answer in time.
    GatewayTimeout,
    /// 508 (RFC 5842 §7.2): the request came round a CDN loop (RFC 8586).
    LoopDetected,
}

impl Status {
    /// The three-digit code.
    pub fn code(self) -> u16 {
        match self {
            Status::Continue => 100,
            Status::Ok => 200,
            Status::NoContent => 204,
            Status::PartialContent => 206,
            Status::MovedPermanently => 301,
            Status::NotModified => 304,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::PreconditionFailed => 412,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::RangeNotSatisfiable => 416,
            Status::ExpectationFailed => 417,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalServerError => 500,
            Status::BadGateway => 502,
            Status::GatewayTimeout => 504,
            Status::LoopDetected => 508,
            Status::NotImplemented => 501,
            Status::ServiceUnavailable => 503,
            Status::HttpVersionNotSupported => 505,
        }
    }

    /// The status line, CRLF included.
    pub fn line(self) -> &'static str {
        match self {
            Status::Continue => "HTTP/1.1 100 Continue\r\n",
            Status::Ok => "HTTP/1.1 200 OK\r\n",
            Status::NoContent => "HTTP/1.1 204 No Content\r\n",
            Status::PartialContent => "HTTP/1.1 206 Partial Content\r\n",
            Status::MovedPermanently => "HTTP/1.1 301 Moved Permanently\r\n",
            Status::NotModified => "HTTP/1.1 304 Not Modified\r\n",
            Status::BadRequest => "HTTP/1.1 400 Bad Request\r\n",
            Status::Forbidden => "HTTP/1.1 403 Forbidden\r\n",
            Status::NotFound => "HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => "HTTP/1.1 405 Method Not Allowed\r\n",
            Status::RequestTimeout => "HTTP/1.1 408 Request Timeout\r\n",
            Status::PreconditionFailed => "HTTP/1.1 412 Precondition Failed\r\n",
            Status::ContentTooLarge => "HTTP/1.1 413 Content Too Large\r\n",
            Status::UriTooLong => "HTTP/1.1 414 URI Too Long\r\n",
            Status::RangeNotSatisfiable => "HTTP/1.1 416 Range Not Satisfiable\r\n",
            Status::ExpectationFailed => "HTTP/1.1 417 Expectation Failed\r\n",
            Status::HeaderFieldsTooLarge => "HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::InternalServerError => "HTTP/1.1 500 Internal Server Error\r\n",
            Status::NotImplemented => "HTTP/1.1 501 Not Implemented\r\n",
            Status::ServiceUnavailable => "HTTP/1.1 503 Service Unavailable\r\n",
            Status::HttpVersionNotSupported => "HTTP/1.1 505 HTTP Version Not Supported\r\n",
            Status::BadGateway => "HTTP/1.1 502 Bad Gateway\r\n",
            Status::GatewayTimeout => "HTTP/1.1 504 Gateway Timeout\r\n",
            Status::LoopDetected => "HTTP/1.1 508 Loop Detected\r\n",
        }
    }

    /// The reason phrase alone, for error bodies and logs.
    pub fn reason(self) -> &'static str {
        let line = self.line();
        line["HTTP/1.1 200 ".len()..line.len() - 2].trim_end()
    }

    /// Whether a response with this status never has content (RFC 9110 §6.4.1).
    pub fn is_bodiless(self) -> bool {
        matches!(self, Status::Continue | Status::NoContent | Status::NotModified)
    }
}

/// `Allow` for every resource ringcast serves (RFC 9110 §10.2.1).
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// The `Server` field value.
pub const SERVER: &str = concat!("ringcast/", env!("CARGO_PKG_VERSION"));

/// Appends one `Name: value` line (CRLF included) to `out`. Values come from ringcast itself,
/// never verbatim from a request.
pub fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    debug_assert!(!value.contains(['\r', '\n']), "field value with CR/LF");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes one response head.
#[derive(Debug)]
pub struct HeadWriter {
    buf: Vec<u8>,
}

impl HeadWriter {
    /// Starts a head with its status line, `Server` and `Date`.
    pub fn new(status: Status, date: &str) -> Self {
        let mut buf = Vec::with_capacity(384);
        buf.extend_from_slice(status.line().as_bytes());
        buf.extend_from_slice(b"Server: ");
        buf.extend_from_slice(SERVER.as_bytes());
        buf.extend_from_slice(b"\r\nDate: ");
        buf.extend_from_slice(date.as_bytes());
        buf.extend_from_slice(b"\r\n");
        Self { buf }
    }

    /// Adds a field. Values come from ringcast itself, never verbatim from a request.
    pub fn field(&mut self, name: &str, value: &str) -> &mut Self {
        push_field(&mut self.buf, name, value);
        self
    }

    /// Adds `Content-Length`.
    pub fn content_length(&mut self, len: u64) -> &mut Self {
        let _ = write!(Fmt(&mut self.buf), "Content-Length: {len}\r\n");
        self
    }

    /// Adds pre-formatted field lines (each ending in CRLF).
    pub fn raw(&mut self, lines: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(lines);
        self
    }

    /// Ends the head with the connection disposition: `Connection: close` when the connection
    /// closes after this response, `Connection: keep-alive` when an HTTP/1.0 client asked to
    /// keep it (RFC 9112 §9.3), nothing otherwise.
    pub fn finish(mut self, close: bool, http10_keep_alive: bool) -> Vec<u8> {
        if close {
            self.buf.extend_from_slice(b"Connection: close\r\n");
        } else if http10_keep_alive {
            self.buf.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

struct Fmt<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_and_reasons() {
        let cases = [
            (Status::Ok, 200, "OK"),
            (Status::PartialContent, 206, "Partial Content"),
            (Status::NotModified, 304, "Not Modified"),
            (Status::RangeNotSatisfiable, 416, "Range Not Satisfiable"),
            (Status::HeaderFieldsTooLarge, 431, "Request Header Fields Too Large"),
            (Status::HttpVersionNotSupported, 505, "HTTP Version Not Supported"),
        ];
        for (status, code, reason) in cases {
            assert_eq!(status.code(), code);
            assert_eq!(status.reason(), reason);
            assert_eq!(status.line(), format!("HTTP/1.1 {code} {reason}\r\n"));
        }
    }

    #[test]
    fn head_layout() {
        let mut w = HeadWriter::new(Status::Ok, "Sun, 06 Nov 1994 08:49:37 GMT");
        w.content_length(5).field("Content-Type", "text/plain");
        let head = String::from_utf8(w.finish(true, false)).unwrap();
        assert_eq!(
            head,
            format!(
                "HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                 Content-Length: 5\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
            )
        );
    }
}
