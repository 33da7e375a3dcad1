//! Receiving a body without copying it: `recv(MSG_TRUNC)` after an epoll readiness wait.
//!
//! Why not an io_uring op: tokio-uring 0.5 offers no receive with caller-chosen
//! flags and no custom operations, so `MSG_TRUNC` cannot travel through its
//! ring. tokio-uring runs on a tokio current-thread runtime whose reactor is
//! enabled, so the socket is registered with that reactor ([`AsyncFd`],
//! edge-triggered epoll) and drained with non-blocking `recv(MSG_TRUNC |
//! MSG_DONTWAIT)` calls until `EAGAIN`. Each call drops up to 16 MiB of queued
//! bytes in the kernel (for TCP, `MSG_TRUNC` discards instead of copying,
//! `tcp(7)`), so a large body costs a few system calls per socket-buffer-full
//! rather than one copy per 8 KiB as a reading client pays.
//!
//! The registration owns a `dup` of the socket's descriptor, so it never
//! refers to a descriptor someone else may close; it is dropped with the
//! connection.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;

use super::ThreadCtx;
use crate::sys;

/// Readiness registration for one connection's socket.
pub struct Discarder {
    fd: AsyncFd<OwnedFd>,
}

/// The outcome of [`Discarder::discard`]: bytes dropped, and whether the body completed.
pub struct Dropped {
    /// Bytes dropped before success or failure.
    pub bytes: u64,
    /// `Ok` once all requested bytes were dropped.
    pub result: Result<(), crate::stats::ErrorKind>,
}

impl Discarder {
    /// Registers a duplicate of socket `fd` for read readiness.
    pub fn new(fd: RawFd) -> io::Result<Self> {
        Ok(Self { fd: sys::register_readable(sys::dup_fd(fd)?)? })
    }

    /// Drops exactly `len` body bytes from the socket.
    pub async fn discard(&self, ctx: &ThreadCtx, len: u64) -> Dropped {
        let mut dropped = 0u64;
        while dropped < len {
            let want = usize::try_from(len - dropped).unwrap_or(usize::MAX);
            let mut guard = match self.fd.readable().await {
                Ok(g) => g,
                Err(_) => {
                    return Dropped { bytes: dropped, result: Err(crate::stats::ErrorKind::Reset) }
                }
            };
            let attempt = guard.try_io(|inner| {
                let mut buf = ctx.discard_buf.borrow_mut();
                sys::recv_discard(inner.get_ref().as_raw_fd(), &mut buf, want)
            });
            match attempt {
                // Not readable after all: readiness was cleared; wait again.
                Err(_would_block) => continue,
                Ok(Ok(0)) => {
                    return Dropped {
                        bytes: dropped,
                        result: Err(crate::stats::ErrorKind::ShortBody),
                    }
                }
                Ok(Ok(n)) => dropped += n as u64,
                Ok(Err(_)) => {
                    return Dropped { bytes: dropped, result: Err(crate::stats::ErrorKind::Reset) }
                }
            }
        }
        Dropped { bytes: dropped, result: Ok(()) }
    }
}
