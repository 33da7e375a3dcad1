//! Turns in the middle of a bulk transfer on the epoll driver.
//!
//! On epoll (monoio's legacy driver) no operation on a connection forces a pass through
//! `epoll_wait`: the runtime keeps readiness of its own, and a writable socket is reported ready
//! without asking the kernel. A transfer that only yields is queued again behind the tasks
//! already woken and runs again before the runtime polls epoll; between two polls it ran once for
//! every other task that was ready, and a 1 KiB stream beside back-to-back cached 1 GiB downloads
//! waited 190–210 ms at p99.
//!
//! A turn here ends with an event only `epoll_wait` can deliver: a byte written into a socket
//! pair whose other end the runtime watches. The same `epoll_wait` collects the readiness of
//! every other connection of the worker, and the tasks it wakes run before the transfer goes on.
//! One transfer at a time leads a tick (the write and the wait); the others that want a turn
//! meanwhile wait for that tick to end.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use monoio::net::UnixStream;

use crate::sys;

/// One worker's tick: the socket pair and who waits for the tick in flight.
struct Ticker {
    /// The end the runtime watches; readable while a tick is in flight.
    watched: Rc<UnixStream>,
    /// The end a tick's byte is written into.
    poke: UnixStream,
    /// Ticks completed so far.
    ticks: u64,
    /// A transfer is leading a tick.
    leading: bool,
    /// Transfers waiting for the tick in flight to end.
    waiting: Vec<Waker>,
}

thread_local! {
    static TICKER: RefCell<Option<Ticker>> = const { RefCell::new(None) };
}

/// Returns once the runtime has polled epoll (and so queued every connection that became ready)
/// since the call. Errors only when the socket pair cannot be made or used; the caller then
/// falls back to a plain yield.
pub(super) async fn epoll_turn() -> io::Result<()> {
    let start = ticks()?;
    // Wait while another transfer leads a tick; a tick ended since `start` is a turn.
    let lead = poll_fn(|cx| {
        TICKER.with_borrow_mut(|t| {
            let t = t.as_mut().expect("made by ticks()");
            if t.ticks != start {
                Poll::Ready(false)
            } else if t.leading {
                t.waiting.push(cx.waker().clone());
                Poll::Pending
            } else {
                t.leading = true;
                Poll::Ready(true)
            }
        })
    })
    .await;
    if !lead {
        return Ok(());
    }
    // Wakes the waiters whether the tick ends or this transfer is dropped in the middle.
    let _lead = Lead;
    let (watched, poke) = TICKER.with_borrow(|t| {
        let t = t.as_ref().expect("made by ticks()");
        (t.watched.clone(), t.poke.as_raw_fd())
    });
    tick(&watched, poke).await?;
    TICKER.with_borrow_mut(|t| t.as_mut().expect("made by ticks()").ticks += 1);
    Ok(())
}

/// The ticks completed so far, making the worker's socket pair on first use.
fn ticks() -> io::Result<u64> {
    TICKER.with_borrow_mut(|t| {
        if t.is_none() {
            let (watched, poke) = UnixStream::pair()?;
            *t = Some(Ticker {
                watched: Rc::new(watched),
                poke,
                ticks: 0,
                leading: false,
                waiting: Vec::new(),
            });
        }
        Ok(t.as_ref().expect("just made").ticks)
    })
}

/// Writes a byte into the pair and waits until epoll reports it.
async fn tick(watched: &UnixStream, poke: RawFd) -> io::Result<()> {
    drain(watched.as_raw_fd());
    let mut wait = pin!(watched.readable(false));
    // With nothing to read, the first poll clears the runtime's cached readiness (or finds none)
    // and registers this task, so only a new epoll event can complete the wait.
    let early = poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
    if let Poll::Ready(result) = early {
        // Bytes nobody wrote (cannot happen): take the turn as a plain yield.
        return result;
    }
    sys::send(poke, b"t", false)?;
    // The byte stays in the pair until the next tick drains it.
    wait.await
}

/// Reads whatever bytes are in the pair.
fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    while matches!(sys::recv(fd, &mut buf), Ok(n) if n > 0) {}
}

/// The leading transfer's mark: on drop, the tick is free again and its waiters run.
struct Lead;

impl Drop for Lead {
    fn drop(&mut self) {
        let waiting = TICKER.with_borrow_mut(|t| match t.as_mut() {
            Some(t) => {
                t.leading = false;
                std::mem::take(&mut t.waiting)
            }
            None => Vec::new(),
        });
        for waker in waiting {
            waker.wake();
        }
    }
}
