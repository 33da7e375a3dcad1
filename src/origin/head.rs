//! Origin response heads (RFC 9112 §4–§6) parsed into a [`ResponseHead`] with its
//! [`BodyFraming`].
//!
//! Framing follows RFC 9112 §6.3, strictly, since a cache that misreads the end of a body
//! stores garbage and desynchronises the connection it reuses:
//! - a response to HEAD, any 1xx, 204 and 304 has no body, whatever its fields say (§6.3 1);
//! - `Transfer-Encoding` together with `Content-Length` is an error (§6.3 3 calls it a possible
//!   smuggling attempt "ought to be handled as an error");
//! - `Transfer-Encoding` must end in `chunked`, once; other transfer codings are not supported
//!   (their content could not be stored) and are an error, as is `Transfer-Encoding` in an
//!   HTTP/1.0 response (§6.1);
//! - several `Content-Length` values are accepted only when all equal (RFC 9110 §8.6);
//!   differing or invalid ones are an error;
//! - otherwise the body runs until the origin closes (§6.3 8), and the connection is not reused.
//!
//! A 1xx head (100, 102, 103) is reported as [`HeadParse::Informational`] so the caller drops
//! it and parses again (RFC 9110 §15.2); `101` is an error (ringcast never asks to upgrade).
#![forbid(unsafe_code)]

use crate::cache::fields::{list_members, trim_ows, Fields};

/// Limits on a response head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// Largest head, status line and fields included.
    pub(crate) max_head_bytes: usize,
}

/// Most field lines in one response head.
pub(crate) const MAX_FIELDS: usize = 128;

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// Exactly this many bytes (0: no body).
    Length(u64),
    /// The chunked transfer coding ([`crate::origin::chunked`]).
    Chunked,
    /// Until the origin closes the connection.
    UntilClose,
}

/// A parsed final response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// Status code, 200..=599.
    pub(crate) status: u16,
    /// HTTP/1.`minor_version`.
    pub(crate) minor_version: u8,
    /// Every field line as received.
    pub(crate) fields: Fields,
    /// How the body is delimited.
    pub(crate) framing: BodyFraming,
    /// Whether the connection may carry another request after this body (RFC 9112 §9.3).
    pub(crate) keep_alive: bool,
}

/// The result of parsing the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadParse {
    /// The head is not complete yet.
    Partial,
    /// An interim 1xx head of `head_len` bytes: drop it and parse again.
    Informational { head_len: usize },
    /// A final head of `head_len` bytes; the body follows.
    Complete { head: ResponseHead, head_len: usize },
}

/// Why a response head cannot be used; the origin answer is an error (502), nothing is stored
/// and the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    /// Malformed status line or field.
    #[error("malformed response head")]
    Syntax,
    /// The head is larger than the limit, or has too many fields.
    #[error("response head too large")]
    TooLarge,
    /// Both `Transfer-Encoding` and `Content-Length`.
    #[error("response has both Transfer-Encoding and Content-Length")]
    LengthAndTransferEncoding,
    /// Invalid or differing `Content-Length` values.
    #[error("invalid Content-Length")]
    BadContentLength,
    /// A transfer coding other than a single final `chunked`, or one in an HTTP/1.0 response.
    #[error("unsupported Transfer-Encoding")]
    BadTransferEncoding,
    /// `101 Switching Protocols`, never asked for.
    #[error("unexpected 101 Switching Protocols")]
    UnexpectedUpgrade,
}

/// Parses the response head at the start of `buf`. `request_was_head`: the request was HEAD,
/// so the response has no body.
pub(crate) fn parse_head(
    buf: &[u8],
    request_was_head: bool,
    limits: &HeadLimits,
) -> Result<HeadParse, HeadError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut resp = httparse::Response::new(&mut raw);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > limits.max_head_bytes {
                Err(HeadError::TooLarge)
            } else {
                Ok(HeadParse::Partial)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Syntax),
    };
    if head_len > limits.max_head_bytes {
        return Err(HeadError::TooLarge);
    }
    let status = resp.code.ok_or(HeadError::Syntax)?;
    let minor_version = resp.version.ok_or(HeadError::Syntax)?;
    match status {
        101 => return Err(HeadError::UnexpectedUpgrade),
        100..=199 => return Ok(HeadParse::Informational { head_len }),
        200..=599 => {}
        _ => return Err(HeadError::Syntax),
    }
    let mut fields = Fields::new();
    for h in resp.headers.iter() {
        fields.push(h.name, h.value);
    }
    let framing = framing(status, minor_version, &fields, request_was_head)?;
    let keep_alive = framing != BodyFraming::UntilClose
        && if minor_version >= 1 {
            !fields.has_token("connection", "close")
        } else {
            fields.has_token("connection", "keep-alive")
        };
    Ok(HeadParse::Complete {
        head: ResponseHead { status, minor_version, fields, framing, keep_alive },
        head_len,
    })
}

/// RFC 9112 §6.3 for a response.
fn framing(
    status: u16,
    minor_version: u8,
    fields: &Fields,
    request_was_head: bool,
) -> Result<BodyFraming, HeadError> {
    if request_was_head || status == 204 || status == 304 || status < 200 {
        return Ok(BodyFraming::Length(0));
    }
    let has_te = fields.contains("transfer-encoding");
    let has_cl = fields.contains("content-length");
    if has_te && has_cl {
        return Err(HeadError::LengthAndTransferEncoding);
    }
    if has_te {
        if minor_version == 0 {
            return Err(HeadError::BadTransferEncoding);
        }
        let codings: Vec<&[u8]> =
            fields.get_all("transfer-encoding").flat_map(list_members).collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            _ => Err(HeadError::BadTransferEncoding),
        };
    }
    if has_cl {
        let mut length: Option<u64> = None;
        for line in fields.get_all("content-length") {
            // An empty line or member ("5,,5" aside) is invalid, not ignorable.
            if trim_ows(line).is_empty() {
                return Err(HeadError::BadContentLength);
            }
            for member in line.split(|&b| b == b',').map(trim_ows) {
                let n = parse_length(member).ok_or(HeadError::BadContentLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::BadContentLength);
                }
                length = Some(n);
            }
        }
        return length.map(BodyFraming::Length).ok_or(HeadError::BadContentLength);
    }
    Ok(BodyFraming::UntilClose)
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), without overflow.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits { max_head_bytes: 1024 };

    /// Status, framing and keep-alive, or the error.
    type Framed = Result<(u16, BodyFraming, bool), HeadError>;

    fn complete(raw: &str, head: bool) -> Result<(u16, BodyFraming, bool), HeadError> {
        match parse_head(raw.as_bytes(), head, &LIMITS)? {
            HeadParse::Complete { head: h, head_len } => {
                assert_eq!(head_len, raw.len(), "{raw:?}");
                Ok((h.status, h.framing, h.keep_alive))
            }
            other => panic!("{raw:?} gave {other:?}"),
        }
    }

    #[test]
    fn framing_table() {
        use BodyFraming::*;
        use HeadError::*;
        let cases: &[(&str, bool, Framed)] = &[
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, Ok((200, Length(5), true))),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, Ok((200, Chunked, true))),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", false, Ok((200, Chunked, true))),
            // §6.3 8: until close; not reusable.
            ("HTTP/1.1 200 OK\r\n\r\n", false, Ok((200, UntilClose, false))),
            // §6.3 1: no body for HEAD, 204, 304 whatever the fields say.
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, Ok((200, Length(0), true))),
            ("HTTP/1.1 204 No Content\r\n\r\n", false, Ok((204, Length(0), true))),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, Ok((304, Length(0), true))),
            // §6.3 3.
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false, Err(LengthAndTransferEncoding)),
            // §6.3 4 / §6.1: only a single final chunked is supported.
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, Err(BadTransferEncoding)),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, Err(BadTransferEncoding)),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", false, Err(BadTransferEncoding)),
            ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, Err(BadTransferEncoding)),
            // RFC 9110 §8.6: equal repeats are one length; differing or invalid ones an error.
            ("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", false, Ok((200, Length(5), true))),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false, Err(BadContentLength)),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5,6\r\n\r\n", false, Err(BadContentLength)),
            ("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", false, Err(BadContentLength)),
            ("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", false, Err(BadContentLength)),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n", false, Err(BadContentLength)),
            ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", false, Err(BadContentLength)),
            // RFC 9112 §9.3: persistence.
            ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, Ok((200, Length(0), false))),
            ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, Ok((200, Length(0), false))),
            ("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", false, Ok((200, Length(0), true))),
            // Status codes outside 100..=599, and 101.
            ("HTTP/1.1 600 Nope\r\n\r\n", false, Err(Syntax)),
            ("HTTP/1.1 099 Nope\r\n\r\n", false, Err(Syntax)),
            ("HTTP/1.1 101 Switching Protocols\r\n\r\n", false, Err(UnexpectedUpgrade)),
            ("HTTP/2 200 OK\r\n\r\n", false, Err(Syntax)),
            ("HTTP/1.1 200 OK\r\nBad Field: x\r\n\r\n", false, Err(Syntax)),
        ];
        for (raw, head, want) in cases {
            assert_eq!(complete(raw, *head), *want, "{raw:?}");
        }
    }

    #[test]
    fn interim_partial_and_limits() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
        let mut at = 0;
        let mut interim = 0;
        let head = loop {
            match parse_head(&raw[at..], false, &LIMITS).unwrap() {
                HeadParse::Informational { head_len } => {
                    interim += 1;
                    at += head_len;
                }
                HeadParse::Complete { head, head_len } => {
                    at += head_len;
                    break head;
                }
                HeadParse::Partial => panic!("partial"),
            }
        };
        assert_eq!((interim, head.status, &raw[at..]), (2, 200, &b"x"[..]));
        assert_eq!(head.fields.get("content-length"), Some(&b"1"[..]));
        assert_eq!(head.minor_version, 1);
        // Every strict prefix of a head is partial.
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n";
        for cut in 0..one.len() {
            assert_eq!(parse_head(&one[..cut], false, &LIMITS), Ok(HeadParse::Partial), "{cut}");
        }
        // Larger than the limit, complete or not.
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(2000));
        assert_eq!(parse_head(big.as_bytes(), false, &LIMITS), Err(HeadError::TooLarge));
        let done = format!("{big}\r\n");
        assert_eq!(parse_head(done.as_bytes(), false, &LIMITS), Err(HeadError::TooLarge));
        let many: String = (0..=MAX_FIELDS).map(|i| format!("X-{i}: 1\r\n")).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        let roomy = HeadLimits { max_head_bytes: 1 << 20 };
        assert_eq!(parse_head(many.as_bytes(), false, &roomy), Err(HeadError::TooLarge));
    }
}
