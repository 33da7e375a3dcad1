//! Slices: large objects are fetched and stored in aligned pieces of `size` bytes, so a client
//! range costs only the pieces it touches, and one fill per piece can be shared.
//!
//! Slice `k` covers bytes `k·S ..= (k+1)·S − 1` (the last one ends at the object's end). The
//! origin is asked `Range: bytes=k·S-(k+1)·S−1` (RFC 9110 §14.1.2) and must answer `206` with
//! a `Content-Range` (§14.4) giving the same start, the slice's end (or the object's last byte)
//! and the complete length. An origin that ignores `Range` answers `200` with the whole object
//! ([`SliceAnswer::Whole`]).
//!
//! Every slice must come from the same representation as the first: [`Identity`] holds its
//! strong `ETag`, `Last-Modified` and complete length, and [`Identity::check`] compares a later
//! slice's. On any difference the decision is to drop the object and refetch — never to stitch
//! two versions.
#![forbid(unsafe_code)]

use std::ops::RangeInclusive;

use crate::cache::fields::{trim_ows, Fields};

/// The default slice size: 1 MiB.
pub(crate) const DEFAULT_SLICE_BYTES: u64 = 1 << 20;

/// Slice arithmetic for one slice size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slicing {
    size: u64,
}

impl Slicing {
    /// Slices of `size` bytes; `None` for 0.
    pub(crate) fn new(size: u64) -> Option<Self> {
        (size > 0).then_some(Slicing { size })
    }

    /// The slice size in bytes.
    pub(crate) fn size(self) -> u64 {
        self.size
    }

    /// Index of the slice holding byte `offset`.
    pub(crate) fn index_of(self, offset: u64) -> u64 {
        offset / self.size
    }

    /// Indices of the slices a byte range `first..=last` touches.
    pub(crate) fn indices(self, first: u64, last: u64) -> RangeInclusive<u64> {
        self.index_of(first)..=self.index_of(last.max(first))
    }

    /// Number of slices of an object of `total` bytes.
    pub(crate) fn count(self, total: u64) -> u64 {
        total.div_ceil(self.size)
    }

    /// The first byte of slice `k` and its length in an object of `total` bytes; `None` when
    /// `k` is past the end.
    pub(crate) fn bounds(self, k: u64, total: u64) -> Option<(u64, u64)> {
        let start = k.checked_mul(self.size)?;
        (start < total).then(|| (start, (total - start).min(self.size)))
    }

    /// The `Range` value asking the origin for slice `k` (the total length is not known yet).
    pub(crate) fn origin_range(self, k: u64) -> String {
        let start = k.saturating_mul(self.size);
        format!("bytes={}-{}", start, start.saturating_add(self.size - 1))
    }

    /// Classifies the origin's answer to [`Slicing::origin_range`] for slice `k`.
    pub(crate) fn classify(self, k: u64, status: u16, fields: &Fields) -> SliceAnswer {
        match status {
            200 => SliceAnswer::Whole,
            206 => {
                let Some(ContentRange::Bytes { first, last, complete: Some(total) }) =
                    fields.get("content-range").and_then(parse_content_range)
                else {
                    // A multipart answer or an unknown complete length cannot be a slice.
                    return SliceAnswer::Invalid;
                };
                match self.bounds(k, total) {
                    Some((start, len)) if first == start && last == start + len - 1 => {
                        SliceAnswer::Slice { total }
                    }
                    _ => SliceAnswer::Invalid,
                }
            }
            // §15.5.17: the object is shorter than the slice's start.
            416 => match fields.get("content-range").and_then(parse_content_range) {
                Some(ContentRange::Unsatisfied { complete }) => {
                    SliceAnswer::Unsatisfiable { total: complete }
                }
                _ => SliceAnswer::Invalid,
            },
            _ => SliceAnswer::Other,
        }
    }
}

/// The origin's answer to a slice request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceAnswer {
    /// `206` with exactly the slice asked for, in an object of `total` bytes.
    Slice { total: u64 },
    /// `200`: the origin ignored `Range`; the body is the whole object.
    Whole,
    /// `416`: the object has `total` bytes, fewer than the slice's start.
    Unsatisfiable { total: u64 },
    /// A `206`/`416` whose `Content-Range` is missing, malformed or not the slice asked for:
    /// an origin error, nothing stored.
    Invalid,
    /// Any other status: forwarded as the origin's answer, not a slice.
    Other,
}

/// A parsed `Content-Range` (RFC 9110 §14.4), bytes unit only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentRange {
    /// `bytes first-last/complete` (`complete` is `None` for `*`).
    Bytes { first: u64, last: u64, complete: Option<u64> },
    /// `bytes */complete`.
    Unsatisfied { complete: u64 },
}

/// Parses a `Content-Range` value; `None` when invalid (§14.4: `first <= last < complete`).
pub(crate) fn parse_content_range(value: &[u8]) -> Option<ContentRange> {
    let v = std::str::from_utf8(trim_ows(value)).ok()?;
    let (unit, rest) = v.split_once(' ')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (range, complete) = rest.trim_start_matches(' ').split_once('/')?;
    let complete = if complete == "*" { None } else { Some(digits(complete)?) };
    if range == "*" {
        return complete.map(|complete| ContentRange::Unsatisfied { complete });
    }
    let (first, last) = range.split_once('-')?;
    let (first, last) = (digits(first)?, digits(last)?);
    if first > last || complete.is_some_and(|c| last >= c) {
        return None;
    }
    Some(ContentRange::Bytes { first, last, complete })
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What identifies the representation the slices of one object must all come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The strong entity-tag, quotes included; `None` when absent or weak.
    pub(crate) strong_etag: Option<Box<[u8]>>,
    /// `Last-Modified` as sent.
    pub(crate) last_modified: Option<Box<[u8]>>,
    /// The complete length.
    pub(crate) total: u64,
}

/// The per-slice check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceCheck {
    /// Same representation: keep the slice.
    Consistent,
    /// Another representation: drop the object (every slice) and refetch.
    DropAndRefetch,
}

impl Identity {
    /// The identity a slice answer's fields declare for an object of `total` bytes.
    pub(crate) fn of(fields: &Fields, total: u64) -> Self {
        let strong_etag = fields
            .get("etag")
            .map(trim_ows)
            .filter(|e| e.len() >= 2 && e[0] == b'"')
            .map(Box::from);
        let last_modified = fields.get("last-modified").map(|v| Box::from(trim_ows(v)));
        Identity { strong_etag, last_modified, total }
    }

    /// Whether the identity can tell versions apart. Without a strong `ETag` or a
    /// `Last-Modified`, two versions of equal length are indistinguishable, so the object
    /// should be fetched whole rather than in slices (RFC 9110 §14.3 asks a strong validator
    /// for combining ranges).
    pub(crate) fn verifiable(&self) -> bool {
        self.strong_etag.is_some() || self.last_modified.is_some()
    }

    /// Compares a later slice's identity with the first slice's. Every validator must agree,
    /// presence included (RFC 9110 §15.3.7.3: parts may be combined only when their strong
    /// validators match).
    pub(crate) fn check(&self, later: &Identity) -> SliceCheck {
        if self == later {
            SliceCheck::Consistent
        } else {
            SliceCheck::DropAndRefetch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = DEFAULT_SLICE_BYTES;

    /// Header field lines of a table case.
    type Lines = &'static [(&'static str, &'static str)];

    fn f(lines: &[(&str, &str)]) -> Fields {
        Fields::from_lines(lines)
    }

    #[test]
    fn arithmetic_table() {
        let s = Slicing::new(MIB).unwrap();
        assert!(Slicing::new(0).is_none());
        assert_eq!(s.size(), MIB);
        // (first, last) of a client range → slice indices.
        let cases: &[(u64, u64, RangeInclusive<u64>)] = &[
            (0, 0, 0..=0),
            (0, MIB - 1, 0..=0),
            (0, MIB, 0..=1),
            (MIB - 1, MIB, 0..=1),
            (5 * MIB + 3, 7 * MIB, 5..=7),
            (10, 5, 0..=0),
        ];
        for (a, b, want) in cases {
            assert_eq!(s.indices(*a, *b), *want, "{a}-{b}");
        }
        assert_eq!((s.count(0), s.count(1), s.count(MIB), s.count(MIB + 1)), (0, 1, 1, 2));
        assert_eq!(s.bounds(0, 10), Some((0, 10)));
        assert_eq!(s.bounds(1, 2 * MIB + 5), Some((MIB, MIB)));
        assert_eq!(s.bounds(2, 2 * MIB + 5), Some((2 * MIB, 5)));
        assert_eq!(s.bounds(3, 2 * MIB + 5), None);
        assert_eq!(s.bounds(u64::MAX, u64::MAX), None);
        // RFC 9110 §14.1.2.
        assert_eq!(s.origin_range(0), "bytes=0-1048575");
        assert_eq!(s.origin_range(3), "bytes=3145728-4194303");
    }

    #[test]
    fn content_range_table() {
        // RFC 9110 §14.4.
        use ContentRange::*;
        let cases: &[(&str, Option<ContentRange>)] = &[
            ("bytes 0-99/1000", Some(Bytes { first: 0, last: 99, complete: Some(1000) })),
            ("Bytes 5-5/*", Some(Bytes { first: 5, last: 5, complete: None })),
            (" bytes */1000 ", Some(Unsatisfied { complete: 1000 })),
            ("bytes 0-1000/1000", None),
            ("bytes 9-8/100", None),
            ("bytes */*", None),
            ("bytes 0-99", None),
            ("items 0-1/2", None),
            ("bytes -1-5/10", None),
            ("bytes 0-+5/10", None),
            ("bytes 0-99999999999999999999999/*", None),
            ("", None),
        ];
        for (v, want) in cases {
            assert_eq!(parse_content_range(v.as_bytes()), *want, "{v}");
        }
    }

    #[test]
    fn slice_answers_table() {
        let s = Slicing::new(100).unwrap();
        let cr = |v: &str| f(&[("Content-Range", v)]);
        let cases: &[(u64, u16, Fields, SliceAnswer)] = &[
            (0, 206, cr("bytes 0-99/250"), SliceAnswer::Slice { total: 250 }),
            (2, 206, cr("bytes 200-249/250"), SliceAnswer::Slice { total: 250 }),
            (0, 206, cr("bytes 0-49/50"), SliceAnswer::Slice { total: 50 }),
            // Not the bytes asked for: an origin error.
            (1, 206, cr("bytes 100-149/250"), SliceAnswer::Invalid),
            (1, 206, cr("bytes 0-99/250"), SliceAnswer::Invalid),
            (0, 206, cr("bytes 0-99/*"), SliceAnswer::Invalid),
            (
                0,
                206,
                f(&[("Content-Type", "multipart/byteranges; boundary=x")]),
                SliceAnswer::Invalid,
            ),
            (0, 200, f(&[]), SliceAnswer::Whole),
            (3, 416, cr("bytes */250"), SliceAnswer::Unsatisfiable { total: 250 }),
            (3, 416, f(&[]), SliceAnswer::Invalid),
            (0, 404, f(&[]), SliceAnswer::Other),
        ];
        for (k, status, fields, want) in cases {
            assert_eq!(s.classify(*k, *status, fields), *want, "{k} {status} {fields:?}");
        }
    }

    #[test]
    fn identity_check_table() {
        let first = Identity::of(&f(&[("ETag", "\"v1\""), ("Last-Modified", "A")]), 500);
        assert!(first.verifiable());
        let cases: &[(Lines, u64, SliceCheck)] = &[
            (&[("ETag", " \"v1\""), ("Last-Modified", "A")], 500, SliceCheck::Consistent),
            (&[("ETag", "\"v2\""), ("Last-Modified", "A")], 500, SliceCheck::DropAndRefetch),
            (&[("ETag", "\"v1\""), ("Last-Modified", "B")], 500, SliceCheck::DropAndRefetch),
            (&[("ETag", "\"v1\""), ("Last-Modified", "A")], 501, SliceCheck::DropAndRefetch),
            (&[("Last-Modified", "A")], 500, SliceCheck::DropAndRefetch),
            (&[("ETag", "W/\"v1\""), ("Last-Modified", "A")], 500, SliceCheck::DropAndRefetch),
        ];
        for (lines, total, want) in cases {
            assert_eq!(first.check(&Identity::of(&f(lines), *total)), *want, "{lines:?} {total}");
        }
        // A weak ETag is no strong validator; without Last-Modified nothing tells versions apart.
        assert!(!Identity::of(&f(&[("ETag", "W/\"v1\"")]), 5).verifiable());
        assert!(Identity::of(&f(&[("Last-Modified", "A")]), 5).verifiable());
    }
}
