//! ringcast: a thread-per-core HTTP/1.1 file and media streaming server for Linux.
//!
//! Each worker is one OS thread pinned to one CPU, running its own monoio runtime (io_uring,
//! or epoll where io_uring is unavailable) with its own `SO_REUSEPORT` listener, file cache,
//! buffers and counters. Nothing on the request path is shared between workers.
//!
//! Data flows one way: [`worker`] → [`conn`] → ([`http`], [`fs`]) → [`body`] → `sys`.
//! [`http`] is free of I/O: parsing, response heads, ranges, conditionals and media types take
//! bytes and metadata and return values. Every `unsafe` call lives in `sys`.
#![deny(unsafe_code)]

pub mod access_log;
pub mod body;
#[allow(dead_code)]
// Reason: parts the edge mode does not use yet: Accept-Encoding variants, streaming a growing slice file to waiters, store statistics.
mod cache;
pub mod config;
pub mod config_file;
pub mod conn;
pub mod edge;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
#[allow(dead_code)] // Reason: pool statistics (reused, retried, idle counts) not exported yet.
mod origin;
#[allow(dead_code)] // Reason: S3-compatible origins (issue 15) are wired into the edge mode next.
mod s3;
pub mod socket;
#[allow(unsafe_code)]
mod sys;
#[cfg(test)]
mod test_child;
#[allow(dead_code)] // Reason: the shield tier (issue 15) is wired into the edge mode next.
mod tier;
pub mod tls;
pub mod worker;

/// The kernel calls the kTLS integration test (`tests/ktls_vm.rs`) makes inside its VM: the
/// kTLS hand-off and `sendfile`. Not an API.
#[doc(hidden)]
pub mod kernel_seam {
    pub use crate::sys::{ktls, sendfile};
}

pub use config::Config;
pub use worker::run;
