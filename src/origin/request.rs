//! The request head sent to an origin, `Via` (RFC 9110 §7.6.3) and `CDN-Loop` (RFC 8586).
//!
//! Forwarding rules: a client's end-to-end fields go on, except
//! - hop-by-hop fields and those named in `Connection` (RFC 9110 §7.6.1);
//! - `Host` (written from the origin configuration), `Content-Length` and `Expect` (the edge
//!   forwards GET and HEAD only, without content);
//! - `Range` and the conditional fields (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//!   `If-Unmodified-Since`, `If-Range`): a fill serves every client, so it asks for the
//!   representation itself (or a slice of it, or a revalidation of the stored copy) and the
//!   edge evaluates each client's range and preconditions against what it stores
//!   (RFC 9111 §4.3.2);
//! - `Via` and `CDN-Loop` are not dropped but extended with this edge's entry.
//!
//! A request whose `CDN-Loop` already names this edge's id has gone round a loop; it is refused
//! ([`is_loop`]) rather than forwarded (RFC 8586 §2).
#![forbid(unsafe_code)]

use crate::cache::control::split_list;
use crate::cache::fields::{trim_ows, Fields};

/// Fields never forwarded besides the hop-by-hop ones.
const NOT_FORWARDED: &[&str] = &[
    "host",
    "content-length",
    "expect",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "via",
    "cdn-loop",
];

/// This edge's names in `Via` and `CDN-Loop`.
#[derive(Debug, Clone)]
pub(crate) struct EdgeIdentity {
    /// The `received-by` pseudonym in `Via` (RFC 9110 §7.6.3), e.g. `ringcast`.
    pub(crate) via_name: String,
    /// The `cdn-id` in `CDN-Loop` (RFC 8586 §2): a pseudonym or host name unique to this
    /// deployment, so two CDNs both running ringcast do not take each other for a loop.
    pub(crate) cdn_id: String,
}

/// One request to an origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OriginRequest<'a> {
    /// `GET` or `HEAD`.
    pub(crate) method: &'a str,
    /// Origin-form target: path and query as the client sent them.
    pub(crate) target: &'a str,
    /// The `Host` value for the origin.
    pub(crate) host: &'a str,
    /// The client request's fields.
    pub(crate) client_fields: &'a Fields,
    /// The client's HTTP minor version, for `Via` (`1.0` or `1.1`).
    pub(crate) client_minor_version: u8,
    /// A slice's `Range` value ([`crate::cache::slice::Slicing::origin_range`]).
    pub(crate) range: Option<&'a str>,
    /// Revalidation fields ([`crate::cache::revalidate::conditional_fields`]).
    pub(crate) conditional: Option<&'a Fields>,
}

/// Whether `name` is forwarded from a client to an origin (before `Connection`'s own list).
fn forwarded(name: &str) -> bool {
    !crate::cache::fields::is_hop_by_hop(name)
        && !NOT_FORWARDED.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Writes the request head for `req` into `out`.
pub(crate) fn write_head(req: &OriginRequest<'_>, id: &EdgeIdentity, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(req.host.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut end_to_end = req.client_fields.clone();
    end_to_end.strip_hop_by_hop();
    for (name, value) in end_to_end.iter() {
        if forwarded(name) {
            write_field(out, name, value);
        }
    }
    if let Some(r) = req.range {
        write_field(out, "Range", r.as_bytes());
    }
    if let Some(c) = req.conditional {
        c.write(out);
    }
    let via = append_member(
        req.client_fields.joined("via").as_deref(),
        format!("1.{} {}", req.client_minor_version, id.via_name).as_bytes(),
    );
    write_field(out, "Via", &via);
    let cdn_loop =
        append_member(req.client_fields.joined("cdn-loop").as_deref(), id.cdn_id.as_bytes());
    write_field(out, "CDN-Loop", &cdn_loop);
    out.extend_from_slice(b"\r\n");
}

fn write_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `existing, member`, or `member` alone: list fields grow at the end (RFC 9110 §7.6.3,
/// RFC 8586 §2).
pub(crate) fn append_member(existing: Option<&[u8]>, member: &[u8]) -> Vec<u8> {
    match existing.map(trim_ows).filter(|e| !e.is_empty()) {
        Some(e) => [e, b", ", member].concat(),
        None => member.to_vec(),
    }
}

/// Whether a request already passed through this edge: a `CDN-Loop` member's `cdn-id` equals
/// ours, case-insensitively (RFC 8586 §2; parameters after `;` are ignored).
pub(crate) fn is_loop(client_fields: &Fields, cdn_id: &str) -> bool {
    client_fields.get_all("cdn-loop").flat_map(split_list).any(|member| {
        let id = member.split(|&b| b == b';').next().map(trim_ows).unwrap_or_default();
        id.eq_ignore_ascii_case(cdn_id.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(lines: &[(&str, &str)]) -> Fields {
        Fields::from_lines(lines)
    }

    fn id() -> EdgeIdentity {
        EdgeIdentity { via_name: "ringcast".into(), cdn_id: "edge.example".into() }
    }

    #[test]
    fn request_head_forwards_end_to_end_fields_only() {
        let client = f(&[
            ("Host", "www.example"),
            ("User-Agent", "player/1"),
            ("Accept-Encoding", "gzip"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Range", "bytes=0-10"),
            ("If-None-Match", "\"client\""),
            ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("If-Range", "\"x\""),
            ("If-Match", "*"),
            ("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("Expect", "100-continue"),
            ("Content-Length", "0"),
            ("Via", "1.1 upstream"),
            ("CDN-Loop", "other-cdn; v=1"),
            ("Authorization", "Bearer t"),
        ]);
        let cond = f(&[("If-None-Match", "\"stored\"")]);
        let req = OriginRequest {
            method: "GET",
            target: "/v/a.mp4?token=1",
            host: "origin.internal",
            client_fields: &client,
            client_minor_version: 1,
            range: Some("bytes=0-1048575"),
            conditional: Some(&cond),
        };
        let mut out = Vec::new();
        write_head(&req, &id(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /v/a.mp4?token=1 HTTP/1.1\r\n\
             Host: origin.internal\r\n\
             User-Agent: player/1\r\n\
             Accept-Encoding: gzip\r\n\
             Authorization: Bearer t\r\n\
             Range: bytes=0-1048575\r\n\
             If-None-Match: \"stored\"\r\n\
             Via: 1.1 upstream, 1.1 ringcast\r\n\
             CDN-Loop: other-cdn; v=1, edge.example\r\n\
             \r\n"
        );
        let bare = Fields::new();
        let head = OriginRequest {
            method: "HEAD",
            client_fields: &bare,
            client_minor_version: 0,
            range: None,
            conditional: None,
            ..req
        };
        let mut out = Vec::new();
        write_head(&head, &id(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HEAD /v/a.mp4?token=1 HTTP/1.1\r\nHost: origin.internal\r\nVia: 1.0 ringcast\r\nCDN-Loop: edge.example\r\n\r\n"
        );
    }

    #[test]
    fn loops_are_detected_by_cdn_id() {
        // RFC 8586 §2.
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            (&[("CDN-Loop", "edge.example")], true),
            (&[("CDN-Loop", "EDGE.example; v=2")], true),
            (&[("CDN-Loop", "a, b"), ("cdn-loop", " edge.example ")], true),
            (&[("CDN-Loop", "edge.example.other, foo")], false),
            // A quoted parameter holding a comma is not a member of its own.
            (&[("CDN-Loop", "foo; note=\"x, edge.example\"")], false),
            (&[("Via", "1.1 edge.example")], false),
        ];
        for (lines, want) in cases {
            assert_eq!(is_loop(&f(lines), "edge.example"), *want, "{lines:?}");
        }
        assert_eq!(append_member(Some(b" "), b"x"), b"x");
        assert_eq!(append_member(None, b"x"), b"x");
    }
}
