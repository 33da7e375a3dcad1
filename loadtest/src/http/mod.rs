//! HTTP/1.1 client-side protocol logic with no I/O (RFC 9110, RFC 9112).
//!
//! [`response`] parses a response head from bytes and decides how its body is
//! framed; [`cache`] reads what `Cache-Status` and `X-Cache` say; [`chunked`] decodes `Transfer-Encoding: chunked` bodies as a state
//! machine fed with whatever bytes arrived; [`request`] writes request heads.
//! Nothing here touches a socket, a clock or the runtime, so every rule is a
//! table of cases in the unit tests.

#![forbid(unsafe_code)]

pub mod cache;
pub mod chunked;
pub mod request;
pub mod response;

pub use cache::CacheClass;
pub use chunked::{ChunkedDecoder, ChunkedProgress};
pub use request::write_get;
pub use response::{parse_head, BodyFraming, HeadParse, ParseError, ResponseHead};
