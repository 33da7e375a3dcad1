//! Opening files beneath the served root with `openat2(2)` (Linux 5.6+).
//!
//! `RESOLVE_BENEATH` makes the kernel refuse any resolution that would leave the directory
//! descriptor — `..` above it, an absolute symlink, a relative symlink climbing out — with
//! `EXDEV`; `RESOLVE_NO_MAGICLINKS` refuses `/proc/self/fd/N`-style links. Containment is the
//! kernel's guarantee, not a property of our path normaliser.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Opens `path` (relative) read-only beneath `dir`, never following a link out of it.
///
/// The descriptor is `O_CLOEXEC` and `O_NONBLOCK` (so a FIFO planted in the root cannot block
/// the worker on open) and `O_NOCTTY`.
pub fn open_beneath(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain integers; all-zero is its documented "nothing set" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::try_from(libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .expect("open flags are non-negative");
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: openat2(2) reads a NUL-terminated path (`CStr` guarantees it) and an `open_how`
        // of the size we pass, both alive for the call; `dir` is a live descriptor borrowed for
        // the call. The kernel returns a new descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            let fd = i32::try_from(fd).map_err(|_| io::Error::other("descriptor out of range"))?;
            // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        // EAGAIN only comes with RESOLVE_CACHED, EINTR from a signal: retry the latter.
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// What [`stat_at`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

/// `fstatat(2)` of `path` relative to `dir`, following symlinks. Used only to compare a cached
/// file's identity with what the path names now; never to open.
pub fn stat_at(dir: BorrowedFd<'_>, path: &[u8]) -> io::Result<Stat> {
    let c_path = if path.is_empty() {
        std::ffi::CString::new(".").expect("no NUL")
    } else {
        std::ffi::CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?
    };
    // SAFETY: libc::stat is plain data; all-zero is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstatat reads a NUL-terminated path and writes one `stat` we own; `dir` is a live
    // descriptor borrowed for the call.
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), c_path.as_ptr(), &mut st, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
    })
}
