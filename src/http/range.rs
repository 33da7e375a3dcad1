//! Byte ranges: parsing and evaluating the `Range` request field against one representation.
//!
//! RFC 9110 §14.1.2 defines the byte-range syntax, §14.2 the `Range` field and §14.4 the
//! `Content-Range` field. [`evaluate`] turns a raw field value and the representation length into
//! a [`RangeDecision`]: it never fails, because every malformed or unsupported `Range` has a
//! defined answer (ignore it and send the whole representation, §14.2).
//!
//! Invariants of the output:
//! - every [`ByteRange`] is non-empty and lies inside `0..len`;
//! - the ranges of [`RangeDecision::Multi`] are pairwise disjoint and never adjacent
//!   (overlapping or touching ranges are coalesced, which §15.3.7.2 allows "regardless of the
//!   order in which the corresponding range-spec appeared"), and there are at least two of them;
//! - they come in the order their range-specs appeared in the field, a coalesced range taking
//!   the place of its first member (§15.3.7.2: the server "SHOULD send the parts in the same
//!   order that the corresponding range-spec appeared in the received Range header field,
//!   excluding those ranges that were deemed unsatisfiable or that were coalesced into other
//!   ranges");
//! - one resulting range is always [`RangeDecision::Single`], never a one-part multipart body.
//!
//! The caller decides *whether* to apply a range: only to `GET` (§14.2: "A server MUST ignore a
//! Range header field received with a request method that is unrecognized or for which range
//! handling is not defined"; `HEAD` answers as a `GET` without range would), and only when
//! `If-Range` allows it (see [`crate::http::conditional`]).
//!
//! Numbers too large for `u64` are still syntactically valid (§14.1.2 puts no bound on
//! `1*DIGIT`): they are compared digit by digit for validity and saturate when evaluated, so
//! `bytes=99999999999999999999-` is unsatisfiable and `bytes=0-99999999999999999999` is the whole
//! file.
//!
//! Nothing here allocates unless the request names more than one range.
#![forbid(unsafe_code)]

/// How many range-specs one `Range` field may carry before the whole field is ignored.
///
/// Past the cap the request is answered as if it carried no `Range` at all (a `200` with the full
/// representation), which §14.2 allows ("A server MAY ignore the Range header field") and which
/// is the cheapest safe answer to a request built to make the server send many tiny parts. The cap
/// counts range-specs as written, before coalescing, so `bytes=0-0,0-0,...` cannot slip past it.
pub const DEFAULT_MAX_RANGES: usize = 64;

/// One satisfiable byte range of a representation: `len` bytes starting at offset `start`.
///
/// Invariant (upheld by [`evaluate`]): `len > 0` and `start + len` does not exceed the
/// representation length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub start: u64,
    /// Number of bytes; never zero.
    pub len: u64,
}

impl ByteRange {
    /// Offset of the last byte of the range (the `last-pos` of §14.1.2).
    pub fn end_inclusive(&self) -> u64 {
        // `len` is non-zero by invariant; `saturating_sub` keeps a hand-built empty range from
        // panicking in debug builds.
        self.start + self.len.saturating_sub(1)
    }

    /// Offset one past the last byte.
    pub fn end_exclusive(&self) -> u64 {
        self.start + self.len
    }

    /// The `Content-Range` field value for this range of a `total`-byte representation
    /// (§14.4: `bytes first-pos "-" last-pos "/" complete-length`), e.g. `bytes 0-99/1000`.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end_inclusive(), total)
    }
}

/// The `Content-Range` field value of a `416 Range Not Satisfiable` answer:
/// `bytes */LEN` (§14.4 `unsatisfied-range`, required by §15.5.17).
pub fn unsatisfied_content_range(total: u64) -> String {
    format!("bytes */{total}")
}

/// What to send for a `GET` carrying a `Range` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeDecision {
    /// Ignore the field and send the whole representation with `200 OK`.
    Full,
    /// Send one part with `206 Partial Content` and a `Content-Range` field.
    Single(ByteRange),
    /// Send `206 Partial Content` with a `multipart/byteranges` body (§14.6): at least two
    /// disjoint, non-adjacent ranges, in the order they were asked for (§15.3.7.2).
    Multi(Vec<ByteRange>),
    /// Answer `416 Range Not Satisfiable` with `Content-Range: bytes */LEN` (§15.5.17).
    NotSatisfiable,
}

/// A decimal number as written: the digits without leading zeros, so that numbers wider than
/// `u64` still compare correctly.
#[derive(Clone, Copy)]
struct Num<'a> {
    digits: &'a [u8],
}

impl<'a> Num<'a> {
    /// Parses `1*DIGIT` (§14.1.2); `None` for an empty or non-digit input.
    fn parse(s: &'a [u8]) -> Option<Self> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let first_nonzero = s.iter().position(|&b| b != b'0').unwrap_or(s.len());
        Some(Num { digits: &s[first_nonzero..] })
    }

    /// The value, saturated at `u64::MAX`.
    fn saturating(self) -> u64 {
        let mut v: u64 = 0;
        for &d in self.digits {
            v = match v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))) {
                Some(v) => v,
                None => return u64::MAX,
            };
        }
        v
    }

    /// `self < other`, exact for any width.
    fn less_than(self, other: Num<'_>) -> bool {
        (self.digits.len(), self.digits) < (other.digits.len(), other.digits)
    }
}

/// One syntactically valid `range-spec` of the `bytes` unit (§14.1.2).
#[derive(Clone, Copy)]
enum Spec<'a> {
    /// `first-pos "-" [ last-pos ]`
    Int { first: Num<'a>, last: Option<Num<'a>> },
    /// `"-" suffix-length`
    Suffix(Num<'a>),
}

/// §5.6.3: OWS is spaces and horizontal tabs.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses one range-spec; `None` when it is not valid for the `bytes` unit.
fn parse_spec(s: &[u8]) -> Option<Spec<'_>> {
    let dash = s.iter().position(|&b| b == b'-')?;
    let (first, last) = (&s[..dash], &s[dash + 1..]);
    if first.is_empty() {
        // §14.1.2 suffix-range = "-" suffix-length
        return Num::parse(last).map(Spec::Suffix);
    }
    let first = Num::parse(first)?;
    if last.is_empty() {
        return Some(Spec::Int { first, last: None });
    }
    let last = Num::parse(last)?;
    // §14.1.1: "An int-range is invalid if the last-pos value is present and less than the
    // first-pos." An invalid range-spec makes the whole range-set invalid.
    if last.less_than(first) {
        return None;
    }
    Some(Spec::Int { first, last: Some(last) })
}

/// Resolves a valid spec against the representation length: `None` when unsatisfiable (§14.1.1).
fn resolve(spec: Spec<'_>, len: u64) -> Option<ByteRange> {
    match spec {
        Spec::Int { first, last } => {
            let start = first.saturating();
            // §14.1.1: satisfiable iff first-pos < length.
            if start >= len {
                return None;
            }
            // §14.1.1: a last-pos absent or >= length means "the remainder of the representation".
            let end_inclusive = last.map_or(len - 1, |l| l.saturating().min(len - 1));
            Some(ByteRange { start, len: end_inclusive - start + 1 })
        }
        Spec::Suffix(n) => {
            // §14.1.1: a suffix-range is satisfiable iff suffix-length is non-zero; a suffix
            // longer than the representation selects all of it.
            let n = n.saturating().min(len);
            (n > 0).then(|| ByteRange { start: len - n, len: n })
        }
    }
}

/// Evaluates a raw `Range` field value against a representation of `len` bytes.
///
/// - Syntax errors, units other than `bytes`, and more than `max_ranges` range-specs => [`Full`]
///   (§14.2: a server MAY ignore `Range`; a recipient ignores one it cannot parse). A
///   `max_ranges` of 0 turns range support off.
/// - Ends past the end of the representation are clamped (§14.1.1).
/// - Overlapping and adjacent ranges are coalesced; the rest keep the order of the field
///   (§15.3.7.2).
/// - No satisfiable range => [`NotSatisfiable`] (§14.1.1, §15.5.17).
/// - An empty representation (`len == 0`): only a non-zero suffix-range is satisfiable
///   (§14.1.1), and it selects the whole, empty representation; as no `Content-Range` can
///   describe an empty range, that case is answered [`Full`] (a `200` with an empty body, using
///   the §14.2 permission to ignore `Range`). Every other satisfiable-looking range on an empty
///   representation is [`NotSatisfiable`] (`bytes */0`).
///
/// [`Full`]: RangeDecision::Full
/// [`NotSatisfiable`]: RangeDecision::NotSatisfiable
pub fn evaluate(header: &[u8], len: u64, max_ranges: usize) -> RangeDecision {
    if max_ranges == 0 {
        return RangeDecision::Full;
    }
    let header = trim_ows(header);
    // §14.2: ranges-specifier = range-unit "=" range-set
    let Some(eq) = header.iter().position(|&b| b == b'=') else {
        return RangeDecision::Full;
    };
    // §14.1: range units are compared case-insensitively; only `bytes` is supported here.
    if !header[..eq].eq_ignore_ascii_case(b"bytes") {
        return RangeDecision::Full;
    }
    let set = &header[eq + 1..];

    // First pass: validate every spec and count them without allocating. The field has to be
    // valid as a whole before any of it is honoured.
    let mut count = 0usize;
    let mut satisfiable = 0usize;
    let mut only: Option<ByteRange> = None;
    let mut empty_suffix_hit = false;
    // §5.6.1: a recipient accepts empty list elements ("bytes=0-1,,2-3"), with OWS around
    // each element.
    for element in set.split(|&b| b == b',').map(trim_ows) {
        if element.is_empty() {
            continue;
        }
        let Some(spec) = parse_spec(element) else {
            return RangeDecision::Full;
        };
        count += 1;
        if count > max_ranges {
            return RangeDecision::Full;
        }
        if len == 0 {
            if let Spec::Suffix(n) = spec {
                empty_suffix_hit |= n.saturating() > 0;
            }
            continue;
        }
        if let Some(r) = resolve(spec, len) {
            satisfiable += 1;
            only = Some(r);
        }
    }
    // §14.1.2: range-set = 1#range-spec
    if count == 0 {
        return RangeDecision::Full;
    }
    if len == 0 {
        return if empty_suffix_hit { RangeDecision::Full } else { RangeDecision::NotSatisfiable };
    }
    match (satisfiable, only) {
        (0, _) | (_, None) => RangeDecision::NotSatisfiable,
        (1, Some(r)) => RangeDecision::Single(r),
        _ => {
            let mut ranges: Vec<ByteRange> = set
                .split(|&b| b == b',')
                .map(trim_ows)
                .filter(|e| !e.is_empty())
                .filter_map(parse_spec)
                .filter_map(|s| resolve(s, len))
                .collect();
            coalesce(&mut ranges);
            match ranges.as_slice() {
                [one] => RangeDecision::Single(*one),
                _ => RangeDecision::Multi(ranges),
            }
        }
    }
}

/// Merges every group of overlapping or touching ranges into one (§15.3.7.2), at the place of
/// the group's first member, keeping the order of the field otherwise. Merged in start order,
/// then put back in field order: O(n log n) however many ranges `max_ranges` lets through.
fn coalesce(ranges: &mut Vec<ByteRange>) {
    // Each range with the index of the earliest range-spec merged into it.
    let mut by_start: Vec<(ByteRange, usize)> =
        ranges.drain(..).enumerate().map(|(i, r)| (r, i)).collect();
    by_start.sort_unstable_by_key(|(r, _)| r.start);
    let mut merged: Vec<(ByteRange, usize)> = Vec::with_capacity(by_start.len());
    for (r, i) in by_start {
        match merged.last_mut() {
            Some((prev, first)) if r.start <= prev.end_exclusive() => {
                let end = prev.end_exclusive().max(r.end_exclusive());
                prev.len = end - prev.start;
                *first = (*first).min(i);
            }
            _ => merged.push((r, i)),
        }
    }
    merged.sort_unstable_by_key(|&(_, first)| first);
    ranges.extend(merged.into_iter().map(|(r, _)| r));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn br(start: u64, len: u64) -> ByteRange {
        ByteRange { start, len }
    }

    use RangeDecision::{Full, Multi, NotSatisfiable, Single};

    /// (header, representation length, expected decision)
    #[test]
    fn decisions() {
        let cases: &[(&str, u64, RangeDecision)] = &[
            // §14.1.2 int-range, both ends
            ("bytes=0-99", 1000, Single(br(0, 100))),
            ("bytes=0-0", 1000, Single(br(0, 1))),
            ("bytes=999-999", 1000, Single(br(999, 1))),
            ("bytes=500-", 1000, Single(br(500, 500))),
            ("bytes=0-", 1000, Single(br(0, 1000))),
            // §14.1.1 last-pos >= length: clamped to the remainder
            ("bytes=900-5000", 1000, Single(br(900, 100))),
            ("bytes=0-99999999999999999999", 1000, Single(br(0, 1000))),
            ("bytes=0-18446744073709551615", 10, Single(br(0, 10))),
            // §14.1.2 suffix-range
            ("bytes=-100", 1000, Single(br(900, 100))),
            ("bytes=-1", 1000, Single(br(999, 1))),
            // suffix larger than the file selects all of it (§14.1.1)
            ("bytes=-5000", 1000, Single(br(0, 1000))),
            ("bytes=-99999999999999999999", 1000, Single(br(0, 1000))),
            // §14.1.1 suffix-length 0 is unsatisfiable
            ("bytes=-0", 1000, NotSatisfiable),
            // first-pos at or past the end: unsatisfiable
            ("bytes=1000-", 1000, NotSatisfiable),
            ("bytes=1000-2000", 1000, NotSatisfiable),
            ("bytes=99999999999999999999-", 1000, NotSatisfiable),
            ("bytes=99999999999999999998-99999999999999999999", 1000, NotSatisfiable),
            ("bytes=1000-1000,2000-", 1000, NotSatisfiable),
            // one satisfiable among unsatisfiable ones: just that one, as a single part
            ("bytes=2000-3000,5-9", 1000, Single(br(5, 5))),
            ("bytes=-0,0-0", 1000, Single(br(0, 1))),
            // §14.1.1 last-pos < first-pos: the whole set is invalid => ignored
            ("bytes=5-4", 1000, Full),
            ("bytes=0-1,5-4", 1000, Full),
            ("bytes=99999999999999999999-99999999999999999998", 1000, Full),
            // leading zeros are digits like any other
            ("bytes=007-010", 1000, Single(br(7, 4))),
            // §14.1: the unit is case-insensitive
            ("BYTES=0-0", 10, Single(br(0, 1))),
            ("Bytes=0-0", 10, Single(br(0, 1))),
            // unknown units and malformed syntax => ignored (§14.2)
            ("items=0-5", 1000, Full),
            ("bytes 0-5", 1000, Full),
            ("bytes", 1000, Full),
            ("bytes=", 1000, Full),
            ("bytes=,", 1000, Full),
            ("bytes=-", 1000, Full),
            ("bytes=--5", 1000, Full),
            ("bytes=1-2-3", 1000, Full),
            ("bytes=a-b", 1000, Full),
            ("bytes=0x10-", 1000, Full),
            ("bytes=+1-2", 1000, Full),
            ("bytes=1", 1000, Full),
            ("bytes=0-5;x", 1000, Full),
            ("bytes=0 - 5", 1000, Full),
            ("=0-5", 1000, Full),
            ("", 1000, Full),
            ("bytes==0-5", 1000, Full),
            ("bytes=0-5,xyz", 1000, Full),
            ("bytes=\u{0}0-5", 1000, Full),
            // §5.6.1 OWS around elements, empty elements, OWS around the field value
            ("  bytes=0-0  ", 10, Single(br(0, 1))),
            ("bytes= 0-0", 10, Single(br(0, 1))),
            ("bytes=0-0 , 5-5", 10, Multi(vec![br(0, 1), br(5, 1)])),
            ("bytes=0-0,\t5-5", 10, Multi(vec![br(0, 1), br(5, 1)])),
            ("bytes=,,0-0,,,5-5,,", 10, Multi(vec![br(0, 1), br(5, 1)])),
            // §14.6 several ranges: multipart, in the order asked for (§15.3.7.2)
            ("bytes=0-1,4-5", 10, Multi(vec![br(0, 2), br(4, 2)])),
            ("bytes=4-5,0-1", 10, Multi(vec![br(4, 2), br(0, 2)])),
            ("bytes=0-0,-1", 10, Multi(vec![br(0, 1), br(9, 1)])),
            ("bytes=-1,0-0", 10, Multi(vec![br(9, 1), br(0, 1)])),
            // §14.6 overlapping and adjacent ranges are coalesced; one result => single
            ("bytes=0-4,2-8", 10, Single(br(0, 9))),
            ("bytes=0-4,5-9", 10, Single(br(0, 10))),
            ("bytes=5-9,0-4", 10, Single(br(0, 10))),
            ("bytes=0-0,0-0,0-0", 10, Single(br(0, 1))),
            ("bytes=0-,-5", 10, Single(br(0, 10))),
            ("bytes=0-1,3-4,2-2", 10, Single(br(0, 5))),
            ("bytes=0-1,3-4,7-8,4-6", 10, Multi(vec![br(0, 2), br(3, 6)])),
            ("bytes=0-1,3-4,6-7", 10, Multi(vec![br(0, 2), br(3, 2), br(6, 2)])),
            // a coalesced range takes the place of its first member (§15.3.7.2)
            ("bytes=7-8,0-1,4-6", 10, Multi(vec![br(4, 5), br(0, 2)])),
            ("bytes=9-9,0-0,4-4,1-7", 10, Multi(vec![br(9, 1), br(0, 8)])),
            ("bytes=8-8,0-0,4-4,6-7", 10, Multi(vec![br(6, 3), br(0, 1), br(4, 1)])),
            // empty representation (§14.1.1: only a non-zero suffix is satisfiable)
            ("bytes=0-", 0, NotSatisfiable),
            ("bytes=0-0", 0, NotSatisfiable),
            ("bytes=-0", 0, NotSatisfiable),
            ("bytes=-5", 0, Full),
            ("bytes=0-0,-5", 0, Full),
            ("bytes=5-4", 0, Full),
            ("items=0-", 0, Full),
            // one-byte representation
            ("bytes=0-0", 1, Single(br(0, 1))),
            ("bytes=-1", 1, Single(br(0, 1))),
            ("bytes=1-", 1, NotSatisfiable),
            // the largest length
            ("bytes=18446744073709551614-", u64::MAX, Single(br(u64::MAX - 1, 1))),
            ("bytes=-3", u64::MAX, Single(br(u64::MAX - 3, 3))),
        ];
        for (header, len, want) in cases {
            assert_eq!(
                evaluate(header.as_bytes(), *len, DEFAULT_MAX_RANGES),
                *want,
                "Range: {header:?} on {len} bytes"
            );
        }
    }

    /// The cap counts range-specs as written; past it the field is ignored (200).
    #[test]
    fn range_count_cap() {
        let at_cap = (0..4).map(|i| format!("{}-{}", i * 10, i * 10)).collect::<Vec<_>>();
        let header = format!("bytes={}", at_cap.join(","));
        assert!(matches!(evaluate(header.as_bytes(), 100, 4), Multi(v) if v.len() == 4));
        assert_eq!(evaluate(header.as_bytes(), 100, 3), Full);
        assert_eq!(evaluate(b"bytes=0-0,0-0,0-0", 100, 2), Full);
        assert_eq!(evaluate(b"bytes=0-0", 100, 0), Full);
        let many = format!("bytes={}", vec!["0-0"; DEFAULT_MAX_RANGES + 1].join(","));
        assert_eq!(evaluate(many.as_bytes(), 100, DEFAULT_MAX_RANGES), Full);
        let commas = format!("bytes={}0-0", ",".repeat(10_000));
        assert_eq!(evaluate(commas.as_bytes(), 100, 1), Single(br(0, 1)));
    }

    /// §14.4 Content-Range values.
    #[test]
    fn content_range_values() {
        assert_eq!(br(0, 100).content_range(1000), "bytes 0-99/1000");
        assert_eq!(br(999, 1).content_range(1000), "bytes 999-999/1000");
        assert_eq!(br(0, 1).end_inclusive(), 0);
        assert_eq!(unsatisfied_content_range(1000), "bytes */1000");
        assert_eq!(unsatisfied_content_range(0), "bytes */0");
    }

    fn check_invariants(d: &RangeDecision, len: u64) {
        let inside = |r: &ByteRange| r.len > 0 && r.start < len && r.len <= len - r.start;
        match d {
            Single(r) => assert!(inside(r), "{r:?} outside {len}"),
            Multi(v) => {
                assert!(v.len() >= 2);
                assert!(v.iter().all(inside), "{v:?} outside {len}");
                for (i, a) in v.iter().enumerate() {
                    for b in &v[i + 1..] {
                        // disjoint and not even adjacent, in whatever order
                        let apart = a.end_exclusive() < b.start || b.end_exclusive() < a.start;
                        assert!(apart, "{v:?} not coalesced");
                    }
                }
            }
            Full | NotSatisfiable => {}
        }
    }

    fn spec_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..2000, 0u64..2000).prop_map(|(a, b)| format!("{a}-{b}")),
            (0u64..2000).prop_map(|a| format!("{a}-")),
            (0u64..2000).prop_map(|n| format!("-{n}")),
            any::<u64>().prop_map(|a| format!("{a}-")),
            Just("99999999999999999999-".to_string()),
            Just(" ".to_string()),
        ]
    }

    proptest! {
        /// No input panics, and whatever comes out lies inside the file.
        #[test]
        fn arbitrary_bytes_never_panic(header in proptest::collection::vec(any::<u8>(), 0..64),
                                       len in any::<u64>(), max in 0usize..8) {
            check_invariants(&evaluate(&header, len, max), len);
        }

        /// Well-formed range sets: satisfiable ranges are inside the file, disjoint after
        /// coalescing, and cover exactly the bytes the specs asked for.
        #[test]
        fn well_formed_sets(specs in proptest::collection::vec(spec_strategy(), 1..12),
                            len in 0u64..3000) {
            let header = format!("bytes={}", specs.join(","));
            let d = evaluate(header.as_bytes(), len, DEFAULT_MAX_RANGES);
            check_invariants(&d, len);
            // Every byte the decision selects is a byte some spec selects, and vice versa.
            if len > 0 && len <= 3000 {
                let mut want = vec![false; usize::try_from(len).unwrap()];
                let mut any_invalid = false;
                for s in &specs {
                    match parse_spec(trim_ows(s.as_bytes())) {
                        Some(spec) => if let Some(r) = resolve(spec, len) {
                            for i in r.start..r.end_exclusive() {
                                want[usize::try_from(i).unwrap()] = true;
                            }
                        },
                        None if trim_ows(s.as_bytes()).is_empty() => {}
                        None => any_invalid = true,
                    }
                }
                let mut got = vec![false; want.len()];
                let ranges = match &d {
                    Single(r) => vec![*r],
                    Multi(v) => v.clone(),
                    Full | NotSatisfiable => vec![],
                };
                for r in ranges {
                    for i in r.start..r.end_exclusive() {
                        got[usize::try_from(i).unwrap()] = true;
                    }
                }
                // §15.3.7.2: parts in the order of the field, each at the place of the first
                // range-spec it covers.
                if let Multi(v) = &d {
                    let resolved: Vec<ByteRange> = specs
                        .iter()
                        .filter_map(|s| parse_spec(trim_ows(s.as_bytes())))
                        .filter_map(|spec| resolve(spec, len))
                        .collect();
                    let firsts: Vec<usize> = v
                        .iter()
                        .map(|part| {
                            resolved
                                .iter()
                                .position(|r| {
                                    part.start <= r.start && r.end_exclusive() <= part.end_exclusive()
                                })
                                .expect("every part covers a range-spec")
                        })
                        .collect();
                    prop_assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{:?} {:?}", v, firsts);
                }
                if any_invalid {
                    prop_assert_eq!(d, Full);
                } else if want.iter().any(|&b| b) {
                    prop_assert_eq!(got, want);
                } else if specs.iter().any(|s| !trim_ows(s.as_bytes()).is_empty()) {
                    prop_assert_eq!(d, NotSatisfiable);
                }
            }
        }
    }
}
