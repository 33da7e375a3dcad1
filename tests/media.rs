//! Media semantics over raw HTTP/1.1 on both drivers, over plain TCP and over TLS: byte ranges
//! and `multipart/byteranges` (RFC 9110 §14), `If-Range` (§13.1.5), conditional requests in the order of §13.2.2, media
//! types, `Cache-Control` rules, CORS and preflight, and precompressed `.br` / `.gz` variants;
//! multipart and variant bodies on every body strategy.
//!
//! Every file of the fixture has a fixed modification time, so `Last-Modified` and the dates
//! around it are known exactly. Responses that must have no body (HEAD, 304) are followed by a
//! second request on the same connection, which only parses if nothing extra was sent.

mod common;

use std::io::{BufReader, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use common::{
    multipart_parts, pseudo_random, read_response, request, sha256, Fixture, Response, Server,
    SETUPS,
};

/// Modification time of every fixture file, and its HTTP-date forms (RFC 9110 §5.6.7).
const MTIME_SECS: u64 = 1_614_834_367;
const LAST_MODIFIED: &str = "Thu, 04 Mar 2021 05:06:07 GMT";
const LAST_MODIFIED_RFC850: &str = "Thursday, 04-Mar-21 05:06:07 GMT";
const LAST_MODIFIED_ASCTIME: &str = "Thu Mar  4 05:06:07 2021";
const BEFORE: &str = "Thu, 04 Mar 2021 05:06:06 GMT";
const AFTER: &str = "Thu, 04 Mar 2021 05:06:08 GMT";

/// Length of the main test file `v.mp4`.
const LEN: usize = 1000;
const EXPOSE: &str = "Content-Length, Content-Range, Accept-Ranges, ETag";
const PROBE: &[u8] = b"probe\n";

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
}

/// Writes a file with the fixed modification time.
fn file(fx: &Fixture, rel: &str, content: &[u8]) {
    let p = fx.file(rel, content);
    set_mtime(&p, MTIME_SECS);
}

/// `v.mp4` (1000 pseudo-random bytes), `empty.bin`, and `probe.txt` for the follow-up requests.
fn fixture() -> (Fixture, Vec<u8>) {
    let fx = Fixture::new("media");
    let data = pseudo_random(LEN, 41);
    file(&fx, "v.mp4", &data);
    file(&fx, "empty.bin", b"");
    file(&fx, "probe.txt", PROBE);
    (fx, data)
}

/// Sends `raw`, then `GET /probe.txt` on the same connection, and returns the first response;
/// the second parses only if the first carried exactly the body its head announced (none for
/// HEAD, 204 and 304).
fn with_probe(srv: &Server, raw: &str) -> Response {
    let mut s = srv.connect();
    s.write_all(raw.as_bytes()).unwrap();
    s.write_all(request("GET", "/probe.txt", &[]).as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let first = read_response(&mut r, raw.starts_with("HEAD "));
    let second = read_response(&mut r, false);
    assert_eq!((second.status, second.body.as_slice()), (200, PROBE), "after {raw:?}");
    first
}

fn get(srv: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    with_probe(srv, &request("GET", path, headers))
}

fn head(srv: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    with_probe(srv, &request("HEAD", path, headers))
}

/// The ETag of `path` as served without preconditions.
fn etag_of(srv: &Server, path: &str, headers: &[(&str, &str)]) -> String {
    let r = get(srv, path, headers);
    assert_eq!(r.status, 200);
    r.header("etag").expect("ETag").to_string()
}

/// The fields every 200/206 about `v.mp4` carries.
fn assert_representation_fields(r: &Response, what: &str) {
    assert_eq!(r.header("accept-ranges"), Some("bytes"), "{what}");
    assert_eq!(r.header("last-modified"), Some(LAST_MODIFIED), "{what}");
    assert!(r.header("etag").is_some_and(|e| e.starts_with('"')), "{what}: strong ETag");
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")), "{what}: Date");
}

/// Expected answer to a `Range` request.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// 200 with the whole file.
    Full,
    /// 206 with the inclusive byte range `first..=last`.
    Part(usize, usize),
    /// 416 with `Content-Range: bytes */LEN`.
    Unsatisfiable,
}

fn check_range_answer(r: &Response, data: &[u8], want: Want, what: &str) {
    match want {
        Want::Full => {
            assert_eq!(r.status, 200, "{what}");
            assert_eq!(r.header("content-range"), None, "{what}");
            assert_eq!(r.content_length(), Some(data.len() as u64), "{what}");
            assert_eq!(sha256(&r.body), sha256(data), "{what}");
        }
        Want::Part(a, b) => {
            assert_eq!(r.status, 206, "{what}");
            let cr = format!("bytes {a}-{b}/{}", data.len());
            assert_eq!(r.header("content-range"), Some(cr.as_str()), "{what}");
            assert_eq!(r.content_length(), Some((b - a + 1) as u64), "{what}");
            assert_eq!(r.body, &data[a..=b], "{what}");
        }
        Want::Unsatisfiable => {
            assert_eq!(r.status, 416, "{what}");
            let cr = format!("bytes */{}", data.len());
            assert_eq!(r.header("content-range"), Some(cr.as_str()), "{what}");
        }
    }
}

#[test]
fn single_ranges() {
    use Want::{Full, Part, Unsatisfiable};
    let (fx, data) = fixture();
    let cases: &[(&str, Want)] = &[
        // §14.1.2 int-range with both ends, open-ended, and suffix-range.
        ("bytes=0-99", Part(0, 99)),
        ("bytes=0-0", Part(0, 0)),
        ("bytes=999-999", Part(999, 999)),
        ("bytes=990-", Part(990, 999)),
        ("bytes=0-", Part(0, 999)),
        ("bytes=-10", Part(990, 999)),
        ("bytes=-1", Part(999, 999)),
        // §14.1.1: a last-pos at or past the end, or a suffix longer than the file, is clamped.
        ("bytes=900-5000", Part(900, 999)),
        ("bytes=0-99999999999999999999", Part(0, 999)),
        ("bytes=-5000", Part(0, 999)),
        // §14.1: range units are case-insensitive; §5.6.1: empty list elements and OWS.
        ("BYTES=10-19", Part(10, 19)),
        ("bytes=10-19, ,", Part(10, 19)),
        // One satisfiable range among unsatisfiable ones: a single part.
        ("bytes=2000-3000, 5-9", Part(5, 9)),
        // §14.2: an invalid range-set or another unit is ignored: the whole file.
        ("bytes=5-2", Full),
        ("bytes=0-9,5-2", Full),
        ("items=0-9", Full),
        ("bytes=abc", Full),
        ("bytes=", Full),
        ("bytes", Full),
        ("bytes=0-1;x", Full),
        ("bytes=1-2-3", Full),
        ("bytes=--5", Full),
        ("bytes=0x10-20", Full),
        // §14.1.1: no satisfiable range => 416 with the current length (§15.5.17).
        ("bytes=1000-", Unsatisfiable),
        ("bytes=1000-1000", Unsatisfiable),
        ("bytes=-0", Unsatisfiable),
        ("bytes=5000-,6000-7000", Unsatisfiable),
        ("bytes=99999999999999999999-", Unsatisfiable),
    ];
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        // §14.2: Range is a single field; two lines make an invalid value, which is ignored.
        let r = get(&srv, "/v.mp4", &[("Range", "bytes=0-1"), ("Range", "bytes=5-6")]);
        check_range_answer(&r, &data, Want::Full, &format!("{setup} two Range lines"));
        for &(range, want) in cases {
            let what = format!("{setup} Range: {range}");
            let r = get(&srv, "/v.mp4", &[("Range", range)]);
            check_range_answer(&r, &data, want, &what);
            if !matches!(want, Want::Unsatisfiable) {
                assert_eq!(r.header("content-type"), Some("video/mp4"), "{what}");
                assert_representation_fields(&r, &what);
            }
        }
    }
}

/// Checks a multipart/byteranges answer part by part against `data`.
fn check_multipart(r: &Response, data: &[u8], content_type: &str, want: &[(usize, usize)]) {
    check_multipart_coded(r, data, content_type, None, want);
}

/// [`check_multipart`] for a representation with a content coding, which each part names.
fn check_multipart_coded(
    r: &Response,
    data: &[u8],
    content_type: &str,
    coding: Option<&str>,
    want: &[(usize, usize)],
) {
    let what = format!("parts {want:?}");
    assert_eq!(r.status, 206, "{what}");
    assert_eq!(r.header("content-range"), None, "{what}: no Content-Range on a multipart 206");
    // RFC 9110 §8.4: the multipart body as a whole is not encoded.
    assert_eq!(r.header("content-encoding"), None, "{what}");
    assert_eq!(r.content_length(), Some(r.body.len() as u64), "{what}");
    let ct = r.header("content-type").expect("Content-Type");
    let parts = multipart_parts(&r.body, ct);
    assert_eq!(parts.len(), want.len(), "{what}");
    for (part, &(a, b)) in parts.iter().zip(want) {
        let cr = format!("bytes {a}-{b}/{}", data.len());
        assert_eq!(part.headers.get("content-type").map(String::as_str), Some(content_type));
        assert_eq!(part.headers.get("content-range"), Some(&cr), "{what}");
        let encoding = part.headers.get("content-encoding").map(String::as_str);
        assert_eq!(encoding, coding, "{what}");
        assert_eq!(part.headers.len(), 2 + usize::from(coding.is_some()), "{what}");
        assert_eq!(part.body, &data[a..=b], "{what}: part {cr}");
    }
}

#[test]
fn multiple_ranges() {
    let (fx, data) = fixture();
    // (Range, parts in the order sent). RFC 9110 §14.6: parts in the order the range-specs
    // appeared, minus those unsatisfiable or coalesced; overlapping or adjacent ranges merged.
    let multi: &[(&str, &[(usize, usize)])] = &[
        ("bytes=0-9,20-29", &[(0, 9), (20, 29)]),
        ("bytes=0-9, 5-14, 100-109", &[(0, 14), (100, 109)]),
        ("bytes=0-9,10-19,30-39", &[(0, 19), (30, 39)]),
        ("bytes=0-9,5000-6000,20-29", &[(0, 9), (20, 29)]),
        ("bytes=-10,0-9", &[(990, 999), (0, 9)]),
        ("bytes=500-509,0-9,505-520", &[(500, 520), (0, 9)]),
        ("bytes=1-1,3-3,5-5,7-7,9-", &[(1, 1), (3, 3), (5, 5), (7, 7), (9, 999)]),
    ];
    // Ranges that coalesce into one: a plain 206, never a one-part multipart body.
    let single: &[(&str, (usize, usize))] = &[
        ("bytes=0-9,10-19", (0, 19)),
        ("bytes=5-9,0-20", (0, 20)),
        ("bytes=0-9,0-9", (0, 9)),
        ("bytes=0-499,-600", (0, 999)),
        ("bytes=0-9,9999-", (0, 9)),
    ];
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        for &(range, want) in multi {
            let r = get(&srv, "/v.mp4", &[("Range", range)]);
            assert_representation_fields(&r, range);
            check_multipart(&r, &data, "video/mp4", want);
        }
        for &(range, (a, b)) in single {
            let r = get(&srv, "/v.mp4", &[("Range", range)]);
            check_range_answer(&r, &data, Want::Part(a, b), &format!("{setup} {range}"));
            assert_eq!(r.header("content-type"), Some("video/mp4"), "{setup} {range}");
        }
        // A text type keeps its charset in each part.
        let r = get(&srv, "/probe.txt", &[("Range", "bytes=0-0,2-3")]);
        check_multipart(&r, PROBE, "text/plain; charset=utf-8", &[(0, 0), (2, 3)]);
    }
}

/// `bytes=0-0,2-2,...` with `n` range-specs.
fn many_ranges(n: usize) -> String {
    let specs: Vec<String> = (0..n).map(|i| format!("{0}-{0}", i * 2)).collect();
    format!("bytes={}", specs.join(","))
}

#[test]
fn range_cap() {
    let (fx, data) = fixture();
    let up_to = |n: usize| (0..n).map(|i| (i * 2, i * 2)).collect::<Vec<_>>();
    for setup in SETUPS {
        // The default cap: 64 range-specs honoured, a 65th makes the server ignore the field.
        let srv = Server::start(&fx.dir, setup, &[]);
        let r = get(&srv, "/v.mp4", &[("Range", &many_ranges(64))]);
        check_multipart(&r, &data, "video/mp4", &up_to(64));
        let r = get(&srv, "/v.mp4", &[("Range", &many_ranges(65))]);
        check_range_answer(&r, &data, Want::Full, &format!("{setup} 65 ranges"));
        drop(srv);

        let srv = Server::start(&fx.dir, setup, &["--max-ranges", "3"]);
        let r = get(&srv, "/v.mp4", &[("Range", &many_ranges(3))]);
        check_multipart(&r, &data, "video/mp4", &up_to(3));
        let r = get(&srv, "/v.mp4", &[("Range", &many_ranges(4))]);
        check_range_answer(&r, &data, Want::Full, &format!("{setup} 4 ranges, cap 3"));
        // The cap counts range-specs as written, before coalescing.
        let r = get(&srv, "/v.mp4", &[("Range", "bytes=0-0,0-0,0-0,0-0")]);
        check_range_answer(&r, &data, Want::Full, &format!("{setup} 4 equal ranges, cap 3"));
        // Unsatisfiable specs count as well: past the cap there is no 416 either.
        let r = get(&srv, "/v.mp4", &[("Range", "bytes=2000-,3000-,4000-,5000-")]);
        check_range_answer(&r, &data, Want::Full, &format!("{setup} 4 unsatisfiable, cap 3"));
        drop(srv);

        // A cap of 0 turns ranges off, and the server says so (§14.3 `Accept-Ranges: none`).
        let srv = Server::start(&fx.dir, setup, &["--max-ranges", "0"]);
        let r = get(&srv, "/v.mp4", &[("Range", "bytes=0-9")]);
        check_range_answer(&r, &data, Want::Full, &format!("{setup} ranges off"));
        assert_eq!(r.header("accept-ranges"), Some("none"), "{setup} ranges off");
    }
}

#[test]
fn range_only_on_get() {
    let (fx, data) = fixture();
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        // §14.2: Range is ignored on HEAD: the 200 head, full length, no body.
        for range in ["bytes=0-9", "bytes=0-9,20-29", "bytes=5000-"] {
            let r = head(&srv, "/v.mp4", &[("Range", range)]);
            assert_eq!(r.status, 200, "{setup} HEAD {range}");
            assert_eq!(r.content_length(), Some(LEN as u64), "{setup} HEAD {range}");
            assert_eq!(r.header("content-range"), None, "{setup} HEAD {range}");
            assert_eq!(r.header("content-type"), Some("video/mp4"), "{setup} HEAD {range}");
            assert_representation_fields(&r, "HEAD");
        }
        // Other methods: 405 with Allow (§15.5.6), whatever the Range.
        let raw =
            "POST /v.mp4 HTTP/1.1\r\nHost: test\r\nRange: bytes=0-9\r\nContent-Length: 0\r\n\r\n";
        let r = with_probe(&srv, raw);
        assert_eq!(r.status, 405, "{setup} POST");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"), "{setup} POST");
        // The full GET for comparison.
        let r = get(&srv, "/v.mp4", &[]);
        check_range_answer(&r, &data, Want::Full, &setup.to_string());
    }
}

#[test]
fn empty_file() {
    use Want::{Full, Unsatisfiable};
    let (fx, _) = fixture();
    let cases: &[(Option<&str>, Want)] = &[
        (None, Full),
        // §14.1.1: on an empty representation only a non-zero suffix-range is satisfiable; it
        // selects nothing, which no Content-Range can describe, so the answer is the empty 200.
        (Some("bytes=-5"), Full),
        (Some("bytes=0-"), Unsatisfiable),
        (Some("bytes=0-0"), Unsatisfiable),
        (Some("bytes=-0"), Unsatisfiable),
        (Some("bytes=0-0,-5"), Full),
        (Some("bytes=x"), Full),
    ];
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        for &(range, want) in cases {
            let headers: Vec<(&str, &str)> = range.map(|r| ("Range", r)).into_iter().collect();
            let r = get(&srv, "/empty.bin", &headers);
            check_range_answer(&r, b"", want, &format!("{setup} empty {range:?}"));
        }
    }
}

#[test]
fn if_range() {
    let (fx, data) = fixture();
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let etag = etag_of(&srv, "/v.mp4", &[]);
        let weak = format!("W/{etag}");
        let pair = format!("{etag}, {etag}");
        // (If-Range, the range applies). §13.1.5: a strong ETag match or a date exactly equal
        // to Last-Modified; anything else => the full 200.
        let cases: &[(&str, bool)] = &[
            (&etag, true),
            (&weak, false),
            ("\"other\"", false),
            (&pair, false),
            ("*", false),
            (LAST_MODIFIED, true),
            (LAST_MODIFIED_RFC850, true),
            (BEFORE, false),
            (AFTER, false),
            ("garbage", false),
        ];
        for &(value, applies) in cases {
            let what = format!("{setup} If-Range: {value}");
            let r = get(&srv, "/v.mp4", &[("Range", "bytes=10-19"), ("If-Range", value)]);
            let want = if applies { Want::Part(10, 19) } else { Want::Full };
            check_range_answer(&r, &data, want, &what);
            let r = get(&srv, "/v.mp4", &[("Range", "bytes=0-1,8-9"), ("If-Range", value)]);
            if applies {
                check_multipart(&r, &data, "video/mp4", &[(0, 1), (8, 9)]);
            } else {
                check_range_answer(&r, &data, Want::Full, &what);
            }
            // Without Range, If-Range is ignored.
            let r = get(&srv, "/v.mp4", &[("If-Range", value)]);
            check_range_answer(&r, &data, Want::Full, &what);
        }
    }
}

#[test]
fn conditional_requests() {
    let (fx, data) = fixture();
    // (fields, GET status); `{E}` is the ETag of v.mp4, `{W}` its weak form. HEAD answers the
    // same, except that it never gets 206.
    let cases: &[(&[(&str, &str)], u16)] = &[
        // §13.1.1 If-Match: strong comparison, `*`, lists.
        (&[("If-Match", "{E}")], 200),
        (&[("If-Match", "*")], 200),
        (&[("If-Match", "\"a\", {E}")], 200),
        (&[("If-Match", "\"nope\"")], 412),
        (&[("If-Match", "{W}")], 412),
        // §13.2.2 step 1 comes before step 3.
        (&[("If-Match", "\"nope\""), ("If-None-Match", "{E}")], 412),
        (&[("If-Match", "\"nope\""), ("If-Modified-Since", AFTER)], 412),
        // §13.1.4: If-Unmodified-Since is ignored when If-Match is present.
        (&[("If-Match", "{E}"), ("If-Unmodified-Since", BEFORE)], 200),
        // §13.1.4 If-Unmodified-Since: false when modified after the date; invalid => ignored.
        (&[("If-Unmodified-Since", BEFORE)], 412),
        (&[("If-Unmodified-Since", LAST_MODIFIED)], 200),
        (&[("If-Unmodified-Since", AFTER)], 200),
        (&[("If-Unmodified-Since", "yesterday")], 200),
        // §13.2.2 step 2 comes before step 3.
        (&[("If-Unmodified-Since", BEFORE), ("If-None-Match", "{E}")], 412),
        // §13.1.2 If-None-Match: weak comparison, lists (also as repeated lines), `*`.
        (&[("If-None-Match", "{E}")], 304),
        (&[("If-None-Match", "{W}")], 304),
        (&[("If-None-Match", "\"a\", {E}")], 304),
        (&[("If-None-Match", "\"a\""), ("If-None-Match", "{E}")], 304),
        (&[("If-None-Match", "*")], 304),
        (&[("If-None-Match", "\"a\",\"b\"")], 200),
        (&[("If-Match", "{E}"), ("If-None-Match", "{E}")], 304),
        // §13.1.3: If-None-Match overrides If-Modified-Since, both ways.
        (&[("If-None-Match", "\"nope\""), ("If-Modified-Since", AFTER)], 200),
        (&[("If-None-Match", "{E}"), ("If-Modified-Since", BEFORE)], 304),
        // §13.1.3 If-Modified-Since: not modified since an equal or later date; the three
        // HTTP-date forms (§5.6.7); an invalid date is ignored.
        (&[("If-Modified-Since", LAST_MODIFIED)], 304),
        (&[("If-Modified-Since", LAST_MODIFIED_RFC850)], 304),
        (&[("If-Modified-Since", LAST_MODIFIED_ASCTIME)], 304),
        (&[("If-Modified-Since", AFTER)], 304),
        (&[("If-Modified-Since", BEFORE)], 200),
        (&[("If-Modified-Since", "not a date")], 200),
        (&[("If-Modified-Since", "Thu, 04 Mar 2021 05:06:07")], 200),
        // §13.1.3: a field with more than one member (here two lines) is ignored.
        (&[("If-Modified-Since", LAST_MODIFIED), ("If-Modified-Since", LAST_MODIFIED)], 200),
        // Preconditions come before Range (§13.2.2 step 5).
        (&[("If-None-Match", "{E}"), ("Range", "bytes=0-9")], 304),
        (&[("If-Modified-Since", AFTER), ("Range", "bytes=0-9")], 304),
        (&[("If-Match", "\"nope\""), ("Range", "bytes=0-9")], 412),
        (&[("If-Match", "{E}"), ("Range", "bytes=0-9")], 206),
        (&[("If-Modified-Since", BEFORE), ("Range", "bytes=0-9")], 206),
        (&[("If-Match", "{E}"), ("Range", "bytes=5000-")], 416),
    ];
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let etag = etag_of(&srv, "/v.mp4", &[]);
        let weak = format!("W/{etag}");
        for &(fields, get_status) in cases {
            let fields: Vec<(&str, String)> = fields
                .iter()
                .map(|&(n, v)| (n, v.replace("{W}", &weak).replace("{E}", &etag)))
                .collect();
            let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
            for method in ["GET", "HEAD"] {
                let what = format!("{setup} {method} {fields:?}");
                let r = with_probe(&srv, &request(method, "/v.mp4", &fields));
                let want = match (method, get_status) {
                    ("HEAD", 206 | 416) => 200,
                    _ => get_status,
                };
                assert_eq!(r.status, want, "{what}");
                match want {
                    304 => {
                        // §15.4.5: the validators and caching fields, and no content.
                        assert_eq!(r.header("etag"), Some(etag.as_str()), "{what}");
                        assert_eq!(r.header("last-modified"), Some(LAST_MODIFIED), "{what}");
                        assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")), "{what}");
                        assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
                        assert_eq!(r.header("content-range"), None, "{what}");
                        assert!(r.body.is_empty(), "{what}");
                    }
                    200 => {
                        assert_eq!(r.header("etag"), Some(etag.as_str()), "{what}");
                        assert_eq!(r.content_length(), Some(LEN as u64), "{what}");
                        if method == "GET" {
                            assert_eq!(sha256(&r.body), sha256(&data), "{what}");
                        }
                    }
                    206 => check_range_answer(&r, &data, Want::Part(0, 9), &what),
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn media_types() {
    let fx = Fixture::new("media-types");
    let text = |t: &str| format!("{t}; charset=utf-8");
    let cases: Vec<(&str, String)> = vec![
        ("a.m3u8", text("application/vnd.apple.mpegurl")),
        ("a.ts", "video/mp2t".into()),
        ("a.m4s", "video/iso.segment".into()),
        ("a.mp4", "video/mp4".into()),
        ("a.m4v", "video/mp4".into()),
        ("a.m4a", "audio/mp4".into()),
        ("a.mpd", text("application/dash+xml")),
        ("a.webm", "video/webm".into()),
        ("a.mkv", "video/matroska".into()),
        ("a.mp3", "audio/mpeg".into()),
        ("a.aac", "audio/aac".into()),
        ("a.vtt", text("text/vtt")),
        ("a.cmfv", "video/mp4".into()),
        ("a.cmfa", "audio/mp4".into()),
        ("a.cmft", "application/mp4".into()),
        ("a.html", text("text/html")),
        ("a.htm", text("text/html")),
        ("a.css", text("text/css")),
        ("a.js", text("text/javascript")),
        ("a.mjs", text("text/javascript")),
        ("a.json", text("application/json")),
        ("a.xml", text("application/xml")),
        ("a.svg", text("image/svg+xml")),
        ("a.txt", text("text/plain")),
        ("a.png", "image/png".into()),
        ("a.jpg", "image/jpeg".into()),
        ("a.jpeg", "image/jpeg".into()),
        ("a.gif", "image/gif".into()),
        ("a.webp", "image/webp".into()),
        ("a.avif", "image/avif".into()),
        ("a.ico", "image/vnd.microsoft.icon".into()),
        ("a.woff", "font/woff".into()),
        ("a.woff2", "font/woff2".into()),
        ("a.wasm", "application/wasm".into()),
        ("a.pdf", "application/pdf".into()),
        // Case-insensitive extensions; unknown or missing ones are octet-stream.
        ("B.MP4", "video/mp4".into()),
        ("c.M3U8", text("application/vnd.apple.mpegurl")),
        ("a.xyz", "application/octet-stream".into()),
        ("noext", "application/octet-stream".into()),
        ("d.tar.gz", "application/gzip".into()),
    ];
    for (name, _) in &cases {
        file(&fx, name, b"x");
    }
    file(&fx, "probe.txt", PROBE);
    file(&fx, "p.foo", b"x");
    let overrides = [
        "--mime",
        "mp4=video/x-test",
        "--mime",
        "xyz=text/x-custom",
        "--mime",
        "foo=application/x-foo; v=1",
    ];
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        for (name, want) in &cases {
            for r in [get(&srv, &format!("/{name}"), &[]), head(&srv, &format!("/{name}"), &[])] {
                assert_eq!(r.status, 200, "{setup} {name}");
                assert_eq!(r.header("content-type"), Some(want.as_str()), "{setup} {name}");
            }
        }
        drop(srv);
        // `--mime EXT=TYPE` overrides, extends (text types get the charset), and a type with
        // parameters is used as given.
        let srv = Server::start(&fx.dir, setup, &overrides);
        let want = [
            ("a.mp4", "video/x-test"),
            ("B.MP4", "video/x-test"),
            ("a.xyz", "text/x-custom; charset=utf-8"),
            ("p.foo", "application/x-foo; v=1"),
            ("a.ts", "video/mp2t"),
        ];
        for (name, ct) in want {
            let r = get(&srv, &format!("/{name}"), &[]);
            assert_eq!(r.header("content-type"), Some(ct), "{setup} --mime {name}");
        }
    }
}

/// (file name, the `Cache-Control` it gets).
type Expected<'a> = &'a [(&'a str, Option<&'a str>)];

#[test]
fn cache_control() {
    let fx = Fixture::new("media-cache");
    for name in ["a.m3u8", "a.mpd", "a.ts", "a.m4s", "a.cmfv", "a.mp4", "a.html", "a.bin"] {
        file(&fx, name, b"0123456789");
    }
    file(&fx, "probe.txt", PROBE);
    const PLAYLIST: &str = "public, max-age=1";
    const SEGMENT: &str = "public, max-age=31536000, immutable";
    let defaults: Expected = &[
        ("a.m3u8", Some(PLAYLIST)),
        ("a.mpd", Some(PLAYLIST)),
        ("a.ts", Some(SEGMENT)),
        ("a.m4s", Some(SEGMENT)),
        ("a.cmfv", Some(SEGMENT)),
        ("a.mp4", Some("public, max-age=3600")),
        ("a.html", Some("no-cache")),
        ("a.bin", None),
    ];
    let overridden: Expected = &[
        ("a.m3u8", Some("no-store")),
        ("a.ts", None),
        ("a.mp4", Some("public, max-age=5")),
        ("a.m4s", Some(SEGMENT)),
        ("a.bin", None),
    ];
    let fallback: Expected = &[("a.bin", Some("max-age=60")), ("a.m3u8", Some(PLAYLIST))];
    let configs: [(&[&str], Expected); 3] = [
        (&[], defaults),
        (
            &[
                "--cache-control",
                "m3u8=no-store",
                "--cache-control",
                "ts=",
                "--cache-control",
                "mp4=public, max-age=5",
            ],
            overridden,
        ),
        (&["--cache-control", "*=max-age=60"], fallback),
    ];
    for setup in SETUPS {
        for (args, cases) in configs {
            let srv = Server::start(&fx.dir, setup, args);
            for &(name, want) in cases {
                let path = format!("/{name}");
                let what = format!("{setup} {args:?} {name}");
                let etag = etag_of(&srv, &path, &[]);
                // The same Cache-Control on 200, HEAD, 206 and 304 (§15.4.5).
                let answers = [
                    get(&srv, &path, &[]),
                    head(&srv, &path, &[]),
                    get(&srv, &path, &[("Range", "bytes=0-1")]),
                    get(&srv, &path, &[("If-None-Match", &etag)]),
                ];
                let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
                assert_eq!(statuses, [200, 200, 206, 304], "{what}");
                for r in &answers {
                    assert_eq!(r.header("cache-control"), want, "{what} {}", r.status);
                }
            }
        }
    }
}

#[test]
fn cors() {
    let (fx, data) = fixture();
    let origin = "https://player.example";
    for setup in SETUPS {
        // Without --cors: no CORS fields; OPTIONS is answered with Allow.
        let srv = Server::start(&fx.dir, setup, &[]);
        let r = get(&srv, "/v.mp4", &[("Origin", origin)]);
        assert_eq!(r.header("access-control-allow-origin"), None, "{setup}");
        assert_eq!(r.header("vary"), None, "{setup}");
        let r = with_probe(&srv, &preflight("/v.mp4", origin));
        assert_eq!(r.status, 204, "{setup}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"), "{setup}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{setup}");
        drop(srv);

        // --cors '*': every origin, nothing varies.
        let srv = Server::start(&fx.dir, setup, &["--cors", "*"]);
        for headers in [vec![("Origin", origin)], vec![("Origin", "http://other.example")]] {
            let r = get(&srv, "/v.mp4", &headers);
            assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{setup}");
            assert_eq!(r.header("access-control-expose-headers"), Some(EXPOSE), "{setup}");
            assert_eq!(r.header("vary"), None, "{setup}");
            assert_eq!(r.body, data);
        }
        let r = with_probe(&srv, &preflight("/v.mp4", "http://other.example"));
        check_preflight(&r, Some("*"), None);
        let r = get(&srv, "/missing.ts", &[("Origin", origin)]);
        assert_eq!(r.status, 404, "{setup}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{setup}");
        drop(srv);

        // --cors ORIGIN: that origin only, and every answer varies by Origin (§12.5.5).
        let srv = Server::start(&fx.dir, setup, &["--cors", origin]);
        let etag = etag_of(&srv, "/v.mp4", &[]);
        let allowed = [
            get(&srv, "/v.mp4", &[("Origin", origin)]),
            head(&srv, "/v.mp4", &[("Origin", origin)]),
            get(&srv, "/v.mp4", &[("Origin", origin), ("Range", "bytes=0-9")]),
            get(&srv, "/v.mp4", &[("Origin", origin), ("Range", "bytes=0-1,5-6")]),
            get(&srv, "/v.mp4", &[("Origin", origin), ("If-None-Match", &etag)]),
            get(&srv, "/v.mp4", &[("Origin", origin), ("Range", "bytes=5000-")]),
            get(&srv, "/v.mp4", &[("Origin", origin), ("If-Match", "\"nope\"")]),
            // Errors carry CORS too, so a player can tell a missing segment from a network error.
            get(&srv, "/missing.ts", &[("Origin", origin)]),
            head(&srv, "/missing.ts", &[("Origin", origin)]),
        ];
        let statuses: Vec<u16> = allowed.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200, 206, 206, 304, 416, 412, 404, 404], "{setup}");
        for r in &allowed {
            let what = format!("{setup} {}", r.status);
            assert_eq!(r.header("access-control-allow-origin"), Some(origin), "{what}");
            assert_eq!(r.header("access-control-expose-headers"), Some(EXPOSE), "{what}");
            assert_eq!(r.header("vary"), Some("Origin"), "{what}");
            assert_eq!(r.header("access-control-allow-credentials"), None, "{what}");
        }
        for headers in [vec![("Origin", "https://evil.example")], vec![]] {
            let r = get(&srv, "/v.mp4", &headers);
            assert_eq!(r.status, 200, "{setup} {headers:?}");
            assert_eq!(r.header("access-control-allow-origin"), None, "{setup} {headers:?}");
            assert_eq!(r.header("access-control-expose-headers"), None, "{setup} {headers:?}");
            assert_eq!(r.header("vary"), Some("Origin"), "{setup} {headers:?}");
        }
        let r = with_probe(&srv, &preflight("/v.mp4", origin));
        check_preflight(&r, Some(origin), Some("Origin"));
        let r = with_probe(&srv, &preflight("/v.mp4", "https://evil.example"));
        check_preflight(&r, None, Some("Origin"));
        // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight.
        let r = with_probe(&srv, &request("OPTIONS", "/v.mp4", &[("Origin", origin)]));
        assert_eq!(r.status, 204, "{setup}");
        assert_eq!(r.header("access-control-allow-methods"), None, "{setup}");
        assert_eq!(r.header("access-control-allow-origin"), Some(origin), "{setup}");
    }
}

fn preflight(path: &str, origin: &str) -> String {
    request(
        "OPTIONS",
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range, if-none-match"),
        ],
    )
}

/// A preflight answer (Fetch §3.2.3): 204, no Content-Length (RFC 9110 §8.6), and the
/// Access-Control-Allow-* fields when the origin is allowed.
fn check_preflight(r: &Response, allow_origin: Option<&str>, vary: Option<&str>) {
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("access-control-allow-origin"), allow_origin);
    let allowed = allow_origin.is_some();
    let expect = |v: &'static str| allowed.then_some(v);
    assert_eq!(r.header("access-control-allow-methods"), expect("GET, HEAD, OPTIONS"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        expect("Range, If-Range, If-None-Match, If-Modified-Since")
    );
    assert_eq!(r.header("access-control-max-age"), expect("86400"));
    assert_eq!(r.header("vary"), vary);
}

#[test]
fn precompressed_variants() {
    let fx = Fixture::new("media-precompressed");
    let plain = b"#EXTM3U\n#EXT-X-VERSION:7\n#EXTINF:4.0,\nseg0.m4s\n".to_vec();
    // The variants' contents are opaque to the server; the .gz and .br have the same length
    // and modification time, so their ETags must still differ (RFC 9110 §8.8.3).
    let gz = pseudo_random(37, 1);
    let br = pseudo_random(37, 2);
    file(&fx, "x.m3u8", &plain);
    file(&fx, "x.m3u8.gz", &gz);
    file(&fx, "x.m3u8.br", &br);
    file(&fx, "g.vtt", b"WEBVTT\n");
    file(&fx, "g.vtt.gz", &gz);
    file(&fx, "v.mp4", &plain);
    file(&fx, "v.mp4.gz", &gz);
    file(&fx, "probe.txt", PROBE);
    // A stale variant: older than the file it compresses.
    file(&fx, "live.m3u8", &plain);
    let p = fx.file("live.m3u8.gz", &gz);
    set_mtime(&p, MTIME_SECS - 4);
    let m3u8 = "application/vnd.apple.mpegurl; charset=utf-8";
    // (Accept-Encoding, coding sent) for x.m3u8, which has both variants.
    let cases: &[(Option<&str>, Option<&str>)] = &[
        (None, None),
        (Some(""), None),
        (Some("identity"), None),
        (Some("gzip"), Some("gzip")),
        (Some("x-gzip"), Some("gzip")),
        (Some("br"), Some("br")),
        (Some("gzip, deflate, br"), Some("br")),
        (Some("*"), Some("br")),
        (Some("gzip;q=0"), None),
        (Some("br;q=0, gzip"), Some("gzip")),
        (Some("*;q=0"), None),
        (Some("*, br;q=0"), Some("gzip")),
        (Some("deflate, zstd"), None),
        // §12.4.2: weights rank the accepted codings; Brotli first on a tie.
        (Some("br;q=0.5, gzip"), Some("gzip")),
        (Some("gzip;q=0.5, br;q=0.5"), Some("br")),
        // Refusing identity changes nothing when no coding is acceptable (§12.5.3).
        (Some("identity;q=0"), None),
    ];
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        let etag_plain = etag_of(&srv, "/x.m3u8", &[]);
        let etag_gz = etag_of(&srv, "/x.m3u8", &[("Accept-Encoding", "gzip")]);
        let etag_br = etag_of(&srv, "/x.m3u8", &[("Accept-Encoding", "br")]);
        assert_ne!(etag_plain, etag_gz, "{setup}");
        assert_ne!(etag_plain, etag_br, "{setup}");
        assert_ne!(etag_gz, etag_br, "{setup}: variants of equal length and mtime");
        for &(accept, coding) in cases {
            let what = format!("{setup} Accept-Encoding: {accept:?}");
            let headers: Vec<(&str, &str)> =
                accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
            let (body, etag) = match coding {
                None => (&plain, &etag_plain),
                Some("gzip") => (&gz, &etag_gz),
                _ => (&br, &etag_br),
            };
            let r = get(&srv, "/x.m3u8", &headers);
            assert_eq!(r.status, 200, "{what}");
            assert_eq!(r.header("content-encoding"), coding, "{what}");
            assert_eq!(r.header("content-type"), Some(m3u8), "{what}");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{what}");
            assert_eq!(r.header("etag"), Some(etag.as_str()), "{what}");
            assert_eq!(r.header("cache-control"), Some("public, max-age=1"), "{what}");
            assert_eq!(&r.body, body, "{what}");
            let h = head(&srv, "/x.m3u8", &headers);
            assert_eq!(h.content_length(), Some(body.len() as u64), "{what} HEAD");
            assert_eq!(h.header("content-encoding"), coding, "{what} HEAD");
            // §14.1: ranges address the representation sent.
            let mut ranged = headers.clone();
            ranged.push(("Range", "bytes=3-9"));
            let r = get(&srv, "/x.m3u8", &ranged);
            check_range_answer(&r, body, Want::Part(3, 9), &what);
            assert_eq!(r.header("content-encoding"), coding, "{what} 206");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{what} 206");
            ranged.push(("If-Range", etag));
            let r = get(&srv, "/x.m3u8", &ranged);
            check_range_answer(&r, body, Want::Part(3, 9), &what);
            let mut multi = headers.clone();
            multi.push(("Range", "bytes=0-1,5-6"));
            let r = get(&srv, "/x.m3u8", &multi);
            check_multipart_coded(&r, body, m3u8, coding, &[(0, 1), (5, 6)]);
            // Revalidation is against the ETag of the representation that would be sent.
            let mut cond = headers.clone();
            cond.push(("If-None-Match", etag));
            let r = get(&srv, "/x.m3u8", &cond);
            assert_eq!(r.status, 304, "{what}");
            assert_eq!(r.header("etag"), Some(etag.as_str()), "{what} 304");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{what} 304");
            let mut other = headers.clone();
            let other_etag = if coding.is_none() { &etag_gz } else { &etag_plain };
            other.push(("If-None-Match", other_etag));
            assert_eq!(get(&srv, "/x.m3u8", &other).status, 200, "{what} other ETag");
        }
        // Only a .gz: br alone gets the file as it is.
        let r = get(&srv, "/g.vtt", &[("Accept-Encoding", "br")]);
        assert_eq!((r.header("content-encoding"), r.body.as_slice()), (None, &b"WEBVTT\n"[..]));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{setup}");
        let r = get(&srv, "/g.vtt", &[("Accept-Encoding", "br, gzip")]);
        assert_eq!((r.header("content-encoding"), &r.body), (Some("gzip"), &gz), "{setup}");
        assert_eq!(r.header("content-type"), Some("text/vtt; charset=utf-8"), "{setup}");
        // A variant older than its file is not used.
        let r = get(&srv, "/live.m3u8", &[("Accept-Encoding", "gzip")]);
        assert_eq!((r.header("content-encoding"), &r.body), (None, &plain), "{setup} stale");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{setup} stale");
        // Media is not precompressible: no variant, no Vary.
        let r = get(&srv, "/v.mp4", &[("Accept-Encoding", "gzip")]);
        assert_eq!((r.header("content-encoding"), &r.body), (None, &plain), "{setup}");
        assert_eq!(r.header("vary"), None, "{setup}");
        // The variant itself is an ordinary file.
        let r = get(&srv, "/x.m3u8.gz", &[]);
        assert_eq!((r.header("content-encoding"), &r.body), (None, &gz), "{setup}");
        assert_eq!(r.header("content-type"), Some("application/gzip"), "{setup}");
        drop(srv);

        // With CORS for one origin too, both reasons to vary are listed.
        let srv = Server::start(&fx.dir, setup, &["--cors", "https://player.example"]);
        let r = get(&srv, "/x.m3u8", &[("Accept-Encoding", "gzip")]);
        let vary: Vec<&str> = r.header("vary").unwrap().split(", ").collect();
        assert!(vary.contains(&"Accept-Encoding") && vary.contains(&"Origin"), "{vary:?}");
        drop(srv);

        // --no-precompressed: always the file itself, nothing varies.
        let srv = Server::start(&fx.dir, setup, &["--no-precompressed"]);
        for accept in ["gzip", "br", "*"] {
            let r = get(&srv, "/x.m3u8", &[("Accept-Encoding", accept)]);
            assert_eq!(r.header("content-encoding"), None, "{setup} {accept}");
            assert_eq!(r.header("vary"), None, "{setup} {accept}");
            assert_eq!(r.header("etag"), Some(etag_plain.as_str()), "{setup} {accept}");
            assert_eq!(r.body, plain, "{setup} {accept}");
        }
    }
}

#[test]
fn future_modification_time() {
    let (fx, data) = fixture();
    let future =
        std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 86_400;
    let p = fx.file("future.mp4", &data);
    set_mtime(&p, future);
    let date = |r: &Response, name: &str| {
        httpdate::parse_http_date(r.header(name).unwrap_or_else(|| panic!("{name}"))).unwrap()
    };
    for setup in SETUPS {
        let srv = Server::start(&fx.dir, setup, &[]);
        // RFC 9110 §8.8.2.1: Last-Modified is never later than Date.
        for r in [get(&srv, "/future.mp4", &[]), head(&srv, "/future.mp4", &[])] {
            assert_eq!(r.status, 200, "{setup}");
            assert!(date(&r, "last-modified") <= date(&r, "date"), "{setup}: {}", r.raw_head);
        }
        let etag = etag_of(&srv, "/future.mp4", &[]);
        let r = get(&srv, "/future.mp4", &[("If-None-Match", &etag)]);
        assert_eq!(r.status, 304, "{setup}");
        assert!(date(&r, "last-modified") <= date(&r, "date"), "{setup}: {}", r.raw_head);
    }
}

#[test]
fn parts_on_every_body_strategy() {
    let (fx, data) = fixture();
    let gz = pseudo_random(3000, 9);
    file(&fx, "x.m3u8", b"#EXTM3U\n");
    file(&fx, "x.m3u8.gz", &gz);
    let m3u8 = "application/vnd.apple.mpegurl; charset=utf-8";
    for setup in SETUPS {
        for strategy in ["auto", "memory", "sendfile", "splice", "copy"] {
            let srv = Server::start(&fx.dir, setup, &["--body-strategy", strategy]);
            let what = format!("{setup}/{strategy}");
            let r = get(&srv, "/v.mp4", &[("Range", "bytes=-7,1-1,100-199,150-300")]);
            check_multipart(&r, &data, "video/mp4", &[(993, 999), (1, 1), (100, 300)]);
            let r = get(&srv, "/v.mp4", &[("Range", "bytes=333-665")]);
            check_range_answer(&r, &data, Want::Part(333, 665), &what);
            let gzip = [("Accept-Encoding", "gzip")];
            let r = get(&srv, "/x.m3u8", &[gzip[0], ("Range", "bytes=2999-,0-0,17-2047")]);
            let parts = [(2999, 2999), (0, 0), (17, 2047)];
            check_multipart_coded(&r, &gz, m3u8, Some("gzip"), &parts);
            let r = get(&srv, "/x.m3u8", &gzip);
            assert_eq!(sha256(&r.body), sha256(&gz), "{what}");
        }
    }
}
