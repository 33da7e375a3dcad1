//! The sendfile strategy: page cache → socket with `sendfile(2)` on the non-blocking socket.
//!
//! Each call is capped at [`MAX_PER_CALL`] (as nginx's `sendfile_max_chunk`) and the task takes a
//! turn (`Socket::take_turn`) after every step of bytes sent ([`MAX_PER_CALL`], `cold::COLD_STEP`
//! while a range is cold), so one client on a fast link cannot monopolise the worker; the loop
//! also carries transfers past the kernel's ~2 GiB per-call limit. `EAGAIN` waits for
//! writability, bounded by the send timeout. A zero return before the planned end means the file
//! was truncated under us: the connection is closed (the `Content-Length` is already promised).
//!
//! Cold files: `sendfile` reads missing pages from disk on the worker thread, stalling every
//! connection of the core. Before each chunk, a [`Warmer`] (`cold.rs`) tells how far the range
//! can be sent without waiting for the disk, warming it on the cold-read threads first when it
//! is not in the page cache; `sendfile` never runs past that point.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use super::cold::{Warmer, HOT_STEP};
use crate::socket::{SendError, Socket};
use crate::sys;

/// Most bytes moved by one `sendfile` call: never more than one residency check covers.
pub const MAX_PER_CALL: u64 = HOT_STEP;

/// Sends `len` bytes of `file` from `offset`.
pub async fn send_range(
    socket: &Socket,
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(), SendError> {
    let end = offset + len;
    let mut pos = offset;
    let mut since_yield = 0u64;
    let mut warmer = Warmer::new(file, offset, len);
    while pos < end {
        let ready = warmer.ready(pos).await;
        let step = warmer.step(MAX_PER_CALL);
        // Never past the bytes just checked or warmed.
        let count = usize::try_from(ready - pos).expect("at most one step");
        match sys::sendfile(socket.fd(), file.as_raw_fd(), &mut pos, count) {
            Ok(0) => return Err(SendError::Truncated),
            Ok(n) => {
                // A turn after every step's worth of bytes, however many calls moved them: on a
                // fast link each call may move a little less than asked and never hit EAGAIN,
                // and without a turn the loop would keep the core (and the runtime's
                // completion queue) to itself until the transfer ends.
                since_yield += n as u64;
                if since_yield >= step && pos < end {
                    since_yield = 0;
                    socket.take_turn().await?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SendError::io("sendfile", e)),
        }
    }
    Ok(())
}
