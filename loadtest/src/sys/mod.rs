//! Every raw system call ringcast-load makes, each behind a safe function.
//!
//! This is the only module allowed to contain `unsafe`; each block names the
//! kernel contract it relies on. Errors come back as `io::Error` from `errno`.
//!
//! - [`monotonic_ns`]: `CLOCK_MONOTONIC`, the clock every schedule is drawn on
//!   (the same clock io_uring absolute timeouts and `std::time::Instant` use on Linux).
//! - [`pin_current_thread`]: `sched_setaffinity(2)` for one-thread-per-CPU.
//! - [`uring`]: socket send/receive operations and absolute-time waits on the
//!   thread's io_uring, including receives with `MSG_TRUNC` that drop bytes
//!   without copying them.
//! - [`set_recv_low_water`]: `SO_RCVLOWAT`, so a socket wakes its reader only
//!   once that many bytes are queued (used by `--discard` for large bodies).
//! - [`cpu_time_ns`], [`cpu_times`]: `getrusage(RUSAGE_SELF)`, the process's user and system CPU.
//! - [`floor`]: the bare io_uring loop of the `client_floor` example (leaked buffers, a
//!   provided-buffer ring, multishot receives) behind a safe interface.

use std::io;
use std::os::fd::RawFd;

pub mod floor;
pub mod uring;

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on
    // Linux, so clock_gettime(2) cannot fail here and writes only `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // Monotonic time is non-negative; `unsigned_abs` avoids a sign cast.
    ts.tv_sec.unsigned_abs() * 1_000_000_000 + ts.tv_nsec.unsigned_abs()
}

/// Pins the calling thread to one CPU (`sched_setaffinity(2)` with pid 0 = this thread).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let set_bits = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if cpu >= set_bits {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpu {cpu} is beyond cpu_set_t ({set_bits} CPUs)"),
        ));
    }
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set (what CPU_ZERO does).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; `cpu` was checked against the set size above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 means the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs this process may run on (`sched_getaffinity(2)`), in ascending order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: all-zero is a valid (empty) cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable and of the size passed; pid 0 = calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let set_bits = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET only reads bit `cpu` of `set`, and `cpu` < the set size.
    Ok((0..set_bits).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect())
}

/// User + system CPU time this process has consumed, in nanoseconds.
pub fn cpu_time_ns() -> u64 {
    let (user, system) = cpu_times();
    u64::try_from((user + system).as_nanos()).unwrap_or(u64::MAX)
}

/// User and system CPU time this process has consumed (`getrusage(RUSAGE_SELF)`).
pub fn cpu_times() -> (std::time::Duration, std::time::Duration) {
    // SAFETY: rusage is plain data; all-zero is valid and getrusage overwrites it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is always accepted.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec.unsigned_abs())
            + std::time::Duration::from_micros(t.tv_usec.unsigned_abs())
    };
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// Bytes the discard span covers: the most one discarding receive may drop.
pub const DISCARD_SPAN: usize = 16 << 20;

/// Address space handed to `recv(MSG_TRUNC)` only to satisfy its `(ptr, len)` contract.
///
/// With `MSG_TRUNC` on TCP the kernel never copies into it, and no code in this
/// process reads or writes it, so its pages are never touched: a zeroed
/// allocation this large comes from fresh `mmap` pages, which cost address
/// space but no memory until written.
#[derive(Debug)]
pub struct DiscardBuf {
    ptr: std::ptr::NonNull<u8>,
}

impl DiscardBuf {
    const LAYOUT: std::alloc::Layout = match std::alloc::Layout::from_size_align(DISCARD_SPAN, 4096)
    {
        Ok(l) => l,
        Err(_) => panic!("valid layout"),
    };

    /// Reserves [`DISCARD_SPAN`] bytes of address space.
    pub fn new() -> Self {
        // SAFETY: LAYOUT has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(Self::LAYOUT) };
        let ptr = std::ptr::NonNull::new(raw)
            .unwrap_or_else(|| std::alloc::handle_alloc_error(Self::LAYOUT));
        Self { ptr }
    }

    /// Span length in bytes.
    pub fn len(&self) -> usize {
        DISCARD_SPAN
    }

    /// Whether the span is empty (never).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Pointer the kernel may be told to write up to [`DiscardBuf::len`] bytes to.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for DiscardBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from alloc_zeroed with LAYOUT and is freed once, here. Callers keep
        // the buffer alive (tokio-uring holds it as an operation's data) until the kernel is done.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::LAYOUT) };
    }
}

impl Default for DiscardBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// Sets `SO_RCVLOWAT` on socket `fd`: readiness (and io_uring's poll-driven receives) waits
/// until at least `bytes` are queued or the peer closes (`socket(7)`; TCP honours it for
/// poll since Linux 2.6.28 and grows the receive buffer to fit it, `tcp_set_rcvlowat`).
pub fn set_recv_low_water(fd: RawFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX).max(1);
    // SAFETY: `value` is a valid c_int for the duration of the call and its size is passed;
    // setsockopt(2) only reads it. A bad `fd` is reported as an error, not undefined behaviour.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::addr_of!(value).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
