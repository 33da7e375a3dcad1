//! Direct, non-blocking socket I/O on descriptors owned by monoio streams.
//!
//! The connection loop waits for readiness through the runtime (a poll on io_uring, epoll on the
//! legacy driver) and then moves bytes with these calls, so an idle connection holds no buffer
//! and a body never passes through user space when `sendfile` applies. Each call is one syscall;
//! `WouldBlock` is returned, not waited on.

use std::io;
use std::os::fd::RawFd;

fn check(rc: isize) -> io::Result<usize> {
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Puts `fd` in non-blocking mode.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(2) F_GETFL/F_SETFL take and return plain ints; a bad fd yields EBADF.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::O_NONBLOCK == 0
            && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `recv(2)` into `buf` without blocking; `Ok(0)` is end of stream.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into memory we exclusively borrow.
    let rc = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    check(rc)
}

/// `send(2)` without blocking or raising SIGPIPE. With `more`, tells TCP that more data follows
/// (`MSG_MORE`) so a response head waits to share a segment with the body behind it.
pub fn send(fd: RawFd, buf: &[u8], more: bool) -> io::Result<usize> {
    let mut flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    if more {
        flags |= libc::MSG_MORE;
    }
    // SAFETY: the kernel reads at most `buf.len()` bytes from memory we borrow for the call.
    let rc = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
    check(rc)
}

/// `sendfile(2)` of up to `count` bytes of `file` at `*offset` to the socket `sock`, advancing
/// `*offset` by the bytes sent. `Ok(0)` with `count > 0` means the file ends before `*offset`.
pub fn sendfile(sock: RawFd, file: RawFd, offset: &mut u64, count: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset out of range"))?;
    // SAFETY: sendfile(2) reads and updates one off_t we own; both descriptors are borrowed
    // live from their owners for the duration of the call. The socket is non-blocking, so the
    // call never sleeps on the socket (it may wait on a page-cache miss; see body::sendfile).
    let rc = unsafe { libc::sendfile(sock, file, &mut off, count) };
    let sent = check(rc)?;
    *offset = u64::try_from(off).expect("sendfile never moves the offset below zero");
    Ok(sent)
}

fn shutdown(fd: RawFd, how: libc::c_int) -> io::Result<()> {
    // SAFETY: shutdown(2) takes plain ints; it does not close the descriptor.
    if unsafe { libc::shutdown(fd, how) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends our sending side (FIN) while we keep reading: the start of a lingering close.
pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    shutdown(fd, libc::SHUT_WR)
}

/// Ends the receiving side, which wakes any reader waiting on `fd` with end-of-stream. Used to
/// close idle keep-alive connections at shutdown.
pub fn shutdown_read(fd: RawFd) -> io::Result<()> {
    shutdown(fd, libc::SHUT_RD)
}

/// Most slices passed to one `sendmsg` (below the kernel's `UIO_MAXIOV` of 1024).
pub const MAX_IOVECS: usize = 512;

/// `sendmsg(2)` of several slices at once, without blocking or raising SIGPIPE; `more` as in
/// [`send`]. Sends the first [`MAX_IOVECS`] slices at most.
pub fn send_vectored(fd: RawFd, bufs: &[std::io::IoSlice<'_>], more: bool) -> io::Result<usize> {
    let mut flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    if more {
        flags |= libc::MSG_MORE;
    }
    let count = bufs.len().min(MAX_IOVECS);
    // SAFETY: msghdr is plain data; all-zero means no address, no control data, no flags.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // std's IoSlice is guaranteed ABI-compatible with `struct iovec` on Unix; the kernel only
    // reads through msg_iov.
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = count;
    // SAFETY: the kernel reads `count` iovecs and the memory they describe, all borrowed for the
    // call. For a memory-mapped file, a page past a concurrent truncation makes the kernel's copy
    // fail with EFAULT (no signal: the fault happens in kernel mode with a fixup).
    let rc = unsafe { libc::sendmsg(fd, &msg, flags) };
    check(rc)
}

/// Sets or clears `TCP_CORK`: while set, TCP sends only full segments (the head and the body
/// leave together; a bulk transfer is not cut into partial segments at each call's end).
/// Clearing it sends what is queued.
pub fn set_cork(fd: RawFd, on: bool) -> io::Result<()> {
    let v: libc::c_int = on.into();
    // SAFETY: setsockopt reads one int we own for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&v as *const libc::c_int).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).expect("int fits"),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
