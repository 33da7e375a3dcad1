//! Per-worker deadlines for connections waiting on their peer, without a timer per connection.
//!
//! A monoio timer is several hundred bytes; holding one in every idle keep-alive connection's
//! task would make idle connections cost kilobytes. Instead a connection that starts waiting
//! for bytes *arms* a deadline here (a heap entry and a map entry, tens of bytes), and one
//! sweeper task per worker fires the expired ones by shutting down the socket's read side:
//! the connection's readiness wait then returns, its read sees end-of-stream, and it decides
//! what the expiry means (close quietly, or 408 for a head that did not arrive in time).
//! Draining uses the same path to wake idle connections at once.
//!
//! Entries are never removed from the heap early: disarming removes the map entry, and the
//! sweeper skips heap entries whose token is no longer armed (so a reused descriptor number is
//! never woken by an old deadline).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::os::fd::RawFd;

use monoio::time::Instant;

use crate::sys;

/// What a connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Between requests (keep-alive).
    Idle,
    /// For (the rest of) a request head.
    Head,
}

/// The deadlines of one worker's waiting connections.
#[derive(Debug, Default)]
pub struct Deadlines {
    next_token: Cell<u64>,
    armed: RefCell<HashMap<RawFd, (u64, Wait)>>,
    heap: RefCell<BinaryHeap<Reverse<(Instant, u64, RawFd)>>>,
}

/// An armed deadline; disarmed when dropped.
#[derive(Debug)]
pub struct Armed<'a> {
    deadlines: &'a Deadlines,
    fd: RawFd,
    token: u64,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let mut armed = self.deadlines.armed.borrow_mut();
        if armed.get(&self.fd).is_some_and(|&(t, _)| t == self.token) {
            armed.remove(&self.fd);
        }
    }
}

impl Deadlines {
    /// Arms a deadline for `fd`, which is about to wait for readability.
    pub fn arm(&self, fd: RawFd, wait: Wait, at: Instant) -> Armed<'_> {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.armed.borrow_mut().insert(fd, (token, wait));
        self.heap.borrow_mut().push(Reverse((at, token, fd)));
        Armed { deadlines: self, fd, token }
    }

    /// Fires every deadline at or before `now`; returns how many fired.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut heap = self.heap.borrow_mut();
        let mut armed = self.armed.borrow_mut();
        let mut fired = 0;
        while let Some(&Reverse((at, token, fd))) = heap.peek() {
            if at > now {
                break;
            }
            heap.pop();
            if armed.get(&fd).is_some_and(|&(t, _)| t == token) {
                armed.remove(&fd);
                let _ = sys::shutdown_read(fd);
                fired += 1;
            }
        }
        // Keep the heap from growing without bound when many waits end early.
        if heap.len() > 1024 && heap.len() > 4 * armed.len() {
            heap.retain(|Reverse((_, token, fd))| armed.get(fd).is_some_and(|&(t, _)| t == *token));
        }
        fired
    }

    /// Wakes every connection waiting between requests (draining).
    pub fn wake_idle(&self) {
        let mut armed = self.armed.borrow_mut();
        armed.retain(|&fd, &mut (_, wait)| {
            if wait == Wait::Idle {
                let _ = sys::shutdown_read(fd);
                false
            } else {
                true
            }
        });
    }

    /// Connections currently waiting.
    pub fn len(&self) -> usize {
        self.armed.borrow().len()
    }

    /// True when no connection is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_order_and_skips_disarmed() {
        let d = Deadlines::default();
        let t0 = Instant::now();
        // Descriptors that are not sockets: shutdown fails harmlessly (ENOTSOCK/EBADF).
        let a = d.arm(-1, Wait::Idle, t0 + Duration::from_secs(1));
        let b = d.arm(-2, Wait::Head, t0 + Duration::from_secs(2));
        drop(b);
        assert_eq!(d.sweep(t0), 0);
        assert_eq!(d.sweep(t0 + Duration::from_secs(3)), 1, "b was disarmed");
        assert!(d.is_empty());
        drop(a);
        // A reused descriptor is not woken by the old deadline.
        let old = d.arm(-3, Wait::Idle, t0);
        std::mem::forget(old);
        let _new = d.arm(-3, Wait::Idle, t0 + Duration::from_secs(10));
        assert_eq!(d.sweep(t0 + Duration::from_secs(1)), 0);
        assert_eq!(d.len(), 1);
        d.wake_idle();
        assert!(d.is_empty());
    }
}
