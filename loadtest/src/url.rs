//! `http://` and `https://` URLs: parsing, and resolving playlist references against them
//! (RFC 3986).
//!
//! A URL keeps its authority as written, for the `Host` header (RFC 9112 §3.2),
//! its host (the TLS server name for `https`), and its request target (path and
//! query). Name resolution happens elsewhere, once, at start-up.

#![forbid(unsafe_code)]

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Neither `http://...` nor `https://...`.
    #[error("{0:?}: only http:// and https:// URLs are supported")]
    Scheme(String),
    /// Empty host, or a port that is not a number in 1..=65535.
    #[error("{0:?}: bad host or port")]
    Authority(String),
}

/// The scheme of a URL: whether the connection carries TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`: plain TCP, default port 80.
    Http,
    /// `https`: TLS over TCP, default port 443 (RFC 9110 §4.2.2).
    Https,
}

impl Scheme {
    /// The scheme name as written before `://`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An absolute `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// `host[:port]` as written; sent as the `Host` header.
    pub authority: String,
    /// Host name or address literal, without brackets.
    pub host: String,
    /// TCP port (80 or 443 when absent).
    pub port: u16,
    /// Path and query, starting with `/`; the fragment is dropped.
    pub target: String,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        // RFC 3986 §3.1: schemes are case-insensitive.
        let (scheme, rest) = match s.split_once("://") {
            Some((name, rest)) if name.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((name, rest)) if name.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            _ => return Err(UrlError::Scheme(s.to_owned())),
        };
        let (authority, target) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let target = target.split('#').next().unwrap_or("");
        let target = if target.starts_with('/') { target.to_owned() } else { format!("/{target}") };
        let bad = || UrlError::Authority(s.to_owned());
        // Userinfo is not supported: it would end up in logs and Host headers.
        if authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let close = v6.find(']').ok_or_else(bad)?;
            let port = match &v6[close + 1..] {
                "" => scheme.default_port(),
                p => p.strip_prefix(':').and_then(|p| p.parse().ok()).ok_or_else(bad)?,
            };
            (v6[..close].to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
                None => (authority.to_owned(), scheme.default_port()),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Self { scheme, authority: authority.to_owned(), host, port, target })
    }

    /// Resolves `reference` (as found in a playlist) against this URL (RFC 3986 §5.2).
    pub fn join(&self, reference: &str) -> Result<Self, UrlError> {
        let reference = reference.trim();
        if reference.contains("://") {
            return Self::parse(reference);
        }
        let target = if let Some(abs) = reference.strip_prefix("//") {
            return Self::parse(&format!("{}://{abs}", self.scheme.name()));
        } else if reference.starts_with('/') {
            reference.to_owned()
        } else {
            // §5.2.3 merge: the base path up to its last '/', then the reference.
            let base_path = self.target.split('?').next().unwrap_or("/");
            let dir = &base_path[..=base_path.rfind('/').unwrap_or(0)];
            format!("{dir}{reference}")
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target.as_str(), None),
        };
        let mut target = remove_dot_segments(path);
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        Ok(Self { target, ..self.clone() })
    }

    /// Whether `other` has the same origin: scheme, host and port (RFC 6454 §4).
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }
}

/// RFC 3986 §5.2.4, on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut joined = format!("/{}", out.join("/"));
    if trailing_slash && !joined.ends_with('/') {
        joined.push('/');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        type Parts<'a> = (&'a str, &'a str, u16, &'a str);
        let cases: &[(&str, Option<Parts>)] = &[
            ("http://127.0.0.1:8080/a.txt", Some(("127.0.0.1:8080", "127.0.0.1", 8080, "/a.txt"))),
            ("http://example", Some(("example", "example", 80, "/"))),
            ("http://h/p?q=1#frag", Some(("h", "h", 80, "/p?q=1"))),
            ("http://h?q", Some(("h", "h", 80, "/?q"))),
            ("http://[::1]:9000/x", Some(("[::1]:9000", "::1", 9000, "/x"))),
            ("https://h/", Some(("h", "h", 443, "/"))),
            ("HTTPS://h:8443/s", Some(("h:8443", "h", 8443, "/s"))),
            ("https://[::1]/x", Some(("[::1]", "::1", 443, "/x"))),
            ("http://:80/", None),
            ("http://h:0/", None),
            ("http://h:99999/", None),
            ("http://u@h/", None),
            ("ftp://h/", None),
        ];
        for (s, want) in cases {
            let got = Url::parse(s).ok();
            let got = got
                .as_ref()
                .map(|u| (u.authority.as_str(), u.host.as_str(), u.port, u.target.as_str()));
            assert_eq!(got, *want, "{s}");
        }
    }

    #[test]
    fn joins_references() {
        // RFC 3986 §5.4.1 normal examples, adapted to http.
        let base = Url::parse("http://a/b/c/d;p?q").unwrap();
        let cases: &[(&str, &str)] = &[
            ("g", "/b/c/g"),
            ("./g", "/b/c/g"),
            ("g/", "/b/c/g/"),
            ("/g", "/g"),
            ("g?y", "/b/c/g?y"),
            ("../g", "/b/g"),
            ("../..", "/"),
            ("../../g", "/g"),
            ("../../../g", "/g"),
            ("seg/001.ts", "/b/c/seg/001.ts"),
        ];
        for (reference, want) in cases {
            assert_eq!(base.join(reference).unwrap().target, *want, "{reference}");
        }
        let other = base.join("http://other:81/x").unwrap();
        assert!(!base.same_origin(&other));
        assert!(base.same_origin(&base.join("//A/z").unwrap()));
        let secure = Url::parse("https://a/b/c").unwrap();
        assert_eq!(secure.join("//a/x").unwrap().scheme, Scheme::Https);
        assert!(!secure.same_origin(&Url::parse("http://a:443/b/c").unwrap()));
        assert!(secure.same_origin(&secure.join("../x").unwrap()));
    }
}
