//! The request loop of one connection, closed or open loop.
//!
//! Each thread owns a lane of the run: its share of `--requests` and, in open
//! loop, every `T`-th slot of the [`OpenLoop`] schedule. The thread's
//! connections take the lane's requests in order from a shared ticket counter
//! (a `Cell`: one thread, no lock), so the next request goes to whichever
//! connection is free first. A connection stuck on a slow response therefore
//! does not hold back requests an idle connection could send; when every
//! connection is busy, due requests wait, and the wait is part of their latency.
//!
//! A request asks for the next URL of the weighted rotation, or with
//! `--catalog` for the object the catalog draws for its slot
//! ([`crate::workload::Catalog`]).
//!
//! Closed loop (no `--rate`): send, wait for the response, take the next
//! ticket; the intended time is the send time, so latency equals service
//! time. Open loop: wait until the ticket's intended time, send, and charge
//! any lateness to the request's latency. Requests still due when the run
//! ends but never sent are counted as `missed`, so an overloaded server
//! cannot make its backlog vanish from the report.

use std::rc::Rc;

use super::conn::{BodyMode, Conn};
use super::outcome::fetch;
use super::timer::Timer;
use super::ThreadCtx;
use crate::http::write_get;
use crate::schedule::{request_share, OpenLoop};
use crate::stats::ErrorKind;
use crate::sys::monotonic_ns;
use crate::workload::{aligned_range, Rng};

/// Pause after a failed connect in closed loop, so a refused port is not hammered.
const CONNECT_RETRY_NS: u64 = 10_000_000;

/// Ticket value once the lane is closed (its remaining requests were counted as missed).
const LANE_CLOSED: u64 = u64::MAX;

/// Runs connection `k` until the thread's lane is exhausted or the run ends.
pub async fn run_connection(ctx: Rc<ThreadCtx>, k: usize) {
    let cfg = ctx.cfg.clone();
    let lanes = cfg.threads as u64;
    let lane = ctx.thread as u64;
    let share = cfg.requests.map(|n| request_share(n, lanes, lane));
    let open = cfg.rate.map(|rate| OpenLoop { start_ns: ctx.start_ns, rate, lanes, index: lane });
    let k = k as u64;
    let timer = Timer::new();
    let _ = timer.sleep_until(ctx.start_ns).await;
    let mut conn = Conn::new(ctx.clone());
    let mut rng = Rng::new(k);
    let mode = BodyMode { keep: false, checksum: cfg.checksum.is_some(), discard: cfg.discard };
    // Without ranges every target's request is fixed: format each once, copy it per request.
    let fixed_requests: Vec<Vec<u8>> = cfg
        .workload
        .targets
        .iter()
        .map(|t| {
            let mut req = Vec::new();
            write_get(&mut req, &cfg.workload.origins[t.origin].authority, &t.path, None);
            req
        })
        .collect();
    // The catalog object's request target, rebuilt per request.
    let mut target = String::new();
    loop {
        let j = ctx.next_ticket.get();
        if j == LANE_CLOSED || matches!(share, Some(s) if j >= s) {
            break;
        }
        let now = monotonic_ns();
        let intended = match &open {
            Some(o) => o.intended_ns(j),
            None => now,
        };
        if ctx.past_end(intended) {
            break;
        }
        if let (Some(o), Some(end)) = (&open, ctx.end_ns) {
            if now >= end {
                // Behind schedule at the end: the rest of this lane was due but never sent.
                let missed = o.due_before(j, end, share);
                if intended >= ctx.record_from_ns {
                    ctx.stats.borrow_mut().missed += missed;
                }
                ctx.next_ticket.set(LANE_CLOSED);
                break;
            }
        }
        ctx.next_ticket.set(j + 1);
        if intended > now {
            let _ = timer.sleep_until(intended).await;
        }

        let slot = open.as_ref().map_or(j * lanes + lane, |o| o.slot(j));
        let origin = if let Some(catalog) = &cfg.workload.catalog {
            catalog.write_target(catalog.object(slot), &mut target);
            let origin = &cfg.workload.origins[catalog.origin];
            write_get(conn.request_buf(), &origin.authority, &target, None);
            catalog.origin
        } else {
            let target_index = cfg.workload.pick(slot);
            let target = &cfg.workload.targets[target_index];
            let range = match (cfg.workload.range_size, target.size) {
                (Some(size), Some(len)) => aligned_range(&mut rng, len, size),
                _ => None,
            };
            if range.is_some() {
                let origin = &cfg.workload.origins[target.origin];
                write_get(conn.request_buf(), &origin.authority, &target.path, range);
            } else {
                let req = conn.request_buf();
                req.clear();
                req.extend_from_slice(&fixed_requests[target_index]);
            }
            target.origin
        };

        let fetched = fetch(&ctx, &mut conn, intended, origin, mode).await;
        if matches!(fetched.result, Err(ErrorKind::Connect)) && open.is_none() {
            let _ = timer.sleep_until(fetched.done_ns + CONNECT_RETRY_NS).await;
        }
    }
}
