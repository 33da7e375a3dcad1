//! The server's kernel-TLS hand-off, end to end, in a VM whose kernel has kTLS.
//!
//! On the host the test runs itself inside `scripts/ktls-vm.sh` (QEMU, Debian's 6.1 kernel with
//! `CONFIG_TLS=m`; see `tests/ktls_vm.rs`). Inside (`RINGCAST_KTLS_VM` set) it starts the real
//! binary with `--tls-listen 127.0.0.1:0 --ktls on` on each driver and, for TLS 1.3 and 1.2 with
//! each cipher (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305):
//! - curl (`--cacert`) downloads a file of a few MiB and a range of it, byte-exact (sha256),
//!   with `--body-strategy sendfile` (and `auto` on the first case);
//! - a rustls client sends a request in the same flight as its Finished, then two keep-alive
//!   requests (a range among them), while `/proc/net/tls_stat` counts a current kernel TX
//!   session; then it sends close_notify and must read the server's (a clean end);
//! - a client's TLS 1.3 KeyUpdate ends the connection with the server's close_notify;
//! - `TlsTxSw` and `TlsRxSw` rise by at least the number of connections made, and
//!   `ringcast_tls_connections_total` counts every connection as `record_layer="kernel"`:
//!   every one was handed to the kernel.
//!
//! If the VM cannot be had the test prints a loud SKIP, or fails when
//! `RINGCAST_REQUIRE_KTLS_VM` is set.
#![allow(deprecated, reason = "ring's provider, as the server uses")]

mod common;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pseudo_random, read_response, request, sha256};
use rustls::crypto::ring::cipher_suite;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedCipherSuite,
    SupportedProtocolVersion,
};

const IN_VM: &str = "RINGCAST_KTLS_VM";
const REQUIRE_VM: &str = "RINGCAST_REQUIRE_KTLS_VM";
const TEST: &str = "ktls_server_in_vm";
/// A few MiB and a partial last record: CPU-bound work runs about 7 times slower under TCG.
const BODY_LEN: usize = 4 * 1024 * 1024 + 12_345;
/// Drivers checked inside the VM.
const DRIVERS: [&str; 2] = ["uring", "epoll"];

#[test]
fn ktls_server_in_vm() {
    if std::env::var_os(IN_VM).is_some() {
        inside_vm();
    } else {
        on_host();
    }
}

fn on_host() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ktls-vm.sh");
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .output()
        .expect("run scripts/ktls-vm.sh");
    let console = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{console}");
    eprintln!("{stderr}");
    match out.status.code() {
        Some(0) => assert!(
            console.contains("ktls-server: inside: all cases passed"),
            "the VM exited 0 without the test's own success line"
        ),
        Some(125) if std::env::var_os(REQUIRE_VM).is_none() => {
            let _ = writeln!(
                io::stderr(),
                "\n\
                 ************************************************************\n\
                 SKIP {TEST}: no VM with kernel TLS could be had\n\
                 ({}). Install qemu-system-x86 and busybox-static\n\
                 (scripts/install-test-deps.sh) to run it.\n\
                 ************************************************************\n",
                stderr.lines().rfind(|l| l.contains("ktls-vm")).unwrap_or("see above").trim()
            );
        }
        status => panic!("kTLS server VM test failed (status {status:?}); console above"),
    }
}

/// One negotiated protocol and suite, as curl and rustls name them.
struct Case {
    version: &'static SupportedProtocolVersion,
    suite: SupportedCipherSuite,
    curl: [&'static str; 2],
    tls12: bool,
}

fn inside_vm() {
    let dir = std::env::temp_dir().join("ringcast-ktls-server");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let body = pseudo_random(BODY_LEN, 13);
    std::fs::write(root.join("big.bin"), &body).unwrap();
    std::fs::write(root.join("small.txt"), b"small body\n").unwrap();
    let pki = Pki::new(&dir.join("pki"));

    let (t13, t12) = (&rustls::version::TLS13, &rustls::version::TLS12);
    let cases = [
        Case {
            version: t13,
            suite: cipher_suite::TLS13_AES_128_GCM_SHA256,
            curl: ["--tls13-ciphers", "TLS_AES_128_GCM_SHA256"],
            tls12: false,
        },
        Case {
            version: t13,
            suite: cipher_suite::TLS13_AES_256_GCM_SHA384,
            curl: ["--tls13-ciphers", "TLS_AES_256_GCM_SHA384"],
            tls12: false,
        },
        Case {
            version: t13,
            suite: cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            curl: ["--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"],
            tls12: false,
        },
        Case {
            version: t12,
            suite: cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            curl: ["--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"],
            tls12: true,
        },
        Case {
            version: t12,
            suite: cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            curl: ["--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"],
            tls12: true,
        },
        Case {
            version: t12,
            suite: cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            curl: ["--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"],
            tls12: true,
        },
    ];

    for driver in DRIVERS {
        for strategy in ["sendfile", "auto"] {
            let server = Ringcast::start(&root, &pki, driver, strategy);
            let startup = server.log();
            assert!(startup.contains("ktls"), "{startup}");
            // `auto` once (the first case): its path differs only in how bodies are chosen.
            let cases = if strategy == "auto" { &cases[..1] } else { &cases[..] };
            for case in cases {
                let what = format!("{driver} {strategy} {:?}", case.suite.suite());
                let started = Instant::now();
                let before = tls_stat();
                let mut tls_args: Vec<&str> = case.curl.to_vec();
                if case.tls12 {
                    tls_args.extend(["--tlsv1.2", "--tls-max", "1.2"]);
                } else {
                    tls_args.push("--tlsv1.3");
                }
                let url = server.url("/big.bin");
                let got = curl(&pki, &tls_args, &url);
                assert_eq!(sha256(&got), sha256(&body), "{what}: whole file");
                let mut ranged = tls_args.clone();
                ranged.extend(["-r", "1000-2000000"]);
                let got = curl(&pki, &ranged, &url);
                assert_eq!(sha256(&got), sha256(&body[1000..=2_000_000]), "{what}: range");

                finished_flight_then_keep_alive(&server, &pki, case, &body, &what);
                if !case.tls12 {
                    key_update_ends_the_connection_cleanly(&server, &pki, case, &what);
                }

                let after = tls_stat();
                for counter in ["TlsTxSw", "TlsRxSw"] {
                    assert!(
                        after[counter] >= before[counter] + 3,
                        "{what}: {counter} rose by less than the 3 connections: {before:?} -> {after:?}"
                    );
                }
                assert_eq!(after["TlsDecryptError"], before["TlsDecryptError"], "{what}");
                println!(
                    "ktls-server: inside: {what}: ok in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            // Every connection (curl's two and the rustls one per case) went to the kernel.
            let metrics = server.metrics();
            let want = 3 * cases.len() + cases.iter().filter(|c| !c.tls12).count();
            for (layer, n) in [("kernel", want), ("user", 0)] {
                let series = format!(
                    "ringcast_tls_connections_total{{worker=\"0\",record_layer=\"{layer}\"}} {n}\n"
                );
                assert!(metrics.contains(&series), "{driver} {strategy}: {series}: {metrics}");
            }
            let log = server.stop();
            assert!(!log.contains("kTLS hand-off failed"), "{log}");
            assert!(log.contains("the client sent a KeyUpdate"), "{log}");
        }
    }
    println!("ktls-server: inside: all cases passed");
}

/// A request in the same flight as the client's Finished, two keep-alive requests, then the
/// client's close_notify answered by the server's.
fn finished_flight_then_keep_alive(
    server: &Ringcast,
    pki: &Pki,
    case: &Case,
    body: &[u8],
    what: &str,
) {
    // The connections before this one (curl's) are closed by the server once it reads their
    // end; wait for that so that the count below is this connection's.
    let idle = wait_for(|| tls_stat()["TlsCurrTxSw"] == 0);
    assert!(idle, "{what}: earlier kernel TLS sessions never closed: {:?}", tls_stat());
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(pki.client_config(case), name).unwrap();
    conn.writer().write_all(request("GET", "/small.txt", &[]).as_bytes()).unwrap();
    let mut stream = StreamOwned::new(conn, server.tcp());
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    assert_eq!(stream.conn.negotiated_cipher_suite(), Some(case.suite), "{what}");
    let mut r = BufReader::new(stream);
    assert_eq!(read_response(&mut r, false).body, b"small body\n", "{what}: first request");
    // The connection is open: the kernel counts it as a current session.
    let open = tls_stat();
    assert_eq!((open["TlsCurrTxSw"], open["TlsCurrRxSw"]), (1, 1), "{what}: {open:?}");
    r.get_mut().write_all(request("GET", "/small.txt", &[]).as_bytes()).unwrap();
    assert_eq!(read_response(&mut r, false).body, b"small body\n", "{what}: keep-alive");
    let range = request("GET", "/big.bin", &[("Range", "bytes=100-70000")]);
    r.get_mut().write_all(range.as_bytes()).unwrap();
    let got = read_response(&mut r, false);
    assert_eq!((got.status, &got.body[..]), (206, &body[100..=70000]), "{what}: range");
    r.get_mut().conn.send_close_notify();
    r.get_mut().flush().unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap_or_else(|e| panic!("{what}: no close_notify: {e}"));
    assert!(rest.is_empty(), "{what}");
}

/// A client's TLS 1.3 KeyUpdate, which a handed-off session cannot follow: the server ends
/// the connection with close_notify (a clean end for the client), after the response before it.
fn key_update_ends_the_connection_cleanly(server: &Ringcast, pki: &Pki, case: &Case, what: &str) {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(pki.client_config(case), name).unwrap();
    let mut stream = StreamOwned::new(conn, server.tcp());
    stream.write_all(request("GET", "/small.txt", &[]).as_bytes()).unwrap();
    let mut r = BufReader::new(stream);
    assert_eq!(read_response(&mut r, false).body, b"small body\n", "{what}: before KeyUpdate");
    r.get_mut().conn.refresh_traffic_keys().unwrap();
    r.get_mut().flush().unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("{what}: no close_notify after the KeyUpdate: {e}"));
    assert!(rest.is_empty(), "{what}");
}

/// `curl --cacert` of `url`; the body.
fn curl(pki: &Pki, extra: &[&str], url: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--http1.1", "--max-time", "120", "--cacert"])
        .arg(pki.dir.join("ca.crt"))
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {extra:?} {url}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The real binary with one HTTPS listener and `--ktls on`, killed on drop.
struct Ringcast {
    child: Child,
    port: u16,
    log: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl Ringcast {
    fn start(root: &Path, pki: &Pki, driver: &str, strategy: &str) -> Ringcast {
        let log = root.with_file_name(format!("server-{driver}-{strategy}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--ktls", "on"])
            .args(["--driver", driver, "--body-strategy", strategy, "--workers", "1"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(pki.dir.join("leaf.crt"))
            .arg("--tls-key")
            .arg(pki.dir.join("leaf.key"))
            .arg(root)
            .env("RUST_LOG", "ringcast=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn ringcast");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut port = None;
        for _ in 0..2 {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            if let Some(p) = line.trim().strip_prefix("listening on https://127.0.0.1:") {
                port = p.parse().ok();
            }
        }
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no https listening line:\n{}", std::fs::read_to_string(&log).unwrap());
        };
        Ringcast { child, port, log, _stdout: stdout }
    }

    fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(120))).unwrap();
        s
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// The text of `GET /metrics` (its address is in the start-up block).
    fn metrics(&self) -> String {
        let log = self.log();
        let addr = log
            .find("http://")
            .and_then(|i| log[i + "http://".len()..].split("/metrics").next())
            .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"));
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n").unwrap();
        let r = read_response(&mut BufReader::new(s), false);
        assert_eq!(r.status, 200);
        String::from_utf8(r.body).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Ringcast {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and an ECDSA leaf for `localhost` signed by it, as files.
struct Pki {
    dir: PathBuf,
    ca_der: CertificateDer<'static>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "ringcast kTLS test CA");
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        std::fs::write(dir.join("leaf.crt"), leaf.pem()).unwrap();
        std::fs::write(dir.join("leaf.key"), key.serialize_pem()).unwrap();
        Pki { dir: dir.to_path_buf(), ca_der: ca.der().clone() }
    }

    /// A rustls client offering only `case`'s version and suite.
    fn client_config(&self, case: &Case) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let provider = CryptoProvider {
            cipher_suites: vec![case.suite],
            ..rustls::crypto::ring::default_provider()
        };
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[case.version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// Waits (up to a minute, a guard against a hang) until `cond` holds; whether it did.
fn wait_for(cond: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// `/proc/net/tls_stat` as name → value.
fn tls_stat() -> HashMap<String, u64> {
    let text = std::fs::read_to_string("/proc/net/tls_stat").expect("/proc/net/tls_stat");
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.parse().ok()?))
        })
        .collect()
}
