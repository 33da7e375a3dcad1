//! The store's refusals as values: status, S3 error code and message.
//!
//! S3 answers an error with an XML body, `<Error><Code>NoSuchKey</Code><Message>...`; a HEAD
//! response or some stores' 403 has no body, and then the code is the status's name. The
//! parse is a scan for the two elements (no XML library): the body is small, produced by the
//! store, and only ever shown in a log line.

use std::fmt;

/// An error answer of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreError {
    pub(crate) status: u16,
    /// `SignatureDoesNotMatch`, `NoSuchKey`, `AccessDenied`, ... (or the status's name).
    pub(crate) code: String,
    pub(crate) message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3 store answered {} {}", self.status, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {}

/// What an edge answers a client when the store refused: the store's 404 is the object's
/// 404; anything else (bad credentials, a throttled or broken store) is the gateway's fault,
/// 502 (RFC 9110 §15.6.3), with the store's code in the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientStatus {
    NotFound,
    BadGateway,
}

impl StoreError {
    /// Reads the store's error from its status and body.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> StoreError {
        let text = String::from_utf8_lossy(body);
        let code = element(&text, "Code").unwrap_or_else(|| status_name(status).to_owned());
        let message = element(&text, "Message").unwrap_or_default();
        StoreError { status, code, message }
    }

    pub(crate) fn client_status(&self) -> ClientStatus {
        match (self.status, self.code.as_str()) {
            (404, _) | (_, "NoSuchKey") => ClientStatus::NotFound,
            _ => ClientStatus::BadGateway,
        }
    }
}

/// The text of the first `<name>...</name>`, with XML's predefined entities decoded.
fn element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&close)?;
    let raw = text[start..start + len].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn status_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        412 => "PreconditionFailed",
        416 => "InvalidRange",
        500 => "InternalError",
        503 => "SlowDown",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_errors() {
        let sig = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key &amp; signing method.</Message><RequestId>X</RequestId></Error>"#;
        let cases: &[(u16, &[u8], &str, &str, ClientStatus)] = &[
            (
                403,
                sig,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key & signing method.",
                ClientStatus::BadGateway,
            ),
            (
                404,
                b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
                "NoSuchKey",
                "The specified key does not exist.",
                ClientStatus::NotFound,
            ),
            (403, b"", "Forbidden", "", ClientStatus::BadGateway),
            (404, b"", "NotFound", "", ClientStatus::NotFound),
            (503, b"<Error><Code>SlowDown", "SlowDown", "", ClientStatus::BadGateway),
            (500, b"\xff\xfe not xml", "InternalError", "", ClientStatus::BadGateway),
        ];
        for (status, body, code, message, client) in cases {
            let e = StoreError::from_response(*status, body);
            assert_eq!((e.code.as_str(), e.message.as_str()), (*code, *message), "{status}");
            assert_eq!(e.client_status(), *client, "{status}");
        }
        let shown = StoreError::from_response(403, sig).to_string();
        assert!(shown.starts_with("S3 store answered 403 SignatureDoesNotMatch: The request"));
    }
}
