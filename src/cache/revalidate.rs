//! Revalidation (RFC 9111 §4.3): the conditional fields sent to the origin for a stored
//! response, and the update of that response by a `304 Not Modified`.
//!
//! A `304` only ever answers a conditional request the edge built from one stored response,
//! so the selection of §4.3.4 reduces to one check: a validator the `304` carries must agree
//! with the stored one; a `304` without validators refers to the response we asked about.
//! On [`Update::NotSelected`] the caller refetches unconditionally (§4.3.4: the 304 "cannot be
//! used to update"). After [`Update::Updated`] the caller recomputes freshness from the
//! updated fields and the new request/response times.
#![forbid(unsafe_code)]

use crate::cache::fields::{is_hop_by_hop, trim_ows, Fields};

/// Conditional request fields for revalidating a response stored with `stored` fields
/// (§4.3.1): `If-None-Match` with its entity-tag, `If-Modified-Since` with its
/// `Last-Modified` (both when both exist; the origin evaluates `If-None-Match` first,
/// RFC 9110 §13.2.2).
pub(crate) fn conditional_fields(stored: &Fields) -> Fields {
    let mut out = Fields::new();
    if let Some(etag) = stored.get("etag") {
        out.push("If-None-Match", trim_ows(etag));
    }
    if let Some(lm) = stored.get("last-modified") {
        out.push("If-Modified-Since", trim_ows(lm));
    }
    out
}

/// The outcome of applying a `304`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Update {
    /// The stored fields were refreshed; the body stays.
    Updated,
    /// The `304` names another representation: the stored response is not updated.
    NotSelected,
}

/// Fields a `304` never replaces: hop-by-hop ones (§3.1), and those describing the stored
/// content's framing or extent, which a `304` cannot (§3.2: `Content-Length`).
fn keeps_stored(name: &str) -> bool {
    is_hop_by_hop(name)
        || ["content-length", "content-range", "content-encoding"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
}

/// Applies a `304`'s fields to the stored response's (§4.3.4): each field the `304` carries
/// replaces every stored line of that name.
pub(crate) fn apply_not_modified(stored: &mut Fields, not_modified: &Fields) -> Update {
    if let Some(new) = not_modified.get("etag") {
        match stored.get("etag") {
            Some(old) if trim_ows(old) == trim_ows(new) => {}
            _ => return Update::NotSelected,
        }
    } else if let Some(new) = not_modified.get("last-modified") {
        match stored.get("last-modified") {
            Some(old) if trim_ows(old) == trim_ows(new) => {}
            _ => return Update::NotSelected,
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in not_modified.iter() {
        if !keeps_stored(name) && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name);
        }
    }
    for name in names {
        stored.remove(name);
        for value in not_modified.get_all(name) {
            stored.push(name, value);
        }
    }
    Update::Updated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(lines: &[(&str, &str)]) -> Fields {
        Fields::from_lines(lines)
    }

    /// Header field lines of a table case.
    type Lines = &'static [(&'static str, &'static str)];

    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn conditional_fields_carry_the_stored_validators() {
        // §4.3.1.
        let cases: &[(Lines, Lines)] = &[
            (&[("ETag", " W/\"x\" ")], &[("If-None-Match", "W/\"x\"")]),
            (&[("Last-Modified", LM)], &[("If-Modified-Since", LM)]),
            (
                &[("Last-Modified", LM), ("ETag", "\"a\"")],
                &[("If-None-Match", "\"a\""), ("If-Modified-Since", LM)],
            ),
            (&[("Content-Type", "text/plain")], &[]),
        ];
        for (stored, want) in cases {
            assert_eq!(conditional_fields(&f(stored)), f(want), "{stored:?}");
        }
    }

    #[test]
    fn not_modified_updates_the_stored_fields() {
        // §4.3.4: fields in the 304 replace the stored ones; framing and hop-by-hop stay.
        let mut stored = f(&[
            ("ETag", "\"a\""),
            ("Cache-Control", "max-age=10"),
            ("Content-Length", "1000"),
            ("Date", LM),
            ("X-Old", "1"),
            ("X-Multi", "1"),
            ("X-Multi", "2"),
        ]);
        let nm = f(&[
            ("ETag", "\"a\""),
            ("Cache-Control", "max-age=99"),
            ("Content-Length", "0"),
            ("Connection", "close"),
            ("Date", "Mon, 07 Nov 1994 08:49:37 GMT"),
            ("x-multi", "3"),
        ]);
        assert_eq!(apply_not_modified(&mut stored, &nm), Update::Updated);
        assert_eq!(stored.get("cache-control"), Some(&b"max-age=99"[..]));
        assert_eq!(stored.get("content-length"), Some(&b"1000"[..]));
        assert_eq!(stored.get("date"), Some(&b"Mon, 07 Nov 1994 08:49:37 GMT"[..]));
        assert_eq!(stored.get("x-old"), Some(&b"1"[..]));
        assert_eq!(stored.get_all("x-multi").collect::<Vec<_>>(), [&b"3"[..]]);
        assert!(!stored.contains("connection"));
    }

    #[test]
    fn not_modified_for_another_representation_is_not_applied() {
        // §4.3.4 selection.
        let stored_lines =
            [("ETag", "\"a\""), ("Last-Modified", LM), ("Cache-Control", "max-age=1")];
        let cases: &[(&[(&str, &str)], Update)] = &[
            (&[("ETag", "\"a\"")], Update::Updated),
            (&[("ETag", "\"b\"")], Update::NotSelected),
            (&[("Last-Modified", LM)], Update::Updated),
            (&[("Last-Modified", "Mon, 07 Nov 1994 08:49:37 GMT")], Update::NotSelected),
            // Answers our own conditional request: it refers to the stored response.
            (&[("Cache-Control", "max-age=5")], Update::Updated),
        ];
        for (nm, want) in cases {
            let mut stored = f(&stored_lines);
            let before = stored.clone();
            assert_eq!(apply_not_modified(&mut stored, &f(nm)), *want, "{nm:?}");
            if *want == Update::NotSelected {
                assert_eq!(stored, before);
            }
        }
        let mut no_etag = f(&[("Cache-Control", "max-age=1")]);
        assert_eq!(apply_not_modified(&mut no_etag, &f(&[("ETag", "\"a\"")])), Update::NotSelected);
    }
}
