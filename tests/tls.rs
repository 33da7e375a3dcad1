//! HTTPS end to end: the real binary with `--tls-listen`, spoken to by curl, `openssl s_client`
//! and a rustls client, on both drivers. Certificates (a test CA, ECDSA and RSA leaves) are
//! made at test time with rcgen and the openssl CLI.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{closed_by_server, read_response, request, sha256, Fixture, Pki, Server, DRIVERS};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

/// Size of the large file: big enough for many records, turns and a full socket buffer.
const BIG: usize = 64 * 1024 * 1024;

/// The test CA and the leaves these tests serve: ECDSA pairs `ec` and `ec2` for `localhost`
/// and `a.test`, an `expired` one, and an RSA leaf `rsa` for `b.test`.
fn make_pki(dir: &Path) -> Pki {
    let pki = Pki::new(dir);
    pki.ecdsa("ec", &["localhost", "a.test"], (2020, 2099));
    pki.ecdsa("ec2", &["localhost", "a.test"], (2020, 2099));
    pki.ecdsa("expired", &["localhost"], (2000, 2001));
    rsa(&pki, "rsa", "b.test");
    pki
}

/// An RSA leaf from the openssl CLI (ring cannot generate RSA keys), signed by the CA.
fn rsa(pki: &Pki, name: &str, dns: &str) {
    let csr = pki.dir.join(format!("{name}.csr"));
    let ext = pki.dir.join(format!("{name}.ext"));
    std::fs::write(&ext, format!("subjectAltName=DNS:{dns}\n")).unwrap();
    run(Command::new("openssl")
        .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj"])
        .arg(format!("/CN={dns}"))
        .arg("-keyout")
        .arg(pki.key(name))
        .arg("-out")
        .arg(&csr));
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "30", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(pki.dir.join("ca.crt"))
        .arg("-CAkey")
        .arg(pki.dir.join("ca.key"))
        .arg("-CAcreateserial")
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(pki.crt(name)));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("openssl (scripts/install-test-deps.sh installs it)");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A server with one HTTPS listener; the certificate pairs are given by name, default first.
struct Tls {
    server: Server,
    port: u16,
}

impl Tls {
    fn start(fx: &Fixture, pki: &Pki, driver: &'static str, certs: &[&str], extra: &[&str]) -> Tls {
        let mut args: Vec<String> = vec!["--tls-listen".into(), "127.0.0.1:0".into()];
        for name in certs {
            args.push("--tls-cert".into());
            args.push(pki.crt(name).display().to_string());
            args.push("--tls-key".into());
            args.push(pki.key(name).display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut server = Server::start(&fx.dir, driver, &args);
        let mut line = String::new();
        server.stdout().read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on https://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .parse()
            .unwrap();
        Tls { server, port }
    }

    fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// A rustls connection to `name`, handshake done.
    fn connect(&self, pki: &Pki, name: &str) -> StreamOwned<ClientConnection, TcpStream> {
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let conn = ClientConnection::new(pki.client_config(), server_name).unwrap();
        let mut stream = StreamOwned::new(conn, self.tcp());
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        stream
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

/// `curl --cacert` of `url` (extra arguments first); the body.
fn curl(pki: &Pki, extra: &[&str], url: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--http1.1", "--cacert", &pki.ca()])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl (scripts/install-test-deps.sh installs it)");
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn fixture(name: &str) -> (Fixture, Pki, Vec<u8>) {
    let fx = Fixture::new(name);
    let big = common::pseudo_random(BIG, 7);
    fx.file("big.bin", &big);
    fx.file("small.txt", b"small body\n");
    fx.file("mid.bin", &big[..3 * 1024 * 1024 + 17]);
    let pki = make_pki(&fx.dir.join(".pki"));
    (fx, pki, big)
}

#[test]
fn curl_bodies_and_ranges_are_byte_exact_with_every_strategy() {
    let (fx, pki, big) = fixture("tls-curl");
    for driver in DRIVERS {
        for strategy in ["auto", "sendfile", "splice", "memory", "copy"] {
            let tls = Tls::start(&fx, &pki, driver, &["ec"], &["--body-strategy", strategy]);
            let what = format!("{driver} {strategy}");
            let (name, expect) = if strategy == "auto" {
                ("big.bin", &big[..])
            } else {
                ("mid.bin", &big[..3 * 1024 * 1024 + 17])
            };
            let got = curl(&pki, &[], &tls.url(&format!("/{name}")));
            assert_eq!(sha256(&got), sha256(expect), "{what}: whole file");
            let got = curl(&pki, &["-r", "1000-2000000"], &tls.url(&format!("/{name}")));
            assert_eq!(sha256(&got), sha256(&expect[1000..=2_000_000]), "{what}: range");
            let got = curl(&pki, &["-r", "-5"], &tls.url(&format!("/{name}")));
            assert_eq!(got, &expect[expect.len() - 5..], "{what}: suffix range");
            assert_eq!(curl(&pki, &[], &tls.url("/small.txt")), b"small body\n", "{what}");
        }
    }
}

#[test]
fn http_behaviour_over_tls() {
    let (fx, pki, big) = fixture("tls-http");
    for driver in DRIVERS {
        let tls = Tls::start(&fx, &pki, driver, &["ec"], &[]);
        let stream = tls.connect(&pki, "localhost");
        assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]), "{driver}");
        let mut r = BufReader::new(stream);
        // Pipelined: three requests in one write, answered in order.
        let pipelined = [
            request("GET", "/small.txt", &[]),
            request("HEAD", "/big.bin", &[]),
            request("GET", "/mid.bin", &[("Range", "bytes=0-9,100-109")]),
        ]
        .concat();
        r.get_mut().write_all(pipelined.as_bytes()).unwrap();
        let a = read_response(&mut r, false);
        assert_eq!((a.status, a.body.as_slice()), (200, &b"small body\n"[..]), "{driver}");
        let etag = a.header("etag").unwrap().to_string();
        let h = read_response(&mut r, true);
        assert_eq!((h.status, h.content_length()), (200, Some(BIG as u64)), "{driver}");
        let m = read_response(&mut r, false);
        assert_eq!(m.status, 206, "{driver}");
        let ct = m.header("content-type").unwrap().to_string();
        let parts = common::multipart_parts(&m.body, &ct);
        assert_eq!(parts.len(), 2, "{driver}");
        assert_eq!(parts[1].body, &big[100..110], "{driver}");
        // Keep-alive: a conditional request on the same connection.
        let cond = request("GET", "/small.txt", &[("If-None-Match", &etag)]);
        r.get_mut().write_all(cond.as_bytes()).unwrap();
        assert_eq!(read_response(&mut r, false).status, 304, "{driver}");
        // Whole large body, byte-exact, then close: the server's close_notify ends the stream
        // cleanly (a truncation would be an UnexpectedEof error from rustls).
        let last = request("GET", "/big.bin", &[("Connection", "close")]);
        r.get_mut().write_all(last.as_bytes()).unwrap();
        let body = read_response(&mut r, false).body;
        assert_eq!(sha256(&body), sha256(&big), "{driver}");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).expect("clean close with close_notify");
        assert!(rest.is_empty(), "{driver}");
    }
}

#[test]
fn request_in_the_finished_flight_then_keep_alive() {
    let (fx, pki, _big) = fixture("tls-flight");
    for driver in DRIVERS {
        let tls = Tls::start(&fx, &pki, driver, &["ec"], &[]);
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn = ClientConnection::new(pki.client_config(), name).unwrap();
        // Written before the handshake: rustls sends it right behind the client's Finished, in
        // the same write.
        conn.writer().write_all(request("GET", "/small.txt", &[]).as_bytes()).unwrap();
        let mut stream = StreamOwned::new(conn, tls.tcp());
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        let mut r = BufReader::new(stream);
        assert_eq!(read_response(&mut r, false).body, b"small body\n", "{driver}");
        for _ in 0..2 {
            r.get_mut().write_all(request("GET", "/small.txt", &[]).as_bytes()).unwrap();
            assert_eq!(read_response(&mut r, false).body, b"small body\n", "{driver}");
        }
        // The client closes with close_notify; the server answers with its own.
        r.get_mut().conn.send_close_notify();
        r.get_mut().flush().unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).expect("server's close_notify");
        assert!(rest.is_empty(), "{driver}");
    }
}

#[test]
fn sni_picks_the_certificate_and_unknown_names_get_the_default() {
    let (fx, pki, _big) = fixture("tls-sni");
    let (ec, rsa) = (pki.leaf_der("ec"), pki.leaf_der("rsa"));
    for driver in DRIVERS {
        let tls = Tls::start(&fx, &pki, driver, &["ec", "rsa"], &[]);
        for (name, want) in [("localhost", &ec), ("a.test", &ec), ("b.test", &rsa)] {
            let s = tls.connect(&pki, name);
            let got = s.conn.peer_certificates().unwrap()[0].to_vec();
            assert!(&got == want, "{driver}: {name}");
        }
        // An unknown name gets the default certificate (the ECDSA leaf, whose subject is
        // rcgen's; the RSA leaf's is `CN = b.test`).
        let get = "GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let out = s_client(tls.port, &["-servername", "unknown.test", "-CAfile", &pki.ca()], get);
        assert!(out.contains("depth=0 CN = rcgen self signed cert"), "{driver}: {out}");
    }
}

/// Runs `openssl s_client` against the port with `input` on stdin; stdout and stderr.
fn s_client(port: u16, args: &[&str], input: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl (scripts/install-test-deps.sh installs it)");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn openssl_every_version_and_cipher() {
    let (fx, pki, _big) = fixture("tls-ciphers");
    let get = "GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let ca = pki.ca();
    for driver in DRIVERS {
        let tls = Tls::start(&fx, &pki, driver, &["ec", "rsa"], &[]);
        let mut cases: Vec<(Vec<&str>, &str)> = Vec::new();
        for suite in
            ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]
        {
            cases
                .push((vec!["-tls1_3", "-ciphersuites", suite, "-servername", "localhost"], suite));
        }
        for (cipher, name) in [
            ("ECDHE-ECDSA-AES128-GCM-SHA256", "localhost"),
            ("ECDHE-ECDSA-AES256-GCM-SHA384", "localhost"),
            ("ECDHE-ECDSA-CHACHA20-POLY1305", "localhost"),
            ("ECDHE-RSA-AES128-GCM-SHA256", "b.test"),
            ("ECDHE-RSA-AES256-GCM-SHA384", "b.test"),
            ("ECDHE-RSA-CHACHA20-POLY1305", "b.test"),
        ] {
            cases.push((vec!["-tls1_2", "-cipher", cipher, "-servername", name], cipher));
        }
        for (args, cipher) in cases {
            let mut all = args.clone();
            all.extend(["-CAfile", &ca]);
            let out = s_client(tls.port, &all, get);
            assert!(out.contains(&format!("Cipher is {cipher}")), "{driver} {cipher}: {out}");
            assert!(out.contains("Verify return code: 0 (ok)"), "{driver} {cipher}: {out}");
            assert!(
                out.contains("HTTP/1.1 200 OK") && out.contains("small body"),
                "{driver} {cipher}: {out}"
            );
        }
        // Old protocols and non-AEAD ciphers are refused.
        for args in [
            vec!["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA", "-servername", "b.test"],
            vec!["-tls1_2", "-cipher", "AES128-GCM-SHA256", "-servername", "b.test"],
            vec!["-tls1_1"],
        ] {
            let out = s_client(tls.port, &args, get);
            assert!(!out.contains("HTTP/1.1 200"), "{driver} {args:?}: {out}");
        }
    }
}

#[test]
fn sessions_resume_with_tickets() {
    let (fx, pki, _big) = fixture("tls-resume");
    let get = "GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for driver in DRIVERS {
        // Two workers: the ticket keys are shared, whichever worker takes the second connection.
        let tls = Tls::start(&fx, &pki, driver, &["ec"], &["--workers", "2"]);
        for version in ["-tls1_3", "-tls1_2"] {
            let sess = fx.dir.join(format!("{driver}{version}.sess"));
            let sess = sess.display().to_string();
            let first = s_client(tls.port, &[version, "-sess_out", &sess], get);
            assert!(first.contains("New, TLS"), "{driver} {version}: {first}");
            for _ in 0..3 {
                let again = s_client(tls.port, &[version, "-sess_in", &sess], get);
                assert!(again.contains("Reused, TLS"), "{driver} {version}: {again}");
                assert!(again.contains("small body"), "{driver} {version}: {again}");
            }
        }
    }
}

#[test]
fn bad_input_closes_the_connection_and_the_server_keeps_serving() {
    let (fx, pki, _big) = fixture("tls-bad");
    for driver in DRIVERS {
        let tls = Tls::start(&fx, &pki, driver, &["ec"], &["--header-timeout", "1s"]);
        let cases: &[(&[u8], &str)] = &[
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "plain HTTP sent to the HTTPS port"),
            (&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5], "TLS handshake failed"),
            (&[0xff; 300], "TLS handshake failed"),
            // A ClientHello that stalls after its record header: the head timeout ends it.
            (&[0x16, 0x03, 0x01, 0x02, 0x00], "TLS handshake timed out"),
        ];
        for (bytes, log) in cases {
            let mut s = tls.tcp();
            s.write_all(bytes).unwrap();
            assert!(closed_by_server(&mut s), "{driver}: {log}");
            let mut found = false;
            for _ in 0..50 {
                if tls.server.log().contains(log) {
                    found = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(found, "{driver}: no {log:?} in\n{}", tls.server.log());
            assert_eq!(curl(&pki, &[], &tls.url("/small.txt")), b"small body\n", "{driver}");
        }
        // A client that cuts the connection mid-download without close_notify.
        let mut s = tls.connect(&pki, "localhost");
        s.write_all(request("GET", "/big.bin", &[]).as_bytes()).unwrap();
        let mut buf = vec![0; 100_000];
        s.read_exact(&mut buf).unwrap();
        drop(s);
        assert_eq!(curl(&pki, &[], &tls.url("/small.txt")), b"small body\n", "{driver}");
    }
}

#[test]
fn certificates_reload_on_sighup_without_dropping_connections() {
    let (fx, pki, big) = fixture("tls-reload");
    let (ec, ec2) = (pki.leaf_der("ec"), pki.leaf_der("ec2"));
    for driver in DRIVERS {
        // The served pair lives in files that are replaced under the running server.
        std::fs::copy(pki.crt("ec"), pki.crt("live")).unwrap();
        std::fs::copy(pki.key("ec"), pki.key("live")).unwrap();
        let tls = Tls::start(&fx, &pki, driver, &["live"], &[]);
        let pid = tls.server.child.id().to_string();
        let mut download = tls.connect(&pki, "localhost");
        assert!(download.conn.peer_certificates().unwrap()[0].as_ref() == ec.as_slice());
        download.write_all(request("GET", "/big.bin", &[]).as_bytes()).unwrap();
        let mut r = BufReader::new(download);
        let mut first = vec![0; 4096];
        r.read_exact(&mut first).unwrap();

        std::fs::copy(pki.crt("ec2"), pki.crt("live")).unwrap();
        std::fs::copy(pki.key("ec2"), pki.key("live")).unwrap();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        wait_for_log(&tls, "TLS certificates reloaded", 1);
        let s = tls.connect(&pki, "localhost");
        assert!(s.conn.peer_certificates().unwrap()[0].as_ref() == ec2.as_slice(), "{driver}");

        // A bad pair (an expired certificate) is refused; the current one stays.
        std::fs::copy(pki.crt("expired"), pki.crt("live")).unwrap();
        std::fs::copy(pki.key("expired"), pki.key("live")).unwrap();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        wait_for_log(&tls, "new TLS certificates refused", 1);
        assert!(tls.server.log().contains("live.crt: certificate expired on"), "{driver}");
        let s = tls.connect(&pki, "localhost");
        assert!(s.conn.peer_certificates().unwrap()[0].as_ref() == ec2.as_slice(), "{driver}");

        // The download begun before the reloads completes byte-exact.
        let mut rest = Vec::new();
        let head_end = common::find_bytes(&first, b"\r\n\r\n").unwrap() + 4;
        let mut body = first[head_end..].to_vec();
        r.read_exact({
            rest.resize(BIG - body.len(), 0);
            &mut rest
        })
        .unwrap();
        body.extend_from_slice(&rest);
        assert_eq!(sha256(&body), sha256(&big), "{driver}");
    }
}

#[test]
fn certificates_reload_when_their_files_change() {
    let (fx, pki, _big) = fixture("tls-watch");
    let (ec, ec2) = (pki.leaf_der("ec"), pki.leaf_der("ec2"));
    for driver in DRIVERS {
        std::fs::copy(pki.crt("ec"), pki.crt("watched")).unwrap();
        std::fs::copy(pki.key("ec"), pki.key("watched")).unwrap();
        let tls = Tls::start(&fx, &pki, driver, &["watched"], &["--tls-watch", "100ms"]);
        let s = tls.connect(&pki, "localhost");
        assert!(s.conn.peer_certificates().unwrap()[0].as_ref() == ec.as_slice(), "{driver}");
        // Certificate first, key second, as a renewal writes them: the state in between may be
        // seen and refused; the reload that counts comes once both are in place.
        std::fs::copy(pki.crt("ec2"), pki.crt("watched")).unwrap();
        std::fs::copy(pki.key("ec2"), pki.key("watched")).unwrap();
        wait_for_log(&tls, "certificate files changed: TLS certificates reloaded", 1);
        let s = tls.connect(&pki, "localhost");
        assert!(s.conn.peer_certificates().unwrap()[0].as_ref() == ec2.as_slice(), "{driver}");
    }
}

fn wait_for_log(tls: &Tls, what: &str, count: usize) {
    for _ in 0..100 {
        if tls.server.log().matches(what).count() >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no {what:?} in\n{}", tls.server.log());
}

#[test]
fn bad_certificate_files_stop_start_up_with_exit_code_2() {
    let (fx, pki, _big) = fixture("tls-startup");
    let missing = fx.dir.join("nowhere.crt");
    let cases: Vec<(PathBuf, PathBuf, String)> = vec![
        (missing.clone(), pki.key("ec"), missing.display().to_string()),
        (pki.crt("ec"), pki.key("rsa"), "does not match".into()),
        (pki.crt("expired"), pki.key("expired"), "certificate expired on".into()),
        (pki.key("ec"), pki.key("ec"), "no certificate".into()),
        (pki.crt("ec"), pki.crt("ec"), "no private key".into()),
    ];
    for (cert, key, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg(&fx.dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cert:?} {key:?}: {stderr}");
        assert!(stderr.contains(&want), "{want}: {stderr}");
    }
    // kTLS on where the kernel has no TLS module: refused at start.
    if !Path::new("/sys/module/tls").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--ktls", "on"])
            .arg("--tls-cert")
            .arg(pki.crt("ec"))
            .arg("--tls-key")
            .arg(pki.key("ec"))
            .arg(&fx.dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("--ktls on: kernel TLS is not available"), "{stderr}");
    }
}

#[test]
fn config_file_certificates_and_redirect_http() {
    let (fx, pki, _big) = fixture("tls-file");
    let conf = fx.dir.join(".pki").join("tls-file.toml");
    std::fs::write(
        &conf,
        format!(
            "tls-listen = [\"127.0.0.1:0\"]\nredirect-http = true\n\
             [[tls.cert]]\ncert = \"{}\"\nkey = \"{}\"\n\
             [[tls.cert]]\ncert = \"{}\"\nkey = \"{}\"\ndefault = true\n",
            pki.crt("rsa").display(),
            pki.key("rsa").display(),
            pki.crt("ec").display(),
            pki.key("ec").display()
        ),
    )
    .unwrap();
    let (ec, rsa) = (pki.leaf_der("ec"), pki.leaf_der("rsa"));
    for driver in DRIVERS {
        let mut server = Server::start(&fx.dir, driver, &["--config", conf.to_str().unwrap()]);
        let mut line = String::new();
        server.stdout().read_line(&mut line).unwrap();
        let port: u16 =
            line.trim().strip_prefix("listening on https://127.0.0.1:").unwrap().parse().unwrap();
        let tls = Tls { server, port };
        let s = tls.connect(&pki, "localhost");
        assert!(s.conn.peer_certificates().unwrap()[0].as_ref() == ec.as_slice(), "{driver}");
        let s = tls.connect(&pki, "b.test");
        assert!(s.conn.peer_certificates().unwrap()[0].as_ref() == rsa.as_slice(), "{driver}");
        // The plain listener redirects, keeping the target.
        let r = tls.server.get("/small.txt?x=1", &[]);
        assert_eq!(r.status, 301, "{driver}");
        assert_eq!(
            r.header("location"),
            Some(format!("https://test:{port}/small.txt?x=1").as_str())
        );
        // And HTTPS serves.
        assert_eq!(curl(&pki, &[], &tls.url("/small.txt")), b"small body\n", "{driver}");
    }
}

#[test]
fn timeouts_over_tls() {
    let (fx, pki, _big) = fixture("tls-timeouts");
    let extra = ["--send-timeout", "1s", "--header-timeout", "1s", "--keepalive-timeout", "60s"];
    for driver in DRIVERS {
        let tls = Tls::start(&fx, &pki, driver, &["ec"], &extra);
        // A reader that stops: cut after the send timeout.
        let mut stalled = tls.connect(&pki, "localhost");
        stalled.write_all(request("GET", "/big.bin", &[]).as_bytes()).unwrap();
        wait_for_log(&tls, "send stalled for 1s", 1);
        drop(stalled);
        // After a keep-alive response, part of a record: bounded by the head timeout (1 s),
        // not the keep-alive timeout (60 s, longer than this client waits).
        let mut s = tls.connect(&pki, "localhost");
        s.write_all(request("GET", "/small.txt", &[]).as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        assert_eq!(read_response(&mut r, false).body, b"small body\n", "{driver}");
        let mut tcp = r.into_inner().sock;
        tcp.write_all(&[0x17, 0x03, 0x03]).unwrap();
        assert!(closed_by_server(&mut tcp), "{driver}");
        assert_eq!(curl(&pki, &[], &tls.url("/small.txt")), b"small body\n", "{driver}");
    }
}

#[test]
fn error_and_body_paths_over_tls() {
    let (fx, pki, _big) = fixture("tls-errors");
    for driver in DRIVERS {
        let tls = Tls::start(&fx, &pki, driver, &["ec"], &["--header-timeout", "1s"]);
        // A request body is read and dropped; the next request on the connection is answered.
        let mut r = BufReader::new(tls.connect(&pki, "localhost"));
        let with_body = "GET /small.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        r.get_mut().write_all(with_body.as_bytes()).unwrap();
        r.get_mut().write_all(request("GET", "/small.txt", &[]).as_bytes()).unwrap();
        assert_eq!(read_response(&mut r, false).body, b"small body\n", "{driver}");
        assert_eq!(read_response(&mut r, false).body, b"small body\n", "{driver}");
        // Expect: 100-continue, then the body, then the answer.
        let expect = "GET /small.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
                      Content-Length: 3\r\n\r\n";
        r.get_mut().write_all(expect.as_bytes()).unwrap();
        assert_eq!(read_response(&mut r, false).status, 100, "{driver}");
        r.get_mut().write_all(b"abc").unwrap();
        assert_eq!(read_response(&mut r, false).body, b"small body\n", "{driver}");
        // An unsatisfiable range.
        let range = request("GET", "/small.txt", &[("Range", "bytes=100-")]);
        r.get_mut().write_all(range.as_bytes()).unwrap();
        assert_eq!(read_response(&mut r, false).status, 416, "{driver}");
        // A bad request: 400, then the connection closes with close_notify (lingering close).
        r.get_mut().write_all(b"GET /small.txt HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut r, false).status, 400, "{driver}");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).expect("close_notify after the 400");
        assert!(rest.is_empty(), "{driver}");
        // Half a head, then silence: 408 after the head timeout, then close_notify.
        let mut r = BufReader::new(tls.connect(&pki, "localhost"));
        r.get_mut().write_all(b"GET /small.txt HTTP/1.1\r\nHo").unwrap();
        assert_eq!(read_response(&mut r, false).status, 408, "{driver}");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).expect("close_notify after the 408");
        assert!(rest.is_empty(), "{driver}");
    }
}
