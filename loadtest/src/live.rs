//! Counters the per-second progress line reads while the run goes on.
//!
//! Each worker thread owns one [`LiveCounters`] slot and is its only writer
//! (relaxed stores of its own running totals, on their own cache line); the
//! reporting thread only reads. This is the sole cross-thread state touched
//! during the run, and it is off the measurement path: a late read shows up
//! in the next second's line, never in a latency.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// One thread's running totals.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct LiveCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
}

/// A snapshot of [`LiveCounters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LiveSnapshot {
    /// Completed successful requests (warm-up included).
    pub requests: u64,
    /// Failed requests (warm-up included).
    pub errors: u64,
    /// Response bytes received.
    pub bytes: u64,
}

impl LiveCounters {
    /// Publishes the owner thread's totals.
    pub fn publish(&self, s: LiveSnapshot) {
        self.requests.store(s.requests, Ordering::Relaxed);
        self.errors.store(s.errors, Ordering::Relaxed);
        self.bytes.store(s.bytes, Ordering::Relaxed);
    }

    /// Reads the last published totals.
    pub fn read(&self) -> LiveSnapshot {
        LiveSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}
