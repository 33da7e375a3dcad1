//! Request heads (RFC 9112 §3).
//!
//! Only `GET` is sent. `Host` is mandatory in HTTP/1.1 (RFC 9112 §3.2); a range
//! request adds `Range: bytes=first-last` (RFC 9110 §14.2).

use std::io::Write;

/// Writes a `GET` request head for `target` on `host` into `out` (cleared first).
pub fn write_get(out: &mut Vec<u8>, host: &str, target: &str, range: Option<(u64, u64)>) {
    out.clear();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringcast-load\r\n");
    if let Some((first, last)) = range {
        let _ = write!(out, "Range: bytes={first}-{last}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        type Case<'a> = (&'a str, &'a str, Option<(u64, u64)>, &'a str);
        let cases: &[Case] = &[
            (
                "127.0.0.1:8080",
                "/a.txt",
                None,
                "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: ringcast-load\r\n\r\n",
            ),
            (
                "example",
                "/v?x=1",
                Some((0, 1023)),
                "GET /v?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: ringcast-load\r\nRange: bytes=0-1023\r\n\r\n",
            ),
        ];
        let mut out = b"stale".to_vec();
        for (host, target, range, want) in cases {
            write_get(&mut out, host, target, *range);
            assert_eq!(std::str::from_utf8(&out).unwrap(), *want);
        }
    }
}
