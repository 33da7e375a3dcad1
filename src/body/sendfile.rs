//! The sendfile strategy: page cache → socket with `sendfile(2)` on the non-blocking socket.
//!
//! Each call is capped at [`MAX_PER_CALL`] (as nginx's `sendfile_max_chunk`) and the task takes a
//! turn (`Socket::take_turn`) after every step of bytes sent ([`MAX_PER_CALL`], [`COLD_STEP`]
//! while a range is cold), so one client on a fast link cannot monopolise the worker; the loop
//! also carries transfers past the kernel's ~2 GiB per-call limit. `EAGAIN` waits for
//! writability, bounded by the send timeout. A zero return before the planned end means the file
//! was truncated under us: the connection is closed (the `Content-Length` is already promised).
//!
//! Cold files: `sendfile` reads missing pages from disk on the worker thread, stalling every
//! connection of the core. Before each chunk, [`resident`] tells whether the chunk is in the
//! page cache; if not, [`read_ahead`] brings it in without blocking the worker, then `sendfile`
//! runs on cached pages. For [`COLD_WINDOW`] after a cold chunk, every chunk of the range is
//! warmed, one [`COLD_STEP`] ahead.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use crate::socket::{SendError, Socket};
use crate::sys;

/// Most bytes moved by one `sendfile` call.
pub const MAX_PER_CALL: u64 = 2 * 1024 * 1024;

/// Bytes read and sent per step once a range turned out to be cold.
pub const COLD_STEP: u64 = 1024 * 1024;

/// How far past a chunk found cold the following chunks are warmed whatever the residency checks
/// say: beyond the readahead window the kernel may have opened for the reads so far (8 MiB on
/// the benchmark machine's disk, `read_ahead_kb`).
pub const COLD_WINDOW: u64 = 32 * 1024 * 1024;

thread_local! {
    /// False once `cachestat` turned out to be missing (Linux < 6.5): no residency checks then.
    static CACHESTAT: Cell<bool> = const { Cell::new(true) };
}

/// A chunk being read by [`sys::read_through`] on the worker's blocking pool.
type ReadAhead = monoio::task::JoinHandle<Result<io::Result<()>, monoio::blocking::JoinError>>;

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
    let mut since_yield = 0u64;
    // After a chunk that was not all in the page cache, every chunk up to [`COLD_WINDOW`] past
    // it is brought in by `read_ahead` before it is sent: readahead started by the reads so far has
    // added pages it has not filled yet, which `resident` cannot tell from filled ones in the
    // middle of a chunk, and `sendfile` would wait for them on the worker thread. Past the
    // window, with every chunk found resident again, the range is sent as a cached one: a file
    // with a few evicted pages goes through the pool only around them. Cold chunks are smaller
    // ([`COLD_STEP`]) so that no single send keeps the worker from its other connections for
    // long, and the next one is warmed on the blocking pool while the current one is sent.
    let mut cold_until = offset;
    let mut step = MAX_PER_CALL;
    let mut ahead: Option<(u64, u64, ReadAhead)> = None;
    while pos < end {
        if pos >= checked_to {
            let probe = (end - pos).min(if pos < cold_until { COLD_STEP } else { MAX_PER_CALL });
            if !resident(file, pos, probe) {
                cold_until = pos + COLD_WINDOW;
            }
            if pos < cold_until {
                step = COLD_STEP;
                let count = (end - pos).min(COLD_STEP);
                let read = match ahead.take() {
                    Some((at, n, read)) if at == pos && n == count => Some(read),
                    _ => read_ahead(file, pos, count),
                };
                if let Some(read) = read {
                    // A failed read is ignored: `sendfile` then reads the pages itself, or
                    // reports the truncation.
                    let _ = read.await;
                }
                let next = pos + count;
                if next < end && next < cold_until {
                    let n = (end - next).min(COLD_STEP);
                    ahead = read_ahead(file, next, n).map(|read| (next, n, read));
                }
                checked_to = next;
            } else {
                step = MAX_PER_CALL;
                checked_to = pos + probe;
            }
        }
        // Never past the bytes just checked or warmed.
        let count = usize::try_from(checked_to - pos).expect("at most one step");
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

/// Whether the range can be sent without waiting for the disk (true when that cannot be
/// known). Two checks, both cheap next to moving 2 MiB: `cachestat` finds pages that are not in
/// the page cache at all, but counts pages still being read (readahead in flight) as cached; a
/// one-byte `RWF_NOWAIT` read of the range's last byte catches those at the end of the range.
/// Pages in flight in its middle go unseen, which is why `send_range` warms every chunk for a
/// while after a cold one.
pub fn resident(file: &File, offset: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    let fd = file.as_raw_fd();
    if CACHESTAT.with(Cell::get) {
        match sys::cached_pages(fd, offset, len) {
            Ok((cached, pages)) if cached < pages => return false,
            Ok(_) => {}
            Err(e) => {
                if e.raw_os_error() == Some(libc::ENOSYS) {
                    CACHESTAT.with(|c| c.set(false));
                }
            }
        }
    }
    sys::readable_now(fd, offset + len - 1).unwrap_or(true)
}

/// Starts bringing a range into the page cache without blocking the worker thread and without
/// copying it: [`sys::read_through`] runs on the worker's small pool of threads that may wait for
/// the disk (`monoio::spawn_blocking`, as nginx's `aio threads`), on a duplicate of the
/// descriptor. When the returned handle completes, every page of the range has been read. `None`
/// when the descriptor cannot be duplicated.
fn read_ahead(file: &File, offset: u64, len: u64) -> Option<ReadAhead> {
    let dup = file.try_clone().ok()?;
    Some(monoio::spawn_blocking(move || sys::read_through(dup.as_raw_fd(), offset, len)))
}
