//! Response head parsing and body framing (RFC 9112 §4, §5, §6.3, §9.3).
//!
//! [`parse_head`] looks at the bytes received so far and either asks for more
//! ([`HeadParse::Partial`]) or returns the status, the head length and how the
//! body is delimited. Malformed input is a [`ParseError`], never a panic; the
//! caller counts it and closes the connection, since after a framing error the
//! position of the next response is unknown.

use super::cache::{classify_cache_status, classify_x_cache, CacheClass};

/// Largest response head accepted; a longer head is a [`ParseError::HeadTooLarge`].
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The status line is not `HTTP/1.x SP 3DIGIT SP reason` (RFC 9112 §4).
    #[error("malformed status line")]
    StatusLine,
    /// A header line is not `name ":" OWS value OWS` (RFC 9112 §5).
    #[error("malformed header field")]
    HeaderField,
    /// `Content-Length` is not a decimal number, or several disagree (RFC 9112 §6.3 item 5).
    #[error("invalid Content-Length")]
    ContentLength,
    /// A transfer coding other than a final `chunked` (RFC 9112 §6.3 item 4).
    #[error("unsupported Transfer-Encoding")]
    TransferEncoding,
    /// The head exceeds [`MAX_HEAD_BYTES`].
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// A chunk-size line or chunk delimiter is malformed (RFC 9112 §7.1).
    #[error("malformed chunked body")]
    Chunked,
}

/// How the body after the head is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: 1xx, 204 and 304 responses, or `Content-Length: 0`.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The three-digit status code.
    pub status: u16,
    /// Bytes of the head including the blank line that ends it.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether the connection cannot carry another request after this response.
    pub close: bool,
    /// The complete length from `Content-Range: bytes a-b/LEN`, if present (RFC 9110 §14.4).
    pub content_range_total: Option<u64>,
    /// What `Cache-Status` (preferred) or `X-Cache` says (see [`super::cache`]).
    pub cache: CacheClass,
}

/// The result of looking at the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadParse {
    /// The head is not complete yet; read more.
    Partial,
    /// A complete head.
    Complete(ResponseHead),
}

/// Parses a response head from the start of `buf`.
///
/// Lines may end in CRLF or a bare LF (RFC 9112 §2.2 lets a recipient accept LF).
pub fn parse_head(buf: &[u8]) -> Result<HeadParse, ParseError> {
    let Some(head_len) = find_head_end(buf) else {
        return if buf.len() > MAX_HEAD_BYTES {
            Err(ParseError::HeadTooLarge)
        } else {
            Ok(HeadParse::Partial)
        };
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(ParseError::HeadTooLarge);
    }
    let mut lines = lines(&buf[..head_len]);
    let status_line = lines.next().ok_or(ParseError::StatusLine)?;
    let (minor, status) = parse_status_line(status_line)?;

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    let mut content_range_total = None;
    let mut cache_status = None;
    let mut x_cache = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = split_field(line)?;
        // Dispatch on length first: most fields (Date, Server, ETag, ...) are skipped
        // without a single case-insensitive comparison.
        if !matches!(name.len(), 7 | 10 | 12 | 13 | 14 | 17) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"cache-status") {
            // The last line ends the combined list (RFC 9110 §5.3); an empty line adds nothing.
            if !value.is_empty() {
                cache_status = Some(classify_cache_status(value));
            }
        } else if name.eq_ignore_ascii_case(b"x-cache") {
            if !value.is_empty() {
                x_cache = Some(classify_x_cache(value));
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9112 §6.3 item 5: a list of identical values may be accepted; anything else is invalid.
            for part in value.split(|&b| b == b',') {
                let n = parse_decimal(trim_ows(part)).ok_or(ParseError::ContentLength)?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(ParseError::ContentLength);
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // RFC 9112 §6.3 item 4: only a final "chunked" delimits the body; identity is obsolete.
            let last = value.split(|&b| b == b',').map(trim_ows).rfind(|c| !c.is_empty());
            match last {
                Some(c) if c.eq_ignore_ascii_case(b"chunked") => chunked = true,
                _ => return Err(ParseError::TransferEncoding),
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            // RFC 9110 §7.6.1: a comma-separated list of connection options.
            for option in value.split(|&b| b == b',').map(trim_ows) {
                connection_close |= option.eq_ignore_ascii_case(b"close");
                connection_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"content-range") {
            content_range_total = parse_content_range_total(value);
        }
    }

    // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 needs "keep-alive".
    let mut close = connection_close || (minor == 0 && !connection_keep_alive);
    // RFC 9112 §6.3, in order: items 1 (1xx/204/304), 4 (chunked wins over Content-Length),
    // 6 (Content-Length), 8 (read until close).
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyFraming::Empty
    } else if chunked {
        // §6.3 item 3: both headers present is a smuggling signal; use chunked and do not reuse.
        close |= content_length.is_some();
        BodyFraming::Chunked
    } else if let Some(n) = content_length {
        if n == 0 {
            BodyFraming::Empty
        } else {
            BodyFraming::Length(n)
        }
    } else {
        close = true;
        BodyFraming::UntilClose
    };
    let cache = cache_status.or(x_cache).unwrap_or(CacheClass::None);
    Ok(HeadParse::Complete(ResponseHead {
        status,
        head_len,
        framing,
        close,
        content_range_total,
        cache,
    }))
}

/// Index just past the blank line ending the head (`\n\n` or `\n\r\n`), if present.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(pos) = find_newline(&buf[from..]) {
        let nl = from + pos;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => from = nl + 1,
        }
    }
    None
}

/// Position of the first `\n` in `hay`, eight bytes per step (SWAR: a byte of `x ^ 0x0a…0a`
/// is zero exactly where `hay` holds `\n`, and `(v - 0x01…01) & !v & 0x80…80` marks the
/// lowest zero byte of `v` exactly; higher marks may be spurious, so only the lowest is used).
fn find_newline(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word) ^ NEWLINES;
        let found = v.wrapping_sub(ONES) & !v & HIGHS;
        if found != 0 {
            // trailing_zeros / 8 is below 8, so the cast cannot truncate.
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'\n').map(|p| offset + p)
}

/// The lines of `head` (split at `\n`, a trailing `\r` removed).
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(head);
    std::iter::from_fn(move || {
        let s = rest?;
        match find_newline(s) {
            Some(i) => {
                rest = Some(&s[i + 1..]);
                Some(trim_cr(&s[..i]))
            }
            None => {
                rest = None;
                Some(trim_cr(s))
            }
        }
    })
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses `HTTP/1.x SP 3DIGIT [SP reason]` into (minor version, status) (RFC 9112 §4).
fn parse_status_line(line: &[u8]) -> Result<(u8, u16), ParseError> {
    // Literal fast path for the overwhelmingly common prefix.
    let (minor, rest) = if let Some(rest) = line.strip_prefix(b"HTTP/1.1 ") {
        (1, rest)
    } else if let Some(rest) = line.strip_prefix(b"HTTP/1.0 ") {
        (0, rest)
    } else {
        return Err(ParseError::StatusLine);
    };
    match rest {
        [a, b, c, tail @ ..]
            if a.is_ascii_digit()
                && b.is_ascii_digit()
                && c.is_ascii_digit()
                && (tail.is_empty() || tail[0] == b' ') =>
        {
            let status = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            if status < 100 {
                return Err(ParseError::StatusLine);
            }
            Ok((minor, status))
        }
        _ => Err(ParseError::StatusLine),
    }
}

/// Splits `name ":" OWS value OWS`; no whitespace is allowed before the colon (RFC 9112 §5.1).
fn split_field(line: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    let colon = line.iter().position(|&b| b == b':').ok_or(ParseError::HeaderField)?;
    let name = &line[..colon];
    // RFC 9110 §5.1: a field name is a token.
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::HeaderField);
    }
    Ok((name, trim_ows(&line[colon + 1..])))
}

/// RFC 9110 §5.6.2 tchar, as a table indexed by byte.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        // `b` < 256, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let specials = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < specials.len() {
        table[specials[i] as usize] = true;
        i += 1;
    }
    table
};

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// Strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A non-empty run of ASCII digits that fits in u64.
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// The complete length from `bytes first-last/complete` (RFC 9110 §14.4); `*` gives `None`.
fn parse_content_range_total(value: &[u8]) -> Option<u64> {
    let rest = value.strip_prefix(b"bytes ")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    parse_decimal(&rest[slash + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(raw: &str) -> ResponseHead {
        match parse_head(raw.as_bytes()) {
            Ok(HeadParse::Complete(h)) => h,
            other => panic!("{raw:?}: expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn status_lines() {
        // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
        let cases: &[(&str, Result<u16, ParseError>)] = &[
            ("HTTP/1.1 200 OK\r\n\r\n", Ok(200)),
            ("HTTP/1.1 404 \r\n\r\n", Ok(404)),
            ("HTTP/1.1 204\r\n\r\n", Ok(204)),
            ("HTTP/1.0 503 Busy\r\n\r\n", Ok(503)),
            ("HTTP/1.1 200 OK\n\n", Ok(200)),
            ("HTTP/2 200 OK\r\n\r\n", Err(ParseError::StatusLine)),
            ("HTTP/1.1 20 OK\r\n\r\n", Err(ParseError::StatusLine)),
            ("HTTP/1.1 2000 OK\r\n\r\n", Err(ParseError::StatusLine)),
            ("HTTP/1.1 abc OK\r\n\r\n", Err(ParseError::StatusLine)),
            ("HTTP/1.1 099 OK\r\n\r\n", Err(ParseError::StatusLine)),
            ("garbage\r\n\r\n", Err(ParseError::StatusLine)),
        ];
        for (raw, want) in cases {
            let got = parse_head(raw.as_bytes()).map(|p| match p {
                HeadParse::Complete(h) => h.status,
                HeadParse::Partial => 0,
            });
            assert_eq!(&got, want, "{raw:?}");
        }
    }

    #[test]
    fn partial_heads_ask_for_more() {
        for raw in ["", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nA: b\r\n\r"] {
            assert_eq!(parse_head(raw.as_bytes()), Ok(HeadParse::Partial), "{raw:?}");
        }
    }

    #[test]
    fn oversized_head_is_an_error() {
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        raw.resize(MAX_HEAD_BYTES + 10, b'a');
        assert_eq!(parse_head(&raw), Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn framing_and_persistence() {
        use BodyFraming::*;
        // (raw head, framing, close) — RFC 9112 §6.3 and §9.3.
        let cases: &[(&str, BodyFraming, bool)] = &[
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Length(5), false),
            ("HTTP/1.1 200 OK\r\ncontent-length:5\r\n\r\n", Length(5), false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", Length(5), false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Empty, false),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Chunked, false),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Chunked, false),
            // §6.3 item 3: chunked wins, and the connection must not be reused.
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
                Chunked,
                true,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", UntilClose, true),
            ("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", Empty, false),
            ("HTTP/1.1 304 Not Modified\r\n\r\n", Empty, false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", Length(5), true),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Keep-Alive, Close\r\n\r\n",
                Length(5),
                true,
            ),
            ("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", Length(5), true),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
                Length(5),
                false,
            ),
        ];
        for (raw, framing, close) in cases {
            let h = complete(raw);
            assert_eq!((h.framing, h.close), (*framing, *close), "{raw:?}");
            assert_eq!(h.head_len, raw.len(), "{raw:?}");
        }
    }

    #[test]
    fn malformed_fields() {
        let cases: &[(&str, ParseError)] = &[
            ("HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n", ParseError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ParseError::ContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", ParseError::ContentLength),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                ParseError::ContentLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                ParseError::ContentLength,
            ),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", ParseError::TransferEncoding),
            // RFC 9112 §5.1: no whitespace between field name and colon.
            ("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", ParseError::HeaderField),
            ("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", ParseError::HeaderField),
            ("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", ParseError::HeaderField),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_head(raw.as_bytes()).as_ref(), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn content_range_total() {
        // RFC 9110 §14.4: Content-Range = range-unit SP ( range-resp / unsatisfied-range )
        let cases: &[(&str, Option<u64>)] = &[
            ("bytes 0-0/1024", Some(1024)),
            ("bytes 10-19/*", None),
            ("bytes */1024", Some(1024)),
            ("items 0-0/5", None),
        ];
        for (value, want) in cases {
            let raw = format!(
                "HTTP/1.1 206 Partial\r\nContent-Range: {value}\r\nContent-Length: 1\r\n\r\n"
            );
            assert_eq!(complete(&raw).content_range_total, *want, "{value}");
        }
    }

    #[test]
    fn cache_fields() {
        use CacheClass::*;
        // RFC 9211 §2: Cache-Status wins over X-Cache; field lines combine into one list
        // (RFC 9110 §5.3), so the last member of the last line counts.
        let cases: &[(&str, CacheClass)] = &[
            ("", None),
            ("Cache-Status: edge; hit\r\n", Hit),
            ("cache-status: edge; fwd=uri-miss\r\n", Miss),
            ("X-Cache: HIT\r\n", Hit),
            ("x-cache: MISS\r\n", Miss),
            ("X-Cache: HIT\r\nCache-Status: edge; fwd=miss\r\n", Miss),
            ("Cache-Status: edge; fwd=miss\r\nX-Cache: HIT\r\n", Miss),
            ("Cache-Status: origin; fwd=miss\r\nCache-Status: edge; hit\r\n", Hit),
            ("Cache-Status: edge; hit\r\nCache-Status:\r\n", Hit),
            ("X-Cache: EXPIRED\r\n", Other),
            ("X-Cache-Lookup: HIT\r\n", None),
        ];
        for (fields, want) in cases {
            let raw = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 0\r\n\r\n");
            assert_eq!(complete(&raw).cache, *want, "{fields:?}");
        }
    }

    #[test]
    fn newline_search_matches_a_plain_scan() {
        // Every position of the first newline in every alignment, with near-miss bytes around it.
        for len in 0..40 {
            for nl in 0..=len {
                let mut hay: Vec<u8> =
                    (0..len).map(|i| [b'\t', 0x8a, b'\r', 0x0b][i % 4]).collect();
                if nl < len {
                    hay[nl] = b'\n';
                    if nl + 1 < len {
                        hay[nl + 1] = b'\n';
                    }
                }
                let want = hay.iter().position(|&b| b == b'\n');
                assert_eq!(find_newline(&hay), want, "{hay:?}");
            }
        }
    }

    #[test]
    fn tchar_table() {
        // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
        // "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), want, "{b}");
        }
    }

    #[test]
    fn head_followed_by_body_bytes() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1";
        let h = complete(std::str::from_utf8(raw).unwrap());
        assert_eq!(&raw[h.head_len..h.head_len + 3], b"abc");
    }
}
