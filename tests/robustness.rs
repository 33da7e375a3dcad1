//! Many clients, clients that vanish, descriptor exhaustion and graceful shutdown, on both
//! drivers over plain HTTP and over TLS: the server stays healthy and leaks nothing.

mod common;

use std::io::{BufReader, Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    closed_by_server, pseudo_random, read_response, read_to_close, request, sha256, Fixture,
    Server, SETUPS,
};

/// Waits (bounded) until the server's descriptor count is back to `baseline`.
fn settles_to(srv: &Server, baseline: usize) -> usize {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let n = srv.fd_count();
        if n <= baseline || Instant::now() > until {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn many_clients_and_disconnects_leak_nothing() {
    let fx = Fixture::new("many");
    let small = pseudo_random(64 * 1024 + 3, 1);
    fx.file("small.bin", &small);
    fx.file("large.bin", &pseudo_random(24 << 20, 2));
    let want = sha256(&small);
    for setup in SETUPS {
        // One worker, so the file cache that holds the two files' descriptors is warm before
        // the baseline is taken, and so is the socket pair its bulk transfers take turns
        // through on epoll (made by the first transfer long enough to need a turn).
        let srv = Server::start(&fx.dir, setup, &["--workers", "1"]);
        assert_eq!(srv.get("/small.bin", &[]).status, 200);
        let r = srv.get("/large.bin", &[]);
        assert_eq!((r.status, r.body.len()), (200, 24 << 20), "{setup}");
        std::thread::sleep(Duration::from_millis(100));
        let baseline = srv.fd_count();

        // 1,000 connections open at once, each with a request in flight (250 over TLS, where
        // each is a handshake first).
        let n = if setup.is_tls() { 250 } else { 1000 };
        let mut conns: Vec<_> = (0..n)
            .map(|_| {
                let mut s = srv.connect();
                s.write_all(request("GET", "/small.bin", &[]).as_bytes()).unwrap();
                s
            })
            .collect();
        for s in &mut conns {
            let r = read_response(&mut BufReader::new(s), false);
            assert_eq!((r.status, sha256(&r.body)), (200, want.clone()), "{setup}");
        }
        drop(conns);

        // Clients that disconnect mid-transfer of a large file.
        for i in 0..40 {
            let mut s = srv.connect();
            s.write_all(request("GET", "/large.bin", &[]).as_bytes()).unwrap();
            let mut buf = vec![0u8; 1000 * (i + 1)];
            let _ = s.read(&mut buf);
            if i % 2 == 0 {
                // Reset rather than FIN.
                let sock = socket2::SockRef::from(s.socket());
                sock.set_linger(Some(Duration::ZERO)).unwrap();
            }
        }
        let after = settles_to(&srv, baseline);
        assert_eq!(after, baseline, "{setup}: descriptors leaked");
        assert_eq!(srv.get("/small.bin", &[]).status, 200, "{setup}: still serving");
    }
}

#[test]
fn descriptor_exhaustion_backs_off_and_recovers() {
    let fx = Fixture::new("emfile");
    fx.file("hello.txt", b"hello\n");
    for setup in SETUPS {
        let mut cmd = Command::new("prlimit");
        cmd.arg("--nofile=64:64").arg("--").arg(env!("CARGO_BIN_EXE_ringcast"));
        let srv = Server::start_with(cmd, &fx.dir, setup, &["--workers", "1"]);
        let mut first = srv.connect();
        first.write_all(request("GET", "/hello.txt", &[]).as_bytes()).unwrap();
        let mut first_reader = BufReader::new(first.try_clone().unwrap());
        assert_eq!(read_response(&mut first_reader, false).status, 200);

        // More connections than the server has descriptors for (over TLS, no handshake: the
        // server cannot accept them).
        let extra: Vec<_> = (0..100).map(|_| srv.connect_tcp()).collect();
        std::thread::sleep(Duration::from_millis(500));
        // The connection it already has is still served.
        first.write_all(request("GET", "/hello.txt", &[]).as_bytes()).unwrap();
        let r = read_response(&mut first_reader, false);
        assert!(r.status == 200 || r.status == 503, "{setup}: got {}", r.status);
        drop(extra);
        drop(first_reader);
        drop(first);
        // Once descriptors free up, new clients are served again.
        let until = Instant::now() + Duration::from_secs(20);
        let mut ok = false;
        while Instant::now() < until {
            if srv.get("/hello.txt", &[]).status == 200 {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(ok, "{setup}: never recovered");
        assert!(srv.log().contains("out of resources"), "{setup}: no log line for EMFILE");
    }
}

#[test]
fn shutdown_drains_in_flight_transfers() {
    let fx = Fixture::new("drain");
    let large = pseudo_random(16 << 20, 9);
    fx.file("large.bin", &large);
    fx.file("hello.txt", b"hello\n");
    for setup in SETUPS {
        let mut srv = Server::start(&fx.dir, setup, &[]);
        // An idle keep-alive connection, and a download in progress.
        let mut idle = srv.connect();
        idle.write_all(request("GET", "/hello.txt", &[]).as_bytes()).unwrap();
        let mut idle_reader = BufReader::new(idle.try_clone().unwrap());
        assert_eq!(read_response(&mut idle_reader, false).status, 200);

        let mut dl = srv.connect();
        dl.write_all(request("GET", "/large.bin", &[]).as_bytes()).unwrap();
        let mut dl_reader = BufReader::new(dl.try_clone().unwrap());
        let mut head = [0u8; 1];
        dl_reader.read_exact(&mut head).unwrap();

        let pid = srv.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        // The download completes, byte for byte, although the server is stopping.
        std::thread::sleep(Duration::from_millis(300));
        let rest = read_to_close(&mut dl_reader);
        let mut all = head.to_vec();
        all.extend_from_slice(&rest);
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(sha256(&all[split..]), sha256(&large), "{setup}");
        // The idle connection was closed, not left to the keep-alive timeout.
        assert!(closed_by_server(&mut idle), "{setup}");
        let status = srv.terminate();
        assert!(status.success(), "{setup}: exit status {status:?}");
        assert!(srv.log().contains("draining"));
    }
}

/// One plain server: the log lines come from the parser, the same behind either transport
/// (methods_and_bad_input in server.rs checks the answers over TLS too).
#[test]
fn bad_input_is_logged() {
    let fx = Fixture::new("log");
    fx.file("hello.txt", b"hello\n");
    let srv = Server::start(&fx.dir, "uring", &[]);
    assert_eq!(srv.get("/../etc/passwd", &[]).status, 400);
    assert_eq!(srv.exchange(b"NONSENSE\r\n\r\n").status, 400);
    std::thread::sleep(Duration::from_millis(100));
    let log = srv.log();
    assert!(log.contains("path climbs above the root"), "{log}");
    assert!(log.contains("rejected request") && log.contains("status=400"), "{log}");
}
