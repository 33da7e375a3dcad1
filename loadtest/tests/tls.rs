//! `https://` runs of the real binary against an in-test rustls server.
//!
//! Counts (requests, bytes, statuses, handshakes) are compared with what the
//! server served and saw; nothing is asserted about speed.

mod common;

use common::{load, load_json, u, Reply, Server, TlsVersions};

const BODY: &[u8] = b"hello over tls";

fn response_len() -> u64 {
    Reply::ok(BODY).bytes.len() as u64
}

#[test]
fn https_counts_match_what_was_served() {
    let server = Server::start_tls(TlsVersions::Both, |_, _| Reply::ok(BODY));
    let url = server.url_by_name("/x");
    let doc = load_json(&["--requests", "60", "-c", "3", "--cacert", server.ca_file(), &url]);
    assert_eq!(u(&doc, "requests"), 60, "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
    assert_eq!(server.requests(), 60);
    // Bytes are the HTTP bytes served, decrypted.
    assert_eq!(u(&doc, "bytes"), 60 * response_len(), "{doc}");
    // Keep-alive: one handshake per connection, each full, timed in its own histogram.
    let tls = &doc["tls"];
    assert_eq!(tls["handshakes"].as_u64(), Some(3), "{doc}");
    assert_eq!(tls["full"].as_u64(), Some(3), "{doc}");
    assert_eq!(tls["resumed"].as_u64(), Some(0), "{doc}");
    assert!(tls["handshake_us"]["max"].as_u64().unwrap() > 0, "{doc}");
    assert_eq!(u(&doc, "connections_opened"), 3, "{doc}");
    assert_eq!(server.handshakes(), (3, 0));
    // The URL's host name went out as SNI.
    assert_eq!(server.server_names(), vec![Some("localhost".to_owned()); 3]);
}

#[test]
fn statuses_and_chunked_bodies_over_tls() {
    let server = Server::start_tls(TlsVersions::Both, |n, _| match n % 3 {
        0 => Reply::ok(BODY),
        1 => Reply {
            bytes: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                .to_vec(),
            delay: std::time::Duration::ZERO,
            close: false,
        },
        _ => Reply::raw_then_close(
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope",
        ),
    });
    let doc =
        load_json(&["--requests", "30", "-c", "1", "--cacert", server.ca_file(), &server.url("/")]);
    assert_eq!(u(&doc, "requests"), 20, "{doc}");
    assert_eq!(doc["errors_by_kind"]["status"].as_u64(), Some(10), "{doc}");
    assert_eq!(u(&doc, "errors"), 10, "{doc}");
    let chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".len();
    let not_found =
        b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope".len();
    let want = 10 * (response_len() + chunked as u64 + not_found as u64);
    assert_eq!(u(&doc, "bytes"), want, "{doc}");
    // Each 404 closed its connection, so the next request handshook again, resuming.
    assert_eq!(u(&doc, "connections_opened"), 10, "{doc}");
    let (full, resumed) = server.handshakes();
    assert_eq!((full, resumed), (1, 9));
}

#[test]
fn new_connections_resume_sessions_unless_told_not_to() {
    for versions in [TlsVersions::Both, TlsVersions::Tls12] {
        let server = Server::start_tls(versions, |_, _| Reply::ok(BODY));
        let ca = server.ca_file().to_owned();
        let url = server.url("/");
        let doc = load_json(&["--requests", "20", "-c", "1", "--new-conn", "--cacert", &ca, &url]);
        assert_eq!(u(&doc, "requests"), 20, "{versions:?}: {doc}");
        assert_eq!(u(&doc, "connections_opened"), 20, "{versions:?}: {doc}");
        assert_eq!(u(&doc, "bytes"), 20 * response_len(), "{versions:?}: {doc}");
        let tls = &doc["tls"];
        assert_eq!(tls["full"].as_u64(), Some(1), "{versions:?}: {doc}");
        assert_eq!(tls["resumed"].as_u64(), Some(19), "{versions:?}: {doc}");
        assert_eq!(server.handshakes(), (1, 19), "{versions:?}");

        let doc = load_json(&[
            "--requests",
            "20",
            "-c",
            "1",
            "--new-conn",
            "--no-resume",
            "--cacert",
            &ca,
            &url,
        ]);
        assert_eq!(u(&doc, "requests"), 20, "{versions:?}: {doc}");
        assert_eq!(doc["tls"]["full"].as_u64(), Some(20), "{versions:?}: {doc}");
        assert_eq!(doc["tls"]["resumed"].as_u64(), Some(0), "{versions:?}: {doc}");
        assert_eq!(server.handshakes(), (21, 19), "{versions:?}");
    }
}

#[test]
fn untrusted_certificates_fail_unless_insecure() {
    let server = Server::start_tls(TlsVersions::Both, |_, _| Reply::ok(BODY));
    // Another CA than the server's: every handshake fails and nothing is requested.
    let other = Server::start_tls(TlsVersions::Both, |_, _| Reply::ok(b""));
    let doc = load_json(&["--requests", "4", "--cacert", other.ca_file(), &server.url("/")]);
    assert_eq!(doc["errors_by_kind"]["tls"].as_u64(), Some(4), "{doc}");
    assert_eq!(u(&doc, "requests"), 0, "{doc}");
    assert_eq!(server.requests(), 0);
    // One clear line says why (once per thread), the rest are counted.
    let out = load(&["--requests", "4", "-q", "--cacert", other.ca_file(), &server.url("/")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("TLS handshake with 127.0.0.1:").count(), 1, "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    let doc = load_json(&["--requests", "4", "--insecure", &server.url("/")]);
    assert_eq!(u(&doc, "requests"), 4, "{doc}");
    assert_eq!(server.requests(), 4);
}

#[test]
fn tls_options_need_an_https_url() {
    let server = Server::start(|_, _| Reply::ok(b""));
    let out = load(&["--requests", "1", "--insecure", &server.url("/")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("need an https:// URL"));
    assert_eq!(server.requests(), 0);
}

#[test]
fn text_report_shows_handshakes_apart() {
    let server = Server::start_tls(TlsVersions::Both, |_, _| Reply::ok(BODY));
    let out = load(&[
        "--requests",
        "5",
        "--new-conn",
        "-q",
        "--cacert",
        server.ca_file(),
        &server.url("/"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tls: 5 handshakes, 1 full, 4 resumed (5 connections opened)"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("handshake ")), "{text}");
}

#[test]
fn ranges_and_hls_over_tls() {
    let file: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let server = Server::start_tls(TlsVersions::Both, move |_, head| {
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Range: bytes="))
            .and_then(|r| r.trim().split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
        match (path, range) {
            ("/file", Some((first, last))) => {
                let last = last.min(file.len() - 1);
                let mut bytes = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{}\r\n\
                     Content-Length: {}\r\n\r\n",
                    file.len(),
                    last + 1 - first
                )
                .into_bytes();
                bytes.extend_from_slice(&file[first..=last]);
                Reply { bytes, delay: std::time::Duration::ZERO, close: false }
            }
            ("/m.m3u8", _) => Reply::ok(
                b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.05,\ns0.ts\n#EXTINF:0.05,\ns1.ts\n#EXT-X-ENDLIST\n",
            ),
            (p, _) if p.ends_with(".ts") => Reply::ok(&[7u8; 2048]),
            _ => Reply::raw_then_close(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        }
    });
    let ca = server.ca_file().to_owned();
    // The size probe runs over TLS too (one unmeasured request before the run).
    let doc = load_json(&[
        "--requests",
        "20",
        "--range-size",
        "1000",
        "--cacert",
        &ca,
        &server.url("/file"),
    ]);
    assert_eq!(u(&doc, "requests"), 20, "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
    assert_eq!(server.requests(), 21);
    // 10 000 bytes in blocks of 1000: every answer carries a 1000-byte body.
    assert!(u(&doc, "bytes") > 20 * 1000, "{doc}");

    let before = server.requests();
    let doc = load_json(&[
        "--hls",
        &server.url("/m.m3u8"),
        "--viewers",
        "1",
        "--requests",
        "6",
        "--cacert",
        &ca,
    ]);
    assert_eq!(u(&doc, "requests"), 6, "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
    assert_eq!(doc["hls"]["segments"].as_u64(), Some(4), "{doc}");
    assert_eq!(server.requests() - before, 6);
}
