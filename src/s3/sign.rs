//! AWS Signature Version 4 for GET and HEAD of one object, signed in headers so the request
//! target stays clean (a cache key without `X-Amz-*` query parameters) and `Range` passes
//! through signed.
//!
//! What is signed is what botocore's `S3SigV4Auth` signs for the same request (checked by
//! `botocore_kat.rs`): the headers `host`, `range` (when present), `x-amz-content-sha256`
//! (the SHA-256 of the empty body), `x-amz-date` and `x-amz-security-token` (temporary
//! credentials); an empty canonical query; the target as given, which
//! [`super::location::S3Location::object_target`] has already `UriEncode`d (S3 is not
//! double-encoded).
//!
//! Pure: the caller passes the time. HMAC and SHA-256 come from the `hmac` and `sha2` crates.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;
use super::location::{KeyError, S3Location};

/// SHA-256 of the empty payload of a GET or HEAD.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Object reads: the only methods an origin fetch needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// A signed request: target and headers to send as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedRequest {
    pub(crate) method: Method,
    pub(crate) target: String,
    /// Lower-case names, in canonical order, then `authorization`.
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) canonical_request: String,
    pub(crate) string_to_sign: String,
}

impl SignedRequest {
    /// The HTTP/1.1 request head (ends with the blank line).
    pub(crate) fn http1_head(&self, extra: &[(&str, &str)]) -> String {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method.as_str(), self.target);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
}

/// Signs `method` of object `key` at `time`, with `range` (a `Range` header value) passed on.
pub(crate) fn sign_object(
    location: &S3Location,
    credentials: &Credentials,
    method: Method,
    key: &str,
    range: Option<&str>,
    time: SystemTime,
) -> Result<SignedRequest, KeyError> {
    Ok(sign(
        credentials,
        &location.region,
        method,
        &location.host_header(),
        location.object_target(key)?,
        range,
        &amz_date(time),
    ))
}

/// The signing steps on already-canonical parts (`target` is `UriEncode`d).
pub(crate) fn sign(
    credentials: &Credentials,
    region: &str,
    method: Method,
    host: &str,
    target: String,
    range: Option<&str>,
    amz_date: &str,
) -> SignedRequest {
    let mut headers: Vec<(&'static str, String)> = vec![("host", host.to_owned())];
    if let Some(range) = range {
        // SigV4 canonical values have runs of spaces collapsed (the store canonicalises what
        // it receives the same way); sending the collapsed value keeps the two identical.
        headers.push(("range", range.split_whitespace().collect::<Vec<_>>().join(" ")));
    }
    headers.push(("x-amz-content-sha256", EMPTY_SHA256.to_owned()));
    headers.push(("x-amz-date", amz_date.to_owned()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token", token.clone()));
    }
    let signed_headers = headers.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(";");
    let mut canonical_request = format!("{}\n{target}\n\n", method.as_str());
    for (name, value) in &headers {
        canonical_request.push_str(&format!("{name}:{value}\n"));
    }
    canonical_request.push_str(&format!("\n{signed_headers}\n{EMPTY_SHA256}"));

    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    headers.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    SignedRequest { method, target, headers, canonical_request, string_to_sign }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// `YYYYMMDDTHHMMSSZ` (UTC) of `time`; a time before 1970 signs as the epoch.
pub(crate) fn amz_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = crate::access_log::civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn amz_dates() {
        let cases: &[(u64, &str)] = &[
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_798_761_599, "20261231T235959Z"),
            (1_796_459_400, "20261205T083000Z"),
            (4_107_542_400, "21000301T000000Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(amz_date(UNIX_EPOCH + Duration::from_secs(*secs)), *want, "{secs}");
        }
    }

    /// The documented example of AWS's "Signature Calculations for the Authorization Header:
    /// Transferring Payload in a Single Chunk", GET Object with a Range (S3 API reference,
    /// `sig-v4-header-based-auth`): its canonical request uses the empty-payload hash.
    #[test]
    fn aws_documented_get_object_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let req = sign(
            &creds,
            "us-east-1",
            Method::Get,
            "examplebucket.s3.amazonaws.com",
            "/test.txt".into(),
            Some("bytes=0-9"),
            "20130524T000000Z",
        );
        let auth = &req.headers.last().unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn range_whitespace_is_canonical() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        let req = sign(
            &creds,
            "us-east-1",
            Method::Get,
            "h",
            "/b/k".into(),
            Some(" bytes=0-1,   5-6 "),
            "20261205T083000Z",
        );
        assert_eq!(req.headers[1], ("range", "bytes=0-1, 5-6".to_owned()));
        assert!(req.canonical_request.contains("\nrange:bytes=0-1, 5-6\n"));
        let head = req.http1_head(&[]);
        assert!(head.starts_with("GET /b/k HTTP/1.1\r\nhost: h\r\nrange: bytes=0-1, 5-6\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }
}
