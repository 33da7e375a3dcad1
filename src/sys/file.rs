//! Page-cache residency and readahead hints for open files.

use std::io;
use std::os::fd::RawFd;

/// `cachestat(2)` (Linux 6.5): how many of the pages of `len` bytes at `offset` are in the page
/// cache, and how many pages that range spans. `Err` with `ENOSYS` on older kernels.
pub fn cached_pages(fd: RawFd, offset: u64, len: u64) -> io::Result<(u64, u64)> {
    #[repr(C)]
    struct CachestatRange {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    /// The syscall number is the same on every architecture (unified table since 5.x).
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = CachestatRange { off: offset, len };
    let mut stat = Cachestat::default();
    // SAFETY: cachestat reads one cachestat_range and writes one struct cachestat, both alive on
    // this stack frame and laid out as the kernel's UAPI (five/two u64 fields); flags must be 0.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd,
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let page = page_size();
    let first = offset / page;
    let last = (offset + len).div_ceil(page);
    Ok((stat.nr_cache, last.saturating_sub(first)))
}

fn page_size() -> u64 {
    // SAFETY: sysconf takes an int and returns a long.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).unwrap_or(4096).max(1)
}

/// Whether the byte at `offset` can be read without waiting for the disk: a one-byte
/// `preadv2(RWF_NOWAIT)` (Linux 4.14), which fails with `EAGAIN` when the page is missing *or
/// still being read* — the case `cachestat` counts as cached. `Err` for other failures.
pub fn readable_now(fd: RawFd, offset: u64) -> io::Result<bool> {
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut byte = 0u8;
    let iov = libc::iovec { iov_base: (&mut byte as *mut u8).cast(), iov_len: 1 };
    // SAFETY: preadv2 writes at most one byte into `byte` through the one iovec, both alive on
    // this stack frame for the call.
    let rc = unsafe { libc::preadv2(fd, &iov, 1, off, libc::RWF_NOWAIT) };
    if rc >= 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        return Ok(false);
    }
    Err(err)
}

/// Brings `len` bytes of `fd` at `offset` into the page cache and returns once every page of
/// the range has been read, without copying a byte: `sendfile(2)` to `/dev/null`, whose splice
/// discards the pages after the page cache has filled them (waiting for readahead already in
/// flight, as any read would). Blocks on the disk: for threads that may wait. Stops early at
/// end of file.
pub fn read_through(fd: RawFd, offset: u64, len: u64) -> io::Result<()> {
    static DEV_NULL: std::sync::OnceLock<io::Result<std::fs::File>> = std::sync::OnceLock::new();
    let null =
        match DEV_NULL.get_or_init(|| std::fs::OpenOptions::new().write(true).open("/dev/null")) {
            Ok(f) => f,
            Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
        };
    let mut pos = offset;
    let end = offset + len;
    while pos < end {
        let count = usize::try_from(end - pos).unwrap_or(usize::MAX).min(1 << 30);
        match super::sendfile(std::os::fd::AsRawFd::as_raw_fd(null), fd, &mut pos, count) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
