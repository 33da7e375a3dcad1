//! The edge cache, decided without I/O: which responses are stored and under which key, how
//! long they stay fresh, how they are revalidated, how large objects are cut into slices, and
//! what `Cache-Status` says about each answer. Disk ([`store`]) and the process-wide fill
//! table ([`fill`]) are the only parts here that touch the system.
//!
//! Times are whole seconds since the Unix epoch (`u64`): HTTP dates and delta-seconds have
//! one-second resolution (RFC 9110 §5.6.7, RFC 9111 §1.2.2), and plain integers keep every
//! rule table-testable with fixed clocks.
//!
//! Layers, from the request inwards:
//! - [`key`]: the cache key and its file-name id; the `Vary: Accept-Encoding` secondary key.
//! - [`policy`]: may this response be stored (RFC 9111 §3), and its freshness (§4.2).
//! - [`freshness`]: at a given time, may a stored response be used, and how (§4.2.4, RFC 5861).
//! - [`revalidate`]: conditional request fields and the update by a `304` (§4.3).
//! - [`slice`]: aligned slices, origin `Range`, `Content-Range` and the per-slice version check.
//! - [`status`]: the `Cache-Status` field (RFC 9211).
//! - [`fields`]: a response's header fields; which are hop-by-hop (RFC 9110 §7.6.1).
//! - [`meta`]: the metadata file format; [`store`]: bodies and metadata on disk, eviction.
//! - [`fill`]: the process-wide fill table: one origin fetch per slice, waiters streaming it.
#![forbid(unsafe_code)]

pub(crate) mod control;
pub(crate) mod fields;
pub(crate) mod fill;
pub(crate) mod freshness;
pub(crate) mod key;
pub(crate) mod meta;
pub(crate) mod policy;
pub(crate) mod revalidate;
pub(crate) mod slice;
#[cfg(test)]
mod slice_fill_tests;
pub(crate) mod status;
pub(crate) mod store;
