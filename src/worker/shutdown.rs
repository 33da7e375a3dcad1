//! The signal to stop, from the main thread to every worker.
//!
//! A flag, and the waker of each worker's watching task: the main thread sets the flag and wakes
//! them (monoio's `sync` wakers hand the wake-up to the worker's own thread and unpark its
//! driver), so an idle worker neither polls for the flag nor wakes up to look at it.

use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Poll, Waker};

/// Shared by the main thread and the workers.
#[derive(Debug, Default)]
pub(super) struct Shutdown {
    flag: AtomicBool,
    waiting: Mutex<Vec<Waker>>,
}

impl Shutdown {
    /// Sets the flag and wakes every worker waiting for it.
    pub(super) fn trigger(&self) {
        self.flag.store(true, Ordering::Release);
        let waiting =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in waiting {
            waker.wake();
        }
    }

    /// Completes once [`trigger`](Self::trigger) has been called.
    pub(super) fn wait(&self) -> impl Future<Output = ()> + '_ {
        let mut registered = false;
        poll_fn(move |cx| {
            if self.flag.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            if !registered {
                self.waiting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(cx.waker().clone());
                registered = true;
                // A trigger that took the list before this push has set the flag already.
                if self.flag.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        })
    }
}
