//! The `Cache-Status` response field (RFC 9211): one list member per answer, naming this cache
//! and what it did, e.g. `ringcast; hit; ttl=376` or `ringcast; fwd=miss; stored`.
//!
//! The member is a Structured Field item (RFC 8941 §3.1.2): the cache name is a token,
//! parameters follow in the order RFC 9211 §2 lists them. A `detail` that is not a valid
//! token is written as a string.
#![forbid(unsafe_code)]

/// Why the request went forward (RFC 9211 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fwd {
    /// The cache was configured not to handle the request.
    Bypass,
    /// The method is not cacheable.
    Method,
    /// No stored response for the key.
    UriMiss,
    /// A stored response for the key, none for this variant.
    VaryMiss,
    /// The cache did not say which of the above.
    Miss,
    /// The stored response was stale (revalidation).
    Stale,
    /// Only part of the content was stored (slices missing).
    Partial,
}

impl Fwd {
    fn token(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Miss => "miss",
            Fwd::Stale => "stale",
            Fwd::Partial => "partial",
        }
    }
}

/// One `Cache-Status` member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheStatus<'a> {
    /// Served from the cache without going forward (§2.1).
    pub(crate) hit: bool,
    /// Went forward, and why (§2.2).
    pub(crate) fwd: Option<Fwd>,
    /// The origin's status when it differs from the one sent (§2.3), e.g. 304.
    pub(crate) fwd_status: Option<u16>,
    /// Remaining freshness in seconds, negative when stale (§2.4).
    pub(crate) ttl: Option<i64>,
    /// The forwarded response was stored (§2.5).
    pub(crate) stored: bool,
    /// The request was coalesced with another's (§2.6).
    pub(crate) collapsed: bool,
    /// Implementation detail (§2.8), e.g. why a response was not stored.
    pub(crate) detail: Option<&'a str>,
}

impl CacheStatus<'_> {
    /// Appends `Cache-Status: <cache_name>; ...\r\n` to `out`.
    pub(crate) fn write_field(&self, cache_name: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Cache-Status: ");
        self.write_member(cache_name, out);
        out.extend_from_slice(b"\r\n");
    }

    /// Appends the list member alone.
    pub(crate) fn write_member(&self, cache_name: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(cache_name.as_bytes());
        if self.hit {
            out.extend_from_slice(b"; hit");
        }
        if let Some(f) = self.fwd {
            out.extend_from_slice(b"; fwd=");
            out.extend_from_slice(f.token().as_bytes());
        }
        if let Some(s) = self.fwd_status {
            out.extend_from_slice(format!("; fwd-status={s}").as_bytes());
        }
        if let Some(t) = self.ttl {
            out.extend_from_slice(format!("; ttl={t}").as_bytes());
        }
        if self.stored {
            out.extend_from_slice(b"; stored");
        }
        if self.collapsed {
            out.extend_from_slice(b"; collapsed");
        }
        if let Some(d) = self.detail {
            out.extend_from_slice(b"; detail=");
            if is_sf_token(d) {
                out.extend_from_slice(d.as_bytes());
            } else {
                out.push(b'"');
                for c in d.bytes().filter(|c| (0x20..0x7f).contains(c)) {
                    if c == b'"' || c == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(c);
                }
                out.push(b'"');
            }
        }
    }
}

/// RFC 8941 §3.3.4: `( ALPHA / "*" ) *( tchar / ":" / "/" )`.
fn is_sf_token(s: &str) -> bool {
    let b = s.as_bytes();
    let tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c);
    matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'*')
        && b.iter().all(|&c| tchar(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_table() {
        let d = CacheStatus::default();
        let cases: &[(CacheStatus, &str)] = &[
            (CacheStatus { hit: true, ttl: Some(376), ..d }, "ringcast; hit; ttl=376"),
            (CacheStatus { fwd: Some(Fwd::Miss), stored: true, ..d }, "ringcast; fwd=miss; stored"),
            (
                CacheStatus { fwd: Some(Fwd::UriMiss), collapsed: true, ..d },
                "ringcast; fwd=uri-miss; collapsed",
            ),
            (
                CacheStatus {
                    fwd: Some(Fwd::Stale),
                    fwd_status: Some(304),
                    ttl: Some(60),
                    stored: true,
                    ..d
                },
                "ringcast; fwd=stale; fwd-status=304; ttl=60; stored",
            ),
            // Served stale: the ttl is negative (RFC 9211 §2.4).
            (
                CacheStatus {
                    hit: true,
                    ttl: Some(-5),
                    detail: Some("stale-while-revalidate"),
                    ..d
                },
                "ringcast; hit; ttl=-5; detail=stale-while-revalidate",
            ),
            (CacheStatus { fwd: Some(Fwd::Bypass), ..d }, "ringcast; fwd=bypass"),
            (CacheStatus { fwd: Some(Fwd::Method), ..d }, "ringcast; fwd=method"),
            (CacheStatus { fwd: Some(Fwd::VaryMiss), ..d }, "ringcast; fwd=vary-miss"),
            (CacheStatus { fwd: Some(Fwd::Partial), ..d }, "ringcast; fwd=partial"),
            (
                CacheStatus { fwd: Some(Fwd::Miss), detail: Some("no-store"), ..d },
                "ringcast; fwd=miss; detail=no-store",
            ),
            // Not a token: a string, escaped (RFC 8941 §3.3.3).
            (
                CacheStatus { detail: Some("origin \"down\"\n"), ..d },
                "ringcast; detail=\"origin \\\"down\\\"\"",
            ),
            (CacheStatus { detail: Some("1x"), ..d }, "ringcast; detail=\"1x\""),
        ];
        for (cs, want) in cases {
            let mut out = Vec::new();
            cs.write_member("ringcast", &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), *want);
        }
        let mut out = Vec::new();
        CacheStatus { hit: true, ..d }.write_field("edge-1", &mut out);
        assert_eq!(out, b"Cache-Status: edge-1; hit\r\n");
    }
}
