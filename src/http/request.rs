//! Request heads (RFC 9112 §2–§3, §6; RFC 9110 §7.2, §10.1.1) parsed into an owned [`Request`].
//!
//! [`parse`] takes the bytes received so far and returns either a complete request and the
//! length of its head, "need more bytes", or a [`ParseError`] naming the status to answer.
//! The result owns the few values the server acts on, so the caller's receive buffer is free
//! again as soon as parsing returns (one per-worker buffer serves every connection).
//! Framing rules that guard against request smuggling live here: conflicting
//! `Content-Length`, `Content-Length` with `Transfer-Encoding`, a non-final `chunked`.

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::http::response::Status;

/// Most header fields accepted in one request; more gets 431.
pub const MAX_FIELDS: usize = 100;

/// Request methods (RFC 9110 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// OPTIONS.
    Options,
    /// A method defined by RFC 9110 or RFC 5789 that ringcast does not allow (405).
    NotAllowed,
    /// Any other token (501).
    Unknown,
}

impl Method {
    /// Classifies a method token (case-sensitive, RFC 9110 §9.1).
    pub fn from_token(token: &str) -> Self {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            "POST" | "PUT" | "DELETE" | "PATCH" | "CONNECT" | "TRACE" => Method::NotAllowed,
            _ => Method::Unknown,
        }
    }

    /// The token of a method that is served, as a static string.
    fn served_token(self) -> Option<&'static str> {
        match self {
            Method::Get => Some("GET"),
            Method::Head => Some("HEAD"),
            Method::Options => Some("OPTIONS"),
            Method::NotAllowed | Method::Unknown => None,
        }
    }
}

/// How the request's content is framed (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No content.
    None,
    /// `Content-Length` bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`: the length is unknown until decoded.
    Chunked,
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest head, request line and fields included (431 past it).
    pub max_head_bytes: usize,
    /// Longest request target (414 past it).
    pub max_target_bytes: usize,
}

/// Why a request cannot be answered normally; every variant closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Malformed syntax or ambiguous framing (400).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Request target longer than the limit (414).
    #[error("request target too long")]
    TargetTooLong,
    /// Head larger than the limit, or too many fields (431).
    #[error("request head too large")]
    HeadTooLarge,
    /// An HTTP version other than 1.0 and 1.1 (505).
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// A transfer coding other than a final `chunked` (501, RFC 9112 §6.1).
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
}

impl ParseError {
    /// The status to answer with.
    pub fn status(self) -> Status {
        match self {
            ParseError::BadRequest(_) => Status::BadRequest,
            ParseError::TargetTooLong => Status::UriTooLong,
            ParseError::HeadTooLarge => Status::HeaderFieldsTooLarge,
            ParseError::UnsupportedVersion => Status::HttpVersionNotSupported,
            ParseError::UnsupportedTransferCoding => Status::NotImplemented,
        }
    }
}

/// The result of [`parse`] on the bytes received so far.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per request and consumed at once; boxing would add an allocation"
)]
pub enum Parsed {
    /// A whole head: the request and the number of bytes it took (leading blank lines
    /// included). Content, if any, follows.
    Complete(Request, usize),
    /// More bytes are needed.
    Partial,
}

/// The fields ringcast acts on, as raw values. A repeated list field is joined with `", "`
/// (RFC 9110 §5.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// `If-Match`.
    pub if_match: Option<Vec<u8>>,
    /// `If-None-Match`.
    pub if_none_match: Option<Vec<u8>>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<Vec<u8>>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<Vec<u8>>,
    /// `If-Range`.
    pub if_range: Option<Vec<u8>>,
    /// `Range`.
    pub range: Option<Vec<u8>>,
    /// `Accept-Encoding`.
    pub accept_encoding: Option<Vec<u8>>,
    /// `Origin`.
    pub origin: Option<Vec<u8>>,
    /// `Access-Control-Request-Method`.
    pub access_control_request_method: Option<Vec<u8>>,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method class.
    pub method: Method,
    /// The method token as sent (for logs); not allocated for the methods served.
    pub method_token: Cow<'static, str>,
    /// The request target as sent; typical targets are held inline, without an allocation.
    pub target: SmallVec<[u8; 64]>,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Whether the connection may stay open after the response (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// Content framing.
    pub framing: Framing,
    /// `Expect: 100-continue` was sent (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// An `Expect` value other than `100-continue` was sent (417).
    pub unknown_expectation: bool,
    /// The fields the server acts on.
    pub fields: Fields,
}

impl Request {
    /// True for an HTTP/1.0 request that asked to keep the connection.
    pub fn http10_keep_alive(&self) -> bool {
        self.minor_version == 0 && self.keep_alive
    }
}

/// Parses one request head from the start of `buf`.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    // RFC 9112 §2.2: ignore at least one empty line before the request-line.
    let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let bytes = &buf[skip..];
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(bytes) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeadTooLarge),
        Err(httparse::Error::Version) => match judge_version(bytes) {
            VersionVerdict::Partial => httparse::Status::Partial,
            VersionVerdict::Malformed => {
                return Err(ParseError::BadRequest("malformed request line"))
            }
            VersionVerdict::Unsupported => return Err(ParseError::UnsupportedVersion),
            VersionVerdict::LaterMinor(at) => {
                // Rare: parse a copy that says HTTP/1.1 (same length, so the same head length).
                let mut copy = buf.to_vec();
                copy[skip + at] = b'1';
                return parse(&copy, limits);
            }
        },
        Err(httparse::Error::Token) if request_line_too_long(bytes, limits) => {
            return Err(ParseError::TargetTooLong)
        }
        Err(_) => return Err(ParseError::BadRequest("malformed request head")),
    };
    let head_len = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            if request_line_too_long(bytes, limits) {
                return Err(ParseError::TargetTooLong);
            }
            if buf.len() > limits.max_head_bytes {
                return Err(ParseError::HeadTooLarge);
            }
            return Ok(Parsed::Partial);
        }
    };
    if skip + head_len > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge);
    }
    let method_token = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    if target.len() > limits.max_target_bytes {
        return Err(ParseError::TargetTooLong);
    }
    let minor_version = req.version.unwrap_or(1);
    let request = interpret(method_token, target, minor_version, req.headers)?;
    Ok(Parsed::Complete(request, skip + head_len))
}

/// What a request line that httparse rejected on its version is (RFC 9112 §3, §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionVerdict {
    /// The line is not finished and may still become well-formed.
    Partial,
    /// Not `method SP target SP HTTP-version` (400): a space inside the target, a missing or
    /// misspelt version, `HTTP/1.10`.
    Malformed,
    /// A well-formed version with a major other than 1 (505, RFC 9110 §15.6.6).
    Unsupported,
    /// `HTTP/1.x` with x above 1, the minor digit at this offset of the line: processed as
    /// HTTP/1.1 (RFC 9112 §2.3: "as if it were in the highest minor version within that major
    /// version to which the recipient is conformant"), as nginx does.
    LaterMinor(usize),
}

/// Judges a request line (from the first byte of `bytes`) whose version httparse refused.
/// Pure: the table in the tests below is its specification.
#[cold]
fn judge_version(bytes: &[u8]) -> VersionVerdict {
    let (line, complete) = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => {
            let line = &bytes[..end];
            (line.strip_suffix(b"\r").unwrap_or(line), true)
        }
        None => (bytes.strip_suffix(b"\r").unwrap_or(bytes), false),
    };
    // request-line = method SP request-target SP HTTP-version (RFC 9112 §3): exactly two
    // spaces, so the version starts after the second one.
    let mut spaces = line.iter().enumerate().filter(|(_, &b)| b == b' ').map(|(i, _)| i);
    let (Some(_), Some(second), None) = (spaces.next(), spaces.next(), spaces.next()) else {
        return VersionVerdict::Malformed;
    };
    let at = second + 1;
    let version = &line[at..];
    // HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive, RFC 9112 §2.3).
    let shape: &[fn(u8) -> bool] = &[
        |b| b == b'H',
        |b| b == b'T',
        |b| b == b'T',
        |b| b == b'P',
        |b| b == b'/',
        |b| b.is_ascii_digit(),
        |b| b == b'.',
        |b| b.is_ascii_digit(),
    ];
    let fits = version.len() <= shape.len() && version.iter().zip(shape).all(|(&b, ok)| ok(b));
    if !fits {
        return VersionVerdict::Malformed;
    }
    if !complete || version.len() < shape.len() {
        return if complete { VersionVerdict::Malformed } else { VersionVerdict::Partial };
    }
    match (version[5], version[7]) {
        (b'1', b'0' | b'1') => VersionVerdict::Malformed, // httparse takes these: never here
        (b'1', _) => VersionVerdict::LaterMinor(at + 7),
        _ => VersionVerdict::Unsupported,
    }
}

fn request_line_too_long(bytes: &[u8], limits: &Limits) -> bool {
    // A request line is method SP target SP version; allow the target limit plus room for the
    // other two before calling it a long target rather than a large head.
    let room = limits.max_target_bytes.saturating_add(32);
    match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => end > room,
        None => bytes.len() > room,
    }
}

fn interpret(
    method_token: &str,
    target: &str,
    minor_version: u8,
    headers: &[httparse::Header<'_>],
) -> Result<Request, ParseError> {
    let mut hosts = 0usize;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding: Option<Vec<u8>> = None;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    let mut unknown_expectation = false;
    let mut fields = Fields::default();

    for h in headers {
        let name = h.name;
        let value = trim(h.value);
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("content-length") {
            // RFC 9112 §6.3 item 5: a list of identical values may be taken as one; differing
            // values are unrecoverable framing errors.
            for part in value.split(|&b| b == b',') {
                let n = parse_length(trim(part))
                    .ok_or(ParseError::BadRequest("invalid Content-Length"))?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(ParseError::BadRequest("conflicting Content-Length"));
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            append_list(&mut transfer_encoding, value);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                let token = trim(token);
                if token.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                unknown_expectation = true;
            }
        } else {
            let slot = match name.len() {
                5 if name.eq_ignore_ascii_case("range") => &mut fields.range,
                6 if name.eq_ignore_ascii_case("origin") => &mut fields.origin,
                8 if name.eq_ignore_ascii_case("if-match") => &mut fields.if_match,
                8 if name.eq_ignore_ascii_case("if-range") => &mut fields.if_range,
                13 if name.eq_ignore_ascii_case("if-none-match") => &mut fields.if_none_match,
                15 if name.eq_ignore_ascii_case("accept-encoding") => &mut fields.accept_encoding,
                17 if name.eq_ignore_ascii_case("if-modified-since") => {
                    &mut fields.if_modified_since
                }
                19 if name.eq_ignore_ascii_case("if-unmodified-since") => {
                    &mut fields.if_unmodified_since
                }
                29 if name.eq_ignore_ascii_case("access-control-request-method") => {
                    &mut fields.access_control_request_method
                }
                _ => continue,
            };
            append_list(slot, value);
        }
    }

    // RFC 9112 §3.2: a 1.1 request without exactly one Host is a 400; so is any request with
    // more than one.
    if hosts > 1 || (minor_version == 1 && hosts == 0) {
        return Err(ParseError::BadRequest("missing or repeated Host"));
    }
    let framing = match (transfer_encoding, content_length) {
        // RFC 9112 §6.1: both present is a smuggling attempt; answer 400 and close.
        (Some(_), Some(_)) => {
            return Err(ParseError::BadRequest("Content-Length with Transfer-Encoding"))
        }
        (Some(_), None) if minor_version == 0 => {
            return Err(ParseError::BadRequest("Transfer-Encoding in HTTP/1.0"))
        }
        (Some(te), None) => {
            let last = te.rsplit(|&b| b == b',').next().map(trim).unwrap_or_default();
            if last.eq_ignore_ascii_case(b"chunked") {
                Framing::Chunked
            } else if te.split(|&b| b == b',').map(trim).any(|c| c.eq_ignore_ascii_case(b"chunked"))
            {
                // §6.3 item 4: chunked present but not final: framing cannot be determined.
                return Err(ParseError::BadRequest("chunked is not the final transfer coding"));
            } else {
                return Err(ParseError::UnsupportedTransferCoding);
            }
        }
        (None, Some(0)) | (None, None) => Framing::None,
        (None, Some(n)) => Framing::Length(n),
    };
    let keep_alive = if minor_version == 0 { conn_keep_alive && !conn_close } else { !conn_close };
    let method = Method::from_token(method_token);
    Ok(Request {
        method,
        method_token: method
            .served_token()
            .map_or_else(|| Cow::Owned(method_token.to_owned()), Cow::Borrowed),
        target: SmallVec::from_slice(target.as_bytes()),
        minor_version,
        keep_alive,
        framing,
        expect_continue,
        unknown_expectation,
        fields,
    })
}

fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |e| e + 1);
    &v[start..end]
}

fn append_list(slot: &mut Option<Vec<u8>>, value: &[u8]) {
    match slot {
        Some(existing) => {
            existing.extend_from_slice(b", ");
            existing.extend_from_slice(value);
        }
        None => *slot = Some(value.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_head_bytes: 1024, max_target_bytes: 256 };

    fn complete(raw: &str) -> Request {
        match parse(raw.as_bytes(), &LIMITS) {
            Ok(Parsed::Complete(req, n)) => {
                assert_eq!(n, raw.len(), "head length");
                req
            }
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn error(raw: &str) -> ParseError {
        match parse(raw.as_bytes(), &LIMITS) {
            Err(e) => e,
            other => panic!("{raw:?}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn well_formed_requests() {
        let req = complete("GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(req.method, Method::Get);
        assert_eq!(&req.target[..], b"/a?b");
        assert!(req.keep_alive);
        assert_eq!(req.framing, Framing::None);

        // RFC 9112 §9.3: 1.0 closes unless keep-alive is asked for; 1.1 stays unless close.
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            !complete("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n").keep_alive
        );

        // RFC 9112 §2.2: a leading empty line is ignored.
        let raw = "\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(complete(raw).method, Method::Head);

        let req = complete("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n");
        assert_eq!(req.framing, Framing::Length(5));
        let req = complete("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(req.framing, Framing::Chunked);
        let req = complete("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n\r\n");
        assert!(req.expect_continue);
    }

    #[test]
    fn methods() {
        let cases = [
            ("GET", Method::Get),
            ("HEAD", Method::Head),
            ("OPTIONS", Method::Options),
            ("POST", Method::NotAllowed),
            ("DELETE", Method::NotAllowed),
            ("BREW", Method::Unknown),
            ("get", Method::Unknown), // RFC 9110 §9.1: methods are case-sensitive
        ];
        for (token, want) in cases {
            let req = complete(&format!("{token} / HTTP/1.1\r\nHost: x\r\n\r\n"));
            assert_eq!(req.method, want, "{token}");
        }
    }

    #[test]
    fn repeated_fields_are_joined() {
        let req = complete(
            "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\nif-none-match: \"b\"\r\nRange: bytes=0-1\r\n\r\n",
        );
        assert_eq!(req.fields.if_none_match.as_deref(), Some(&b"\"a\", \"b\""[..]));
        assert_eq!(req.fields.range.as_deref(), Some(&b"bytes=0-1"[..]));
    }

    #[test]
    fn rejected_requests() {
        let cases: &[(&str, ParseError)] = &[
            ("GET / HTTP/1.1\r\n\r\n", ParseError::BadRequest("missing or repeated Host")),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                ParseError::BadRequest("missing or repeated Host"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ParseError::BadRequest("conflicting Content-Length"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                ParseError::BadRequest("invalid Content-Length"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                ParseError::BadRequest("Content-Length with Transfer-Encoding"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                ParseError::BadRequest("chunked is not the final transfer coding"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
                ParseError::UnsupportedTransferCoding,
            ),
            ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", ParseError::UnsupportedVersion),
            ("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", ParseError::BadRequest("malformed request head")),
            ("GET / FTP/1.1\r\nHost: x\r\n\r\n", ParseError::BadRequest("malformed request line")),
            ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", ParseError::BadRequest("malformed request head")),
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", ParseError::BadRequest("malformed request head")),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
                ParseError::BadRequest("malformed request head"),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(error(raw), *want, "{raw:?}");
        }
    }

    /// The request line (RFC 9112 §3) and its version (§2.3): malformed syntax is 400, a
    /// well-formed version of another major is 505 (RFC 9110 §15.6.6), a later 1.x minor is
    /// processed as HTTP/1.1 (RFC 9112 §2.3, as nginx does).
    #[test]
    fn request_lines() {
        let bad = |reason| Err(ParseError::BadRequest(reason));
        let line = bad("malformed request line");
        let head = bad("malformed request head");
        let cases: &[(&str, Result<u8, ParseError>)] = &[
            ("GET / HTTP/1.1", Ok(1)),
            ("GET / HTTP/1.0", Ok(0)),
            ("GET / HTTP/1.2", Ok(1)),
            ("GET / HTTP/1.9", Ok(1)),
            ("GET /a b HTTP/1.1", line),
            ("GET /a%20b HTTP/1.1", Ok(1)),
            ("GET /a b c HTTP/1.1", line),
            ("GET /a HTTP/1.1 HTTP/1.1", head),
            ("GET /a b HTTP/2.0", line),
            ("GET  / HTTP/1.1", head),
            ("GET / ", line),
            ("GET /", head),
            ("GET / http/1.1", line),
            ("GET / Http/1.1", line),
            ("GET / HTTP/1.10", head),
            ("GET / HTTP/1.", line),
            ("GET / HTTP/1", line),
            ("GET / HTTP/11", line),
            ("GET / HTTP/1.1x", head),
            ("GET / HTTP/1.x", line),
            ("GET / HTTP/ 1.1", line),
            ("GET / FTP/1.1", line),
            ("GET / HTTP/2.0", Err(ParseError::UnsupportedVersion)),
            ("GET / HTTP/3.0", Err(ParseError::UnsupportedVersion)),
            ("GET / HTTP/0.9", Err(ParseError::UnsupportedVersion)),
            ("PRI * HTTP/2.0", Err(ParseError::UnsupportedVersion)),
        ];
        for (request_line, want) in cases {
            let raw = format!("{request_line}\r\nHost: x\r\n\r\n");
            let got = match parse(raw.as_bytes(), &LIMITS) {
                Ok(Parsed::Complete(req, n)) => {
                    assert_eq!(n, raw.len(), "{request_line:?}: head length");
                    Ok(req.minor_version)
                }
                Ok(Parsed::Partial) => panic!("{request_line:?}: partial"),
                Err(e) => Err(e),
            };
            assert_eq!(got, *want, "{request_line:?}");
        }
    }

    /// A request line still arriving is judged only once it cannot become well-formed.
    #[test]
    fn request_lines_still_arriving() {
        let cases: &[(&str, Option<ParseError>)] = &[
            ("GET / HTTP/2", None),
            ("GET / HTTP/2.", None),
            ("GET / HTTP/1.2", None),
            ("GET / HTTP/2.0\r", None),
            ("GET /a b", Some(ParseError::BadRequest("malformed request line"))),
            ("GET / http", Some(ParseError::BadRequest("malformed request line"))),
            ("GET / HTTP/1.23", Some(ParseError::BadRequest("malformed request line"))),
            ("GET / HTTP/2.0\r\n", None), // the line is whole; the head is not
        ];
        for (raw, want) in cases {
            let got = parse(raw.as_bytes(), &LIMITS);
            match want {
                None if raw.ends_with('\n') => {
                    // A whole line: judged at once even though the head goes on.
                    assert_eq!(got.unwrap_err(), ParseError::UnsupportedVersion, "{raw:?}");
                }
                None => assert!(matches!(got, Ok(Parsed::Partial)), "{raw:?}: {got:?}"),
                Some(e) => assert_eq!(got.unwrap_err(), *e, "{raw:?}"),
            }
        }
    }

    #[test]
    fn limits() {
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(300));
        assert_eq!(error(&long_target), ParseError::TargetTooLong);
        // Still receiving an over-long request line.
        let partial = format!("GET /{}", "a".repeat(400));
        assert_eq!(error(&partial), ParseError::TargetTooLong);
        let big_head = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(1100));
        assert_eq!(error(&big_head), ParseError::HeadTooLarge);
        let partial_head = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}", "a".repeat(1100));
        assert_eq!(error(&partial_head), ParseError::HeadTooLarge);
        let many: String = (0..MAX_FIELDS + 1).map(|i| format!("X{i}: y\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        let limits = Limits { max_head_bytes: 1 << 20, max_target_bytes: 256 };
        assert_eq!(parse(raw.as_bytes(), &limits).unwrap_err(), ParseError::HeadTooLarge);
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHo", &LIMITS), Ok(Parsed::Partial)));
    }
}
