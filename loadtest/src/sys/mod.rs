//! Every raw system call ringcast-load makes, each behind a safe function.
//!
//! This is the only module allowed to contain `unsafe`; each block names the
//! kernel contract it relies on. Errors come back as `io::Error` from `errno`.
//!
//! - [`monotonic_ns`]: `CLOCK_MONOTONIC`, the clock every schedule is drawn on
//!   (the same clock `timerfd` and `std::time::Instant` use on Linux).
//! - [`pin_current_thread`]: `sched_setaffinity(2)` for one-thread-per-CPU.
//! - [`TimerFd`]: an absolute `CLOCK_MONOTONIC` `timerfd` (Linux 2.6.25), so an
//!   open-loop send waits with hrtimer precision instead of tokio's 1 ms wheel.
//! - [`uring`]: socket send/receive operations on the thread's io_uring,
//!   including receives with `MSG_TRUNC` that drop bytes without copying them.
//! - [`register_readable`]: readiness waits through the runtime's epoll
//!   reactor, on descriptors the registration owns (the timers).
//! - [`cpu_time_ns`]: `getrusage(RUSAGE_SELF)`, the process's user + system CPU.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

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
    // SAFETY: rusage is plain data; all-zero is valid and getrusage overwrites it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is always accepted.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv_ns = |tv: libc::timeval| {
        tv.tv_sec.unsigned_abs() * 1_000_000_000 + tv.tv_usec.unsigned_abs() * 1_000
    };
    tv_ns(usage.ru_utime) + tv_ns(usage.ru_stime)
}

/// A one-shot absolute `CLOCK_MONOTONIC` timer file descriptor.
///
/// Readable (an 8-byte expiry count) once the armed deadline has passed; the
/// caller waits for readability through its reactor and then calls [`TimerFd::consume`].
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// Creates a disarmed, non-blocking, close-on-exec timer.
    pub fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create(2) takes no pointers; a negative result is an error.
        let fd = unsafe {
            libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor nobody else owns.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Arms the timer to fire at `deadline_ns` on `CLOCK_MONOTONIC` (already-past deadlines fire at once).
    pub fn arm_at(&self, deadline_ns: u64) -> io::Result<()> {
        // A zero it_value would disarm the timer; 1 ns is "already due".
        let deadline_ns = deadline_ns.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(deadline_ns / 1_000_000_000)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
                tv_nsec: libc::c_long::try_from(deadline_ns % 1_000_000_000)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            },
        };
        // SAFETY: `spec` is a valid itimerspec; old_value may be null (timerfd_settime(2)).
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Reads the expiry count; `WouldBlock` when the timer has not fired yet.
    pub fn consume(&self) -> io::Result<u64> {
        let mut expirations = [0u8; 8];
        // SAFETY: the buffer is 8 writable bytes, the size timerfd read(2) requires.
        let n = unsafe {
            libc::read(self.fd.as_raw_fd(), expirations.as_mut_ptr().cast(), expirations.len())
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u64::from_ne_bytes(expirations))
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
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

/// A type that owns its file descriptor and closes it only when dropped.
pub trait OwnedDescriptor: AsRawFd {}

impl OwnedDescriptor for TimerFd {}

/// Registers `inner` with the current tokio reactor for read readiness.
///
/// Needs a runtime with I/O enabled (tokio-uring's is).
pub fn register_readable<T: OwnedDescriptor>(inner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: tokio requires the descriptor to stay open and unreplaced while registered.
    // `T` owns it and closes it only on drop, and `AsyncFd` deregisters before it drops `T`.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }.map_err(io::Error::from)
}
