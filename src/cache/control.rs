//! `Cache-Control` response directives (RFC 9111 §5.2.2) and the RFC 5861 extensions.
//!
//! Parsing never fails: unknown directives are ignored (§5.2.3). A directive that appears
//! twice keeps its first value (§4.2.1 allows "the first occurrence"). A delta-seconds value
//! that is not a number makes the response stale (max-age / s-maxage become 0, §4.2.1: invalid
//! freshness information means stale); one larger than 2^31 is taken as 2^31 (§1.2.2).
//! The qualified forms `no-cache="f"` and `private="f"` are treated as their unqualified forms
//! (§5.2.2.4, §5.2.2.7 allow it), the conservative reading for a shared cache.
#![forbid(unsafe_code)]

use crate::cache::fields::{trim_ows, Fields};

/// Largest delta-seconds value kept (RFC 9111 §1.2.2).
pub(crate) const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// The response directives a shared cache acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheControl {
    /// §5.2.2.5.
    pub(crate) no_store: bool,
    /// §5.2.2.4: never used without successful revalidation.
    pub(crate) no_cache: bool,
    /// §5.2.2.7: not for a shared cache.
    pub(crate) private: bool,
    /// §5.2.2.9.
    pub(crate) public: bool,
    /// §5.2.2.2: no stale use once stale.
    pub(crate) must_revalidate: bool,
    /// §5.2.2.8: must-revalidate for shared caches.
    pub(crate) proxy_revalidate: bool,
    /// §5.2.2.3: an intermediary must not transform the content.
    pub(crate) no_transform: bool,
    /// §5.2.2.1.
    pub(crate) max_age: Option<u64>,
    /// §5.2.2.10.
    pub(crate) s_maxage: Option<u64>,
    /// RFC 5861 §3.
    pub(crate) stale_while_revalidate: Option<u64>,
    /// RFC 5861 §4.
    pub(crate) stale_if_error: Option<u64>,
}

impl CacheControl {
    /// Parses every `Cache-Control` line of `fields`.
    pub(crate) fn from_fields(fields: &Fields) -> Self {
        let mut cc = CacheControl::default();
        for line in fields.get_all("cache-control") {
            cc.parse_line(line);
        }
        cc
    }

    fn parse_line(&mut self, line: &[u8]) {
        for directive in split_list(line) {
            let (name, value) = match directive.iter().position(|&b| b == b'=') {
                Some(i) => {
                    (trim_ows(&directive[..i]), Some(unquote(trim_ows(&directive[i + 1..]))))
                }
                None => (directive, None),
            };
            let name = name.to_ascii_lowercase();
            let flag = match name.as_slice() {
                b"no-store" => &mut self.no_store,
                b"no-cache" => &mut self.no_cache,
                b"private" => &mut self.private,
                b"public" => &mut self.public,
                b"must-revalidate" => &mut self.must_revalidate,
                b"proxy-revalidate" => &mut self.proxy_revalidate,
                b"no-transform" => &mut self.no_transform,
                b"max-age" => {
                    self.max_age = self.max_age.or(Some(delta_seconds(value).unwrap_or(0)));
                    continue;
                }
                b"s-maxage" => {
                    self.s_maxage = self.s_maxage.or(Some(delta_seconds(value).unwrap_or(0)));
                    continue;
                }
                // RFC 5861: an invalid value grants nothing.
                b"stale-while-revalidate" => {
                    self.stale_while_revalidate =
                        self.stale_while_revalidate.or(delta_seconds(value));
                    continue;
                }
                b"stale-if-error" => {
                    self.stale_if_error = self.stale_if_error.or(delta_seconds(value));
                    continue;
                }
                _ => continue,
            };
            *flag = true;
        }
    }
}

/// Splits a list value on commas outside quoted strings, trimming and skipping empty members
/// (RFC 9110 §5.6.1, §5.6.4).
pub(crate) fn split_list(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut cuts = Vec::new();
    for (i, &b) in line.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_quotes && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == b',' && !in_quotes {
            cuts.push((start, i));
            start = i + 1;
        }
    }
    cuts.push((start, line.len()));
    cuts.into_iter().map(move |(a, b)| trim_ows(&line[a..b])).filter(|d| !d.is_empty())
}

fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// delta-seconds = 1*DIGIT (RFC 9111 §1.2.2), capped at 2^31; `None` when not a number.
pub(crate) fn delta_seconds(value: Option<&[u8]>) -> Option<u64> {
    let v = value?;
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in v {
        n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
    }
    Some(n.min(DELTA_SECONDS_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(lines: &[&str]) -> CacheControl {
        let mut f = Fields::new();
        for l in lines {
            f.push("Cache-Control", l.as_bytes());
        }
        CacheControl::from_fields(&f)
    }

    #[test]
    fn directives_table() {
        let d = CacheControl::default();
        let cases: &[(&[&str], CacheControl)] = &[
            (&[], d),
            (&["max-age=60"], CacheControl { max_age: Some(60), ..d }),
            // §5.2: names are case-insensitive; quoted values accepted.
            (&["Max-Age=\"60\", PUBLIC"], CacheControl { max_age: Some(60), public: true, ..d }),
            // §4.2.1: the first occurrence is used, across lines too.
            (&["max-age=5", "max-age=10"], CacheControl { max_age: Some(5), ..d }),
            // §4.2.1: invalid freshness information → stale.
            (&["max-age=abc"], CacheControl { max_age: Some(0), ..d }),
            (&["s-maxage=-1"], CacheControl { s_maxage: Some(0), ..d }),
            (&["max-age"], CacheControl { max_age: Some(0), ..d }),
            // §1.2.2: capped at 2^31.
            (
                &["max-age=99999999999999999999999"],
                CacheControl { max_age: Some(DELTA_SECONDS_MAX), ..d },
            ),
            (
                &["no-store, no-cache=\"set-cookie, x\", private=\"a\""],
                CacheControl { no_store: true, no_cache: true, private: true, ..d },
            ),
            (
                &["must-revalidate,proxy-revalidate, no-transform"],
                CacheControl {
                    must_revalidate: true,
                    proxy_revalidate: true,
                    no_transform: true,
                    ..d
                },
            ),
            // RFC 5861; an invalid value grants nothing.
            (
                &["max-age=1, stale-while-revalidate=30, stale-if-error=600"],
                CacheControl {
                    max_age: Some(1),
                    stale_while_revalidate: Some(30),
                    stale_if_error: Some(600),
                    ..d
                },
            ),
            (&["stale-if-error=x"], d),
            // §5.2.3: unknown extensions ignored; empty members ignored.
            (&[" , community=\"UCI\", ,immutable"], d),
        ];
        for (lines, want) in cases {
            assert_eq!(cc(lines), *want, "{lines:?}");
        }
    }
}
