//! Cold file ranges: the one place that decides whether the next bytes of a range can be read
//! without waiting for the disk, and, when they cannot, brings them into the page cache on the
//! worker's cold-read threads before the sender touches them.
//!
//! Every mechanism that reads file pages on the worker thread for a long range uses a
//! [`Warmer`]: `sendfile.rs` (the kernel reads the pages inside `sendfile`) and `encrypted.rs`
//! (`pread` into the buffer that is encrypted). The sender asks [`Warmer::ready`] before each
//! read and never reads past the offset it returns.
//!
//! How a range is judged (docs/architecture.md, "Cold files"): before each [`HOT_STEP`],
//! [`resident`] tells whether it is in the page cache; if not, [`read_ahead`] brings it in on
//! the pool. For [`COLD_WINDOW`] after a cold step, every step of the range is warmed, one
//! [`COLD_STEP`] ahead, whatever the checks say.
//!
//! Cancellation: dropping a `Warmer` drops the handle of a read in flight; the read finishes on
//! the pool and only fills the page cache. A failed read is ignored: the sender then reads the
//! pages itself, or finds the truncation.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use crate::sys;

/// Bytes checked at once while a range is found in the page cache.
pub const HOT_STEP: u64 = 2 * 1024 * 1024;

/// Bytes warmed per step once a range turned out to be cold.
pub const COLD_STEP: u64 = 1024 * 1024;

/// How far past a step found cold the following steps are warmed whatever the residency checks
/// say: beyond the readahead window the kernel may have opened for the reads so far (8 MiB on
/// the benchmark machine's disk, `read_ahead_kb`).
pub const COLD_WINDOW: u64 = 32 * 1024 * 1024;

thread_local! {
    /// False once `cachestat` turned out to be missing (Linux < 6.5): no residency checks then.
    static CACHESTAT: Cell<bool> = const { Cell::new(true) };
}

/// A step being read by [`sys::read_through`] on the worker's blocking pool.
type ReadAhead = monoio::task::JoinHandle<Result<io::Result<()>, monoio::blocking::JoinError>>;

/// The cold-range state of one file range being sent.
///
/// After a step that was not all in the page cache, every step up to [`COLD_WINDOW`] past it
/// is brought in by [`read_ahead`] before it is sent: readahead started by the reads so far has
/// added pages it has not filled yet, which [`resident`] cannot tell from filled ones in the
/// middle of a step, and the sender would wait for them on the worker thread. Past the window,
/// with every step found resident again, the range is sent as a cached one: a file with a few
/// evicted pages goes through the pool only around them. Cold steps are smaller
/// ([`COLD_STEP`]) so that no single send keeps the worker from its other connections for long,
/// and the next one is warmed on the pool while the current one is sent.
pub(crate) struct Warmer<'f> {
    file: &'f File,
    end: u64,
    /// Bytes before this offset were checked or warmed.
    checked_to: u64,
    /// Steps before this offset are warmed whatever the checks say.
    cold_until: u64,
    /// Whether the last step checked lies in the cold window.
    cold: bool,
    /// The next cold step, being warmed: offset, length, the read.
    ahead: Option<(u64, u64, ReadAhead)>,
}

impl<'f> Warmer<'f> {
    /// The state for sending `len` bytes of `file` from `offset`.
    pub(crate) fn new(file: &'f File, offset: u64, len: u64) -> Self {
        Self {
            file,
            end: offset + len,
            checked_to: offset,
            cold_until: offset,
            cold: false,
            ahead: None,
        }
    }

    /// Makes sure the bytes from `pos` can be read without waiting for the disk (warming them
    /// on the pool if they are cold) and returns the end of those bytes: more than `pos` while
    /// `pos` is before the end of the range. `pos` only moves forward.
    pub(crate) async fn ready(&mut self, pos: u64) -> u64 {
        if pos < self.checked_to || pos >= self.end {
            return self.checked_to.max(pos);
        }
        let end = self.end;
        let probe = (end - pos).min(if pos < self.cold_until { COLD_STEP } else { HOT_STEP });
        if !resident(self.file, pos, probe) {
            self.cold_until = pos + COLD_WINDOW;
        }
        self.cold = pos < self.cold_until;
        if !self.cold {
            self.checked_to = pos + probe;
            return self.checked_to;
        }
        let count = (end - pos).min(COLD_STEP);
        let read = match self.ahead.take() {
            Some((at, n, read)) if at == pos && n == count => Some(read),
            _ => read_ahead(self.file, pos, count),
        };
        if let Some(read) = read {
            // A failed read is ignored: the sender then reads the pages itself, or finds the
            // truncation.
            let _ = read.await;
        }
        let next = pos + count;
        if next < end && next < self.cold_until {
            let n = (end - next).min(COLD_STEP);
            self.ahead = read_ahead(self.file, next, n).map(|read| (next, n, read));
        }
        self.checked_to = next;
        next
    }

    /// Bytes to send between two turns: [`COLD_STEP`] while the range is cold, `hot` otherwise.
    pub(crate) fn step(&self, hot: u64) -> u64 {
        if self.cold {
            COLD_STEP
        } else {
            hot
        }
    }
}

/// Whether the range can be read without waiting for the disk (true when that cannot be
/// known). Two checks, both cheap next to moving 2 MiB: `cachestat` finds pages that are not in
/// the page cache at all, but counts pages still being read (readahead in flight) as cached; a
/// one-byte `RWF_NOWAIT` read of the range's last byte catches those at the end of the range.
/// Pages in flight in its middle go unseen, which is why [`Warmer`] warms every step for a
/// while after a cold one.
pub(crate) fn resident(file: &File, offset: u64, len: u64) -> bool {
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
