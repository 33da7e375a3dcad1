//! The splice strategy: file → pipe → socket with `splice(2)`, through a per-worker pool of
//! pipes sized with `F_SETPIPE_SZ`.
//!
//! Both calls run inline on the worker (non-blocking on the pipe and the socket; the file side
//! may wait on a page-cache miss, as `sendfile` does). io_uring's `IORING_OP_SPLICE` is not used:
//! the kernel always runs it on io-wq worker threads, adding a thread hop per call. A pipe goes
//! back to the pool only when it is empty; on any error, or if the transfer is abandoned (the
//! future dropped), the pipe is closed instead, so no stale bytes reach another response.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use crate::socket::{SendError, Socket};
use crate::sys::Pipe;

/// Capacity asked for each pipe (the default `pipe-max-size` allows 1 MiB).
pub const PIPE_BYTES: usize = 1024 * 1024;

/// Pipes kept for reuse per worker.
const POOL_MAX: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// Sends `len` bytes of `file` from `offset`.
pub async fn send_range(
    socket: &Socket,
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(), SendError> {
    let pipe = match POOL.with(|p| p.borrow_mut().pop()) {
        Some(p) => p,
        None => Pipe::new(PIPE_BYTES).map_err(|e| SendError::io("pipe", e))?,
    };
    let end = offset + len;
    let mut pos = offset;
    while pos < end {
        let want = usize::try_from(end - pos).unwrap_or(usize::MAX).min(pipe.capacity);
        let filled = match pipe.fill_from(file.as_raw_fd(), &mut pos, want) {
            Ok(0) => return Err(SendError::Truncated),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SendError::io("splice from file", e)),
        };
        let mut left = filled;
        while left > 0 {
            match pipe.drain_to(socket.fd(), left, pos < end) {
                Ok(n) => left -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SendError::io("splice to socket", e)),
            }
        }
        if pos < end {
            socket.take_turn().await?;
        }
    }
    // Empty again: safe to reuse.
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(pipe);
        }
    });
    Ok(())
}
