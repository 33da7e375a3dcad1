//! Waiting until an absolute time with microsecond precision.
//!
//! tokio's timer wheel has 1 ms granularity and rounds wake-ups up, which
//! would add up to a millisecond of client-made delay to every open-loop
//! request. The wait is instead an io_uring `IORING_OP_TIMEOUT` at the absolute
//! `CLOCK_MONOTONIC` deadline ([`crate::sys::uring::sleep_until`]): it fires
//! from an hrtimer, reaches the kernel in the same `io_uring_enter` as the
//! thread's other submissions, and completes like any other operation, with
//! no `timerfd`, no extra system call and no epoll registration per wait.
//! Dropping a wait leaves its timeout queued in the ring until it fires; the
//! kernel then completes it and nobody listens.

use std::io;

use crate::sys::{monotonic_ns, uring};

/// An absolute-deadline timer (one per connection or viewer).
#[derive(Debug, Default)]
pub struct Timer {
    _private: (),
}

impl Timer {
    /// Creates the timer; it must be used inside the thread's io_uring runtime.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns once `CLOCK_MONOTONIC` reaches `deadline_ns`.
    pub async fn sleep_until(&self, deadline_ns: u64) -> io::Result<()> {
        if monotonic_ns() >= deadline_ns {
            return Ok(());
        }
        uring::sleep_until(deadline_ns).await
    }
}
