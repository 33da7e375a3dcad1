//! Certificates: loading PEM chains and keys, checking them, and choosing one per handshake by
//! the client's server name (SNI).
//!
//! Every pair is checked at load time — the files parse, the key belongs to the certificate, the
//! certificate is valid now — so a bad file is refused at start-up (exit 2) or at a reload (the
//! old set stays), never found at the first handshake. Errors name the file.
//!
//! Choosing: the names a certificate serves are the DNS names of its subject alternative names
//! (`*.example.com` serves one label under `example.com`). A name served by several certificates
//! (an RSA and an ECDSA one) gets the first whose key can sign with a scheme the client offers.
//! A client without SNI, or with a name no certificate serves, gets the default (the first pair).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain file and its key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
}

/// Why a certificate pair was refused. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read or holds no usable PEM object.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error("{}: the key in {} does not match this certificate ({reason})", cert.display(), key.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        reason: String,
    },
    /// The certificate is not valid now.
    #[error("{}: {reason}", path.display())]
    Validity {
        /// The certificate file.
        path: PathBuf,
        /// Expired or not yet valid, with the date.
        reason: String,
    },
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> CertError {
    CertError::File { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Loads and checks one pair.
pub(crate) fn load_pair(
    files: &CertFiles,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<Arc<CertifiedKey>, CertError> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error(&files.cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(&files.cert, e))?;
    let Some(leaf) = chain.first() else {
        return Err(file_error(&files.cert, "no certificate (expected a PEM CERTIFICATE block)"));
    };
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            file_error(&files.key, "no private key (expected a PEM PRIVATE KEY block)")
        }
        e => file_error(&files.key, e),
    })?;
    let (not_before, not_after) = validity(leaf).ok_or_else(|| {
        file_error(&files.cert, "the first certificate is not a well-formed X.509 certificate")
    })?;
    check_validity(not_before, not_after, unix_seconds(now))
        .map_err(|reason| CertError::Validity { path: files.cert.clone(), reason })?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_error(&files.key, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().map_err(|e| CertError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(certified))
}

/// Picks a certificate per handshake by SNI. Immutable: a reload builds a new one.
#[derive(Debug)]
pub(crate) struct Resolver {
    /// Certificates by exact DNS name (lowercase), in configuration order.
    exact: HashMap<String, Vec<Arc<CertifiedKey>>>,
    /// Certificates by the parent of a wildcard name (`example.com` for `*.example.com`).
    wildcard: HashMap<String, Vec<Arc<CertifiedKey>>>,
    /// Every certificate, the default first.
    all: Vec<Arc<CertifiedKey>>,
    /// How many certificates each name resolves to, for the start-up line.
    names: Vec<String>,
}

impl Resolver {
    /// A resolver over `certs` (the default first).
    pub(crate) fn new(certs: Vec<Arc<CertifiedKey>>) -> Self {
        let mut exact: HashMap<String, Vec<Arc<CertifiedKey>>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<Arc<CertifiedKey>>> = HashMap::new();
        let mut names = Vec::new();
        for ck in &certs {
            for name in dns_names(ck) {
                let name = name.to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_string()).or_default(),
                    None => exact.entry(name.clone()).or_default(),
                }
                .push(Arc::clone(ck));
                names.push(name);
            }
        }
        Self { exact, wildcard, all: certs, names }
    }

    /// The DNS names served, in configuration order (for the start-up block).
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The candidates for `name`, best match first: exact names, then wildcards, then the
    /// default.
    fn candidates(&self, name: Option<&str>) -> impl Iterator<Item = &Arc<CertifiedKey>> {
        let name = name.map(str::to_ascii_lowercase);
        let exact = name.as_deref().and_then(|n| self.exact.get(n));
        let wild = name
            .as_deref()
            .and_then(|n| n.split_once('.'))
            .and_then(|(_, parent)| self.wildcard.get(parent));
        let found = exact.or(wild).map(|v| v.as_slice()).unwrap_or_default();
        found.iter().chain(self.all.iter())
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        self.candidates(hello.server_name())
            .find(|ck| ck.key.choose_scheme(schemes).is_some())
            .cloned()
    }
}

/// The DNS names in the leaf certificate's subject alternative names.
fn dns_names(ck: &CertifiedKey) -> Vec<String> {
    let Some(leaf) = ck.cert.first() else { return Vec::new() };
    match webpki::EndEntityCert::try_from(leaf) {
        Ok(cert) => cert.valid_dns_names().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

/// Clock difference tolerated between the machine that issued a certificate and this one: a
/// certificate made a moment ago elsewhere may start a little in our future.
const CLOCK_SKEW_SECS: i64 = 300;

/// Whether a certificate valid from `not_before` to `not_after` (Unix seconds, inclusive, as
/// RFC 5280 §4.1.2.5) is valid at `now` (give or take [`CLOCK_SKEW_SECS`] at the start); the
/// reason when not.
fn check_validity(not_before: i64, not_after: i64, now: i64) -> Result<(), String> {
    if now > not_after {
        return Err(format!("certificate expired on {}", show_time(not_after)));
    }
    if now + CLOCK_SKEW_SECS < not_before {
        return Err(format!("certificate not valid before {}", show_time(not_before)));
    }
    Ok(())
}

fn show_time(unix: i64) -> String {
    match u64::try_from(unix) {
        Ok(s) => httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s)),
        Err(_) => format!("{unix} (Unix time)"),
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The validity period of a DER X.509 certificate as Unix seconds (RFC 5280 §4.1):
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity SEQUENCE { notBefore, notAfter }, … }, … }`. `None` when the
/// bytes are not shaped so.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (tag, cert, _) = der_item(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der_item(cert)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = der_item(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for _ in 0..3 {
        rest = der_item(rest)?.2; // serial, signature algorithm, issuer
    }
    let (tag, validity, _) = der_item(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (t1, v1, rest) = der_item(validity)?;
    let (t2, v2, _) = der_item(rest)?;
    Some((der_time(t1, v1)?, der_time(t2, v2)?))
}

/// One DER item: (tag, contents, what follows). Single-byte tags, definite lengths.
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as
/// Unix seconds (RFC 5280 §4.1.2.5.1–2).
fn der_time(tag: u8, v: &[u8]) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
    };
    let (year, rest) = match tag {
        0x17 if v.len() == 13 => {
            let yy = digits(&v[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &v[2..])
        }
        0x18 if v.len() == 15 => (digits(&v[..4])?, &v[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times() {
        // RFC 5280 §4.1.2.5.1: UTCTime years 50–99 are 19xx, 00–49 are 20xx.
        let cases: &[(u8, &str, Option<i64>)] = &[
            (0x17, "700101000000Z", Some(0)),
            (0x17, "491231235959Z", Some(2_524_607_999)),
            (0x17, "500101000000Z", Some(-631_152_000)),
            (0x18, "20380119031408Z", Some(2_147_483_648)),
            (0x18, "99991231235959Z", Some(253_402_300_799)),
            (0x17, "700101000000", None),
            (0x17, "701301000000Z", None),
            (0x18, "2038011903140Z", None),
            (0x05, "700101000000Z", None),
        ];
        for (tag, text, want) in cases {
            assert_eq!(der_time(*tag, text.as_bytes()), *want, "{text}");
        }
    }

    #[test]
    fn validity_window() {
        let cases: &[(i64, i64, i64, Option<&str>)] = &[
            (0, 100, 50, None),
            (0, 100, 100, None),
            (0, 100, 0, None),
            (0, 100, 101, Some("expired on Thu, 01 Jan 1970 00:01:40 GMT")),
            (1000, 2000, 999, None),
            (1000, 2000, 699, Some("not valid before")),
        ];
        for (from, to, now, want) in cases {
            match (check_validity(*from, *to, *now), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{e}"),
                (got, want) => panic!("{from}..{to} at {now}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn der_items_reject_truncation() {
        assert_eq!(der_item(&[0x30, 0x02, 1, 2]), Some((0x30, &[1u8, 2][..], &[][..])));
        assert_eq!(der_item(&[0x30, 0x81, 0x01, 9, 7]), Some((0x30, &[9u8][..], &[7u8][..])));
        assert_eq!(der_item(&[0x30, 0x03, 1, 2]), None);
        assert_eq!(der_item(&[0x30, 0x80]), None);
        assert_eq!(der_item(&[0x30]), None);
        assert_eq!(validity(b"not a certificate"), None);
    }

    /// A self-signed pair for `names`, valid from the start of one year to the start of another.
    fn generated(names: &[&str], years: (i32, i32)) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write_pair(dir: &Path, name: &str, pem: &(String, String)) -> CertFiles {
        let files = CertFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, &pem.0).unwrap();
        std::fs::write(&files.key, &pem.1).unwrap();
        files
    }

    #[test]
    fn pairs_are_checked_with_the_file_named() {
        let dir = std::env::temp_dir().join(format!("ringcast-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let provider = crate::tls::provider();
        let now = SystemTime::now();
        let good = write_pair(&dir, "good", &generated(&["a.test"], (2020, 2099)));
        let other = write_pair(&dir, "other", &generated(&["b.test"], (2020, 2099)));
        let old = write_pair(&dir, "old", &generated(&["c.test"], (2000, 2001)));
        // RSA keys come from openssl (ring cannot generate them).
        let rsa = CertFiles { cert: dir.join("rsa.crt"), key: dir.join("rsa.key") };
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"])
            .args(["-subj", "/CN=d.test", "-addext", "subjectAltName=DNS:d.test", "-keyout"])
            .arg(&rsa.key)
            .arg("-out")
            .arg(&rsa.cert)
            .output()
            .expect("openssl (scripts/install-test-deps.sh installs it)");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        assert!(load_pair(&good, &provider, now).is_ok());
        if let Err(e) = load_pair(&rsa, &provider, now) {
            panic!("RSA pair refused: {e}");
        }
        let mismatched = CertFiles { cert: good.cert.clone(), key: other.key.clone() };
        let missing = CertFiles { cert: dir.join("none.crt"), key: good.key.clone() };
        let swapped = CertFiles { cert: good.key.clone(), key: good.cert.clone() };
        let cases: &[(&CertFiles, &str)] = &[
            (&mismatched, "does not match"),
            (&old, "certificate expired on"),
            (&missing, "none.crt"),
            (&swapped, "good.key: no certificate"),
        ];
        for (files, want) in cases {
            let e = load_pair(files, &provider, now).unwrap_err().to_string();
            assert!(e.contains(want), "{files:?}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_pick_certificates() {
        let provider = crate::tls::provider();
        let load = |names: &[&str]| {
            let pem = generated(names, (2020, 2099));
            let chain = CertificateDer::pem_slice_iter(pem.0.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(pem.1.as_bytes()).unwrap();
            let key = provider.key_provider.load_private_key(key).unwrap();
            Arc::new(CertifiedKey::new(chain, key))
        };
        let (a, b, w) = (load(&["a.test"]), load(&["b.test", "B2.test"]), load(&["*.w.test"]));
        let r = Resolver::new(vec![Arc::clone(&a), Arc::clone(&b), Arc::clone(&w)]);
        let first = |name: Option<&str>| Arc::clone(r.candidates(name).next().unwrap());
        let cases: &[(Option<&str>, &Arc<CertifiedKey>)] = &[
            (Some("a.test"), &a),
            (Some("b.test"), &b),
            (Some("B.TEST"), &b),
            (Some("b2.test"), &b),
            (Some("x.w.test"), &w),
            (Some("w.test"), &a),
            (Some("y.x.w.test"), &a),
            (Some("unknown.test"), &a),
            (None, &a),
        ];
        for (name, want) in cases {
            assert!(Arc::ptr_eq(&first(*name), want), "{name:?}");
        }
        assert_eq!(r.names(), ["a.test", "b.test", "b2.test", "*.w.test"]);
    }
}
