//! Building a worker's monoio runtime on the chosen driver.
//!
//! io_uring needs Linux 5.6+ for the operations monoio uses (5.19+ recommended); it may also be
//! disabled by `kernel.io_uring_disabled` or a seccomp policy (containers). `auto` probes by
//! creating a small ring once at start-up and falls back to epoll with one log line naming the
//! reason.

use std::future::Future;
use std::io;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};
use tracing::{debug, warn};

use crate::config::Driver;
use crate::sys;

/// Most io-wq threads (bounded and unbounded, each) io_uring may start per worker.
const IO_WORKERS: u32 = 4;

/// Submission-queue entries per worker ring.
const RING_ENTRIES: u32 = 4096;

/// The driver actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// io_uring.
    Uring,
    /// epoll (monoio's legacy driver).
    Epoll,
}

/// Resolves `auto` by probing io_uring.
pub fn choose(driver: Driver) -> anyhow::Result<Selected> {
    match driver {
        Driver::Epoll => Ok(Selected::Epoll),
        Driver::Uring => {
            probe().map_err(|e| anyhow::anyhow!("--driver uring: io_uring unavailable: {e}"))?;
            Ok(Selected::Uring)
        }
        Driver::Auto => match probe() {
            Ok(()) => Ok(Selected::Uring),
            Err(e) => {
                warn!(error = %e, "io_uring unavailable; falling back to epoll");
                Ok(Selected::Epoll)
            }
        },
    }
}

fn probe() -> io::Result<()> {
    io_uring::IoUring::new(8).map(drop)
}

/// Threads per worker that wait for cold file pages (see `body::sendfile`).
const COLD_READ_THREADS: usize = 2;

/// The worker's pool for `monoio::spawn_blocking`: threads that only wait for the disk, so the
/// worker never does. Built in the worker thread, so they inherit its CPU affinity.
fn cold_read_pool() -> Box<dyn monoio::blocking::ThreadPool + Send + 'static> {
    Box::new(monoio::blocking::DefaultThreadPool::new(COLD_READ_THREADS))
}

/// A worker's io_uring runtime. With `flags`, the ring is set up for one thread that does all
/// the work (Linux 6.0):
/// - `COOP_TASKRUN`: a completion that arrives from another CPU (a client's bytes, delivered in
///   its softirq) waits for this thread's next system call instead of interrupting it with an
///   IPI. The worker makes a system call every few microseconds under load and always enters
///   the ring before it sleeps, so nothing waits longer than that.
/// - `SINGLE_ISSUER`: only this thread submits; the kernel skips the locking that sharing would
///   need. The cold-read threads never touch the ring.
fn uring_runtime(
    flags: bool,
) -> io::Result<monoio::Runtime<monoio::time::TimeDriver<IoUringDriver>>> {
    let mut urb = io_uring::IoUring::builder();
    if flags {
        urb.setup_coop_taskrun().setup_single_issuer();
    }
    RuntimeBuilder::<IoUringDriver>::new()
        .uring_builder(urb)
        .with_entries(RING_ENTRIES)
        .enable_timer()
        .attach_thread_pool(cold_read_pool())
        .build()
}

/// Builds a runtime on `driver` in the calling thread and runs the future `make()` returns.
pub fn block_on<F, Fut>(driver: Selected, make: F) -> io::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    match driver {
        Selected::Uring => {
            let mut rt = match uring_runtime(true) {
                Ok(rt) => rt,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    debug!(error = %e, "ring setup flags refused (Linux < 6.0?); plain ring");
                    uring_runtime(false)?
                }
                Err(e) => return Err(e),
            };
            // Operations the kernel cannot complete inline run on io-wq threads; bound them per
            // worker so a burst of them cannot start dozens.
            if let Err(e) = sys::limit_io_workers(IO_WORKERS, IO_WORKERS) {
                debug!(error = %e, "could not cap io-wq workers (Linux < 5.15?)");
            }
            rt.block_on(make());
        }
        Selected::Epoll => {
            let mut rt = RuntimeBuilder::<LegacyDriver>::new()
                .with_entries(RING_ENTRIES)
                .enable_timer()
                .attach_thread_pool(cold_read_pool())
                .build()?;
            rt.block_on(make());
        }
    }
    Ok(())
}
