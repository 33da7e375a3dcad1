//! Edge-shaped workloads: a Zipf-popular catalog, and the cache fields the client saw.

mod common;

use std::sync::{Arc, Mutex};

use common::{load_json, u, Reply, Server};

/// What the server answered for object `i`: its cache field class and the reply.
fn reply_for(i: u64) -> (&'static str, Reply) {
    let body = vec![b'o'; usize::try_from(10 + i % 7 * 100).unwrap()];
    let (class, field) = match i % 4 {
        0 => ("hit", "Cache-Status: edge; hit; ttl=30\r\n"),
        1 => ("miss", "Cache-Status: origin; hit, edge; fwd=uri-miss; stored\r\n"),
        2 => ("hit", "X-Cache: HIT from edge\r\n"),
        _ => ("none", ""),
    };
    let mut bytes =
        format!("HTTP/1.1 200 OK\r\n{field}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(&body);
    (class, Reply { bytes, delay: std::time::Duration::ZERO, close: false })
}

/// (object, cache class, response bytes) of each request the server answered.
type Log = Arc<Mutex<Vec<(u64, &'static str, u64)>>>;

/// A server for `/obj/{i}` that logs every request.
fn catalog_server() -> (Server, Log) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let server = Server::start(move |_, head| {
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let i: u64 = path.strip_prefix("/obj/").and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
        let (class, reply) = reply_for(i);
        seen.lock().unwrap().push((i, class, reply.bytes.len() as u64));
        reply
    });
    (server, log)
}

fn run(server: &Server, seed: &str, connections: &str) -> serde_json::Value {
    load_json(&[
        "--requests",
        "3000",
        "-c",
        connections,
        "--catalog",
        "40",
        "--zipf",
        "1.0",
        "--seed",
        seed,
        &server.url("/obj/{i}"),
    ])
}

#[test]
fn cache_fields_are_counted_as_served() {
    let (server, log) = catalog_server();
    let doc = run(&server, "9", "4");
    assert_eq!(u(&doc, "requests"), 3000, "{doc}");
    assert_eq!(u(&doc, "errors"), 0, "{doc}");
    let log = log.lock().unwrap();
    let count = |class: &str| log.iter().filter(|(_, c, _)| *c == class).count() as u64;
    let bytes = |class: &str| log.iter().filter(|(_, c, _)| *c == class).map(|e| e.2).sum::<u64>();
    let cache = &doc["cache"];
    assert_eq!(cache["hits"].as_u64(), Some(count("hit")), "{doc}");
    assert_eq!(cache["misses"].as_u64(), Some(count("miss")), "{doc}");
    assert_eq!(cache["other"].as_u64(), Some(0), "{doc}");
    assert_eq!(cache["hit_bytes"].as_u64(), Some(bytes("hit")), "{doc}");
    assert_eq!(cache["miss_bytes"].as_u64(), Some(bytes("miss")), "{doc}");
    let with_field = count("hit") + count("miss");
    assert_eq!(cache["responses"].as_u64(), Some(with_field), "{doc}");
    let ratio = count("hit") as f64 / with_field as f64;
    assert!((cache["hit_ratio"].as_f64().unwrap() - ratio).abs() < 1e-12, "{doc}");
    let byte_ratio = bytes("hit") as f64 / (bytes("hit") + bytes("miss")) as f64;
    assert!((cache["byte_hit_ratio"].as_f64().unwrap() - byte_ratio).abs() < 1e-12, "{doc}");
    let total: u64 = log.iter().map(|e| e.2).sum();
    assert_eq!(u(&doc, "bytes"), total, "{doc}");
}

#[test]
fn catalog_objects_follow_popularity_and_the_seed() {
    let (server, log) = catalog_server();
    let objects = |doc: serde_json::Value, log: &Mutex<Vec<(u64, &str, u64)>>| {
        assert_eq!(u(&doc, "requests"), 3000, "{doc}");
        let mut counts = [0u64; 40];
        for (i, _, _) in log.lock().unwrap().drain(..) {
            counts[usize::try_from(i).expect("an object of the catalog")] += 1;
        }
        counts
    };
    let first = objects(run(&server, "9", "4"), &log);
    // Zipf(1.0) over 40 objects: object 0 has p = 1/H(40) ≈ 0.233, object 39 ≈ 0.006.
    assert!(first[0] > 500 && first[0] < 900, "{first:?}");
    assert!(first[0] > 10 * first[39], "{first:?}");
    // The same seed asks for the same objects, whichever connection sends which request.
    assert_eq!(objects(run(&server, "9", "1"), &log), first);
    assert_ne!(objects(run(&server, "10", "4"), &log), first);
}
