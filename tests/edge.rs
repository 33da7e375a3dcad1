//! The edge mode end to end: the real binary (`ringcast edge`) in front of the counting origin
//! fixture (`tests/fixtures/origin.py`), over real sockets, on both drivers. The origin's
//! request log is the witness for coalescing and slicing; bodies are compared byte for byte.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{pseudo_random, read_response, request, Response, Server, DRIVERS};

/// Slice size used by these tests (small, so objects of a few hundred KiB have many slices).
const SLICE: usize = 64 * 1024;

/// The counting origin, killed on drop.
struct Origin {
    child: Child,
    addr: SocketAddr,
    root: PathBuf,
}

impl Origin {
    fn start(name: &str) -> Origin {
        let root =
            std::env::temp_dir().join(format!("ringcast-edge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/origin.py");
        let mut child = Command::new("python3")
            .args([script, "--root"])
            .arg(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the origin fixture");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr =
            line.trim().strip_prefix("listening on ").expect("listening line").parse().unwrap();
        Origin { child, addr, root }
    }

    fn file(&self, name: &str, data: &[u8]) {
        std::fs::write(self.root.join(name), data).unwrap();
    }

    fn control(&self, what: &str) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        write!(s, "POST /_control/{what} HTTP/1.1\r\nHost: o\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let r = read_response(&mut BufReader::new(s), false);
        assert_eq!(r.status, 200, "control {what}");
    }

    /// The `Range` of every request the origin saw for `path`, in order (`-` for none).
    fn ranges(&self, path: &str) -> Vec<String> {
        self.logged(path, "range")
    }

    /// Field `field` of every request the origin saw for `path`, in order (`-` for none).
    fn logged(&self, path: &str, field: &str) -> Vec<String> {
        let mut s = TcpStream::connect(self.addr).unwrap();
        write!(s, "GET /_control/log HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n").unwrap();
        let log = read_response(&mut BufReader::new(s), false).body_text();
        log.split("{\"method\"")
            .filter(|e| e.contains(&format!("\"path\": \"{path}\"")))
            .map(|e| {
                let r = e.split(&format!("\"{field}\": ")).nth(1).unwrap();
                if r.starts_with("null") {
                    "-".to_string()
                } else {
                    json_string(&r[1..])
                }
            })
            .collect()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The JSON string whose opening quote precedes `s`, unescaped (`\"` and `\\` only).
fn json_string(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// A cache directory removed on drop.
struct CacheDir(PathBuf);

impl CacheDir {
    fn new(name: &str) -> CacheDir {
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("edge-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        CacheDir(p)
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ringcast edge` in front of `origin`, caching into `cache`.
fn edge(origin: SocketAddr, cache: &CacheDir, driver: &'static str, extra: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast"));
    cmd.arg("edge");
    let origin = format!("http://{origin}");
    let dir = cache.0.to_str().unwrap().to_string();
    let slice = SLICE.to_string();
    let mut args = vec![
        "--origin",
        &origin,
        "--cache-dir",
        &dir,
        "--cache-size",
        "1000000000",
        "--slice-size",
        &slice,
        "--workers",
        "2",
    ];
    args.extend_from_slice(extra);
    Server::start_with(cmd, &std::env::temp_dir(), driver, &args)
}

/// The aligned origin `Range` of every slice of an object of `len` bytes.
fn slice_ranges(len: usize) -> Vec<String> {
    (0..len.div_ceil(SLICE))
        .map(|k| format!("bytes={}-{}", k * SLICE, (k + 1) * SLICE - 1))
        .collect()
}

/// A response read to the end of its body or of the connection, whichever comes first: a
/// response the server aborted has fewer body bytes than its `Content-Length`.
fn get_until_close(addr: SocketAddr, path: &str) -> (u16, Option<u64>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request("GET", path, &[("Connection", "close")]).as_bytes()).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&all[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    let len = head.lines().find_map(|l| {
        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
    });
    (status, len, all[end..].to_vec())
}

fn cache_status(r: &Response) -> &str {
    r.header("cache-status").expect("Cache-Status on every edge answer")
}

#[test]
fn a_miss_is_stored_and_then_hit_and_survives_a_restart() {
    for driver in DRIVERS {
        let origin = Origin::start(&format!("hit-{driver}"));
        let data = pseudo_random(3 * SLICE + 777, 1);
        origin.file("a.bin", &data);
        let cache = CacheDir::new(&format!("hit-{driver}"));
        let mut server = edge(origin.addr, &cache, driver, &["--cache-default-ttl", "1h"]);
        let first = server.get("/a.bin", &[]);
        assert_eq!(first.status, 200);
        assert!(first.body == data, "miss body differs");
        let cs = cache_status(&first);
        assert!(cs.contains("fwd=uri-miss") && cs.contains("stored"), "{cs}");
        let second = server.get("/a.bin", &[]);
        assert!(second.body == data, "hit body differs");
        assert!(
            cache_status(&second).starts_with("ringcast; hit; ttl="),
            "{}",
            cache_status(&second)
        );
        assert!(second.header("age").is_some());
        assert_eq!(origin.ranges("/a.bin"), slice_ranges(data.len()));
        // HEAD on a hit: the head alone, the length of the object.
        let head = server.exchange(request("HEAD", "/a.bin", &[]).as_bytes());
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length(), Some(data.len() as u64));
        assert!(cache_status(&head).contains("hit"));
        // A conditional hit: 304 from the stored validators, no origin request.
        let etag = second.header("etag").unwrap().to_string();
        let nm = server.get("/a.bin", &[("If-None-Match", &etag)]);
        assert_eq!(nm.status, 304);
        // Restart: the store is rebuilt from disk and still answers.
        server.terminate();
        drop(server);
        let server = edge(origin.addr, &cache, driver, &["--cache-default-ttl", "1h"]);
        let third = server.get("/a.bin", &[]);
        assert!(third.body == data);
        assert!(cache_status(&third).contains("hit"), "{}", cache_status(&third));
        assert_eq!(origin.ranges("/a.bin").len(), slice_ranges(data.len()).len());
    }
}

#[test]
fn a_cold_herd_fetches_each_slice_once() {
    for driver in DRIVERS {
        let origin = Origin::start(&format!("herd-{driver}"));
        let data = pseudo_random(24 * SLICE + 5, 2);
        origin.file("herd.bin", &data);
        let cache = CacheDir::new(&format!("herd-{driver}"));
        let server = edge(origin.addr, &cache, driver, &["--cache-default-ttl", "1h"]);
        let addr = server.addr;
        let clients: Vec<_> = (0..100)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    s.write_all(request("GET", "/herd.bin", &[]).as_bytes()).unwrap();
                    read_response(&mut BufReader::new(s), false)
                })
            })
            .collect();
        for c in clients {
            let r = c.join().unwrap();
            assert_eq!(r.status, 200);
            assert!(r.body == data, "a client's body differs");
        }
        let mut seen = origin.ranges("/herd.bin");
        seen.sort();
        let mut want = slice_ranges(data.len());
        want.sort();
        if seen != want {
            let mut s = TcpStream::connect(origin.addr).unwrap();
            write!(s, "GET /_control/log HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n")
                .unwrap();
            eprintln!(
                "{}",
                read_response(&mut BufReader::new(s), false).body_text().replace("}, {", "}\n{")
            );
        }
        assert_eq!(seen, want, "each slice exactly once");
    }
}

#[test]
fn a_cold_range_fetches_only_its_slices_then_the_whole_object_completes() {
    for driver in DRIVERS {
        let origin = Origin::start(&format!("range-{driver}"));
        let data = pseudo_random(5 * SLICE, 3);
        origin.file("r.bin", &data);
        let cache = CacheDir::new(&format!("range-{driver}"));
        let server = edge(origin.addr, &cache, driver, &["--cache-default-ttl", "1h"]);
        // Bytes spanning the end of slice 2 and the start of slice 3.
        let (a, b) = (3 * SLICE - 10, 3 * SLICE + 9);
        let r = server.get("/r.bin", &[("Range", &format!("bytes={a}-{b}"))]);
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-range").unwrap(), format!("bytes {a}-{b}/{}", data.len()));
        assert!(r.body == data[a..=b]);
        let all = slice_ranges(data.len());
        assert_eq!(origin.ranges("/r.bin"), all[2..4].to_vec());
        let whole = server.get("/r.bin", &[]);
        assert_eq!(whole.status, 200);
        assert!(whole.body == data, "whole body after a range differs");
        assert!(cache_status(&whole).contains("fwd=partial"), "{}", cache_status(&whole));
        let mut seen = origin.ranges("/r.bin");
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want);
        // Beyond the end: 416 with the length.
        let r = server.get("/r.bin", &[("Range", &format!("bytes={}-", data.len() + 1))]);
        assert_eq!(r.status, 416);
        assert_eq!(r.header("content-range").unwrap(), format!("bytes */{}", data.len()));
    }
}

#[test]
fn an_origin_that_ignores_range_is_stored_whole() {
    let origin = Origin::start("ignore-range");
    let data = pseudo_random(2 * SLICE + 100, 4);
    origin.file("w.bin", &data);
    origin.control("mode?path=/w.bin&mode=ignore-range");
    let cache = CacheDir::new("ignore-range");
    let server = edge(origin.addr, &cache, "epoll", &["--cache-default-ttl", "1h"]);
    let r = server.get("/w.bin", &[("Range", "bytes=10-19")]);
    assert_eq!(r.status, 206);
    assert!(r.body == data[10..20]);
    let whole = server.get("/w.bin", &[]);
    assert!(whole.body == data);
    assert!(cache_status(&whole).contains("hit"));
    assert_eq!(origin.ranges("/w.bin").len(), 1);
}

#[test]
fn a_changed_object_is_never_stitched() {
    for driver in DRIVERS {
        let origin = Origin::start(&format!("change-{driver}"));
        let old = pseudo_random(4 * SLICE, 5);
        origin.file("v.bin", &old);
        let cache = CacheDir::new(&format!("change-{driver}"));
        let server = edge(origin.addr, &cache, driver, &["--cache-default-ttl", "1h"]);
        // Slice 0 of the old version is cached; then the origin's object changes.
        let r = server.get("/v.bin", &[("Range", "bytes=0-9")]);
        assert!(r.body == old[..10]);
        let new = pseudo_random(4 * SLICE, 6);
        origin.file("v.bin", &new);
        let (status, len, body) = get_until_close(server.addr, "/v.bin");
        assert_eq!(status, 200);
        let len = usize::try_from(len.unwrap()).unwrap();
        // One version whole, or an aborted transfer: never the old start and the new rest.
        if body.len() == len {
            assert!(body == old || body == new, "a complete body of mixed versions");
        } else {
            assert!(body.len() < len);
            assert!(
                old.starts_with(&body) || new.starts_with(&body),
                "mixed bytes before the abort"
            );
        }
        // The object was dropped: the next request gets the new version whole.
        let (status, _, body) = get_until_close(server.addr, "/v.bin");
        assert_eq!(status, 200);
        assert!(body == new, "after a change the new version");
    }
}

#[test]
fn an_origin_closing_mid_body_leaves_nothing_cached() {
    let origin = Origin::start("cut");
    let data = pseudo_random(SLICE / 2, 7);
    origin.file("cut.bin", &data);
    origin.control("mode?path=/cut.bin&mode=close-mid-body");
    let cache = CacheDir::new("cut");
    let server = edge(origin.addr, &cache, "uring", &["--cache-default-ttl", "1h"]);
    let r = server.get("/cut.bin", &[]);
    assert_eq!(r.status, 502);
    assert!(cache_status(&r).contains("fwd=uri-miss"));
    origin.control("mode?path=/cut.bin&mode=normal");
    let r = server.get("/cut.bin", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body == data);
    assert!(cache_status(&r).contains("stored"), "a second fill, not a truncated hit");
}

#[test]
fn an_uncacheable_answer_is_passed_through_each_time() {
    let origin = Origin::start("nostore");
    let data = pseudo_random(1000, 8);
    origin.file("n.bin", &data);
    origin.control("header?path=/n.bin&name=Cache-Control&value=no-store");
    let cache = CacheDir::new("nostore");
    let server = edge(origin.addr, &cache, "epoll", &["--cache-default-ttl", "1h"]);
    for _ in 0..2 {
        let r = server.get("/n.bin", &[]);
        assert_eq!(r.status, 200);
        assert!(r.body == data);
        assert!(!cache_status(&r).contains("hit"), "{}", cache_status(&r));
    }
    // Origin errors pass through with their status, not stored.
    let r = server.get("/missing", &[]);
    assert_eq!(r.status, 404);
    assert!(cache_status(&r).contains("fwd-status=404"), "{}", cache_status(&r));
}

#[test]
fn loops_methods_and_a_dead_origin() {
    for driver in DRIVERS {
        let cache = CacheDir::new(&format!("dead-{driver}"));
        // A port nothing listens on.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let server = edge(dead, &cache, driver, &[]);
        let r = server.get("/x", &[]);
        assert_eq!(r.status, 502);
        assert!(cache_status(&r).contains("fwd=uri-miss"));
        let r = server.get("/x", &[("CDN-Loop", "other, ringcast")]);
        assert_eq!(r.status, 508);
        let r = server.exchange(request("PURGE", "/x", &[]).as_bytes());
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow").unwrap(), "GET, HEAD");
    }
}

/// Lets `secs` seconds of the cache's clock pass (freshness is in whole seconds).
fn let_age(secs: u64) {
    std::thread::sleep(Duration::from_millis(secs * 1000 + 100));
}

#[test]
fn a_stale_object_is_revalidated_and_a_304_refreshes_it() {
    for driver in DRIVERS {
        let origin = Origin::start(&format!("reval-{driver}"));
        let data = pseudo_random(2 * SLICE + 3, 9);
        origin.file("s.bin", &data);
        origin.control("header?path=/s.bin&name=Cache-Control&value=max-age%3D2");
        let cache = CacheDir::new(&format!("reval-{driver}"));
        let server = edge(origin.addr, &cache, driver, &[]);
        let first = server.get("/s.bin", &[]);
        assert!(first.body == data);
        let etag = first.header("etag").unwrap().to_string();
        let_age(3);
        let r = server.get("/s.bin", &[]);
        assert_eq!(r.status, 200);
        assert!(r.body == data, "a revalidated body differs");
        let cs = cache_status(&r);
        assert!(cs.contains("fwd=stale") && cs.contains("fwd-status=304"), "{cs}");
        // One conditional request, for slice 0, with the stored entity-tag; no body refetched.
        let inm = origin.logged("/s.bin", "if_none_match");
        assert_eq!(inm.len(), 3 + 1, "{inm:?}");
        assert_eq!(inm[3], etag);
        assert_eq!(origin.ranges("/s.bin")[3], slice_ranges(data.len())[0]);
        let again = server.get("/s.bin", &[]);
        assert!(cache_status(&again).contains("hit"), "{}", cache_status(&again));
        assert_eq!(origin.ranges("/s.bin").len(), 4);
    }
}

#[test]
fn stale_while_revalidate_serves_stale_and_revalidates_once() {
    let origin = Origin::start("swr");
    let data = pseudo_random(1000, 10);
    origin.file("w.txt", &data);
    origin.control(
        "header?path=/w.txt&name=Cache-Control&value=max-age%3D2,%20stale-while-revalidate%3D60",
    );
    let cache = CacheDir::new("swr");
    let server = edge(origin.addr, &cache, "uring", &[]);
    assert!(server.get("/w.txt", &[]).body == data);
    let_age(3);
    let addr = server.addr;
    let burst: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let s = TcpStream::connect(addr).unwrap();
                let mut s2 = s.try_clone().unwrap();
                s2.write_all(request("GET", "/w.txt", &[]).as_bytes()).unwrap();
                read_response(&mut BufReader::new(s), false)
            })
        })
        .collect();
    for b in burst {
        let r = b.join().unwrap();
        assert!(r.body == data);
        let cs = cache_status(&r).to_string();
        assert!(cs.contains("hit") || cs.contains("fwd-status=304"), "{cs}");
    }
    // The background revalidation happens once; wait for it to be logged.
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = origin.logged("/w.txt", "if_none_match");
        if seen.len() > 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen.len(), 2, "one fill and one conditional request: {seen:?}");
    assert_ne!(seen[1], "-");
}

#[test]
fn stale_if_error_then_a_gateway_error() {
    let origin = Origin::start("sie");
    let data = pseudo_random(500, 11);
    origin.file("e.txt", &data);
    origin.file("f.txt", &data);
    origin
        .control("header?path=/e.txt&name=Cache-Control&value=max-age%3D1,%20stale-if-error%3D600");
    origin.control("header?path=/f.txt&name=Cache-Control&value=max-age%3D1");
    let cache = CacheDir::new("sie");
    let server = edge(origin.addr, &cache, "epoll", &[]);
    assert!(server.get("/e.txt", &[]).body == data);
    assert!(server.get("/f.txt", &[]).body == data);
    origin.control("mode?path=/e.txt&mode=status&arg=503");
    origin.control("mode?path=/f.txt&mode=status&arg=503");
    let_age(2);
    let r = server.get("/e.txt", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body == data);
    let cs = cache_status(&r);
    assert!(cs.contains("fwd=stale") && cs.contains("fwd-status=503"), "{cs}");
    let r = server.get("/f.txt", &[]);
    assert_eq!(r.status, 502);
}

/// The admin (metrics) listener's address, from the start-up log.
fn admin_addr(srv: &Server) -> SocketAddr {
    let log = srv.log();
    let end = log.find("/metrics").expect("the metrics address in the log");
    let start = log[..end].rfind("http://").unwrap() + "http://".len();
    log[start..end].parse().unwrap()
}

/// `PURGE target` on `addr` with extra field lines: the status.
fn purge(addr: SocketAddr, target: &str, extra: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "PURGE {target} HTTP/1.1\r\nHost: a\r\n{extra}Connection: close\r\n\r\n").unwrap();
    read_response(&mut BufReader::new(s), false).status
}

#[test]
fn purge_by_url_by_prefix_and_soft_on_the_admin_listener_only() {
    for driver in DRIVERS {
        let origin = Origin::start(&format!("purge-{driver}"));
        let data = pseudo_random(300, 12);
        for name in ["p1.txt", "p2.txt", "q.txt"] {
            origin.file(name, &data);
        }
        let cache = CacheDir::new(&format!("purge-{driver}"));
        let server = edge(
            origin.addr,
            &cache,
            driver,
            &["--cache-default-ttl", "1h", "--metrics-listen", "127.0.0.1:0"],
        );
        let admin = admin_addr(&server);
        for p in ["/p1.txt", "/p2.txt", "/q.txt"] {
            assert!(server.get(p, &[]).body == data);
            assert!(cache_status(&server.get(p, &[])).contains("hit"));
        }
        // Never on the public port.
        let r = server.exchange(request("PURGE", "/q.txt", &[]).as_bytes());
        assert_eq!(r.status, 405);
        assert!(cache_status(&server.get("/q.txt", &[])).contains("hit"));
        // By URL: deleted, the next request is a miss.
        assert_eq!(purge(admin, "/q.txt", ""), 200);
        assert_eq!(purge(admin, "/q.txt", ""), 404);
        assert!(cache_status(&server.get("/q.txt", &[])).contains("fwd=uri-miss"));
        // By prefix: both /p*.
        assert_eq!(purge(admin, "/p*", ""), 200);
        for p in ["/p1.txt", "/p2.txt"] {
            assert!(cache_status(&server.get(p, &[])).contains("fwd=uri-miss"));
        }
        assert!(cache_status(&server.get("/q.txt", &[])).contains("hit"));
        // Soft: kept, but stale: revalidated (304) rather than fetched again.
        assert_eq!(purge(admin, "/q.txt", "Purge-Mode: soft\r\n"), 200);
        let r = server.get("/q.txt", &[]);
        assert!(r.body == data);
        let cs = cache_status(&r);
        assert!(cs.contains("fwd=stale") && cs.contains("fwd-status=304"), "{cs}");
        // The counters agree with what the origin saw and what the clients got.
        let metrics = scrape(admin);
        let origin_seen: usize =
            ["/p1.txt", "/p2.txt", "/q.txt"].iter().map(|p| origin.ranges(p).len()).sum();
        assert_eq!(sum(&metrics, "ringcast_origin_requests_total{"), origin_seen as u64);
        assert_eq!(sum(&metrics, "ringcast_origin_errors_total{"), 0);
        // Hits: 3 + 1 (public PURGE check) + 1 (after the prefix purge) = 5.
        assert_eq!(
            sum(&metrics, "ringcast_edge_requests_total{worker=\"0\",cache=\"hit\"}")
                + sum(&metrics, "ringcast_edge_requests_total{worker=\"1\",cache=\"hit\"}"),
            5
        );
        assert_eq!(sum(&metrics, "ringcast_edge_hit_bytes_total{"), 5 * data.len() as u64);
    }
}

/// The admin listener's metrics text.
fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    read_response(&mut BufReader::new(s), false).body_text()
}

/// The sum of the series whose line starts with `prefix`.
fn sum(metrics: &str, prefix: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn the_access_log_names_the_cache_outcome_and_origin_time() {
    let origin = Origin::start("log");
    let data = pseudo_random(100, 13);
    origin.file("l.txt", &data);
    let cache = CacheDir::new("log");
    let mut server = edge(
        origin.addr,
        &cache,
        "epoll",
        &["--cache-default-ttl", "1h", "--access-log", "-", "--log-format", "json"],
    );
    assert!(server.get("/l.txt", &[]).body == data);
    assert!(server.get("/l.txt", &[]).body == data);
    let mut lines = Vec::new();
    while lines.len() < 2 {
        let mut line = String::new();
        server.stdout().read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the access log ended early");
        lines.push(line);
    }
    // Two workers flush their own lines: in either order.
    lines.sort_by_key(|l| !l.contains("\"cache\":\"miss\""));
    assert!(lines[0].contains("\"cache\":\"miss\",\"origin_ms\":"), "{lines:?}");
    assert!(lines[1].contains("\"cache\":\"hit\",\"origin_ms\":0.000}"), "{lines:?}");
}

#[test]
fn a_fill_cut_by_a_crash_is_never_served_after_restart() {
    let origin = Origin::start("crash");
    let data = pseudo_random(SLICE / 2, 14);
    origin.file("c.bin", &data);
    origin.control("mode?path=/c.bin&mode=stall&arg=30");
    let cache = CacheDir::new("crash");
    let mut server = edge(origin.addr, &cache, "uring", &["--cache-default-ttl", "1h"]);
    let mut s = server.connect();
    s.write_all(request("GET", "/c.bin", &[]).as_bytes()).unwrap();
    // The fill has begun once the origin has seen the request; then the edge dies.
    for _ in 0..200 {
        if !origin.ranges("/c.bin").is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(origin.ranges("/c.bin").len(), 1);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(s);
    drop(server);
    origin.control("mode?path=/c.bin&mode=normal");
    let server = edge(origin.addr, &cache, "uring", &["--cache-default-ttl", "1h"]);
    let r = server.get("/c.bin", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body == data);
    assert!(cache_status(&r).contains("fwd=uri-miss"), "{}", cache_status(&r));
    assert_eq!(origin.ranges("/c.bin").len(), 2);
}

#[test]
fn a_slice_failing_mid_response_aborts_it_and_is_not_cached() {
    for driver in DRIVERS {
        let origin = Origin::start(&format!("midcut-{driver}"));
        let data = pseudo_random(2 * SLICE, 15);
        origin.file("m.bin", &data);
        let cache = CacheDir::new(&format!("midcut-{driver}"));
        let server = edge(origin.addr, &cache, driver, &["--cache-default-ttl", "1h"]);
        // Slice 0 is cached; slice 1's origin answer breaks off halfway.
        assert!(server.get("/m.bin", &[("Range", "bytes=0-0")]).body == data[..1]);
        origin.control("mode?path=/m.bin&mode=close-mid-body");
        let (status, len, body) = get_until_close(server.addr, "/m.bin");
        assert_eq!(status, 200);
        assert_eq!(len, Some(data.len() as u64));
        // Slice 0 went out before slice 1 was fetched; the response then ends short.
        assert!(body.len() >= SLICE && body.len() < data.len(), "{} bytes", body.len());
        assert!(data.starts_with(&body));
        origin.control("mode?path=/m.bin&mode=normal");
        let r = server.get("/m.bin", &[]);
        assert!(r.body == data);
        assert!(cache_status(&r).contains("fwd=partial"), "{}", cache_status(&r));
    }
}
