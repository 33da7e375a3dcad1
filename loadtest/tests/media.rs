//! HLS viewers, ranged requests and the report outputs, against in-test servers.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{load, load_json, temp_path, u, Reply, Server};

fn playlist(reply_body: &str) -> Reply {
    Reply::ok(reply_body.as_bytes())
}

#[test]
fn hls_viewers_pace_segments_and_flag_late_ones() {
    // Segment 2 takes three times its duration to arrive: the player must stall.
    let (server, paths) = hls_server("/live", "0.2", Duration::from_millis(600));
    let doc = load_json(&["--hls", &server.url("/live/master.m3u8"), "--viewers", "2", "-d", "2s"]);
    let hls = &doc["hls"];
    assert_eq!(hls["viewers"].as_u64(), Some(2), "{doc}");
    assert!(hls["segments"].as_u64().unwrap() >= 8, "{doc}");
    assert!(hls["late_segments"].as_u64().unwrap() >= 2, "{doc}");
    assert!(hls["late_segments"].as_u64() < hls["segments"].as_u64(), "{doc}");
    assert!(hls["stall_us"]["max"].as_u64().unwrap() >= 300_000, "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
    let paths = paths.lock().unwrap();
    // Viewers spread over both variants and fetched nothing outside the playlist.
    assert!(paths.iter().any(|p| p.starts_with("/live/v0/")));
    assert!(paths.iter().any(|p| p.starts_with("/live/v1/")));
    assert!(paths.iter().all(|p| p.starts_with("/live/")), "{paths:?}");
}

/// A server for a master playlist at `{prefix}/master.m3u8` with two variants of four segments
/// of `extinf` seconds each, recording every requested path; segment 2 of each variant arrives
/// after `s2_delay`.
fn hls_server(
    prefix: &'static str,
    extinf: &'static str,
    s2_delay: Duration,
) -> (Server, Arc<Mutex<Vec<String>>>) {
    let paths = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = paths.clone();
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nv0/index.m3u8\n\
                  #EXT-X-STREAM-INF:BANDWIDTH=200000\nv1/index.m3u8\n";
    let media = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:{extinf},\ns0.ts\n#EXTINF:{extinf},\ns1.ts\n\
         #EXTINF:{extinf},\ns2.ts\n#EXTINF:{extinf},\ns3.ts\n#EXT-X-ENDLIST\n"
    );
    let server = Server::start(move |_, head| {
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        seen.lock().unwrap().push(path.clone());
        let not_found =
            || Reply::raw_then_close(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        let Some(rest) = path.strip_prefix(prefix) else { return not_found() };
        match rest {
            "/master.m3u8" => playlist(master),
            "/v0/index.m3u8" | "/v1/index.m3u8" => playlist(&media),
            p if p.ends_with(".ts") => {
                let mut reply = Reply::ok(&[7u8; 1024]);
                if p.ends_with("/s2.ts") {
                    reply.delay = s2_delay;
                }
                reply
            }
            _ => not_found(),
        }
    });
    (server, paths)
}

/// Two variants of four 1 s segments (a 4 s session).
fn vod_server() -> (Server, Arc<Mutex<Vec<String>>>) {
    hls_server("/vod", "1.0", Duration::ZERO)
}

#[test]
fn hls_viewers_stop_at_the_end_of_a_run_shorter_than_a_session() {
    let (server, paths) = vod_server();
    // Segment 2 is due at about 1 s, segment 3 at about 2 s: past the 1.5 s end, so each
    // viewer's one session is cut there and no viewer may start another.
    let doc =
        load_json(&["--hls", &server.url("/vod/master.m3u8"), "--viewers", "2", "-d", "1500ms"]);
    let hls = &doc["hls"];
    assert_eq!(hls["sessions"].as_u64(), Some(2), "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
    let paths = paths.lock().unwrap();
    let count = |path: &str| paths.iter().filter(|p| *p == path).count();
    assert_eq!(count("/vod/master.m3u8"), 2, "{paths:?}");
    for variant in ["v0", "v1"] {
        assert_eq!(count(&format!("/vod/{variant}/index.m3u8")), 1, "{paths:?}");
        assert_eq!(count(&format!("/vod/{variant}/s0.ts")), 1, "{paths:?}");
        assert_eq!(count(&format!("/vod/{variant}/s3.ts")), 0, "{paths:?}");
    }
    assert_eq!(u(&doc, "requests"), paths.len() as u64, "{doc}");
}

#[test]
fn hls_viewers_send_exactly_their_request_share() {
    let (server, paths) = vod_server();
    // Six requests per session: the shares of 4 and 3 end mid-session, and viewers whose
    // share ends there start no other.
    let doc =
        load_json(&["--hls", &server.url("/vod/master.m3u8"), "--viewers", "2", "--requests", "7"]);
    assert_eq!(u(&doc, "requests"), 7, "{doc}");
    assert_eq!(server.requests(), 7);
    assert_eq!(doc["hls"]["sessions"].as_u64(), Some(2), "{doc}");
    assert_eq!(paths.lock().unwrap().iter().filter(|p| p.ends_with("master.m3u8")).count(), 2);
}

#[test]
fn ranges_are_aligned_and_inside_the_file() {
    const LEN: u64 = 10_000;
    const SIZE: u64 = 4096;
    let server = Server::start(|_, head| {
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Range: bytes="))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
        match range {
            // The start-up probe.
            Some((0, 0)) => Reply {
                bytes: format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-0/{LEN}\r\nContent-Length: 1\r\n\r\nx").into_bytes(),
                delay: Duration::ZERO,
                close: false,
            },
            Some((first, last)) if first % SIZE == 0 && last < LEN && last - first < SIZE => {
                let n = last - first + 1;
                let mut bytes = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{LEN}\r\nContent-Length: {n}\r\n\r\n"
                )
                .into_bytes();
                bytes.resize(bytes.len() + usize::try_from(n).unwrap(), b'r');
                Reply { bytes, delay: Duration::ZERO, close: false }
            }
            _ => Reply::ok(b"not a valid aligned range"),
        }
    });
    let doc =
        load_json(&["--requests", "50", "-c", "2", "--range-size", "4096", &server.url("/f")]);
    assert_eq!(u(&doc, "requests"), 50, "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
}

#[test]
fn plot_and_hgrm_outputs() {
    let server = Server::start(|_, _| Reply::ok(b"plot"));
    let a = temp_path("json");
    let b = temp_path("json");
    let hgrm = temp_path("hgrm");
    let svg = temp_path("svg");
    for path in [&a, &b] {
        let out = load(&[
            "-q",
            "--requests",
            "200",
            "--json",
            path.to_str().unwrap(),
            "--hgrm",
            hgrm.to_str().unwrap(),
            &server.url("/"),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(&hgrm).unwrap();
    assert!(
        text.contains("Percentile") && text.contains("Total count    =          200"),
        "{text}"
    );
    let out =
        load(&["plot", a.to_str().unwrap(), b.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(chart.matches("<polyline").count(), 2);
    let a_name = a.file_name().unwrap().to_str().unwrap();
    assert!(chart.contains(a_name));
    for p in [a, b, hgrm, svg] {
        let _ = std::fs::remove_file(p);
    }
}
