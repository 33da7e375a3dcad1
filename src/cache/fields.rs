//! Header fields of a stored or forwarded message, and the hop-by-hop rule of RFC 9110 §7.6.1.
//!
//! Names keep the case they arrived with (a cache passes fields on as received) and compare
//! case-insensitively (RFC 9110 §5.1). Values are bytes: field values may carry obs-text.
//! Several lines of one field stay separate, so `Set-Cookie` survives; [`Fields::joined`] gives
//! the list form of §5.3 for fields that are lists.
#![forbid(unsafe_code)]

use std::borrow::Cow;

/// The fields that belong to one connection, never forwarded nor stored (RFC 9110 §7.6.1;
/// `Keep-Alive` and `Proxy-Connection` are the pre-standard forms the section names). The
/// fields a `Connection` value names are hop-by-hop too ([`Fields::strip_hop_by_hop`]).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is one of the fixed hop-by-hop fields (RFC 9110 §7.6.1).
pub(crate) fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// An ordered list of header field lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    lines: Vec<(Box<str>, Box<[u8]>)>,
}

impl Fields {
    /// An empty list.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends one field line.
    pub(crate) fn push(&mut self, name: &str, value: &[u8]) {
        self.lines.push((name.into(), value.into()));
    }

    /// The value of the first line named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.lines.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| &**v)
    }

    /// Every line named `name`, in order.
    pub(crate) fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.lines.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| &**v)
    }

    /// The lines named `name` joined with `", "` (the list form, RFC 9110 §5.3).
    pub(crate) fn joined(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let mut all =
            self.lines.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| &**v);
        let first = all.next()?;
        let Some(second) = all.next() else {
            return Some(Cow::Borrowed(first));
        };
        let mut v = first.to_vec();
        for more in std::iter::once(second).chain(all) {
            v.extend_from_slice(b", ");
            v.extend_from_slice(more);
        }
        Some(Cow::Owned(v))
    }

    /// Whether any line named `name` is present.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Removes every line named `name`.
    pub(crate) fn remove(&mut self, name: &str) {
        self.lines.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Replaces every line named `name` with the one given, keeping the first one's place.
    pub(crate) fn set(&mut self, name: &str, value: &[u8]) {
        match self.lines.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(i) => {
                self.lines[i] = (name.into(), value.into());
                let mut j = 0;
                self.lines.retain(|(n, _)| {
                    j += 1;
                    j - 1 == i || !n.eq_ignore_ascii_case(name)
                });
            }
            None => self.push(name, value),
        }
    }

    /// Every line in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.lines.iter().map(|(n, v)| (&**n, &**v))
    }

    /// Number of lines.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether any comma-separated member of the `name` lines equals `token` (case-insensitive).
    pub(crate) fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .any(|v| list_members(v).any(|m| m.eq_ignore_ascii_case(token.as_bytes())))
    }

    /// Drops the hop-by-hop fields: the fixed ones and every field a `Connection` line names
    /// (RFC 9110 §7.6.1).
    pub(crate) fn strip_hop_by_hop(&mut self) {
        let named: Vec<Vec<u8>> = self
            .get_all("connection")
            .flat_map(list_members)
            .map(|m| m.to_ascii_lowercase())
            .collect();
        self.lines.retain(|(n, _)| {
            !is_hop_by_hop(n) && !named.iter().any(|m| m.eq_ignore_ascii_case(n.as_bytes()))
        });
    }

    /// A list from `(name, value)` pairs (test tables).
    #[cfg(test)]
    pub(crate) fn from_lines(lines: &[(&str, &str)]) -> Self {
        let mut f = Fields::new();
        for (n, v) in lines {
            f.push(n, v.as_bytes());
        }
        f
    }

    /// Writes every line as `name: value\r\n`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        for (n, v) in self.iter() {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The non-empty members of a comma-separated list value, trimmed of optional whitespace
/// (RFC 9110 §5.6.1: empty members are ignored).
pub(crate) fn list_members(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|m| !m.is_empty())
}

/// `value` without leading and trailing SP / HTAB (RFC 9110 §5.6.3).
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(value.len());
    let end = value.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |e| e + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(lines: &[(&str, &str)]) -> Fields {
        Fields::from_lines(lines)
    }

    #[test]
    fn hop_by_hop_fields_and_those_named_by_connection_are_dropped() {
        // RFC 9110 §7.6.1: the fixed list, plus every field named in Connection.
        let mut f = fields(&[
            ("Connection", "close, X-Secret"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authenticate", "Basic"),
            ("Proxy-Authorization", "Basic eA=="),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Sum"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("x-secret", "1"),
            ("Content-Type", "video/mp4"),
            ("ETag", "\"a\""),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ]);
        f.strip_hop_by_hop();
        let names: Vec<&str> = f.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Content-Type", "ETag", "Set-Cookie", "Set-Cookie"]);
    }

    #[test]
    fn lookups_are_case_insensitive_and_lists_join() {
        let mut f = fields(&[("Vary", "Accept-Encoding"), ("vary", " Origin ,,"), ("X", "1")]);
        assert_eq!(f.get("VARY"), Some(&b"Accept-Encoding"[..]));
        assert_eq!(f.joined("vary").as_deref(), Some(&b"Accept-Encoding,  Origin ,,"[..]));
        assert_eq!(f.joined("x").as_deref(), Some(&b"1"[..]));
        assert!(f.joined("y").is_none());
        assert!(f.has_token("Vary", "origin"));
        assert!(!f.has_token("Vary", "cookie"));
        assert!(f.contains("x") && f.len() == 3);
        f.set("VARY", b"*");
        assert_eq!(f.get_all("vary").collect::<Vec<_>>(), [&b"*"[..]]);
        assert_eq!(f.iter().next(), Some(("VARY", &b"*"[..])));
        f.set("Age", b"3");
        f.remove("x");
        let mut out = Vec::new();
        f.write(&mut out);
        assert_eq!(out, b"VARY: *\r\nAge: 3\r\n");
    }

    #[test]
    fn list_members_skip_empty_elements() {
        // RFC 9110 §5.6.1.
        let m: Vec<&[u8]> = list_members(b" , a ,b\t,, c ").collect();
        assert_eq!(m, [&b"a"[..], b"b", b"c"]);
        assert_eq!(trim_ows(b" \t "), b"");
    }
}
