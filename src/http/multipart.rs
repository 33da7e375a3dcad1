//! `multipart/byteranges` bodies for `206` answers to multi-range requests (RFC 9110 §14.6).
//!
//! [`plan`] lays the body out as a list of [`Piece`]s: small in-memory byte strings (boundaries
//! and part headers) interleaved with ranges of the file, so that every part's data still goes
//! through the zero-copy path and the `Content-Length` is known before the first byte is sent.
//!
//! Layout (RFC 2046 §5.1.1, which §14.6 follows; the CRLF before each boundary belongs to the
//! delimiter, so the data of each part is byte for byte the file range):
//!
//! ```text
//! --BOUNDARY CRLF
//! Content-Type: TYPE CRLF
//! Content-Range: bytes A-B/LEN CRLF
//! CRLF
//! <file bytes A..=B>
//! CRLF --BOUNDARY CRLF
//! ...
//! CRLF --BOUNDARY-- CRLF
//! ```
//!
//! The boundary must not occur inside any part (RFC 2046 §5.1.1). [`boundary`] derives 128 bits
//! from a per-worker seed; a file happening to contain that exact string after `CRLF--` is a
//! chance of about 2^-128 per position, which is accepted rather than scanning the file.
#![forbid(unsafe_code)]

use crate::http::range::ByteRange;
use bytes::Bytes;

/// One piece of a planned body, sent in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal bytes (boundary lines and part headers).
    Bytes(Bytes),
    /// A range of the representation, sent from the file.
    File(ByteRange),
}

impl Piece {
    /// The number of body bytes this piece contributes.
    pub fn len(&self) -> u64 {
        match self {
            // usize -> u64 never truncates on supported targets (64-bit Linux).
            Piece::Bytes(b) => u64::try_from(b.len()).unwrap_or(u64::MAX),
            Piece::File(r) => r.len,
        }
    }

    /// True when the piece contributes no bytes (never the case for pieces from [`plan`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A complete `multipart/byteranges` body plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartPlan {
    /// The `Content-Type` field value of the response:
    /// `multipart/byteranges; boundary=...` (§14.6).
    pub content_type: String,
    /// The `Content-Length` field value: the sum of the lengths of `pieces` (saturating at
    /// `u64::MAX`).
    pub content_length: u64,
    /// The body, in order.
    pub pieces: Vec<Piece>,
}

/// Plans a `multipart/byteranges` body for `ranges` of a `total_len`-byte representation whose
/// own media type is `part_content_type` (written in each part, §14.6; omitted when empty).
///
/// `ranges` are used in the order given (normally the coalesced output of
/// [`crate::http::range::evaluate`], in the order the client asked for them). `boundary` should come from [`boundary`].
pub fn plan(
    ranges: &[ByteRange],
    part_content_type: &str,
    total_len: u64,
    boundary: &str,
) -> MultipartPlan {
    plan_with_fields(ranges, part_content_type, &[], total_len, boundary)
}

/// [`plan`] with more fields in every part's head, after `Content-Type`: the
/// `Content-Encoding` of a precompressed representation belongs there, since the parts are
/// ranges of the encoded bytes while the multipart body as a whole is not encoded (RFC 9110
/// §8.4: the coding is what must be decoded to obtain the media type of `Content-Type`).
/// Names and values are written as given.
pub fn plan_with_fields(
    ranges: &[ByteRange],
    part_content_type: &str,
    part_fields: &[(&str, &str)],
    total_len: u64,
    boundary: &str,
) -> MultipartPlan {
    let mut pieces = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut head = String::with_capacity(128);
    for (i, r) in ranges.iter().enumerate() {
        if i > 0 {
            head.push_str("\r\n");
        }
        head.push_str("--");
        head.push_str(boundary);
        head.push_str("\r\n");
        if !part_content_type.is_empty() {
            head.push_str("Content-Type: ");
            head.push_str(part_content_type);
            head.push_str("\r\n");
        }
        for (name, value) in part_fields {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        // §14.6: each body part carries the Content-Range of its range.
        head.push_str("Content-Range: ");
        head.push_str(&r.content_range(total_len));
        head.push_str("\r\n\r\n");
        pieces.push(Piece::Bytes(Bytes::from(std::mem::take(&mut head))));
        pieces.push(Piece::File(*r));
    }
    if !ranges.is_empty() {
        head.push_str("\r\n");
    }
    head.push_str("--");
    head.push_str(boundary);
    head.push_str("--\r\n");
    pieces.push(Piece::Bytes(Bytes::from(head)));
    // Saturating: only a representation within a few kilobytes of 2^64 bytes could reach the
    // limit, and a saturated length is then merely wrong rather than a panic.
    let content_length = pieces.iter().map(Piece::len).fold(0u64, u64::saturating_add);
    MultipartPlan {
        content_type: format!("multipart/byteranges; boundary={boundary}"),
        content_length,
        pieces,
    }
}

/// A boundary string derived from `seed` (for example a per-worker counter mixed with a
/// per-process random value): `ringcast-` and 32 hex digits, 41 characters, well within the 70
/// RFC 2046 allows, using only characters that need no quoting in the `boundary` parameter.
pub fn boundary(seed: u64) -> String {
    let a = splitmix64(seed);
    let b = splitmix64(a ^ 0x5851_f42d_4c95_7f2d);
    format!("ringcast-{a:016x}{b:016x}")
}

/// SplitMix64 finalizer: a bijective mix, so distinct seeds give distinct first halves.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Renders a plan against a file's bytes, as the sender would.
    fn render(plan: &MultipartPlan, file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &plan.pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::File(r) => {
                    let start = usize::try_from(r.start).unwrap();
                    let end = usize::try_from(r.end_exclusive()).unwrap();
                    out.extend_from_slice(&file[start..end]);
                }
            }
        }
        out
    }

    /// §14.6: the exact wire form of a two-part body.
    #[test]
    fn two_parts_exact() {
        let file: Vec<u8> = (b'a'..=b'z').collect();
        let ranges = [ByteRange { start: 0, len: 3 }, ByteRange { start: 23, len: 3 }];
        let p = plan(&ranges, "text/plain; charset=utf-8", 26, "XYZ");
        assert_eq!(p.content_type, "multipart/byteranges; boundary=XYZ");
        let body = render(&p, &file);
        let want = "--XYZ\r\n\
                    Content-Type: text/plain; charset=utf-8\r\n\
                    Content-Range: bytes 0-2/26\r\n\
                    \r\n\
                    abc\r\n\
                    --XYZ\r\n\
                    Content-Type: text/plain; charset=utf-8\r\n\
                    Content-Range: bytes 23-25/26\r\n\
                    \r\n\
                    xyz\r\n\
                    --XYZ--\r\n";
        assert_eq!(String::from_utf8(body.clone()).unwrap(), want);
        assert_eq!(p.content_length, u64::try_from(body.len()).unwrap());
        // File data goes out as file pieces, never copied into memory.
        assert_eq!(p.pieces.iter().filter(|x| matches!(x, Piece::File(_))).count(), 2);
    }

    #[test]
    fn extra_part_fields() {
        let ranges = [ByteRange { start: 0, len: 1 }, ByteRange { start: 3, len: 2 }];
        let p = plan_with_fields(&ranges, "text/vtt", &[("Content-Encoding", "gzip")], 5, "b");
        let body = render(&p, b"01234");
        let want = "--b\r\nContent-Type: text/vtt\r\nContent-Encoding: gzip\r\n\
                    Content-Range: bytes 0-0/5\r\n\r\n0\r\n\
                    --b\r\nContent-Type: text/vtt\r\nContent-Encoding: gzip\r\n\
                    Content-Range: bytes 3-4/5\r\n\r\n34\r\n--b--\r\n";
        assert_eq!(String::from_utf8(body.clone()).unwrap(), want);
        assert_eq!(p.content_length, u64::try_from(body.len()).unwrap());
    }

    #[test]
    fn no_content_type_line_when_empty() {
        let p = plan(&[ByteRange { start: 1, len: 1 }], "", 5, "b");
        let body = render(&p, b"01234");
        assert_eq!(body, b"--b\r\nContent-Range: bytes 1-1/5\r\n\r\n1\r\n--b--\r\n");
    }

    #[test]
    fn boundaries() {
        let a = boundary(0);
        let b = boundary(1);
        assert_ne!(a, b);
        assert_eq!(a, boundary(0));
        assert_eq!(a.len(), 41);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }

    /// Ranges at the very end of the largest representation do not overflow the length.
    #[test]
    fn huge_representation_saturates() {
        let ranges = [
            ByteRange { start: 0, len: u64::MAX / 2 },
            ByteRange { start: u64::MAX / 2 + 10, len: u64::MAX / 2 - 10 },
        ];
        let p = plan(&ranges, "video/mp4", u64::MAX, "b");
        assert_eq!(p.content_length, u64::MAX);
    }

    proptest! {
        /// content_length equals the sum of the piece lengths, and equals the rendered size.
        #[test]
        fn length_is_sum_of_pieces(
            raw in proptest::collection::vec((0u64..500, 1u64..100), 0..10),
            ctype in "[a-z/+.; =-]{0,40}",
            seed in any::<u64>(),
        ) {
            let ranges: Vec<ByteRange> = raw.iter().map(|&(s, l)| ByteRange { start: s, len: l }).collect();
            let p = plan(&ranges, &ctype, 600, &boundary(seed));
            let sum: u64 = p.pieces.iter().map(Piece::len).sum();
            prop_assert_eq!(p.content_length, sum);
            let file = vec![7u8; 600];
            prop_assert_eq!(p.content_length, u64::try_from(render(&p, &file).len()).unwrap());
            prop_assert!(p.pieces.iter().all(|x| !x.is_empty()));
        }
    }
}
