//! S3-compatible origins: addressing, credentials, request signing and the store's errors.
//!
//! An edge or shield whose origin is `s3://BUCKET?endpoint=URL&region=R` turns an object key
//! into a signed GET or HEAD ([`sign::sign_object`]) that the origin client sends as it is,
//! with the client's `Range` passed through; the store's error answers become
//! [`error::StoreError`] values (code + message) for the log line and the client's status.
//!
//! - [`location`]: parsing `s3://`, path-style vs virtual-hosted addressing, key encoding;
//! - [`credentials`]: the standard environment variables and shared credentials file;
//! - [`sign`]: AWS Signature V4 in headers, checked against botocore (`botocore_kat.rs`);
//! - [`error`]: S3's XML error body.
//!
//! Pure: no socket and no clock here; `moto_store.rs` (a test) talks to a real S3
//! implementation over loopback.

pub(crate) mod credentials;
pub(crate) mod error;
pub(crate) mod location;
pub(crate) mod sign;

#[cfg(test)]
mod botocore_kat;
#[cfg(test)]
mod moto_store;
