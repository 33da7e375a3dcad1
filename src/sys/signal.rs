//! Control signals: blocked in every thread and taken synchronously by the main thread.
//!
//! Blocking SIGINT, SIGTERM (shutdown), SIGUSR1 (reopen the access log) and SIGHUP (reload TLS
//! certificates) before the workers
//! are spawned means the workers inherit the mask, so a signal is never delivered to a worker
//! mid-syscall; the main thread collects it with `sigwait(3)` and acts on it: shutdown through
//! an atomic flag the workers poll, reopening through a message to the access-log writer.

use std::io;
use std::mem;

fn shutdown_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t; SIGINT, SIGTERM, SIGUSR1 and SIGHUP are
    // valid signals.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGHUP);
    }
    set
}

/// Blocks SIGINT, SIGTERM, SIGUSR1 and SIGHUP in the calling thread (and in threads it spawns afterwards).
pub fn block_shutdown_signals() -> io::Result<()> {
    let set = shutdown_set();
    // SAFETY: pthread_sigmask reads a valid set; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits until SIGINT, SIGTERM, SIGUSR1 or SIGHUP arrives and returns its number.
pub fn wait_shutdown_signal() -> io::Result<i32> {
    let set = shutdown_set();
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait reads a valid set and writes one int into `sig`.
    let rc = unsafe { libc::sigwait(&set, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(sig)
}
