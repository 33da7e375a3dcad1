//! Core behaviour over real sockets against the real binary, on both drivers, over plain HTTP
//! and over TLS: static files, directories, paths, keep-alive and pipelining, bad input.

mod common;

use std::io::{BufReader, Read, Write};
use std::os::unix::fs::symlink;
use std::process::Command;

use common::{
    closed_by_server, each_setup_in_parallel, pseudo_random, read_response, request, sha256,
    Fixture, Server, Transport, SETUPS,
};

fn fixture() -> Fixture {
    let fx = Fixture::new("server");
    fx.file("hello.txt", b"hello, ringcast\n");
    fx.file("empty.bin", b"");
    fx.file("data.bin", &pseudo_random(300_000, 7));
    fx.file("dir/index.html", b"<!doctype html><title>dir</title>\n");
    fx.file("noindex/file.txt", b"x");
    fx.file("caf\u{e9} \u{1f3ac}.txt", b"utf-8 name\n");
    fx.file(".secret", b"hidden");
    fx.file(".git/config", b"hidden");
    fx.file("a\\b.txt", b"backslash name");
    symlink("hello.txt", fx.dir.join("inside-link.txt")).unwrap();
    symlink("/etc/passwd", fx.dir.join("outside-abs")).unwrap();
    symlink("../../../../../../etc/passwd", fx.dir.join("outside-rel")).unwrap();
    fx
}

#[test]
fn get_and_head_of_files() {
    let fx = fixture();
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let r = srv.get("/hello.txt", &[]);
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{setup}");
        assert_eq!(r.body, b"hello, ringcast\n");
        assert_eq!(r.header("content-length"), Some("16"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert!(r.header("server").unwrap().starts_with("ringcast/"));
        assert!(httpdate::parse_http_date(r.header("date").unwrap()).is_ok());
        assert!(httpdate::parse_http_date(r.header("last-modified").unwrap()).is_ok());
        let etag = r.header("etag").unwrap();
        assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"), "{etag}");

        // HEAD: the same head, no body (RFC 9110 §9.3.2).
        let h = srv.exchange(request("HEAD", "/hello.txt", &[]).as_bytes());
        assert_eq!(h.status, 200);
        assert_eq!(h.header("content-length"), Some("16"));
        assert_eq!(h.header("etag"), Some(etag));
        assert!(h.body.is_empty());

        let big = srv.get("/data.bin", &[]);
        assert_eq!(sha256(&big.body), sha256(&fx.read("data.bin")));
        assert_eq!(big.header("content-type"), Some("application/octet-stream"));

        let empty = srv.get("/empty.bin", &[]);
        assert_eq!((empty.status, empty.header("content-length")), (200, Some("0")));

        // A query string does not change which file is served.
        let q = srv.get("/hello.txt?v=2&x=/../../etc/passwd", &[]);
        assert_eq!((q.status, q.body.as_slice()), (200, &b"hello, ringcast\n"[..]));

        let missing = srv.get("/nope.txt", &[]);
        assert_eq!(missing.status, 404);
        assert_eq!(missing.content_length(), Some(missing.body.len() as u64));
    }
}

#[test]
fn directories() {
    let fx = fixture();
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let r = srv.get("/dir?x=1", &[]);
        assert_eq!(r.status, 301, "{setup}");
        assert_eq!(r.header("location"), Some("/dir/?x=1"));
        assert_eq!(r.content_length(), Some(r.body.len() as u64));
        let r = srv.get("/dir/", &[]);
        assert_eq!((r.status, r.body_text().contains("<title>dir</title>")), (200, true));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(srv.get("/noindex/", &[]).status, 404);
        assert_eq!(srv.get("/hello.txt/", &[]).status, 404);
        // The root without an index.html.
        assert_eq!(srv.get("/", &[]).status, 404);
    }
}

#[test]
fn paths_stay_inside_the_root() {
    let fx = fixture();
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let cases: &[(&str, u16)] = &[
            ("/caf%C3%A9%20%F0%9F%8E%AC.txt", 200),
            ("//hello.txt", 200),
            ("/dir/../hello.txt", 200),
            ("/./hello.txt", 200),
            ("/dir%2F..%2Fhello.txt", 200),
            ("/inside-link.txt", 200),
            ("/a%5Cb.txt", 200),
            ("/../etc/passwd", 400),
            ("/%2e%2e/%2e%2e/etc/passwd", 400),
            ("/dir/../../etc/passwd", 400),
            ("/..%2f..%2fetc%2fpasswd", 400),
            ("/hello.txt%00.png", 400),
            ("/bad%zzescape", 400),
            ("/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", 404),
            ("/..\\..\\etc\\passwd", 404),
            ("/outside-abs", 404),
            ("/outside-rel", 404),
            ("/.secret", 404),
            ("/.git/config", 404),
            ("/dir/%2e%2e/.secret", 404),
        ];
        for &(path, want) in cases {
            let r = srv.get(path, &[]);
            assert_eq!(r.status, want, "{setup} {path}");
            assert!(!r.body_text().contains("root:"), "{setup} {path} leaked /etc/passwd");
        }
        // Absolute-form target (RFC 9112 §3.2.2).
        let r = srv.exchange(b"GET http://test/hello.txt HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(r.status, 200);
    }
    for setup in SETUPS.into_iter().filter(|s| s.driver == "uring") {
        let srv = Server::start(&fx.dir, setup, &["--serve-dotfiles"]);
        assert_eq!(srv.get("/.secret", &[]).status, 200, "{setup}");
    }
}

#[test]
fn methods_and_bad_input() {
    let fx = fixture();
    let long_target = format!("/{}", "a".repeat(9000));
    let big_field = "b".repeat(17_000);
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let cases: Vec<(Vec<u8>, u16, bool)> = vec![
            // (request, status, connection closes)
            (b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(), 405, false),
            (b"DELETE /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 405, false),
            (b"BREW /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 501, false),
            (b"GET /hello.txt HTTP/1.1\r\n\r\n".to_vec(), 400, true),
            (b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400, true),
            (b"GARBAGE\r\n\r\n".to_vec(), 400, true),
            (b"GET /hello.txt HTTP/1.1\r\nHost x\r\n\r\n".to_vec(), 400, true),
            (b"GET /hello.txt HTTP/3.0\r\nHost: x\r\n\r\n".to_vec(), 505, true),
            (
                b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"
                    .to_vec(),
                400,
                true,
            ),
            (
                b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    .to_vec(),
                400,
                true,
            ),
            (
                b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n\r\n".to_vec(),
                417,
                false,
            ),
            (request("GET", &long_target, &[]).into_bytes(), 414, true),
            (request("GET", "/hello.txt", &[("X-Big", &big_field)]).into_bytes(), 431, true),
        ];
        for (raw, want, closes) in cases {
            let mut s = srv.connect();
            s.write_all(&raw).unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let r = read_response(&mut reader, false);
            let shown = String::from_utf8_lossy(&raw[..raw.len().min(60)]).into_owned();
            assert_eq!(r.status, want, "{setup} {shown:?}");
            assert_eq!(r.content_length(), Some(r.body.len() as u64), "{shown:?}");
            assert!(!r.body.is_empty(), "error responses carry a short body");
            if want == 405 {
                assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
            }
            if closes {
                assert_eq!(r.header("connection"), Some("close"), "{shown:?}");
                assert!(closed_by_server(reader.get_mut()), "{setup} {shown:?} not closed");
            } else {
                // The connection stays usable.
                s.write_all(request("GET", "/hello.txt", &[]).as_bytes()).unwrap();
                assert_eq!(read_response(&mut reader, false).status, 200, "{shown:?}");
            }
        }
        let r = srv.exchange(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.status, r.header("allow")), (204, Some("GET, HEAD, OPTIONS")));
        let r = srv.exchange(request("OPTIONS", "/hello.txt", &[]).as_bytes());
        assert_eq!(r.status, 204);
    }
}

#[test]
fn keep_alive_pipelining_and_bodies() {
    let fx = fixture();
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        // Three pipelined requests in one write, one of them a GET with a body to skip.
        let mut s = srv.connect();
        let mut raw = request("GET", "/hello.txt", &[]);
        raw.push_str("GET /dir/ HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nGET /nope x");
        raw.push_str(&request("HEAD", "/data.bin", &[]));
        raw.push_str(&request("GET", "/empty.bin", &[]));
        s.write_all(raw.as_bytes()).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let statuses: Vec<(u16, usize)> = [false, false, true, false]
            .iter()
            .map(|&head| {
                let r = read_response(&mut reader, head);
                (r.status, r.body.len())
            })
            .collect();
        assert_eq!(statuses, vec![(200, 16), (200, 34), (200, 0), (200, 0)], "{setup}");

        // A request split across many writes.
        for chunk in request("GET", "/hello.txt", &[]).as_bytes().chunks(3) {
            s.write_all(chunk).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(read_response(&mut reader, false).body, b"hello, ringcast\n");

        // Expect: 100-continue on a request with content: 100 first, then the answer.
        s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            .unwrap();
        let interim = read_response(&mut reader, true);
        assert_eq!(interim.status, 100);
        s.write_all(b"abcd").unwrap();
        assert_eq!(read_response(&mut reader, false).status, 200);
        s.write_all(request("GET", "/hello.txt", &[]).as_bytes()).unwrap();
        assert_eq!(read_response(&mut reader, false).status, 200, "stream in sync after the body");

        // HTTP/1.0: closes by default, keeps the connection when asked.
        let mut s10 = srv.connect();
        s10.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n").unwrap();
        let mut r10 = BufReader::new(s10.try_clone().unwrap());
        assert_eq!(read_response(&mut r10, false).status, 200);
        assert!(closed_by_server(&mut s10));
        let mut s10 = srv.connect();
        s10.write_all(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        let mut r10 = BufReader::new(s10.try_clone().unwrap());
        let r = read_response(&mut r10, false);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        s10.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut r10, false).status, 200);

        // Connection: close is honoured.
        let mut s = srv.connect();
        s.write_all(request("GET", "/hello.txt", &[("Connection", "close")]).as_bytes()).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        assert_eq!(read_response(&mut reader, false).header("connection"), Some("close"));
        assert!(closed_by_server(&mut s));

        // A large request body is not read: answered, then closed.
        let mut s = srv.connect();
        s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let r = read_response(&mut reader, false);
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    }
}

#[test]
fn slow_clients_are_cut_off() {
    let fx = fixture();
    fx.file("large.bin", &pseudo_random(32 << 20, 3));
    each_setup_in_parallel(|setup| {
        let srv =
            Server::start(&fx.dir, setup, &["--header-timeout", "1s", "--send-timeout", "1s"]);
        // A head trickled one byte at a time is cut off by the head timer: data does not
        // reset it.
        let mut s = srv.connect();
        let raw = request("GET", "/hello.txt", &[("X-Pad", &"p".repeat(200))]);
        let mut cut = false;
        for b in raw.as_bytes() {
            if s.write_all(&[*b]).is_err() {
                cut = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut probe = [0u8; 1];
            s.set_nonblocking(true).unwrap();
            let got = s.read(&mut probe);
            s.set_nonblocking(false).unwrap();
            // Anything but "nothing yet" is the server acting: a 408, a close (over TLS also an
            // EOF without close_notify) or a reset.
            if !matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
                cut = true;
                break;
            }
        }
        assert!(cut, "{setup}: a byte-a-time head was never cut off");

        // A client that stops reading is cut off after the send timeout.
        let mut s = srv.connect();
        s.write_all(request("GET", "/large.bin", &[]).as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        assert!(total < 32 << 20, "{setup}: a stalled reader still got the whole file");
        // The server is still healthy.
        assert_eq!(srv.get("/hello.txt", &[]).status, 200);
    });
}

/// An idle keep-alive connection is closed by the server once the keep-alive timeout passes
/// (RFC 9112 §9.8), over TLS with close_notify or EOF; one that sends its next request in time
/// is answered, and the same connection is then closed when it idles in turn.
#[test]
fn idle_keep_alive_connections_are_closed() {
    let fx = fixture();
    each_setup_in_parallel(|setup| {
        let srv = Server::start(&fx.dir, setup, &["--keepalive-timeout", "1s"]);
        let mut s = srv.connect();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        for _ in 0..2 {
            s.write_all(request("GET", "/hello.txt", &[]).as_bytes()).unwrap();
            let r = read_response(&mut reader, false);
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello, ringcast\n"[..]), "{setup}");
            assert_eq!(r.header("connection"), None, "{setup}: keep-alive is the default");
        }
        assert!(closed_by_server(&mut reader), "{setup}: an idle connection was kept open");
        assert_eq!(srv.get("/hello.txt", &[]).status, 200, "{setup}: still serving");
    });
}

/// Request lines on the wire (RFC 9112 §3, §2.3): a space inside the target or a misspelt
/// version is a malformed line (400), a well-formed version of another major is 505, a later
/// HTTP/1.x minor is served as HTTP/1.1.
#[test]
fn malformed_request_lines() {
    let fx = fixture();
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let cases: &[(&str, u16)] = &[
            ("GET /hello.txt b HTTP/1.1", 400),
            ("GET /hello b.txt HTTP/1.1", 400),
            ("GET  /hello.txt HTTP/1.1", 400),
            ("GET /hello.txt http/1.1", 400),
            ("GET /hello.txt HTTP/1.10", 400),
            ("GET /hello.txt HTTP/1", 400),
            ("GET /hello.txt", 400),
            ("GET /hello.txt HTTP/2.0", 505),
            ("GET /hello.txt HTTP/1.2", 200),
        ];
        for (line, want) in cases {
            let raw = format!("{line}\r\nHost: x\r\n\r\n");
            let mut s = srv.connect();
            s.write_all(raw.as_bytes()).unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let r = read_response(&mut reader, false);
            assert_eq!(r.status, *want, "{setup} {line:?}");
            assert!(r.status_line.starts_with("HTTP/1.1 "), "{setup} {line:?}: {}", r.status_line);
            if *want == 200 {
                assert_eq!(r.body, fx.read("hello.txt"), "{setup} {line:?}");
            } else {
                assert_eq!(r.header("connection"), Some("close"), "{setup} {line:?}");
                assert!(closed_by_server(reader.get_mut()), "{setup} {line:?} not closed");
            }
        }
    }
}

/// `read_bytes` of `/proc/PID/io` or `/proc/PID/task/TID/io`: bytes this task made the block
/// layer fetch from storage (charged to whoever submitted the read).
fn storage_read_bytes(io_path: &str) -> u64 {
    let text = std::fs::read_to_string(io_path).unwrap_or_else(|e| panic!("{io_path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix("read_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no read_bytes in {io_path}"))
}

/// The worker thread of a `--workers 1` server: the first task named `ringcast-w0` (its pool of
/// cold-read threads, started from it, inherits the name).
fn worker_tid(pid: u32) -> u32 {
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|tid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .is_ok_and(|c| c.trim() == "ringcast-w0")
        })
        .collect();
    tids.sort_unstable();
    *tids.first().expect("a ringcast-w0 thread")
}

/// The cold-range detection, end to end: a file evicted from the page cache is read from the
/// disk by the worker's cold-read threads, not by the worker thread (whose `sendfile` would
/// stall every connection of its core). Per-thread I/O accounting tells who read it. Fails if
/// the residency check answered "cached" for cold pages: the worker's own `sendfile` would then
/// fetch them. Skips, saying so, where the file cannot be evicted (tmpfs) or the kernel keeps
/// no per-task I/O accounting.
#[test]
fn cold_file_is_read_off_the_worker_thread() {
    cold_file_check(Transport::Plain);
}

/// The same over TLS. A body sent over TLS is `pread` into the worker's buffer and encrypted
/// there (docs/architecture.md, "TLS", "Send"): without the cold-range warming the worker
/// thread would read a cold file from storage itself, stalling every connection of its core.
#[test]
fn cold_file_over_tls_is_read_off_the_worker_thread() {
    cold_file_check(Transport::Tls);
}

fn cold_file_check(transport: Transport) {
    let name = "cold_file_check";
    const LEN: usize = 24 << 20;
    let fx = Fixture::new("cold");
    let data = pseudo_random(LEN, 11);
    let path = fx.file("cold.bin", &data);
    std::fs::File::open(&path).unwrap().sync_all().unwrap(); // clean pages can be evicted
    let fs = Command::new("stat").args(["-f", "-c", "%T"]).arg(&path).output().unwrap();
    let fs = String::from_utf8_lossy(&fs.stdout).trim().to_string();
    if fs == "tmpfs" || fs == "ramfs" {
        eprintln!("SKIPPED {name}: {fs} cannot evict pages");
        return;
    }
    if std::fs::metadata("/proc/self/io").is_err() {
        eprintln!("SKIPPED {name}: no per-task I/O accounting");
        return;
    }
    let want = sha256(&data);
    for driver in SETUPS.into_iter().filter(|s| s.transport == transport) {
        let srv = Server::start(&fx.dir, driver, &["--workers", "1"]);
        let pid = srv.child.id();
        let worker = worker_tid(pid);
        // Drop the file's pages (GNU dd: `iflag=nocache count=0` advises DONTNEED on it all).
        let evicted = Command::new("dd")
            .arg(format!("if={}", path.display()))
            .args(["iflag=nocache", "count=0", "status=none"])
            .status()
            .unwrap();
        assert!(evicted.success());
        let worker_io = format!("/proc/{pid}/task/{worker}/io");
        let (process_before, worker_before) =
            (storage_read_bytes(&format!("/proc/{pid}/io")), storage_read_bytes(&worker_io));

        let r = srv.get("/cold.bin", &[]);
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(sha256(&r.body), want, "{driver}: body");

        let process = storage_read_bytes(&format!("/proc/{pid}/io")) - process_before;
        let by_worker = storage_read_bytes(&worker_io) - worker_before;
        if process < (LEN / 2) as u64 {
            eprintln!(
                "SKIPPED {name} ({driver}): only {process} bytes \
                 read from storage for a {LEN}-byte file that should have been cold ({fs})"
            );
            continue;
        }
        // The worker may be charged a little readahead its sendfile set off at the edge of a
        // warmed step; the bulk of the file must come in through the cold-read threads.
        assert!(
            by_worker <= process / 4,
            "{driver}: the worker thread read {by_worker} of the {process} bytes fetched from \
             storage itself"
        );
        eprintln!("{driver}: {process} bytes read from storage, {by_worker} by the worker thread");
    }
}
