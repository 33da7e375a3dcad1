//! The sendfile strategy: page cache → socket with `sendfile(2)` on the non-blocking socket.
//!
//! Each call is capped at [`MAX_PER_CALL`] (as nginx's `sendfile_max_chunk`) and the task yields
//! after each full call, so one client on a fast link cannot monopolise the worker; the loop
//! also carries transfers past the kernel's ~2 GiB per-call limit. `EAGAIN` waits for
//! writability, bounded by the send timeout. A zero return before the planned end means the file
//! was truncated under us: the connection is closed (the `Content-Length` is already promised).
//!
//! Cold files: `sendfile` reads missing pages from disk on the worker thread, stalling every
//! connection of the core. Before each chunk, `cachestat(2)` tells whether the chunk is in the
//! page cache; if not, [`warm`] brings it in without blocking the worker, then `sendfile` runs on
//! cached pages.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::socket::{yield_now, SendError, Socket};
use crate::sys;

/// Most bytes moved by one `sendfile` call.
pub const MAX_PER_CALL: u64 = 2 * 1024 * 1024;

thread_local! {
    /// False once `cachestat` turned out to be missing (Linux < 6.5): no residency checks then.
    static CACHESTAT: Cell<bool> = const { Cell::new(true) };
}

/// Sends `len` bytes of `file` from `offset`.
pub async fn send_range(
    socket: &Socket,
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(), SendError> {
    let end = offset + len;
    let mut pos = offset;
    let mut checked_to = offset;
    while pos < end {
        let count = (end - pos).min(MAX_PER_CALL);
        if pos >= checked_to {
            if !resident(file, pos, count) {
                // Boxed: the cold path's state (a read op, a timer) stays out of the hot future.
                Box::pin(warm(file, pos, count)).await;
            }
            checked_to = pos + count;
        }
        let count = usize::try_from(count).expect("capped count fits");
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

/// Whether every page of the range is in the page cache (true when that cannot be known).
pub fn resident(file: &File, offset: u64, len: u64) -> bool {
    if !CACHESTAT.with(Cell::get) {
        return true;
    }
    match sys::cached_pages(file.as_raw_fd(), offset, len) {
        Ok((cached, pages)) => cached >= pages,
        Err(e) => {
            if e.raw_os_error() == Some(libc::ENOSYS) {
                CACHESTAT.with(|c| c.set(false));
            }
            true
        }
    }
}

/// Brings a range into the page cache without blocking the worker thread.
///
/// On io_uring: one read of the range into a scratch buffer, submitted to the ring (buffered
/// reads of ext4, xfs and btrfs complete asynchronously in the kernel, without an io-wq thread);
/// its completion means the pages are cached. On epoll: `POSIX_FADV_WILLNEED` starts readahead
/// and the task polls `cachestat` every millisecond (bounded) until the range is resident.
/// Failures are ignored: `sendfile` then reads the pages itself.
pub async fn warm(file: &File, offset: u64, len: u64) {
    const POLL: Duration = Duration::from_millis(1);
    const MAX_WAIT: Duration = Duration::from_secs(5);
    if !monoio::utils::is_legacy() {
        let Ok(dup) = file.try_clone() else { return };
        let Ok(uring_file) = monoio::fs::File::from_std(dup) else { return };
        let Ok(len) = usize::try_from(len) else { return };
        let (result, _buf) = uring_file.read_at(Vec::with_capacity(len), offset).await;
        let _ = result;
        let _ = uring_file.close().await;
        return;
    }
    if sys::will_need(file.as_raw_fd(), offset, len).is_err() {
        return;
    }
    let until = monoio::time::Instant::now() + MAX_WAIT;
    while !resident(file, offset, len) && monoio::time::Instant::now() < until {
        monoio::time::sleep(POLL).await;
    }
}
