//! Against a real S3 implementation on loopback: moto's server (`python -m moto.server`, in
//! target/tools/venv by scripts/install-test-deps.sh) with request authentication on
//! (`INITIAL_NO_AUTH_ACTION_COUNT=3`: only the IAM set-up calls of
//! `tests/fixtures/s3/moto_setup.py` go unauthenticated). The object is fetched whole and by
//! ranges with requests signed by [`sign_object`] over a plain `TcpStream` and compared byte
//! for byte; a wrong secret and a missing key come back as [`StoreError`] values.
//!
//! Skips loudly (a `SKIP` line) only when moto is not installed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use super::credentials::Credentials;
use super::error::{ClientStatus, StoreError};
use super::location::S3Location;
use super::sign::{sign_object, Method};
use crate::test_child::{free_port, fresh_dir, spawn_listening, tools_python, ChildServer};

const BUCKET: &str = "ringcast-media";
const KEY: &str = "video/a b/ü-1.bin";
const OBJECT_BYTES: usize = 5 << 20;

fn venv_python() -> Option<PathBuf> {
    let python = tools_python();
    let ok = python.is_file()
        && Command::new(&python)
            .args(["-c", "import moto.server, boto3"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    ok.then_some(python)
}

/// Deterministic bytes without a short period: SHA-256 of a counter, block after block.
fn object() -> Vec<u8> {
    (0u64..).flat_map(|i| Sha256::digest(i.to_le_bytes())).take(OBJECT_BYTES).collect()
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends one signed request (`Connection: close`) and reads the whole answer.
fn fetch(
    addr: SocketAddr,
    loc: &S3Location,
    creds: &Credentials,
    method: Method,
    key: &str,
    range: Option<&str>,
) -> Response {
    let req = sign_object(loc, creds, method, key, range, SystemTime::now()).expect("a valid key");
    let mut stream = TcpStream::connect(addr).expect("connect moto");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(req.http1_head(&[("connection", "close")]).as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().expect("status");
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header");
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let body = raw[split + 4..].to_vec();
    let resp = Response { status, headers, body };
    if method == Method::Get {
        if let Some(len) = resp.header("content-length") {
            assert_eq!(len.parse::<usize>().unwrap(), resp.body.len(), "truncated");
        }
    }
    resp
}

fn start_moto(python: &Path, dir: &Path) -> (ChildServer, SocketAddr) {
    let port = free_port(SocketAddr::from(([127, 0, 0, 1], 0)));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = dir.join("moto.log");
    let mut cmd = Command::new(python);
    cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
        .stderr(std::fs::File::create(&log).unwrap());
    (spawn_listening(cmd, addr, &log, Duration::from_secs(60)), addr)
}

#[test]
fn objects_from_moto_whole_and_by_range() {
    let Some(python) = venv_python() else {
        eprintln!("SKIP objects_from_moto_whole_and_by_range: no moto in target/tools/venv (scripts/install-test-deps.sh)");
        return;
    };
    let dir = fresh_dir("moto");
    let data = object();
    std::fs::write(dir.join("object"), &data).unwrap();
    let (moto, addr) = start_moto(&python, &dir);

    let endpoint = format!("http://{addr}");
    let setup = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/s3/moto_setup.py"))
        .args([endpoint.as_str(), BUCKET])
        .arg(format!("{KEY}={}", dir.join("object").display()))
        .output()
        .expect("run moto_setup.py");
    assert!(setup.status.success(), "{}", String::from_utf8_lossy(&setup.stderr));
    let keys = String::from_utf8(setup.stdout).unwrap();
    // {"access_key": "...", "secret_key": "..."}: both values are base64-ish, no escapes.
    let field = |name: &str| {
        let start = keys.find(&format!("\"{name}\": \"")).unwrap() + name.len() + 5;
        keys[start..start + keys[start..].find('"').unwrap()].to_owned()
    };
    let creds = Credentials {
        access_key_id: field("access_key"),
        secret_access_key: field("secret_key"),
        session_token: None,
    };
    let loc = S3Location::parse(&format!("s3://{BUCKET}?endpoint={endpoint}")).unwrap();

    let whole = fetch(addr, &loc, &creds, Method::Get, KEY, None);
    assert_eq!(whole.status, 200);
    assert!(whole.body == data, "whole object differs");

    let head = fetch(addr, &loc, &creds, Method::Head, KEY, None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5242880"));

    let n = data.len();
    let ranges: &[(&str, usize, usize)] = &[
        ("bytes=0-0", 0, 0),
        ("bytes=1000-1048575", 1000, 1_048_575),
        ("bytes=-500", n - 500, n - 1),
        ("bytes=4194304-", 4_194_304, n - 1),
    ];
    for (range, first, last) in ranges {
        let part = fetch(addr, &loc, &creds, Method::Get, KEY, Some(range));
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {first}-{last}/{n}").as_str()),
            "{range}"
        );
        assert!(part.body == data[*first..=*last], "{range}: bytes differ");
    }

    let missing = fetch(addr, &loc, &creds, Method::Get, "no/such.bin", None);
    let e = StoreError::from_response(missing.status, &missing.body);
    assert_eq!((e.status, e.code.as_str()), (404, "NoSuchKey"), "{e}");
    assert_eq!(e.client_status(), ClientStatus::NotFound);

    let wrong =
        Credentials { secret_access_key: format!("{}x", creds.secret_access_key), ..creds.clone() };
    let refused = fetch(addr, &loc, &wrong, Method::Get, KEY, None);
    let e = StoreError::from_response(refused.status, &refused.body);
    assert_eq!((e.status, e.code.as_str()), (403, "SignatureDoesNotMatch"), "{e}");
    assert!(!e.message.is_empty(), "{e}");
    assert_eq!(e.client_status(), ClientStatus::BadGateway);

    drop(moto);
    let _ = std::fs::remove_dir_all(&dir);
}
