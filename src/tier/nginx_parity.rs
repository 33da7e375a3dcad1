//! Ketama parity with a running nginx: nginx proxies 10,000 distinct request targets through
//! `upstream { hash $request_uri consistent; }` over nine backends on 127.0.0.2–.10, answers
//! each with `$upstream_addr` in a header, and [`Ring::owner`] must name the same backend for
//! every one. Then 2,000 more targets each through three more upstreams: weighted; IPv6
//! (`[::1]:port`, where nginx's point names differ from the `pingora-ketama` crate's); and one
//! where three of nine servers refuse connections (`max_fails=0`, so nginx tries them every
//! time), whose `$upstream_addr` list (`dead, dead, live`) must be the prefix of
//! [`Ring::candidates`] up to the first live server: nginx's failover order.
//!
//! Skips loudly (a `SKIP` line on stderr) only when no nginx binary exists; an nginx that is
//! there but does not start is a failure. `scripts/install-test-deps.sh` installs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::ring::{Parent, Ring};
use crate::test_child::{free_port, fresh_dir, spawn_listening, ChildServer};

const URIS_EQUAL: usize = 10_000;
const URIS_OTHER: usize = 2_000;
/// Backends 127.0.0.2 ..= 127.0.0.10.
const BACKENDS: std::ops::RangeInclusive<u8> = 2..=10;

fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// Weight of backend `last` in the weighted upstream: 1, 2, 3, 1, 2, 3, ...
fn weight_of(last: u8) -> u32 {
    u32::from(last % 3) + 1
}

/// Backends of the failover upstream that listen nowhere (their port is `dead`).
fn is_dead(last: u8) -> bool {
    last % 3 == 2
}

/// Ports: the front, the IPv4 backends, the IPv6 backends (three), and one nobody listens on.
struct Ports {
    front: u16,
    backend: u16,
    v6: [u16; 3],
    dead: u16,
}

fn config(dir: &Path, ports: &Ports) -> String {
    let d = dir.display();
    let Ports { front, backend, v6, dead } = ports;
    let servers = |line: &dyn Fn(u8) -> String| BACKENDS.map(line).collect::<String>();
    let equal = servers(&|i| format!("    server 127.0.0.{i}:{backend};\n"));
    let weighted =
        servers(&|i| format!("    server 127.0.0.{i}:{backend} weight={};\n", weight_of(i)));
    let failover = servers(&|i| {
        let port = if is_dead(i) { dead } else { backend };
        format!("    server 127.0.0.{i}:{port} max_fails=0;\n")
    });
    let listens = servers(&|i| format!("    listen 127.0.0.{i}:{backend};\n"));
    let v6_servers: String =
        v6.iter().zip(1..).map(|(p, w)| format!("    server [::1]:{p} weight={w};\n")).collect();
    let v6_listens: String = v6.iter().map(|p| format!("    listen [::1]:{p};\n")).collect();
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log crit;
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
  upstream failover {{
    hash $request_uri consistent;
{failover}  }}
  upstream v6 {{
    hash $request_uri consistent;
{v6_servers}    keepalive 8;
  }}
  server {{
    listen 127.0.0.1:{front};
    keepalive_requests 100000;
    proxy_http_version 1.1;
    proxy_set_header Connection \"\";
    add_header X-Upstream $upstream_addr always;
    location /w/ {{ proxy_pass http://weighted; }}
    location /f/ {{ proxy_pass http://failover; proxy_next_upstream error; }}
    location /v6/ {{ proxy_pass http://v6; }}
    location / {{ proxy_pass http://equal; }}
  }}
  server {{
{listens}{v6_listens}    access_log off;
    location / {{ return 200 \"ok\\n\"; }}
  }}
}}
"
    )
}

fn start_nginx(bin: &Path, dir: &Path, front: SocketAddr) -> ChildServer {
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stderr(Stdio::null());
    spawn_listening(cmd, front, &dir.join("error.log"), Duration::from_secs(20))
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
    let dir = fresh_dir("ketama");
    let ports = Ports {
        front: free_port(SocketAddr::from(([127, 0, 0, 1], 0))),
        backend: free_port(SocketAddr::from(([127, 0, 0, 2], 0))),
        v6: [(); 3].map(|()| free_port(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)))),
        dead: free_port(SocketAddr::from(([127, 0, 0, 2], 0))),
    };
    let front = SocketAddr::from(([127, 0, 0, 1], ports.front));
    std::fs::write(dir.join("nginx.conf"), config(&dir, &ports)).unwrap();
    let nginx = start_nginx(&bin, &dir, front);

    let v4 = |i: u8, port: u16| SocketAddr::from(([127, 0, 0, i], port));
    let ring = |parents: Vec<Parent>| Ring::new(parents).unwrap();
    let equal = ring(BACKENDS.map(|i| Parent::new(v4(i, ports.backend), 1)).collect());
    let weighted =
        ring(BACKENDS.map(|i| Parent::new(v4(i, ports.backend), weight_of(i))).collect());
    let failover = ring(
        BACKENDS
            .map(|i| Parent::new(v4(i, if is_dead(i) { ports.dead } else { ports.backend }), 1))
            .collect(),
    );
    let v6 = ring(
        ports
            .v6
            .iter()
            .zip(1..)
            .map(|(p, w)| Parent::new(SocketAddr::from((Ipv6Addr::LOCALHOST, *p)), w))
            .collect(),
    );

    let mut conn = BufReader::new(TcpStream::connect(front).expect("connect nginx"));
    conn.get_ref().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.get_ref().set_nodelay(true).unwrap();
    let mut ask = |uri: &str| -> Vec<SocketAddr> {
        upstream_of(&mut conn, uri)
            .split(", ")
            .map(|a| a.parse().unwrap_or_else(|e| panic!("{uri}: {a:?}: {e}")))
            .collect()
    };

    let mut per_backend = [0usize; 9];
    for i in 0..URIS_EQUAL {
        let uri = uri(i, "/");
        let owner = equal.owner(uri.as_bytes());
        assert_eq!(vec![equal.parents()[owner].addr], ask(&uri), "{uri}");
        per_backend[owner] += 1;
    }
    // Every backend got keys: the comparison covered the whole ring, not one arc of it.
    assert!(per_backend.iter().all(|n| *n > 0), "{per_backend:?}");

    for (prefix, ring) in [("/w/", &weighted), ("/v6/", &v6)] {
        for i in 0..URIS_OTHER {
            let uri = uri(i, prefix);
            let owner = ring.parents()[ring.owner(uri.as_bytes())].addr;
            assert_eq!(vec![owner], ask(&uri), "{uri}");
        }
    }

    let mut failed_over = 0;
    for i in 0..URIS_OTHER {
        let uri = uri(i, "/f/");
        let order: Vec<SocketAddr> = failover
            .candidates(uri.as_bytes())
            .iter()
            .map(|j| failover.parents()[*j].addr)
            .collect();
        let live = order.iter().position(|a| a.port() == ports.backend).unwrap();
        assert_eq!(order[..=live].to_vec(), ask(&uri), "{uri}");
        failed_over += usize::from(live > 0);
    }
    // A third of the keys start on a dead server: the walk was exercised, not skipped.
    assert!(failed_over > URIS_OTHER / 5, "{failed_over}");
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
}
