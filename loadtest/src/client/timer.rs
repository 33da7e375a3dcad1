//! Waiting until an absolute time with microsecond precision.
//!
//! tokio's timer wheel has 1 ms granularity and rounds wake-ups up, which
//! would add up to a millisecond of client-made delay to every open-loop
//! request. A `timerfd` armed at the absolute `CLOCK_MONOTONIC` deadline
//! fires from an hrtimer; its readiness reaches this thread through the
//! runtime's epoll reactor. One timer per connection or viewer. Dropping a
//! wait leaves the timer armed; the next wait re-arms it.

use std::io;

use tokio::io::unix::AsyncFd;

use crate::sys::{self, TimerFd};

/// A reusable absolute-deadline timer.
pub struct Timer {
    fd: AsyncFd<TimerFd>,
}

impl Timer {
    /// Creates the timer; needs a runtime with the reactor enabled.
    pub fn new() -> io::Result<Self> {
        Ok(Self { fd: sys::register_readable(TimerFd::new()?)? })
    }

    /// Returns once `CLOCK_MONOTONIC` reaches `deadline_ns`.
    pub async fn sleep_until(&self, deadline_ns: u64) -> io::Result<()> {
        if sys::monotonic_ns() >= deadline_ns {
            return Ok(());
        }
        self.fd.get_ref().arm_at(deadline_ns)?;
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().consume()) {
                Ok(Ok(_expirations)) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                // Readiness was stale (an expiry consumed earlier); wait again.
                Err(_would_block) => continue,
            }
        }
    }
}
