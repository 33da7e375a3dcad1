//! The sendfile strategy: page cache → socket with `sendfile(2)` on the non-blocking socket.
//!
//! Each call is capped at [`MAX_PER_CALL`] (as nginx's `sendfile_max_chunk`) and the task yields
//! after each capped call, so one client on a fast link cannot monopolise the worker; the loop
//! also carries transfers past the kernel's ~2 GiB per-call limit. `EAGAIN` waits for
//! writability, bounded by the send timeout. A zero return before the planned end means the file
//! was truncated under us: the connection is closed (we already promised a `Content-Length`).
//!
//! A page-cache miss makes `sendfile` read from disk on the worker thread; see
//! docs/architecture.md for how cold files are handled.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use crate::socket::{yield_now, SendError, Socket};
use crate::sys;

/// Most bytes moved by one `sendfile` call.
pub const MAX_PER_CALL: u64 = 2 * 1024 * 1024;

/// Sends `len` bytes of `file` from `offset`.
pub async fn send_range(
    socket: &Socket,
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(), SendError> {
    let end = offset + len;
    let mut pos = offset;
    while pos < end {
        let count = usize::try_from((end - pos).min(MAX_PER_CALL)).expect("capped count fits");
        match sys::sendfile(socket.fd(), file.as_raw_fd(), &mut pos, count) {
            Ok(0) => return Err(SendError::Truncated),
            Ok(n) => {
                if n == count && pos < end {
                    // A full capped call: let the other connections on this core run.
                    yield_now().await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SendError::io("sendfile", e)),
        }
    }
    Ok(())
}
