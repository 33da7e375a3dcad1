//! Cache keys: scheme + host + path + normalised query, and the fixed-size id that names an
//! object's files on disk.
//!
//! Normalisation only merges requests that the origin answers the same way:
//! - the scheme and host are lowercased and a default port is dropped (RFC 3986 §6.2.2.1,
//!   §6.2.3);
//! - the path is kept byte for byte (percent-encodings are not decoded: `%2F` and `/` may name
//!   different resources);
//! - the query's parameters are sorted (the order of `a=1&b=2` carries no meaning for the
//!   origins an edge fronts), empty ones dropped, and parameters named in
//!   [`KeyRules::ignored_query_params`] removed — signed-URL tokens and tracking parameters
//!   that differ per client but select the same object. The origin still receives the
//!   request's original query.
//!
//! The id is SHA-256 over the key (and, for a `Vary: Accept-Encoding` variant, the normalised
//! request `Accept-Encoding`), so file names are fixed-length, uniformly spread, and stable
//! across restarts and versions.
#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};

use crate::cache::fields::{list_members, trim_ows};

/// Key rules from the configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRules {
    /// Query parameter names (exact, case-sensitive) left out of the key.
    pub(crate) ignored_query_params: Vec<String>,
}

/// A primary cache key, as text: `scheme://host/path?sorted-query`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey(String);

/// The 32-byte id naming one stored variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjectId(pub(crate) [u8; 32]);

impl ObjectId {
    /// Lowercase hexadecimal, 64 characters: the object's file name.
    pub(crate) fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }

    /// Parses [`ObjectId::hex`]'s form back; `None` for anything else.
    pub(crate) fn from_hex(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut id = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            id[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(ObjectId(id))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl CacheKey {
    /// The key of a request for `target` (origin-form: path and optional query) on `host`.
    pub(crate) fn new(scheme: &str, host: &str, target: &str, rules: &KeyRules) -> Self {
        let scheme = scheme.to_ascii_lowercase();
        let mut host = host.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => Some(":80"),
            "https" => Some(":443"),
            _ => None,
        };
        if let Some(p) = default_port {
            if let Some(stripped) = host.strip_suffix(p) {
                host.truncate(stripped.len());
            }
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let mut key = format!("{scheme}://{host}{path}");
        if let Some(q) = query {
            let mut params: Vec<&str> = q
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| {
                    let name = p.split_once('=').map_or(*p, |(n, _)| n);
                    !rules.ignored_query_params.iter().any(|i| i == name)
                })
                .collect();
            params.sort_unstable();
            if !params.is_empty() {
                key.push('?');
                key.push_str(&params.join("&"));
            }
        }
        CacheKey(key)
    }

    /// The key as text (for metadata and logs).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a key read back from metadata.
    pub(crate) fn from_stored(s: String) -> Self {
        CacheKey(s)
    }

    /// The id of the variant selected by `secondary` (the normalised `Accept-Encoding` when
    /// the stored response varies on it, [`normalize_accept_encoding`]; `None` otherwise).
    pub(crate) fn id(&self, secondary: Option<&[u8]>) -> ObjectId {
        let mut h = Sha256::new();
        h.update(self.0.as_bytes());
        if let Some(s) = secondary {
            // A NUL cannot occur in a key, so a key and a variant never hash the same input.
            h.update(b"\0accept-encoding=");
            h.update(s);
        }
        ObjectId(h.finalize().into())
    }
}

/// `Accept-Encoding` in a canonical form for the `Vary` secondary key (RFC 9111 §4.1 allows
/// normalisation that keeps the field's meaning): members lowercased, whitespace removed,
/// `q` values without trailing zeros, members sorted. An absent field and an empty one are
/// different requests (RFC 9110 §12.5.3) and stay different.
pub(crate) fn normalize_accept_encoding(value: Option<&[u8]>) -> Vec<u8> {
    let Some(value) = value else {
        return b"(absent)".to_vec();
    };
    let mut members: Vec<Vec<u8>> = list_members(value)
        .map(|m| {
            let mut parts = m.split(|&b| b == b';').map(trim_ows);
            let mut out = parts.next().unwrap_or_default().to_ascii_lowercase();
            for p in parts {
                let p: Vec<u8> = p.iter().filter(|&&b| b != b' ' && b != b'\t').copied().collect();
                out.push(b';');
                match p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q=")) {
                    Some(q) => {
                        out.extend_from_slice(b"q=");
                        out.extend_from_slice(trim_qvalue(q));
                    }
                    None => out.extend(p.to_ascii_lowercase()),
                }
            }
            out
        })
        .collect();
    members.sort_unstable();
    members.join(&b","[..])
}

/// `1.000` → `1`, `0.50` → `0.5`, `0.` → `0`.
fn trim_qvalue(q: &[u8]) -> &[u8] {
    if !q.contains(&b'.') {
        return q;
    }
    let mut end = q.len();
    while end > 0 && q[end - 1] == b'0' {
        end -= 1;
    }
    if end > 0 && q[end - 1] == b'.' {
        end -= 1;
    }
    &q[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(ignored: &[&str]) -> KeyRules {
        KeyRules { ignored_query_params: ignored.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn keys_normalise_what_carries_no_meaning() {
        let r = rules(&["token", "expires"]);
        let cases: &[(&str, &str, &str, &str)] = &[
            // (scheme, host, target, key)
            ("http", "Example.COM", "/a/b.mp4", "http://example.com/a/b.mp4"),
            // RFC 3986 §6.2.3: the default port is the same authority.
            ("http", "example.com:80", "/x", "http://example.com/x"),
            ("HTTPS", "example.com:443", "/x", "https://example.com/x"),
            ("http", "example.com:8080", "/x", "http://example.com:8080/x"),
            ("https", "example.com:80", "/x", "https://example.com:80/x"),
            // Parameters sorted; empty ones dropped; an empty query is no query.
            ("http", "h", "/v?b=2&a=1", "http://h/v?a=1&b=2"),
            ("http", "h", "/v?&&b=2&&a=1&", "http://h/v?a=1&b=2"),
            ("http", "h", "/v?", "http://h/v"),
            // Ignored parameters removed, by exact name, with or without a value.
            ("http", "h", "/v?token=abc&a=1&expires=9", "http://h/v?a=1"),
            ("http", "h", "/v?token", "http://h/v"),
            ("http", "h", "/v?Token=abc&tokens=1", "http://h/v?Token=abc&tokens=1"),
            // The path is not decoded: %2F is not a separator.
            ("http", "h", "/a%2Fb", "http://h/a%2Fb"),
        ];
        for (scheme, host, target, want) in cases {
            assert_eq!(CacheKey::new(scheme, host, target, &r).as_str(), *want, "{target}");
        }
    }

    #[test]
    fn ids_are_stable_distinct_and_round_trip_through_hex() {
        let k = CacheKey::new("http", "h", "/x", &KeyRules::default());
        // SHA-256("http://h/x"): fixed across builds and restarts.
        assert_eq!(
            k.id(None).hex(),
            "86ca99740210faa002c7e540649a2601947e24afbb48775eddb3870bc9b97601"
        );
        let again = CacheKey::from_stored(k.as_str().to_string());
        assert_eq!(again.id(None), k.id(None));
        assert_ne!(k.id(None), k.id(Some(b"gzip")));
        assert_ne!(k.id(Some(b"br")), k.id(Some(b"gzip")));
        let hex = k.id(Some(b"gzip")).hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(ObjectId::from_hex(&hex), Some(k.id(Some(b"gzip"))));
        for bad in ["", "zz", &hex[..63], &hex.to_uppercase(), &format!("{}g", &hex[..63])] {
            assert_eq!(ObjectId::from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn accept_encoding_normalisation_keeps_meaning() {
        // RFC 9111 §4.1: normalisation may remove whitespace, fold case, order list members.
        let n = |v: Option<&str>| {
            String::from_utf8(normalize_accept_encoding(v.map(str::as_bytes))).unwrap()
        };
        assert_eq!(n(Some("gzip, br")), n(Some("BR,gzip")));
        assert_eq!(n(Some("gzip ; q=1.000, br;q=0.50")), "br;q=0.5,gzip;q=1");
        assert_eq!(n(Some("identity;q=0.")), "identity;q=0");
        assert_ne!(n(Some("gzip")), n(Some("gzip;q=0")));
        // RFC 9110 §12.5.3: absent (anything goes) differs from empty (identity only).
        assert_ne!(n(None), n(Some("")));
        assert_eq!(n(Some("")), "");
    }
}
