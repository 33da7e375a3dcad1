//! Body strategies (memory, sendfile, splice, copy, auto) on both drivers, over plain HTTP and
//! over TLS (where every strategy must give way to encryption in user space): byte-exact bodies at
//! odd offsets, multipart ranges, a sparse file past 4 GiB, many concurrent transfers of one
//! file, truncation while sending, changed files in the cache, cold (uncached) files, and small
//! responses to a client that stops reading.

mod common;

use std::io::{BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::{pseudo_random, read_response, request, sha256, Fixture, Server, SETUPS};

const STRATEGIES: [&str; 5] = ["auto", "memory", "sendfile", "splice", "copy"];

fn fixture() -> (Fixture, Vec<(String, Vec<u8>)>) {
    let fx = Fixture::new("bodies");
    let sizes = [0usize, 1, 16 * 1024, 16 * 1024 + 1, 100_003, 5 * 1024 * 1024 + 7];
    let files = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let name = format!("f{n}.bin");
            let data = pseudo_random(n, i as u64 + 11);
            fx.file(&name, &data);
            (name, data)
        })
        .collect();
    (fx, files)
}

#[test]
fn every_strategy_sends_exact_bytes() {
    let (fx, files) = fixture();
    for setup in SETUPS {
        for strategy in STRATEGIES {
            let srv = Server::start(&fx.dir, setup, &["--body-strategy", strategy]);
            let what = format!("{setup}/{strategy}");
            for (name, data) in &files {
                let r = srv.get(&format!("/{name}"), &[]);
                assert_eq!(r.status, 200, "{what} {name}");
                assert_eq!(sha256(&r.body), sha256(data), "{what} {name}");
                if data.len() < 3 {
                    continue;
                }
                // A single range at odd offsets.
                let (a, b) = (data.len() / 3 + 1, data.len() - data.len() / 5 - 1);
                let r = srv.get(&format!("/{name}"), &[("Range", &format!("bytes={a}-{b}"))]);
                assert_eq!(r.status, 206, "{what} {name}");
                assert_eq!(r.body, &data[a..=b], "{what} {name} range");
                // A suffix range.
                let r = srv.get(&format!("/{name}"), &[("Range", "bytes=-3")]);
                assert_eq!(r.body, &data[data.len() - 3..], "{what} {name} suffix");
            }
            // Multipart: each part's bytes checked.
            let (name, data) = &files[5];
            let r = srv.get(&format!("/{name}"), &[("Range", "bytes=1-10, 4000000-4000099, -5")]);
            assert_eq!(r.status, 206, "{what}");
            let ct = r.header("content-type").unwrap();
            let boundary = ct.split("boundary=").nth(1).unwrap();
            let parts = split_multipart(&r.body, boundary);
            let want: Vec<&[u8]> =
                vec![&data[1..=10], &data[4_000_000..4_000_100], &data[data.len() - 5..]];
            assert_eq!(parts, want, "{what} multipart");
        }
    }
}

/// The bodies of a multipart/byteranges payload, in order.
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    loop {
        let start = find(rest, delim.as_bytes()).expect("delimiter");
        rest = &rest[start + delim.len()..];
        if rest.starts_with(b"--") {
            return parts;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("part head") + 4;
        rest = &rest[head_end..];
        let next = find(rest, format!("\r\n{delim}").as_bytes()).expect("next delimiter");
        parts.push(&rest[..next]);
        rest = &rest[next + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn sparse_file_past_four_gib() {
    let fx = Fixture::new("sparse");
    let path = fx.dir.join("sparse.bin");
    let f = std::fs::File::create(&path).unwrap();
    let size: u64 = (5 << 30) + 12345;
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    let marker = pseudo_random(2 << 20, 5);
    let at = (4u64 << 30) - (1 << 20); // straddles the 4 GiB boundary
    f.write_all_at(&marker, at).unwrap();
    drop(f);
    for setup in SETUPS {
        for strategy in STRATEGIES {
            let srv = Server::start(&fx.dir, setup, &["--body-strategy", strategy]);
            let what = format!("{setup}/{strategy}");
            let h = srv.exchange(request("HEAD", "/sparse.bin", &[]).as_bytes());
            assert_eq!(h.content_length(), Some(size), "{what}");
            let (a, b) = (at + 3, at + (2 << 20) - 2);
            let r = srv.get("/sparse.bin", &[("Range", &format!("bytes={a}-{b}"))]);
            assert_eq!(r.status, 206, "{what}");
            assert_eq!(r.header("content-range"), Some(format!("bytes {a}-{b}/{size}").as_str()));
            assert_eq!(sha256(&r.body), sha256(&marker[3..marker.len() - 1]), "{what}");
            // The tail, past 5 GiB: zeros.
            let r = srv.get("/sparse.bin", &[("Range", "bytes=-4096")]);
            assert_eq!(r.body, vec![0u8; 4096], "{what}");
        }
    }
}

#[test]
fn many_concurrent_transfers_of_one_file() {
    let (fx, files) = fixture();
    let (name, data) = files[5].clone();
    let want = sha256(&data);
    for setup in SETUPS {
        for strategy in STRATEGIES {
            let srv = Server::start(&fx.dir, setup, &["--body-strategy", strategy]);
            let client = srv.client();
            // Fewer clients over TLS, where both ends encrypt every byte (CI has two cores).
            let clients = if setup.is_tls() { 6 } else { 16 };
            let handles: Vec<_> = (0..clients)
                .map(|_| {
                    let (name, client) = (name.clone(), client.clone());
                    std::thread::spawn(move || {
                        let mut s = client.connect();
                        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        let mut digests = Vec::new();
                        let mut reader = BufReader::new(s.try_clone().unwrap());
                        for _ in 0..2 {
                            s.write_all(request("GET", &format!("/{name}"), &[]).as_bytes())
                                .unwrap();
                            digests.push(sha256(&read_response(&mut reader, false).body));
                        }
                        digests
                    })
                })
                .collect();
            for h in handles {
                for d in h.join().unwrap() {
                    assert_eq!(d, want, "{setup}/{strategy}");
                }
            }
        }
    }
}

#[test]
fn truncation_while_sending_closes_cleanly() {
    let data = pseudo_random(32 << 20, 3);
    for setup in SETUPS {
        for strategy in STRATEGIES {
            let fx = Fixture::new("trunc");
            let path = fx.file("big.bin", &data);
            fx.file("hello.txt", b"hello\n");
            let srv = Server::start(&fx.dir, setup, &["--body-strategy", strategy]);
            let what = format!("{setup}/{strategy}");
            let mut s = srv.connect();
            s.write_all(request("GET", "/big.bin", &[]).as_bytes()).unwrap();
            let mut first = vec![0u8; 64 * 1024];
            s.read_exact(&mut first).unwrap();
            // Shrink the file under the transfer.
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1 << 20).unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            let got = first.len() + rest.len();
            assert!(got < 32 << 20, "{what}: a truncated file cannot be sent whole ({got})");
            // The server is alive and serving.
            assert_eq!(srv.get("/hello.txt", &[]).status, 200, "{what}");
            assert!(!srv.log().contains("panicked"), "{what}");
        }
    }
}

#[test]
fn cached_files_are_revalidated() {
    let fx = Fixture::new("revalidate");
    fx.file("a.txt", b"first version\n");
    for setup in SETUPS {
        std::fs::write(fx.dir.join("a.txt"), b"first version\n").unwrap();
        let srv =
            Server::start(&fx.dir, setup, &["--file-cache-revalidate", "50ms", "--workers", "1"]);
        let r1 = srv.get("/a.txt", &[]);
        assert_eq!(r1.body, b"first version\n");
        // Replaced by rename (a new inode), as deploy tools do.
        fx.file("a.tmp", b"second, longer version\n");
        std::fs::rename(fx.dir.join("a.tmp"), fx.dir.join("a.txt")).unwrap();
        std::thread::sleep(Duration::from_millis(120));
        let r2 = srv.get("/a.txt", &[]);
        assert_eq!(r2.body, b"second, longer version\n", "{setup}");
        assert_ne!(r1.header("etag"), r2.header("etag"));
        std::fs::remove_file(fx.dir.join("a.txt")).unwrap();
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(srv.get("/a.txt", &[]).status, 404, "{setup}: deleted file still served");
    }
}

#[test]
fn cold_files_are_served_exactly() {
    let fx = Fixture::new("cold");
    let data = pseudo_random(12 << 20, 8);
    let path = fx.file("cold.bin", &data);
    for setup in SETUPS {
        for strategy in ["auto", "sendfile"] {
            let evict = || {
                let f = std::fs::File::open(&path).unwrap();
                f.sync_all().unwrap();
                // SAFETY: posix_fadvise takes plain integers; DONTNEED drops the file's clean
                // pages from the page cache, so the server reads it cold.
                let rc =
                    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
                assert_eq!(rc, 0);
            };
            evict();
            let srv = Server::start(&fx.dir, setup, &["--body-strategy", strategy]);
            let r = srv.get("/cold.bin", &[]);
            assert_eq!(sha256(&r.body), sha256(&data), "{setup}/{strategy}");
            // A cold range starting and ending off every chunk boundary.
            evict();
            let (a, b) = (1_234_567, 9_876_543);
            let r = srv.get("/cold.bin", &[("Range", &format!("bytes={a}-{b}"))]);
            assert_eq!(r.status, 206, "{setup}/{strategy}");
            assert_eq!(sha256(&r.body), sha256(&data[a..=b]), "{setup}/{strategy} range");
        }
    }
}

/// Small bodies from memory go out in one `send` from a per-worker buffer; when the socket takes
/// only part (the client is not reading), the rest must follow intact and in order. Thousands of
/// pipelined requests for files just under and just over that size, read only after a pause:
/// every response byte-exact, in order.
#[test]
fn small_responses_survive_a_full_socket() {
    let fx = Fixture::new("fullsock");
    let small = pseudo_random(4096, 21);
    let larger = pseudo_random(4097, 22);
    fx.file("small.bin", &small);
    fx.file("larger.bin", &larger);
    const N: usize = 3000;
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let s = srv.connect();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut all = String::new();
        for i in 0..N {
            let path = if i % 2 == 0 { "/small.bin" } else { "/larger.bin" };
            all.push_str(&request("GET", path, &[]));
        }
        let sending = s.send_in_background(all.into_bytes());
        // Let the responses pile up until the server's sends stop short.
        std::thread::sleep(Duration::from_millis(300));
        let mut reader = BufReader::new(s);
        for i in 0..N {
            let r = read_response(&mut reader, false);
            let want = if i % 2 == 0 { &small } else { &larger };
            assert_eq!(r.status, 200, "{setup} response {i}");
            assert!(r.body == *want, "{setup} response {i}: body differs");
        }
        sending.join().unwrap();
        assert!(!srv.log().contains("panicked"), "{setup}");
    }
}
