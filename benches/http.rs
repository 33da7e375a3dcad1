//! Micro-benchmarks of the sans-I/O core: request parsing, response-head writing, range and
//! conditional evaluation, path normalisation and media-type lookup.
//!
//! Each function is called on bytes built once outside the timed loop, so the figures are the
//! cost of the function alone (allocation of its result included). Run with
//! `cargo bench --bench http`; figures, machine and date are in `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput};
use ringcast::fs::path;
use ringcast::http::conditional::{self, Preconditions, Validators};
use ringcast::http::mime::MimeTable;
use ringcast::http::range::{self, DEFAULT_MAX_RANGES};
use ringcast::http::request::{self, Limits, Parsed};
use ringcast::http::response::{HeadWriter, Status};

/// The limits the server runs with by default (`--max-header-bytes`, `--max-target-bytes`).
const LIMITS: Limits = Limits { max_head_bytes: 16 * 1024, max_target_bytes: 8 * 1024 };

/// What Chromium sends for a video file on a keep-alive connection.
const BROWSER_GET: &[u8] = b"GET /media/video/demo-720p.mp4 HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
Accept: */*\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Dest: video\r\n\
Referer: http://127.0.0.1:8080/\r\n\
Accept-Encoding: identity;q=1, *;q=0\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Range: bytes=0-\r\n\
If-Range: \"5f3a-19283746\"\r\n\
\r\n";

/// `curl http://127.0.0.1:8080/index.html`.
const CURL_GET: &[u8] =
    b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";

/// A request head with 30 fields (typical names, a few the server acts on).
fn thirty_fields() -> Vec<u8> {
    let mut head = b"GET /assets/app.js?v=3 HTTP/1.1\r\nHost: example.test\r\n".to_vec();
    let acted_on = [
        "If-None-Match: \"abc\", \"def\"",
        "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
        "Accept-Encoding: gzip, deflate, br, zstd",
        "Origin: https://example.test",
    ];
    for line in acted_on {
        head.extend_from_slice(line.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    for i in 0..25 {
        head.extend_from_slice(
            format!("X-Field-{i:02}: value-{i}-abcdefghijklmnop\r\n").as_bytes(),
        );
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn parse(c: &mut Criterion) {
    let thirty = thirty_fields();
    let cases: [(&str, &[u8]); 3] =
        [("browser_get", BROWSER_GET), ("curl_get", CURL_GET), ("30_fields", &thirty)];
    let mut g = c.benchmark_group("request_parse");
    for (name, head) in cases {
        // Every case must be a whole, valid head, or the bench measures an error path.
        assert!(matches!(request::parse(head, &LIMITS), Ok(Parsed::Complete(..))), "{name}");
        g.throughput(Throughput::Bytes(u64::try_from(head.len()).expect("head length")));
        g.bench_with_input(BenchmarkId::from_parameter(name), head, |b, head| {
            b.iter(|| request::parse(black_box(head), &LIMITS));
        });
    }
    g.finish();
}

fn head_writer(c: &mut Criterion) {
    let date = "Thu, 26 Nov 2026 06:30:00 GMT";
    c.bench_function("head_writer/200_file", |b| {
        b.iter(|| {
            let mut head = HeadWriter::new(Status::Ok, black_box(date));
            head.content_length(black_box(1_048_576))
                .field("Content-Type", "video/mp4")
                .field("Last-Modified", "Wed, 25 Nov 2026 18:02:11 GMT")
                .field("ETag", "\"6745b6f3-100000\"")
                .field("Accept-Ranges", "bytes")
                .field("Cache-Control", "public, max-age=3600");
            head.finish(false, false)
        });
    });
}

fn ranges(c: &mut Criterion) {
    let len: u64 = 64 * 1024 * 1024;
    let ten: String = format!(
        "bytes={}",
        (0..10u64)
            .map(|i| format!("{}-{}", i * 100_000, i * 100_000 + 999))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: [(&str, &[u8]); 4] = [
        ("single", b"bytes=1048576-2097151"),
        ("suffix", b"bytes=-500"),
        ("10_ranges", ten.as_bytes()),
        ("invalid", b"bytes=abc-def"),
    ];
    let mut g = c.benchmark_group("range_evaluate");
    for (name, header) in cases {
        g.bench_with_input(BenchmarkId::from_parameter(name), header, |b, header| {
            b.iter(|| range::evaluate(black_box(header), len, DEFAULT_MAX_RANGES));
        });
    }
    g.finish();
}

fn conditionals(c: &mut Criterion) {
    let modified = UNIX_EPOCH + Duration::from_secs(1_764_093_731);
    let v = Validators { etag: "\"6745b6f3-100000\"", last_modified: modified };
    let cases: [(&str, Preconditions<'_>); 3] = [
        (
            "if_none_match_hit",
            Preconditions {
                if_none_match: Some(b"\"6745b6f3-100000\""),
                ..Preconditions::default()
            },
        ),
        (
            "if_none_match_miss",
            Preconditions {
                if_none_match: Some(b"\"aaaa-1\", \"bbbb-2\", W/\"cccc-3\""),
                ..Preconditions::default()
            },
        ),
        (
            "if_modified_since",
            Preconditions {
                if_modified_since: Some(b"Thu, 26 Nov 2026 06:30:00 GMT"),
                ..Preconditions::default()
            },
        ),
    ];
    let mut g = c.benchmark_group("conditional_evaluate");
    for (name, pre) in cases {
        g.bench_with_input(BenchmarkId::from_parameter(name), &pre, |b, pre| {
            b.iter(|| conditional::evaluate(black_box(pre), black_box(&v)));
        });
    }
    g.finish();
}

fn normalize(c: &mut Criterion) {
    let cases: [(&str, &[u8]); 3] = [
        ("plain", b"/media/video/demo-720p.mp4"),
        ("percent_utf8", b"/m%C3%BAsica/%E6%97%A5%E6%9C%AC%E8%AA%9E/canci%C3%B3n%20uno.mp3"),
        ("dot_segments", b"/media/./video/../video//hls/./../hls/720p/../480p/seg-0001.ts"),
    ];
    let mut g = c.benchmark_group("path_normalize");
    for (name, target) in cases {
        assert!(path::normalize(target).is_ok(), "{name}");
        g.bench_with_input(BenchmarkId::from_parameter(name), target, |b, target| {
            b.iter(|| path::normalize(black_box(target)));
        });
    }
    g.finish();
}

fn mime(c: &mut Criterion) {
    let table = MimeTable::default();
    let cases = [
        ("known", "/media/video/demo-720p.mp4"),
        ("upper_case", "/media/HLS/PLAYLIST.M3U8"),
        ("unknown", "/downloads/archive.xyz123"),
    ];
    let mut g = c.benchmark_group("mime_lookup");
    for (name, p) in cases {
        g.bench_with_input(BenchmarkId::from_parameter(name), p, |b, p| {
            b.iter(|| table.lookup(black_box(p)).len());
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    parse(&mut c);
    head_writer(&mut c);
    ranges(&mut c);
    conditionals(&mut c);
    normalize(&mut c);
    mime(&mut c);
    c.final_summary();
}
