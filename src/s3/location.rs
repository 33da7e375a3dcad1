//! Where an S3-compatible origin is and how an object key becomes a request target.
//!
//! `s3://BUCKET?endpoint=URL&region=R`:
//! - with `endpoint` (MinIO, Ceph RGW, Garage, moto, ...): **path-style**, the bucket is the
//!   first path segment (`http://host:port/BUCKET/KEY`), because custom endpoints rarely have
//!   wildcard DNS or certificates for `BUCKET.host`;
//! - without it, AWS: **virtual-hosted style** (`https://BUCKET.s3.REGION.amazonaws.com/KEY`)
//!   when the bucket name is a DNS label (no dots, so the `*.s3` certificate covers it), else
//!   path-style on `s3.REGION.amazonaws.com`.
//!
//! `region` defaults to `us-east-1` (what MinIO and moto expect when none is configured).
//! Keys are encoded as SigV4's `UriEncode`: unreserved characters (`A-Za-z0-9-._~`) and `/`
//! stay, every other byte becomes `%XX` (upper-case hex), so the target on the wire is the
//! canonical URI that is signed.

use std::fmt;

/// `http` or `https` towards the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// Bucket in the path or in the host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addressing {
    PathStyle,
    VirtualHosted,
}

/// A parsed `s3://` origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Location {
    pub(crate) bucket: String,
    pub(crate) region: String,
    pub(crate) scheme: Scheme,
    /// Host name or address of the store, without the port.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) addressing: Addressing,
}

/// Why an `s3://` origin was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LocationError {
    #[error("{0:?}: an S3 origin starts with s3://")]
    Scheme(String),
    #[error("bucket {0:?}: 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit")]
    Bucket(String),
    #[error("endpoint {0:?}: expected http://HOST[:PORT] or https://HOST[:PORT] with no path")]
    Endpoint(String),
    #[error("region {0:?}: expected letters, digits and '-'")]
    Region(String),
    #[error("unknown parameter {0:?} (known: endpoint, region)")]
    Parameter(String),
}

impl S3Location {
    pub(crate) fn parse(s: &str) -> Result<S3Location, LocationError> {
        let rest = s.strip_prefix("s3://").ok_or_else(|| LocationError::Scheme(s.to_owned()))?;
        let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
        let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
        if !valid_bucket(bucket) {
            return Err(LocationError::Bucket(bucket.to_owned()));
        }
        let (mut endpoint, mut region) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "endpoint" => endpoint = Some(value),
                "region" => region = Some(value),
                _ => return Err(LocationError::Parameter(name.to_owned())),
            }
        }
        let region = region.unwrap_or("us-east-1");
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(LocationError::Region(region.to_owned()));
        }
        let bucket = bucket.to_owned();
        let region = region.to_owned();
        match endpoint {
            Some(url) => {
                let (scheme, host, port) =
                    parse_endpoint(url).ok_or_else(|| LocationError::Endpoint(url.to_owned()))?;
                Ok(S3Location {
                    bucket,
                    region,
                    scheme,
                    host,
                    port,
                    addressing: Addressing::PathStyle,
                })
            }
            None => {
                let dns_label = !bucket.contains('.');
                let host = if dns_label {
                    format!("{bucket}.s3.{region}.amazonaws.com")
                } else {
                    format!("s3.{region}.amazonaws.com")
                };
                Ok(S3Location {
                    bucket,
                    region,
                    scheme: Scheme::Https,
                    host,
                    port: 443,
                    addressing: if dns_label {
                        Addressing::VirtualHosted
                    } else {
                        Addressing::PathStyle
                    },
                })
            }
        }
    }

    /// The `Host` header value: the port only when it is not the scheme's default (as
    /// botocore signs it).
    pub(crate) fn host_header(&self) -> String {
        match (self.scheme, self.port) {
            (Scheme::Http, 80) | (Scheme::Https, 443) => self.host.clone(),
            _ if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// The request target (and canonical URI) of object `key` (a leading `/` is not part of
    /// the key). An empty key would address the bucket itself (a listing), and S3 keys are at
    /// most 1,024 bytes: both are refused.
    pub(crate) fn object_target(&self, key: &str) -> Result<String, KeyError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong { bytes: key.len() });
        }
        let mut out = String::with_capacity(self.bucket.len() + key.len() + 2);
        if self.addressing == Addressing::PathStyle {
            out.push('/');
            out.push_str(&self.bucket);
        }
        out.push('/');
        uri_encode_path(key, &mut out);
        Ok(out)
    }
}

/// S3's limit on an object key, in bytes of UTF-8.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// Why an object key cannot be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("empty object key")]
    Empty,
    #[error("object key of {bytes} bytes; S3 allows {MAX_KEY_BYTES}")]
    TooLong { bytes: usize },
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{} at {}", self.bucket, self.host_header())
    }
}

/// S3 bucket naming rules (the subset that matters for addressing).
fn valid_bucket(b: &str) -> bool {
    let ok_edge = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && ok_edge(b.bytes().next())
        && ok_edge(b.bytes().last())
}

fn parse_endpoint(url: &str) -> Option<(Scheme, String, u16)> {
    let (scheme, rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r, 443)
    } else {
        return None;
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, default_port),
            p => (host, p.strip_prefix(':')?.parse().ok()?),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// SigV4 `UriEncode` of a path: every byte but `A-Za-z0-9-._~` and `/` as `%XX`.
fn uri_encode_path(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_origins() {
        let loc = S3Location::parse("s3://media?endpoint=http://127.0.0.1:9000&region=eu-west-3")
            .unwrap();
        assert_eq!(
            loc,
            S3Location {
                bucket: "media".into(),
                region: "eu-west-3".into(),
                scheme: Scheme::Http,
                host: "127.0.0.1".into(),
                port: 9000,
                addressing: Addressing::PathStyle,
            }
        );
        assert_eq!(loc.host_header(), "127.0.0.1:9000");
        assert_eq!(loc.object_target("/video/a.mp4").unwrap(), "/media/video/a.mp4");

        let aws = S3Location::parse("s3://media").unwrap();
        assert_eq!(aws.addressing, Addressing::VirtualHosted);
        assert_eq!(aws.region, "us-east-1");
        assert_eq!(aws.host_header(), "media.s3.us-east-1.amazonaws.com");
        assert_eq!(aws.object_target("seg/1.ts").unwrap(), "/seg/1.ts");

        let dotted = S3Location::parse("s3://my.media?region=us-west-2").unwrap();
        assert_eq!(dotted.addressing, Addressing::PathStyle);
        assert_eq!(dotted.host_header(), "s3.us-west-2.amazonaws.com");
        assert_eq!(dotted.object_target("x").unwrap(), "/my.media/x");

        let tls = S3Location::parse("s3://b-1?endpoint=https://S3.Example.test/").unwrap();
        assert_eq!((tls.scheme, tls.port), (Scheme::Https, 443));
        assert_eq!(tls.host_header(), "s3.example.test");

        let v6 = S3Location::parse("s3://abc?endpoint=http://[::1]:9000").unwrap();
        assert_eq!(v6.host_header(), "[::1]:9000");
    }

    #[test]
    fn refuses_bad_origins() {
        let cases = [
            "http://media",
            "s3://Media",
            "s3://ab",
            "s3://-media",
            "s3://media?endpoint=ftp://h",
            "s3://media?endpoint=http://h/path",
            "s3://media?endpoint=http://h:0",
            "s3://media?endpoint=http://h:99999",
            "s3://media?endpoint=http://user@h",
            "s3://media?region=",
            "s3://media?region=eu/west",
            "s3://media?bucket=x",
        ];
        for s in cases {
            assert!(S3Location::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn keys_are_uri_encoded() {
        let loc = S3Location::parse("s3://b-1?endpoint=http://h").unwrap();
        let cases = [
            ("a.mp4", "/b-1/a.mp4"),
            ("a b/ü+c~d.bin", "/b-1/a%20b/%C3%BC%2Bc~d.bin"),
            ("100%/x?y#z", "/b-1/100%25/x%3Fy%23z"),
            ("dir//x", "/b-1/dir//x"),
        ];
        for (key, want) in cases {
            assert_eq!(loc.object_target(key).as_deref(), Ok(want), "{key}");
        }
        assert_eq!(loc.object_target(""), Err(KeyError::Empty));
        assert_eq!(loc.object_target("/"), Err(KeyError::Empty));
        let long = "k".repeat(MAX_KEY_BYTES);
        assert!(loc.object_target(&long).is_ok());
        assert_eq!(
            loc.object_target(&format!("{long}k")),
            Err(KeyError::TooLong { bytes: MAX_KEY_BYTES + 1 })
        );
    }
}
