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
pub mod config;
pub mod config_file;
pub mod conn;
pub mod fs;
pub mod http;
pub mod metrics;
#[allow(dead_code)] // S3-compatible origins (issue 15): tested, wired into the edge mode next.
mod s3;
pub mod socket;
#[allow(unsafe_code)]
mod sys;
#[cfg(test)]
mod test_child;
#[allow(dead_code)] // The shield tier (issue 15): tested, wired into the edge mode next.
mod tier;
pub mod worker;

/// The kernel calls the kTLS integration test (`tests/ktls_vm.rs`) makes inside its VM: the
/// kTLS hand-off and `sendfile`. Not an API.
#[doc(hidden)]
pub mod kernel_seam {
    pub use crate::sys::{ktls, sendfile};
}

pub use config::Config;
pub use worker::run;
