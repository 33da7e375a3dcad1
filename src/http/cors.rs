//! Cross-origin resource sharing for players served from other origins (WHATWG Fetch, "CORS
//! protocol").
//!
//! `--cors ORIGIN` allows one origin, `--cors '*'` any. Only simple, credential-less requests
//! are supported (the server has no cookies or authentication), so `*` is always a valid
//! answer for it and `Access-Control-Allow-Credentials` is never sent.
//!
//! With one configured origin the answer depends on the request's `Origin`, so every response
//! carries `Vary: Origin` (RFC 9110 §12.5.5) — also those without `Access-Control-Allow-Origin`,
//! or a shared cache could hand the wrong answer to the other origin. With `*` nothing varies.
//!
//! The writers append complete `Name: value\r\n` lines to a response head being built. A caller
//! that also sends `Vary: Accept-Encoding` may keep both lines (§5.3 lets a list field repeat) or
//! use [`Cors::varies_by_origin`] to write one combined line.
#![forbid(unsafe_code)]

use crate::http::response::push_field;

/// Response fields a cross-origin player script may read beyond the safelisted ones: media
/// players need the length, the range of a partial answer, whether ranges are supported and
/// the validator.
pub const EXPOSE_HEADERS: &str = "Content-Length, Content-Range, Accept-Ranges, ETag";
/// Methods allowed by a preflight answer.
pub const ALLOW_METHODS: &str = "GET, HEAD, OPTIONS";
/// Request fields allowed by a preflight answer: those players send to seek and revalidate.
pub const ALLOW_HEADERS: &str = "Range, If-Range, If-None-Match, If-Modified-Since";
/// How long a browser may cache a preflight answer, in seconds (browsers cap it: Chromium at
/// two hours, Firefox at one day).
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 86_400;

/// The configured CORS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    allow: Allow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Allow {
    /// `*`: any origin.
    Any,
    /// One serialized origin (`scheme://host[:port]`, lowercase), compared byte for byte with
    /// the request's `Origin` as Fetch does.
    Origin(String),
}

impl Cors {
    /// Parses the `--cors` argument (usable as a clap `value_parser`): `*`, or a serialized
    /// origin `http[s]://host[:port]` without path, query or trailing slash. Scheme and host
    /// are lowercased, as browsers serialize them.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let arg = arg.trim();
        if arg == "*" {
            return Ok(Cors { allow: Allow::Any });
        }
        let origin = arg.to_ascii_lowercase();
        let (scheme, rest) = origin
            .split_once("://")
            .ok_or_else(|| format!("CORS origin {arg:?} must be '*' or scheme://host[:port]"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("CORS origin {arg:?} must use http or https"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal has colons inside its brackets; the port follows the bracket.
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            // An IPv6 literal (RFC 3986 §3.2.2).
            Some(v6) => {
                !v6.is_empty()
                    && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            }
            None => {
                !host.is_empty()
                    && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
            }
        };
        let port_ok = valid_port(port);
        if !host_ok || !port_ok {
            return Err(format!("CORS origin {arg:?} must be scheme://host[:port] with no path"));
        }
        // Browsers leave a scheme's default port out of the serialized origin.
        let origin = match (scheme, port) {
            ("http", Some("80")) | ("https", Some("443")) => format!("{scheme}://{host}"),
            _ => origin.clone(),
        };
        Ok(Cors { allow: Allow::Origin(origin) })
    }

    /// True when the answer depends on the request's `Origin` (one configured origin), so
    /// responses must carry `Vary: Origin`.
    pub fn varies_by_origin(&self) -> bool {
        matches!(self.allow, Allow::Origin(_))
    }

    /// The `Access-Control-Allow-Origin` value for a request, `None` when the origin is not
    /// allowed (or absent while only one origin is configured).
    pub fn allow_origin(&self, request_origin: Option<&[u8]>) -> Option<&str> {
        match &self.allow {
            Allow::Any => Some("*"),
            Allow::Origin(o) => {
                let req = request_origin.map(trim_ows)?;
                (req == o.as_bytes()).then_some(o.as_str())
            }
        }
    }

    /// Appends the CORS lines of an ordinary response: `Access-Control-Allow-Origin` and
    /// `Access-Control-Expose-Headers` when the origin is allowed, and `Vary: Origin` whenever
    /// one origin is configured.
    pub fn write_headers(&self, request_origin: Option<&[u8]>, out: &mut Vec<u8>) {
        if let Some(origin) = self.allow_origin(request_origin) {
            push_field(out, "Access-Control-Allow-Origin", origin);
            push_field(out, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
        }
        if self.varies_by_origin() {
            push_field(out, "Vary", "Origin");
        }
    }

    /// True for a CORS preflight: an `OPTIONS` request (checked by the caller) carrying both
    /// `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(origin: Option<&[u8]>, acr_method: Option<&[u8]>) -> bool {
        origin.is_some() && acr_method.is_some()
    }

    /// Appends the lines of a `204 No Content` preflight answer. When the origin is not allowed
    /// only `Vary: Origin` is written and the browser, finding no
    /// `Access-Control-Allow-Origin`, fails the preflight.
    pub fn write_preflight_headers(&self, request_origin: Option<&[u8]>, out: &mut Vec<u8>) {
        if let Some(origin) = self.allow_origin(request_origin) {
            push_field(out, "Access-Control-Allow-Origin", origin);
            push_field(out, "Access-Control-Allow-Methods", ALLOW_METHODS);
            push_field(out, "Access-Control-Allow-Headers", ALLOW_HEADERS);
            push_field(out, "Access-Control-Max-Age", &PREFLIGHT_MAX_AGE_SECS.to_string());
        }
        if self.varies_by_origin() {
            push_field(out, "Vary", "Origin");
        }
    }
}

/// Validity of an optional port: digits only, within `u16`.
fn valid_port(port: Option<&str>) -> bool {
    match port {
        None => true,
        Some(p) => p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok(),
    }
}

/// RFC 9110 §5.6.3: OWS is spaces and horizontal tabs.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(c: &Cors, origin: Option<&str>) -> String {
        let mut out = Vec::new();
        c.write_headers(origin.map(str::as_bytes), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn preflight(c: &Cors, origin: Option<&str>) -> String {
        let mut out = Vec::new();
        c.write_preflight_headers(origin.map(str::as_bytes), &mut out);
        String::from_utf8(out).unwrap()
    }

    const EXPOSE: &str =
        "Access-Control-Expose-Headers: Content-Length, Content-Range, Accept-Ranges, ETag\r\n";

    #[test]
    fn any_origin() {
        let c = Cors::parse("*").unwrap();
        let want = format!("Access-Control-Allow-Origin: *\r\n{EXPOSE}");
        assert_eq!(headers(&c, Some("https://player.example")), want);
        assert_eq!(headers(&c, None), want);
        assert!(!c.varies_by_origin());
        assert_eq!(
            preflight(&c, Some("https://a.example")),
            "Access-Control-Allow-Origin: *\r\n\
             Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n\
             Access-Control-Allow-Headers: Range, If-Range, If-None-Match, If-Modified-Since\r\n\
             Access-Control-Max-Age: 86400\r\n"
        );
    }

    #[test]
    fn one_origin() {
        let c = Cors::parse("https://Player.Example:8443").unwrap();
        assert!(c.varies_by_origin());
        let allowed = Some("https://player.example:8443");
        assert_eq!(
            headers(&c, allowed),
            format!(
                "Access-Control-Allow-Origin: https://player.example:8443\r\n{EXPOSE}Vary: Origin\r\n"
            )
        );
        let cases = [
            None,
            Some("https://player.example"),
            Some("http://player.example:8443"),
            Some("https://evil.example:8443"),
            Some("null"),
        ];
        for origin in cases {
            assert_eq!(headers(&c, origin), "Vary: Origin\r\n", "{origin:?}");
            assert_eq!(preflight(&c, origin), "Vary: Origin\r\n", "{origin:?}");
        }
        assert!(preflight(&c, allowed).starts_with(
            "Access-Control-Allow-Origin: https://player.example:8443\r\n\
             Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
        ));
        assert!(preflight(&c, allowed).ends_with("Vary: Origin\r\n"));
    }

    #[test]
    fn default_ports_are_dropped() {
        let c = Cors::parse("https://a.example:443").unwrap();
        assert_eq!(c.allow_origin(Some(b"https://a.example")), Some("https://a.example"));
        let c = Cors::parse("http://a.example:80").unwrap();
        assert_eq!(c.allow_origin(Some(b"http://a.example")), Some("http://a.example"));
        let c = Cors::parse("http://a.example:443").unwrap();
        assert_eq!(c.allow_origin(Some(b"http://a.example:443")), Some("http://a.example:443"));
    }

    #[test]
    fn parsing() {
        for ok in [
            "*",
            " * ",
            "http://localhost",
            "https://a.example",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://[::1]",
        ] {
            assert!(Cors::parse(ok).is_ok(), "{ok:?} refused");
        }
        for bad in [
            "",
            "a.example",
            "ftp://a.example",
            "https://",
            "https://a.example/",
            "https://a.example/path",
            "https://a.example:99999",
            "https://a.example:",
            "https://a.example:+80",
            "https://a.example\r\nX: y",
            "https://a b",
        ] {
            assert!(Cors::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn preflight_detection() {
        let o: Option<&[u8]> = Some(b"https://a.example");
        let m: Option<&[u8]> = Some(b"GET");
        assert!(Cors::is_preflight(o, m));
        assert!(!Cors::is_preflight(o, None));
        assert!(!Cors::is_preflight(None, m));
        assert!(!Cors::is_preflight(None, None));
    }
}
