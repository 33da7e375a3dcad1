//! Sans-I/O HTTP/1.1: request parsing, response heads, dates, byte ranges, conditional
//! requests, media types, caching and CORS headers.
//!
//! Nothing here touches the runtime or the kernel: every function takes bytes and metadata and
//! returns a value, so it can be table-tested, property-tested and fuzzed.

pub mod cache;
pub mod conditional;
pub mod cors;
pub mod date;
pub mod encoding;
pub mod mime;
pub mod multipart;
pub mod range;
pub mod request;
pub mod response;
