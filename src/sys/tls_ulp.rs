//! Attaching the kernel's TLS upper-layer protocol to a TCP socket (`setsockopt(TCP_ULP, "tls")`,
//! Linux 4.13+ with `CONFIG_TLS`).
//!
//! This is the first step of every kernel-TLS hand-off and the cheapest way to ask whether the
//! kernel has TLS at all: without the module the call fails with `ENOENT`. Installing keys
//! (`SOL_TLS`, `TLS_TX`/`TLS_RX`) is `sys::ktls`'s business.

use std::io;
use std::os::fd::RawFd;

/// Attaches the `tls` ULP to the connected TCP socket `fd`.
///
/// `ENOENT`: the kernel has no TLS module; `ENOTCONN`: the socket is not connected;
/// `EEXIST`: a ULP is already attached.
pub fn attach_tls_ulp(fd: RawFd) -> io::Result<()> {
    const NAME: &[u8] = b"tls";
    let len = libc::socklen_t::try_from(NAME.len()).expect("three bytes");
    // SAFETY: setsockopt(2) reads `len` bytes from a static string we borrow for the call; a bad
    // descriptor yields EBADF.
    let rc =
        unsafe { libc::setsockopt(fd, libc::SOL_TCP, libc::TCP_ULP, NAME.as_ptr().cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
