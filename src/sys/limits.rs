//! Process and io_uring resource limits.

use std::io;

/// Raises the soft limit on open descriptors to the hard limit (as nginx's
/// `worker_rlimit_nofile`): every connection, cached file and pipe holds one. Returns the new
/// soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one rlimit we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// Caps the io-wq worker threads (bounded: regular-file work; unbounded: work that may wait
/// forever) that io_uring may start for the calling thread (`IORING_REGISTER_IOWQ_MAX_WORKERS`,
/// Linux 5.15). io-wq is per thread, shared by every ring the thread uses, so registering on a
/// small ring of our own also bounds the runtime's ring. Returns the previous limits.
pub fn limit_io_workers(bounded: u32, unbounded: u32) -> io::Result<[u32; 2]> {
    let ring = io_uring::IoUring::new(2)?;
    let mut max = [bounded, unbounded];
    ring.submitter().register_iowq_max_workers(&mut max)?;
    Ok(max)
}
