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

/// `posix_fadvise(POSIX_FADV_WILLNEED)`: start reading `len` bytes at `offset` into the page
/// cache in the background.
pub fn will_need(fd: RawFd, offset: u64, len: u64) -> io::Result<()> {
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: posix_fadvise takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::posix_fadvise(fd, off, len, libc::POSIX_FADV_WILLNEED) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
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

/// Reads into `buf` from `offset` only what is in the page cache and filled now: a
/// `preadv2(RWF_NOWAIT)` (Linux 4.14) that returns a short count at the first page still missing
/// or being read, and `EAGAIN` (`WouldBlock`) when that is the first one. `Ok(0)` at end of file.
pub fn read_nowait(fd: RawFd, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: preadv2 writes at most `buf.len()` bytes into `buf` through the one iovec, both
    // alive and exclusively borrowed for the call.
    let rc = unsafe { libc::preadv2(fd, &iov, 1, off, libc::RWF_NOWAIT) };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}
