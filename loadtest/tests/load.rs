//! Runs the real `ringcast-load` binary against in-test servers.
//!
//! Assertions are on counts and on relations between measurements, never
//! on absolute speed.

mod common;

use std::time::Duration;

use common::{load, load_json, u, Reply, Server};

#[test]
fn exact_request_counts() {
    let server = Server::start(|_, _| Reply::ok(b"hello"));
    for (requests, connections) in [(1, 1), (37, 3), (200, 8)] {
        let before = server.requests();
        let doc = load_json(&[
            "--requests",
            &requests.to_string(),
            "-c",
            &connections.to_string(),
            &server.url("/x"),
        ]);
        assert_eq!(u(&doc, "requests"), requests, "{doc}");
        assert_eq!(u(&doc, "errors"), 0, "{doc}");
        assert_eq!(server.requests() - before, requests);
        let per_response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".len() as u64;
        assert_eq!(u(&doc, "bytes"), requests * per_response);
    }
}

#[test]
fn threads_split_the_connections() {
    let server = Server::start(|_, _| Reply::ok(b"x"));
    let doc = load_json(&["--requests", "100", "-c", "4", "-t", "2", &server.url("/")]);
    assert_eq!(u(&doc, "requests"), 100);
    assert_eq!(u(&doc, "threads"), 2);
    assert_eq!(server.requests(), 100);
}

#[test]
fn open_loop_shows_a_stall_that_service_time_hides() {
    // One response, early in the run, is held back for one second.
    let stall = Duration::from_secs(1);
    let server = Server::start(move |n, _| {
        let mut reply = Reply::ok(b"ok");
        if n == 40 {
            reply.delay = stall;
        }
        reply
    });
    let doc = load_json(&["-R", "200", "-c", "1", "-d", "3s", &server.url("/")]);
    let latency = &doc["latency_us"];
    let service = &doc["service_time_us"];
    let stall_us = u64::try_from(stall.as_micros()).unwrap();
    // One connection: the schedule kept running during the stall and about 200 requests queued
    // behind it, so the corrected tail shows it ...
    assert!(latency["max"].as_u64().unwrap() >= stall_us, "{doc}");
    assert!(latency["p99"].as_u64().unwrap() >= stall_us / 2, "{doc}");
    // ... while only one request had a long service time: above p99, visible in max only.
    assert!(service["max"].as_u64().unwrap() >= stall_us, "{doc}");
    assert!(service["p99"].as_u64().unwrap() * 10 < latency["p99"].as_u64().unwrap(), "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
}

#[test]
fn discard_counts_the_same_bytes_as_copying() {
    // Below and above the size from which --discard raises SO_RCVLOWAT (4 MiB).
    for size in [3 * 1024 * 1024 + 17, 9 * 1024 * 1024 + 17] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let server = Server::start(move |_, _| Reply::ok(&body));
        let copied = load_json(&["--requests", "6", "-c", "2", &server.url("/big")]);
        let discarded =
            load_json(&["--requests", "6", "-c", "2", "--discard", &server.url("/big")]);
        assert_eq!(u(&copied, "errors"), 0, "{size}: {copied}");
        assert_eq!(u(&discarded, "errors"), 0, "{size}: {discarded}");
        assert_eq!(u(&copied, "requests"), 6, "{size}");
        assert_eq!(u(&discarded, "requests"), 6, "{size}");
        assert_eq!(u(&copied, "bytes"), u(&discarded, "bytes"), "{size}");
        assert!(u(&copied, "bytes") > 6 * size as u64, "{size}");
    }
}

#[test]
fn discard_of_a_large_body_cut_short_is_a_short_body() {
    // 8 MiB announced, 5 MiB sent, then close: the raised low-water mark must not hang.
    let mut raw = b"HTTP/1.1 200 OK\r\nContent-Length: 8388608\r\n\r\n".to_vec();
    raw.resize(raw.len() + 5 * 1024 * 1024, b'x');
    let server = Server::start(move |_, _| Reply::raw_then_close(&raw));
    let doc = load_json(&["--requests", "3", "-c", "1", "--discard", &server.url("/cut")]);
    assert_eq!(u(&doc, "requests"), 0, "{doc}");
    assert_eq!(doc["errors_by_kind"]["short_body"].as_u64(), Some(3), "{doc}");
}

#[test]
fn malformed_responses_are_counted_not_crashes() {
    let bad: [&[u8]; 6] = [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ];
    let server = Server::start(move |n, _| Reply::raw_then_close(bad[(n % 6) as usize]));
    let doc = load_json(&["--requests", "60", "-c", "3", &server.url("/")]);
    assert_eq!(u(&doc, "requests"), 0, "{doc}");
    assert_eq!(u(&doc, "errors"), 60, "{doc}");
    let kinds = &doc["errors_by_kind"];
    assert!(kinds["parse"].as_u64().unwrap() > 0, "{doc}");
    assert!(kinds["short_body"].as_u64().unwrap() > 0, "{doc}");
}

#[test]
fn unexpected_status_and_checksum_are_errors() {
    let server = Server::start(|_, _| Reply::ok(b"hello"));
    let doc = load_json(&["--requests", "5", "--expect-status", "204", &server.url("/")]);
    assert_eq!(doc["errors_by_kind"]["status"].as_u64(), Some(5), "{doc}");
    // CRC-32 of "hello" is 3610a686.
    let good = load_json(&["--requests", "5", "--checksum", "3610a686", &server.url("/")]);
    assert_eq!(u(&good, "requests"), 5, "{good}");
    let bad = load_json(&["--requests", "5", "--checksum", "00000000", &server.url("/")]);
    assert_eq!(bad["errors_by_kind"]["checksum"].as_u64(), Some(5), "{bad}");
}

#[test]
fn chunked_and_close_delimited_bodies() {
    let server = Server::start(|n, _| {
        if n % 2 == 0 {
            Reply {
                bytes: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n".to_vec(),
                delay: Duration::ZERO,
                close: false,
            }
        } else {
            Reply::raw_then_close(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
        }
    });
    // CRC-32 differs per body, so only count here.
    let doc = load_json(&["--requests", "20", &server.url("/")]);
    assert_eq!(u(&doc, "requests"), 20, "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
}

#[test]
fn refuses_to_start_without_a_limit() {
    let server = Server::start(|_, _| Reply::ok(b""));
    let out = load(&[&server.url("/")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration or --requests"));
    assert_eq!(server.requests(), 0);
}

#[test]
fn connect_errors_are_counted() {
    // Bind and drop to find a port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let doc = load_json(&["--requests", "3", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(doc["errors_by_kind"]["connect"].as_u64(), Some(3), "{doc}");
}

#[test]
fn new_conn_opens_a_connection_per_request() {
    let server = Server::start(|_, _| Reply::ok(b"hello"));
    let kept = load_json(&["--requests", "10", "-c", "2", &server.url("/")]);
    assert_eq!(u(&kept, "connections_opened"), 2, "{kept}");
    let fresh = load_json(&["--requests", "10", "-c", "2", "--new-conn", &server.url("/")]);
    assert_eq!(u(&fresh, "requests"), 10, "{fresh}");
    assert_eq!(u(&fresh, "connections_opened"), 10, "{fresh}");
    assert_eq!(u(&fresh, "bytes"), u(&kept, "bytes"), "{fresh}");
    // No TLS, so no handshake section.
    assert!(fresh.get("tls").is_none(), "{fresh}");
}
