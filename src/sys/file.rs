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

/// Drops the clean pages of `len` bytes of `fd` at `offset` from the page cache
/// (`posix_fadvise(POSIX_FADV_DONTNEED)`), so a test can make a range cold. Dirty pages stay:
/// sync the file first. File systems without a page cache of their own (tmpfs) keep the pages.
#[cfg(test)]
pub(crate) fn evict(fd: RawFd, offset: u64, len: u64) -> io::Result<()> {
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: posix_fadvise takes a descriptor and two integers and touches no memory of ours; a
    // bad descriptor is reported as an error code.
    let rc = unsafe { libc::posix_fadvise(fd, off, len, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Whether `fd` lives on tmpfs or ramfs (`fstatfs`), whose pages are the file and never leave.
#[cfg(test)]
fn memory_backed(fd: RawFd) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    // SAFETY: `statfs` is plain old data, zeroed is a valid value for it; fstatfs writes one
    // into the struct alive on this stack frame.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; a bad descriptor is reported as -1.
    if unsafe { libc::fstatfs(fd, &mut st) } != 0 {
        return false;
    }
    #[allow(
        clippy::useless_conversion,
        reason = "f_type is a long on 64-bit targets and an int on some 32-bit ones"
    )]
    let kind = i64::from(st.f_type);
    matches!(kind, TMPFS_MAGIC | RAMFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    /// The residency checks the cold-range detection relies on (`body::cold::resident`)
    /// tell cold pages from cached ones: a check that always answered "cached" fails here. Runs
    /// on a file under `target/` (a disk file system: tmpfs cannot evict); skips, saying so,
    /// where the pages cannot be evicted.
    #[test]
    fn residency_checks_see_evicted_pages() {
        const PAGES: u64 = 1024;
        let page = page_size();
        let len = PAGES * page;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("residency-test-{}.bin", std::process::id()));
        struct Remove(std::path::PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let _remove = Remove(path.clone());
        let mut f = std::fs::File::create(&path).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap(); // dirty pages cannot be evicted
        let mut f = std::fs::File::open(&path).unwrap();
        let fd = f.as_raw_fd();

        evict(fd, 0, len).unwrap();
        let (cached, pages) = match cached_pages(fd, 0, len) {
            Ok(v) => v,
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                eprintln!("SKIPPED residency_checks_see_evicted_pages: no cachestat (Linux < 6.5)");
                return;
            }
            Err(e) => panic!("cachestat: {e}"),
        };
        assert_eq!(pages, PAGES);
        // Whether eviction can work is decided apart from the checks under test: only file
        // systems that are their own page cache keep the pages.
        if memory_backed(fd) {
            eprintln!(
                "SKIPPED residency_checks_see_evicted_pages: {} is on tmpfs or ramfs, whose \
                 pages cannot be evicted",
                path.display()
            );
            return;
        }
        // Evicted: neither check may call the range cached.
        assert!(cached < pages / 2, "{cached} of {pages} pages still cached after eviction");
        match readable_now(fd, len - 1) {
            Ok(now) => assert!(!now, "RWF_NOWAIT read an evicted page without waiting"),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                eprintln!("SKIPPED the RWF_NOWAIT half: the file system does not support it");
            }
            Err(e) => panic!("preadv2: {e}"),
        }

        // Read: every page cached, the last byte readable without waiting.
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(cached_pages(fd, 0, len).unwrap(), (PAGES, PAGES));
        assert!(readable_now(fd, len - 1).unwrap_or(true));

        // Part of it evicted again: a range over the hole is cold, one beside it is not.
        evict(fd, len / 2, len / 4).unwrap();
        let (hole, hole_pages) = cached_pages(fd, len / 2, len / 4).unwrap();
        assert!(hole < hole_pages, "{hole} of {hole_pages} evicted pages still cached");
        assert_eq!(cached_pages(fd, 0, len / 2).unwrap(), (PAGES / 2, PAGES / 2));
        if let Ok(now) = readable_now(fd, len / 2 + len / 8) {
            assert!(!now, "RWF_NOWAIT read an evicted page in the middle without waiting");
        }
        assert!(readable_now(fd, len / 4).unwrap_or(true));
    }
}
