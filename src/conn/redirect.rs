//! `--redirect-http`: the plain listener answers every request with a 301 to the same target
//! over HTTPS (RFC 9110 §15.4.2), as nginx's `return 301 https://$host$request_uri`.
//!
//! Pure: the host comes from the request's `Host` field (its port dropped), or from the address
//! the client connected to when the field is missing or not a plain host name.

use std::net::SocketAddr;

/// The `Host` field of a request head, without its port, when it is a plain host name or
/// address literal.
pub fn host_of(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; crate::http::request::MAX_FIELDS];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    let value = req.headers.iter().find(|h| h.name.eq_ignore_ascii_case("host"))?.value;
    let value = std::str::from_utf8(value).ok()?.trim();
    let host = if value.starts_with('[') {
        &value[..=value.find(']')?]
    } else {
        match value.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => value,
        }
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~%[]:".contains(&b);
    (!host.is_empty() && host.bytes().all(plain)).then(|| host.to_string())
}

/// The `Location` of the redirect for `target`.
pub fn location(host: Option<&str>, local: SocketAddr, https_port: u16, target: &[u8]) -> String {
    let host = match host {
        Some(h) => h.to_string(),
        None if local.is_ipv6() => format!("[{}]", local.ip()),
        None => local.ip().to_string(),
    };
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    // Origin form as received; an absolute form keeps its path; `*` (OPTIONS) becomes `/`.
    let path: &[u8] = if target.starts_with(b"/") {
        target
    } else if let Some(rest) = target.split(|&b| b == b':').nth(1).filter(|r| r.starts_with(b"//"))
    {
        let after = &rest[2..];
        after.iter().position(|&b| b == b'/').map_or(b"/".as_slice(), |i| &after[i..])
    } else {
        b"/"
    };
    let mut out = format!("https://{host}{port}");
    for &b in path {
        if (0x21..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let cases: &[(&str, Option<&str>)] = &[
            ("example.com", Some("example.com")),
            ("example.com:8080", Some("example.com")),
            ("[::1]:8080", Some("[::1]")),
            ("[::1]", Some("[::1]")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("bad/host", None),
            ("bad host", None),
            ("", None),
        ];
        for (host, want) in cases {
            let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(host_of(head.as_bytes()).as_deref(), *want, "{host:?}");
        }
        assert_eq!(host_of(b"GET / HTTP/1.0\r\n\r\n"), None);
    }

    #[test]
    fn locations() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        /// (Host, local address, HTTPS port, target, Location)
        type Case<'a> = (Option<&'a str>, SocketAddr, u16, &'a [u8], &'a str);
        let cases: &[Case<'_>] = &[
            (Some("a.test"), v4, 443, b"/x?y=1", "https://a.test/x?y=1"),
            (Some("a.test"), v4, 8443, b"/", "https://a.test:8443/"),
            (None, v4, 443, b"/a", "https://10.0.0.1/a"),
            (None, v6, 443, b"/a", "https://[::1]/a"),
            (Some("a.test"), v4, 443, b"http://other/p/q", "https://a.test/p/q"),
            (Some("a.test"), v4, 443, b"http://other", "https://a.test/"),
            (Some("a.test"), v4, 443, b"*", "https://a.test/"),
            (Some("a.test"), v4, 443, b"/\xff", "https://a.test/%FF"),
        ];
        for (host, local, port, target, want) in cases {
            assert_eq!(location(*host, *local, *port, target), *want);
        }
    }
}
