//! Pipes for splice: file → pipe → socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking pipe.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Its capacity in bytes.
    pub capacity: usize,
}

impl Pipe {
    /// A new pipe, asked to hold `size` bytes (`F_SETPIPE_SZ`; the kernel may round it up, or
    /// refuse past `/proc/sys/fs/pipe-max-size`, in which case the default 64 KiB stays).
    pub fn new(size: usize) -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us both descriptors; each is owned once.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wanted = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: fcntl F_SETPIPE_SZ / F_GETPIPE_SZ take and return ints.
        let capacity = unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, wanted);
            libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        let capacity = usize::try_from(capacity).map_err(|_| io::Error::last_os_error())?;
        Ok(Self { read, write, capacity })
    }

    /// `splice(2)` up to `len` bytes of `file` at `*offset` into the pipe, advancing `*offset`.
    /// May block on a page-cache miss (like `sendfile`).
    pub fn fill_from(&self, file: RawFd, offset: &mut u64, len: usize) -> io::Result<usize> {
        let mut off = libc::loff_t::try_from(*offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: splice reads and updates one loff_t we own; both descriptors are live.
        let rc = unsafe {
            libc::splice(
                file,
                &mut off,
                self.write.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        let n = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
        *offset = u64::try_from(off).unwrap_or(*offset);
        Ok(n)
    }

    /// `splice(2)` up to `len` bytes from the pipe to the socket without blocking; `more` sets
    /// `SPLICE_F_MORE`.
    pub fn drain_to(&self, sock: RawFd, len: usize, more: bool) -> io::Result<usize> {
        let mut flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
        if more {
            flags |= libc::SPLICE_F_MORE;
        }
        // SAFETY: no offsets (a pipe and a socket); both descriptors are live.
        let rc = unsafe {
            libc::splice(
                self.read.as_raw_fd(),
                std::ptr::null_mut(),
                sock,
                std::ptr::null_mut(),
                len,
                flags,
            )
        };
        usize::try_from(rc).map_err(|_| io::Error::last_os_error())
    }
}
