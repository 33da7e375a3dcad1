//! Ketama parity with a running nginx: nginx proxies 10,000 distinct request targets through
//! `upstream { hash $request_uri consistent; }` over nine backends on 127.0.0.2–.10 (and
//! 2,000 more through a weighted upstream), answers each with `$upstream_addr` in a header,
//! and [`Ring::owner`] must name the same backend for every one.
//!
//! Skips loudly (a `SKIP` line on stderr) only when no nginx binary exists; an nginx that is
//! there but does not start is a failure. `scripts/install-test-deps.sh` installs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ring::{Parent, Ring};

const URIS_EQUAL: usize = 10_000;
const URIS_WEIGHTED: usize = 2_000;
/// Backends 127.0.0.2 ..= 127.0.0.10.
const BACKENDS: std::ops::RangeInclusive<u8> = 2..=10;

fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

fn free_port(ip: [u8; 4]) -> u16 {
    TcpListener::bind(SocketAddr::from((ip, 0)))
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Weight of backend `last` in the weighted upstream: 1, 2, 3, 1, 2, 3, ...
fn weight_of(last: u8) -> u32 {
    u32::from(last % 3) + 1
}

fn config(dir: &Path, front: u16, backend: u16) -> String {
    let d = dir.display();
    let equal: String = BACKENDS.map(|i| format!("    server 127.0.0.{i}:{backend};\n")).collect();
    let weighted: String = BACKENDS
        .map(|i| format!("    server 127.0.0.{i}:{backend} weight={};\n", weight_of(i)))
        .collect();
    let listens: String =
        BACKENDS.map(|i| format!("    listen 127.0.0.{i}:{backend};\n")).collect();
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  log_format up '$request_uri $upstream_addr $status';
  access_log {d}/access.log up;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream equal {{
    hash $request_uri consistent;
{equal}    keepalive 32;
  }}
  upstream weighted {{
    hash $request_uri consistent;
{weighted}    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{front};
    keepalive_requests 100000;
    proxy_http_version 1.1;
    proxy_set_header Connection \"\";
    add_header X-Upstream $upstream_addr always;
    location /w/ {{ proxy_pass http://weighted; }}
    location / {{ proxy_pass http://equal; }}
  }}
  server {{
{listens}    access_log off;
    location / {{ return 200 \"ok\\n\"; }}
  }}
}}
"
    )
}

/// The nginx process, killed on drop.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nginx(bin: &Path, dir: &Path, front: SocketAddr) -> Nginx {
    let conf = dir.join("nginx.conf");
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect(front).is_ok() {
            return Nginx(child);
        }
        if let Some(status) = child.try_wait().expect("poll nginx") {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("nginx exited ({status}) before listening:\n{log}");
        }
        assert!(Instant::now() < deadline, "nginx did not listen on {front}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `GET uri` on a keep-alive connection; returns `X-Upstream`.
fn upstream_of(conn: &mut BufReader<TcpStream>, uri: &str) -> String {
    // One write per request: split writes meet Nagle and delayed ACKs (40 ms each).
    let request = format!("GET {uri} HTTP/1.1\r\nHost: parity.test\r\n\r\n");
    conn.get_mut().write_all(request.as_bytes()).expect("send");
    let mut status = String::new();
    conn.read_line(&mut status).expect("status line");
    assert!(status.starts_with("HTTP/1.1 200"), "{uri}: {status:?}");
    let (mut upstream, mut length) = (None, 0usize);
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header");
        match name.to_ascii_lowercase().as_str() {
            "x-upstream" => upstream = Some(value.trim().to_owned()),
            "content-length" => length = value.trim().parse().expect("length"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).expect("body");
    upstream.unwrap_or_else(|| panic!("{uri}: no X-Upstream"))
}

/// Request targets that vary in every part nginx's `$request_uri` carries.
fn uri(i: usize, prefix: &str) -> String {
    match i % 4 {
        0 => format!("{prefix}obj/{i}"),
        1 => format!("{prefix}video/{:x}/seg-{}.ts", i * 7919, i % 97),
        2 => format!("{prefix}a/b/c/file{i}.mp4?start={}&v=2", i % 13),
        _ => format!("{prefix}%7Euser/{i}/index.html"),
    }
}

#[test]
fn ketama_matches_nginx() {
    let Some(bin) = nginx_binary() else {
        eprintln!("SKIP ketama_matches_nginx: no nginx binary (scripts/install-test-deps.sh)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("ringcast-ketama-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let front = SocketAddr::from(([127, 0, 0, 1], free_port([127, 0, 0, 1])));
    let backend = free_port([127, 0, 0, 2]);
    std::fs::write(dir.join("nginx.conf"), config(&dir, front.port(), backend)).unwrap();
    let nginx = start_nginx(&bin, &dir, front);

    let addr = |i: u8| SocketAddr::from(([127, 0, 0, i], backend));
    let equal = Ring::new(BACKENDS.map(|i| Parent::new(addr(i), 1)).collect()).unwrap();
    let weighted =
        Ring::new(BACKENDS.map(|i| Parent::new(addr(i), weight_of(i))).collect()).unwrap();

    let mut conn = BufReader::new(TcpStream::connect(front).expect("connect nginx"));
    conn.get_ref().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.get_ref().set_nodelay(true).unwrap();
    let mut per_backend = [0usize; 9];
    let cases = (0..URIS_EQUAL)
        .map(|i| (uri(i, "/"), &equal))
        .chain((0..URIS_WEIGHTED).map(|i| (uri(i, "/w/"), &weighted)));
    let mut checked = 0;
    for (uri, ring) in cases {
        let nginx_choice: SocketAddr = upstream_of(&mut conn, &uri)
            .parse()
            .unwrap_or_else(|e| panic!("{uri}: X-Upstream not one address: {e}"));
        let owner = ring.owner(uri.as_bytes());
        assert_eq!(ring.parents()[owner].addr, nginx_choice, "{uri}");
        if std::ptr::eq(ring, &equal) {
            per_backend[owner] += 1;
        }
        checked += 1;
    }
    drop(nginx);
    assert_eq!(checked, URIS_EQUAL + URIS_WEIGHTED);
    // Every backend got keys: the comparison covered the whole ring, not one arc of it.
    assert!(per_backend.iter().all(|n| *n > 0), "{per_backend:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
