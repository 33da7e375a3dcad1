//! Conditional requests: `If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` and `If-Range` evaluated against one representation's validators.
//!
//! RFC 9110 §13.1 defines each precondition, §13.2.2 the order in which they are evaluated and
//! §8.8.3.2 how entity-tags compare. [`evaluate`] returns an [`Outcome`] — a decision, never an
//! error: a malformed field has a defined meaning (usually "ignore it", sometimes "it cannot
//! match"), written beside each rule below.
//!
//! Only `GET` and `HEAD` reach this module (the server serves nothing else), so the
//! method-dependent branches of §13.2.2 are fixed to their `GET`/`HEAD` answers: a false
//! `If-None-Match` or `If-Modified-Since` yields `304 Not Modified`, never `412`.
//!
//! Repeated fields reach here as one value with the lines joined by `", "`, which is the list
//! form §5.3 makes equivalent. For the date fields that join produces an invalid date, and an
//! invalid date is ignored (§13.1.3, §13.1.4) — the same treatment §13.1.3 demands for a field
//! "with more than one member".
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

/// The validators of the selected representation (§8.8).
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// The strong entity-tag as sent in `ETag`, quotes included: `"abc"`.
    pub etag: &'a str,
    /// The modification time as sent in `Last-Modified`, in whole seconds.
    pub last_modified: SystemTime,
}

/// Raw values of the precondition fields of one request; `None` when absent.
///
/// When a field repeats, the caller joins its lines with `", "`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Preconditions<'a> {
    /// `If-Match` (§13.1.1).
    pub if_match: Option<&'a [u8]>,
    /// `If-None-Match` (§13.1.2).
    pub if_none_match: Option<&'a [u8]>,
    /// `If-Modified-Since` (§13.1.3).
    pub if_modified_since: Option<&'a [u8]>,
    /// `If-Unmodified-Since` (§13.1.4).
    pub if_unmodified_since: Option<&'a [u8]>,
    /// `If-Range` (§13.1.5).
    pub if_range: Option<&'a [u8]>,
}

/// The decision of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every precondition passed: serve the representation. `range_allowed` is false when an
    /// `If-Range` condition failed (§13.1.5: the `Range` field must then be ignored and the
    /// whole representation sent with `200`).
    Proceed {
        /// Whether a `Range` field may be honoured.
        range_allowed: bool,
    },
    /// `304 Not Modified` (§15.4.5): with `ETag`, `Last-Modified`, `Date` and `Cache-Control`,
    /// no body.
    NotModified,
    /// `412 Precondition Failed` (§15.5.13).
    PreconditionFailed,
}

/// Evaluates the preconditions of a `GET` or `HEAD` request in the order of §13.2.2.
pub fn evaluate(pre: &Preconditions<'_>, v: &Validators<'_>) -> Outcome {
    // §13.2.2 step 1: If-Match; false => 412.
    if let Some(value) = pre.if_match {
        if !if_match(value, v.etag) {
            return Outcome::PreconditionFailed;
        }
    } else if let Some(value) = pre.if_unmodified_since {
        // §13.2.2 step 2: If-Unmodified-Since only when If-Match is absent (§13.1.4: "A
        // recipient MUST ignore If-Unmodified-Since if the request contains an If-Match header
        // field"); an invalid date is ignored (§13.1.4).
        if let Some(date) = parse_date(value) {
            // §13.1.4: true iff the last modification is earlier than or equal to the date.
            if secs(v.last_modified) > secs(date) {
                return Outcome::PreconditionFailed;
            }
        }
    }

    // §13.2.2 step 3: If-None-Match; false => 304 for GET/HEAD.
    if let Some(value) = pre.if_none_match {
        if !if_none_match(value, v.etag) {
            return Outcome::NotModified;
        }
    } else if let Some(value) = pre.if_modified_since {
        // §13.2.2 step 4: If-Modified-Since only when If-None-Match is absent (§13.1.3: "A
        // recipient MUST ignore If-Modified-Since if the request contains an If-None-Match
        // header field"); an invalid date is ignored.
        if let Some(date) = parse_date(value) {
            // §13.1.3: false (=> 304) iff the last modification is earlier than or equal to
            // the date.
            if secs(v.last_modified) <= secs(date) {
                return Outcome::NotModified;
            }
        }
    }

    // §13.2.2 step 5: If-Range decides whether Range applies (the caller ignores If-Range when
    // there is no Range, §13.1.5, and applies ranges to GET only).
    let range_allowed = match pre.if_range {
        None => true,
        Some(value) => if_range(value, v),
    };
    Outcome::Proceed { range_allowed }
}

/// §13.1.1 If-Match: `"*"` is true (the representation exists); otherwise true iff some listed
/// entity-tag matches by the *strong* comparison. A value with no well-formed entity-tag cannot
/// match and so is false (412), the safe side for a precondition meant to prevent lost updates.
fn if_match(value: &[u8], etag: &str) -> bool {
    EntityTags::new(value).any(|t| t == Tag::Star || strong_eq(t, etag))
}

/// §13.1.2 If-None-Match: `"*"` is false (the representation exists); otherwise false iff some
/// listed entity-tag matches by the *weak* comparison.
fn if_none_match(value: &[u8], etag: &str) -> bool {
    !EntityTags::new(value).any(|t| t == Tag::Star || weak_eq(t, etag))
}

/// §13.1.5 If-Range: true iff the value is an entity-tag equal to ours by the *strong*
/// comparison (so a weak tag never matches), or an HTTP-date exactly equal to
/// `Last-Modified`. Anything else — a list, `*`, an invalid value — is false, so the full
/// representation is sent rather than a part of something the client may not have.
fn if_range(value: &[u8], v: &Validators<'_>) -> bool {
    let value = trim_ows(value);
    if value.first() == Some(&b'"') || value.starts_with(b"W/") {
        let mut tags = EntityTags::new(value);
        return match (tags.next(), tags.next()) {
            (Some(t), None) => strong_eq(t, v.etag),
            _ => false,
        };
    }
    parse_date(value).is_some_and(|d| secs(d) == secs(v.last_modified))
}

/// One member of an entity-tag list (§8.8.3: `entity-tag = [ weak ] opaque-tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag<'a> {
    /// The `*` of If-Match / If-None-Match.
    Star,
    /// A well-formed entity-tag: the opaque-tag with its quotes.
    Etag { weak: bool, opaque: &'a [u8] },
    /// A malformed member; it matches nothing.
    Invalid,
}

/// §8.8.3.2 strong comparison: both strong and the opaque-tags equal octet by octet.
fn strong_eq(t: Tag<'_>, ours: &str) -> bool {
    let (ours_weak, ours_opaque) = split_weak(ours.as_bytes());
    matches!(t, Tag::Etag { weak: false, opaque } if !ours_weak && opaque == ours_opaque)
}

/// §8.8.3.2 weak comparison: the opaque-tags equal, whatever the weakness.
fn weak_eq(t: Tag<'_>, ours: &str) -> bool {
    let (_, ours_opaque) = split_weak(ours.as_bytes());
    matches!(t, Tag::Etag { opaque, .. } if opaque == ours_opaque)
}

/// Splits the `W/` prefix (case-sensitive, §8.8.3 `weak = %s"W/"`) off an entity-tag.
fn split_weak(tag: &[u8]) -> (bool, &[u8]) {
    match tag.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, tag),
    }
}

/// Iterator over the members of `#entity-tag` / `"*"`, tolerant of empty elements and OWS
/// (§5.6.1). Commas are legal inside an opaque-tag (§8.8.3 `etagc` includes `%x2C`), so the
/// list is tokenized, not split.
#[derive(Clone)]
struct EntityTags<'a> {
    rest: &'a [u8],
}

impl<'a> EntityTags<'a> {
    fn new(value: &'a [u8]) -> Self {
        EntityTags { rest: value }
    }
}

impl<'a> Iterator for EntityTags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        // Skip OWS and empty elements.
        let start = self.rest.iter().position(|&b| !matches!(b, b' ' | b'\t' | b','))?;
        let s = &self.rest[start..];
        let (weak, body) = split_weak(s);
        let parsed = if body.first() == Some(&b'"') {
            // §8.8.3: opaque-tag = DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
            body[1..]
                .iter()
                .position(|&b| !(b == 0x21 || b >= 0x23 && b != 0x7F))
                .filter(|&i| body[1 + i] == b'"')
                .map(|i| (&body[..i + 2], s.len() - body.len() + i + 2))
        } else {
            None
        };
        let (tag, consumed) = match parsed {
            Some((opaque, consumed)) => (Tag::Etag { weak, opaque }, consumed),
            None if s[0] == b'*' => (Tag::Star, 1),
            None => (Tag::Invalid, 0),
        };
        // The member must be followed by OWS and a comma or the end; otherwise it is malformed
        // and the rest of this element is skipped.
        let after = &s[consumed..];
        let ows = after.iter().position(|&b| !matches!(b, b' ' | b'\t')).unwrap_or(after.len());
        if ows == after.len() || after[ows] == b',' {
            self.rest = &after[ows..];
            Some(tag)
        } else {
            // Resynchronize at the next comma that is not inside quotes.
            let mut in_quotes = false;
            let mut end = s.len();
            for (i, &b) in s.iter().enumerate() {
                match b {
                    b'"' => in_quotes = !in_quotes,
                    b',' if !in_quotes => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            self.rest = &s[end..];
            Some(Tag::Invalid)
        }
    }
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

/// §5.6.7 HTTP-date in any of its three forms (IMF-fixdate, obsolete RFC 850, asctime);
/// `None` when invalid.
pub fn parse_date(value: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(trim_ows(value)).ok()?;
    httpdate::parse_http_date(s).ok()
}

/// Whole seconds relative to the epoch, so sub-second file times compare like their
/// `Last-Modified` rendering (§8.8.2 has one-second resolution).
fn secs(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::from(d.as_secs()),
        Err(e) => {
            let d = e.duration();
            // Round towards negative infinity, as the floor of the true time.
            -i128::from(d.as_secs()) - i128::from(d.subsec_nanos() > 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    // Sun, 06 Nov 1994 08:49:37 GMT
    const LM: u64 = 784_111_777;
    const IMF: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const RFC850: &str = "Sunday, 06-Nov-94 08:49:37 GMT";
    const ASCTIME: &str = "Sun Nov  6 08:49:37 1994";
    const IMF_BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const IMF_AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

    fn v() -> Validators<'static> {
        Validators { etag: "\"abc\"", last_modified: UNIX_EPOCH + Duration::from_secs(LM) }
    }

    const GO: Outcome = Outcome::Proceed { range_allowed: true };
    const GO_FULL: Outcome = Outcome::Proceed { range_allowed: false };
    const NM: Outcome = Outcome::NotModified;
    const PF: Outcome = Outcome::PreconditionFailed;

    /// One row: (if-match, if-none-match, if-modified-since, if-unmodified-since, if-range,
    /// expected).
    type Row = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Outcome,
    );

    #[test]
    fn decisions() {
        let rows: &[Row] = &[
            (None, None, None, None, None, GO),
            // §13.1.1 If-Match: strong comparison, lists, "*"
            (Some("\"abc\""), None, None, None, None, GO),
            (Some("\"xyz\""), None, None, None, None, PF),
            (Some("*"), None, None, None, None, GO),
            (Some("W/\"abc\""), None, None, None, None, PF),
            (Some("\"x\", \"abc\""), None, None, None, None, GO),
            (Some("\"x\",\"y\""), None, None, None, None, PF),
            (Some(" \"x\" ,, \"abc\" "), None, None, None, None, GO),
            (Some("abc"), None, None, None, None, PF),
            (Some(""), None, None, None, None, PF),
            (Some("\"abc"), None, None, None, None, PF),
            (Some("\"abc\"x, \"abc\""), None, None, None, None, GO),
            (Some("w/\"abc\""), None, None, None, None, PF),
            // §13.1.2 If-None-Match: weak comparison, lists, "*"
            (None, Some("\"abc\""), None, None, None, NM),
            (None, Some("W/\"abc\""), None, None, None, NM),
            (None, Some("\"xyz\""), None, None, None, GO),
            (None, Some("*"), None, None, None, NM),
            (None, Some("\"x\", W/\"abc\""), None, None, None, NM),
            (None, Some("\"x\", \"y\""), None, None, None, GO),
            (None, Some("\"a,b\", \"abc\""), None, None, None, NM),
            (None, Some("garbage"), None, None, None, GO),
            (None, Some("\"ABC\""), None, None, None, GO),
            // §13.1.3 If-Modified-Since in all three date formats; equal or later => 304
            (None, None, Some(IMF), None, None, NM),
            (None, None, Some(RFC850), None, None, NM),
            (None, None, Some(ASCTIME), None, None, NM),
            (None, None, Some(IMF_AFTER), None, None, NM),
            (None, None, Some(IMF_BEFORE), None, None, GO),
            (None, None, Some(" Sun, 06 Nov 1994 08:49:37 GMT "), None, None, NM),
            // invalid dates are ignored
            (None, None, Some("yesterday"), None, None, GO),
            (None, None, Some("Sun, 06 Nov 1994 08:49:37 UTC"), None, None, GO),
            (None, None, Some("Sun, 32 Nov 1994 08:49:37 GMT"), None, None, GO),
            (None, None, Some(""), None, None, GO),
            // more than one member (joined repeated lines) is ignored
            (
                None,
                None,
                Some("Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"),
                None,
                None,
                GO,
            ),
            // §13.1.4 If-Unmodified-Since: later than the date => 412
            (None, None, None, Some(IMF), None, GO),
            (None, None, None, Some(IMF_AFTER), None, GO),
            (None, None, None, Some(IMF_BEFORE), None, PF),
            (None, None, None, Some(RFC850), None, GO),
            (None, None, None, Some("Sun Nov  6 08:49:36 1994"), None, PF),
            (None, None, None, Some("not a date"), None, GO),
            // §13.2.2 evaluation order
            // If-Match present => If-Unmodified-Since ignored (step 2)
            (Some("\"abc\""), None, None, Some(IMF_BEFORE), None, GO),
            (Some("\"xyz\""), None, None, Some(IMF_AFTER), None, PF),
            // step 1 before step 3: 412 wins over 304
            (Some("\"xyz\""), Some("\"abc\""), None, None, None, PF),
            (None, Some("\"abc\""), None, Some(IMF_BEFORE), None, PF),
            // If-Match passes, If-None-Match fails => 304
            (Some("\"abc\""), Some("\"abc\""), None, None, None, NM),
            // If-None-Match overrides If-Modified-Since (step 4 only when step 3 absent)
            (None, Some("\"xyz\""), Some(IMF), None, None, GO),
            (None, Some("\"abc\""), Some(IMF_BEFORE), None, None, NM),
            (None, Some("garbage"), Some(IMF), None, None, GO),
            // §13.1.5 If-Range: strong etag or exact date; weak never matches
            (None, None, None, None, Some("\"abc\""), GO),
            (None, None, None, None, Some("W/\"abc\""), GO_FULL),
            (None, None, None, None, Some("\"xyz\""), GO_FULL),
            (None, None, None, None, Some(IMF), GO),
            (None, None, None, None, Some(RFC850), GO),
            (None, None, None, None, Some(ASCTIME), GO),
            (None, None, None, None, Some(IMF_AFTER), GO_FULL),
            (None, None, None, None, Some(IMF_BEFORE), GO_FULL),
            (None, None, None, None, Some("garbage"), GO_FULL),
            (None, None, None, None, Some(""), GO_FULL),
            (None, None, None, None, Some("*"), GO_FULL),
            (None, None, None, None, Some("\"abc\", \"abc\""), GO_FULL),
            // If-Range is evaluated last: a 304 or 412 comes first
            (None, Some("\"abc\""), None, None, Some("\"abc\""), NM),
            (Some("\"xyz\""), None, None, None, Some("\"abc\""), PF),
            (None, Some("\"xyz\""), None, None, Some("\"xyz\""), GO_FULL),
        ];
        for (im, inm, ims, ius, ir, want) in rows {
            let pre = Preconditions {
                if_match: im.map(str::as_bytes),
                if_none_match: inm.map(str::as_bytes),
                if_modified_since: ims.map(str::as_bytes),
                if_unmodified_since: ius.map(str::as_bytes),
                if_range: ir.map(str::as_bytes),
            };
            assert_eq!(evaluate(&pre, &v()), *want, "{pre:?}");
        }
    }

    /// A weak validator of our own never matches strongly (§8.8.3.2).
    #[test]
    fn weak_own_etag() {
        let weak = Validators { etag: "W/\"abc\"", last_modified: UNIX_EPOCH };
        let im = Preconditions { if_match: Some(b"\"abc\""), ..Default::default() };
        assert_eq!(evaluate(&im, &weak), PF);
        let inm = Preconditions { if_none_match: Some(b"\"abc\""), ..Default::default() };
        assert_eq!(evaluate(&inm, &weak), NM);
    }

    /// Sub-second modification times compare at one-second resolution.
    #[test]
    fn subsecond_last_modified() {
        let v = Validators {
            etag: "\"abc\"",
            last_modified: UNIX_EPOCH + Duration::from_millis(LM * 1000 + 999),
        };
        let ims = Preconditions { if_modified_since: Some(IMF.as_bytes()), ..Default::default() };
        assert_eq!(evaluate(&ims, &v), NM);
        let ir = Preconditions { if_range: Some(IMF.as_bytes()), ..Default::default() };
        assert_eq!(evaluate(&ir, &v), GO);
        assert_eq!(secs(UNIX_EPOCH - Duration::from_millis(1500)), -2);
    }

    #[test]
    fn tokenizer() {
        let got: Vec<_> = EntityTags::new(b" W/\"a\" , \"b,c\",*, x ,\"\"").collect();
        assert_eq!(
            got,
            vec![
                Tag::Etag { weak: true, opaque: b"\"a\"" },
                Tag::Etag { weak: false, opaque: b"\"b,c\"" },
                Tag::Star,
                Tag::Invalid,
                Tag::Etag { weak: false, opaque: b"\"\"" },
            ]
        );
    }

    fn field() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            Just(b"\"abc\"".to_vec()),
            Just(b"W/\"abc\"".to_vec()),
            Just(b"*".to_vec()),
            Just(IMF.as_bytes().to_vec()),
        ])
    }

    proptest! {
        /// No input panics.
        #[test]
        fn never_panics(im in field(), inm in field(), ims in field(), ius in field(),
                        ir in field(), lm in any::<u32>()) {
            let pre = Preconditions {
                if_match: im.as_deref(),
                if_none_match: inm.as_deref(),
                if_modified_since: ims.as_deref(),
                if_unmodified_since: ius.as_deref(),
                if_range: ir.as_deref(),
            };
            let v = Validators { etag: "\"abc\"", last_modified: UNIX_EPOCH + Duration::from_secs(u64::from(lm)) };
            let out = evaluate(&pre, &v);
            // Without If-Range the range is always allowed when proceeding.
            if pre.if_range.is_none() {
                prop_assert!(out != GO_FULL);
            }
        }
    }
}
