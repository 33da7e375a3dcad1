//! The HTTP/1.1 client to origins, sans-I/O half: what is written to an origin and how what it
//! answers is framed.
//!
//! - [`head`]: the response head (status line, fields) and its body framing (RFC 9112 §6.3):
//!   ambiguous framing is an error, never guessed; 1xx heads are skipped.
//! - [`chunked`]: the chunked transfer coding decoded as a state machine over byte slices
//!   (RFC 9112 §7.1): bounded lines, overflow-checked sizes, any split of the input gives the
//!   same result.
//! - [`request`]: the origin request head — fields forwarded or dropped by rule, `Via`
//!   (RFC 9110 §7.6.3) and `CDN-Loop` (RFC 8586) appended, and loop detection.
//!
//! - [`conn`]: the I/O half on the worker's runtime — connect / first-byte / idle deadlines,
//!   a keep-alive pool per worker and origin, one retry of an idempotent request whose reused
//!   connection failed before any byte; tested against `tests/fixtures/origin.py`.
//!
//! The first three never block nor allocate per byte; [`conn`] feeds bytes in and acts on the
//! values that come out.
#![forbid(unsafe_code)]

pub(crate) mod chunked;
pub(crate) mod conn;
pub(crate) mod head;
pub(crate) mod request;
