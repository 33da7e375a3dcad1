//! What a response says about the caches it passed: `Cache-Status` (RFC 9211) and `X-Cache`.
//!
//! `Cache-Status` is a Structured Fields list (RFC 8941 §3.1), one member per
//! cache, ordered from the origin towards the client: the *last* member is the
//! cache closest to the client, the one whose answer the client saw. Several
//! field lines form one list (RFC 9110 §5.3), so the last member of the last
//! line counts. That member is a [`CacheClass::Hit`] when it carries the `hit`
//! parameter (a Boolean, true when bare or `?1`; RFC 9211 §2.1), a
//! [`CacheClass::Miss`] when it carries `fwd` (the cache forwarded the request:
//! `uri-miss`, `vary-miss`, `miss`, `request`, `stale`, `partial`, `bypass`,
//! `method`; §2.2), and [`CacheClass::Other`] otherwise.
//!
//! `X-Cache` is not standardised; common forms are `HIT`, `MISS`, `HIT from
//! name` (Squid, CloudFront) and lists such as `MISS, HIT` (Fastly, edge last).
//! The first word of the last list element decides: `hit` or `miss`, case
//! aside; anything else is `Other`. When both fields are present,
//! `Cache-Status` wins. A response with neither is [`CacheClass::None`].

#![forbid(unsafe_code)]

use super::response::trim_ows;

/// How the cache nearest the client answered, as the response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheClass {
    /// The response carried no cache field.
    #[default]
    None,
    /// Served from the cache.
    Hit,
    /// Forwarded by the cache (to the origin or a parent).
    Miss,
    /// A cache field that says neither.
    Other,
}

/// Classifies one `Cache-Status` field line's value.
pub fn classify_cache_status(value: &[u8]) -> CacheClass {
    let Some(member) =
        split_outside_quotes(value, b',').map(trim_ows).filter(|m| !m.is_empty()).last()
    else {
        return CacheClass::Other;
    };
    let mut class = CacheClass::Other;
    for param in split_outside_quotes(member, b';').skip(1).map(trim_ows) {
        let (key, val) = match param.iter().position(|&b| b == b'=') {
            Some(i) => (&param[..i], Some(trim_ows(&param[i + 1..]))),
            None => (param, None),
        };
        // RFC 8941 §3.1.2: keys are lowercase; a bare key is Boolean true.
        match (key, val) {
            (b"hit", None | Some(b"?1")) => return CacheClass::Hit,
            (b"fwd", Some(v)) if !v.is_empty() => class = CacheClass::Miss,
            _ => {}
        }
    }
    class
}

/// Classifies one `X-Cache` field line's value.
pub fn classify_x_cache(value: &[u8]) -> CacheClass {
    let Some(last) = value.split(|&b| b == b',').map(trim_ows).rfind(|m| !m.is_empty()) else {
        return CacheClass::Other;
    };
    let word = last.split(|&b| b == b' ' || b == b'\t').next().unwrap_or_default();
    if word.eq_ignore_ascii_case(b"hit") {
        CacheClass::Hit
    } else if word.eq_ignore_ascii_case(b"miss") {
        CacheClass::Miss
    } else {
        CacheClass::Other
    }
}

/// Splits `s` at `sep` except inside Structured Fields strings (`"..."` with `\` escapes).
fn split_outside_quotes(s: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, &b) in s.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                _ if b == sep && !quoted => {
                    rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_status_members() {
        use CacheClass::*;
        // RFC 9211 §2 and its examples (§3).
        let cases: &[(&str, CacheClass)] = &[
            ("ExampleCache; hit", Hit),
            ("ExampleCache; hit=?1", Hit),
            ("ExampleCache; hit=?0", Other),
            ("ExampleCache; fwd=uri-miss", Miss),
            ("ExampleCache; fwd=vary-miss; stored", Miss),
            ("ExampleCache; fwd=stale; fwd-status=304", Miss),
            ("ExampleCache; fwd=uri-miss; collapsed", Miss),
            ("ExampleCache; hit; ttl=30", Hit),
            ("ExampleCache; hit; ttl=-412", Hit),
            ("ExampleCache; fwd=request; detail=\"no-cache\"", Miss),
            ("ExampleCache", Other),
            ("ExampleCache; ttl=30", Other),
            // Origin-side cache first, client-side last: the last one answered the client.
            ("OriginCache; hit; ttl=1100, \"CDN Company Here\"; hit; ttl=545", Hit),
            ("OriginCache; hit, CDN; fwd=uri-miss", Miss),
            ("OriginCache; fwd=miss, CDN; hit", Hit),
            // Quoted strings may hold the separators.
            ("Edge; hit; detail=\"a, b; c\"", Hit),
            ("Edge; fwd=miss; detail=\"x, Other; hit\"", Miss),
            ("\"Edge, Inc\"; hit", Hit),
            ("Edge; detail=\"quote \\\" , hit\"", Other),
            ("Edge; hit,", Hit),
            ("", Other),
            ("  ", Other),
        ];
        for (value, want) in cases {
            assert_eq!(classify_cache_status(value.as_bytes()), *want, "{value:?}");
        }
    }

    #[test]
    fn x_cache_values() {
        use CacheClass::*;
        let cases: &[(&str, CacheClass)] = &[
            ("HIT", Hit),
            ("hit", Hit),
            ("MISS", Miss),
            ("Hit from cloudfront", Hit),
            ("MISS from squid.example:3128", Miss),
            ("MISS, HIT", Hit),
            ("HIT, MISS", Miss),
            ("TCP_HIT", Other),
            ("EXPIRED", Other),
            ("", Other),
        ];
        for (value, want) in cases {
            assert_eq!(classify_x_cache(value.as_bytes()), *want, "{value:?}");
        }
    }
}
