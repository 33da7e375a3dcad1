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
//! Descriptors are hashed with FxHash: they are small numbers the kernel picks, not keys a
//! client chooses, and this map is touched twice for every request.
//!
//! Entries are never removed from the heap early: disarming removes the map entry, and the
//! sweeper skips heap entries whose token is no longer armed (so a reused descriptor number is
//! never woken by an old deadline).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::os::fd::RawFd;
use std::task::{Poll, Waker};

use monoio::time::Instant;
use rustc_hash::FxHashMap;

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
///
/// Entries are kept small because every idle connection has one: a deadline is milliseconds
/// since the worker started (`u64`), a token is a `u32` (it wraps only after four billion
/// waits, long after any deadline it could be confused with has fired).
#[derive(Debug)]
pub struct Deadlines {
    epoch: Instant,
    next_token: Cell<u32>,
    armed: RefCell<FxHashMap<RawFd, (u32, Wait)>>,
    heap: RefCell<BinaryHeap<Reverse<(u64, u32, RawFd)>>>,
    /// The sweeper, parked while no connection waits ([`Deadlines::until_armed`]).
    sweeper: RefCell<Option<Waker>>,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            next_token: Cell::new(0),
            armed: RefCell::default(),
            heap: RefCell::default(),
            sweeper: RefCell::new(None),
        }
    }
}

/// An armed deadline; disarmed when dropped.
#[derive(Debug)]
pub struct Armed<'a> {
    deadlines: &'a Deadlines,
    fd: RawFd,
    token: u32,
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
        self.next_token.set(token.wrapping_add(1));
        self.armed.borrow_mut().insert(fd, (token, wait));
        self.heap.borrow_mut().push(Reverse((self.millis(at), token, fd)));
        let sweeper = self.sweeper.borrow_mut().take();
        if let Some(sweeper) = sweeper {
            sweeper.wake();
        }
        Armed { deadlines: self, fd, token }
    }

    /// Returns once some connection is waiting: the sweeper parks here while none is, so an
    /// idle worker does not wake for it.
    pub fn until_armed(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.armed.borrow().is_empty() {
                *self.sweeper.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Fires every deadline at or before `now`; returns how many fired.
    pub fn sweep(&self, now: Instant) -> usize {
        let now = self.millis(now);
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
        // Keep the heap from growing without bound when many waits end early; with nothing
        // armed every entry left is stale.
        if armed.is_empty() {
            heap.clear();
        } else if heap.len() > 1024 && heap.len() > 4 * armed.len() {
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

    #[test]
    fn the_sweeper_waits_for_a_deadline() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use std::task::{Context, Wake};

        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        let d = Deadlines::default();
        let mut wait = std::pin::pin!(d.until_armed());
        assert!(wait.as_mut().poll(&mut cx).is_pending(), "nothing armed");
        let t0 = Instant::now();
        let armed = d.arm(-1, Wait::Idle, t0 + Duration::from_secs(1));
        assert_eq!(woken.0.load(Ordering::SeqCst), 1, "arming wakes the sweeper");
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        drop(armed);
        // Nothing armed: the stale heap entry goes with the next sweep.
        assert_eq!(d.sweep(t0), 0);
        assert!(d.heap.borrow().is_empty());
    }
}
