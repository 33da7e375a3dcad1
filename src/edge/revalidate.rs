//! May the stored object answer now (RFC 9111 §4.2, RFC 5861), and revalidating it when not.
//!
//! Fresh: used as it is. Within `stale-while-revalidate`: used as it is while one background
//! task of this worker revalidates it. Otherwise the request revalidates it before answering
//! (§4.3.1: `If-None-Match` / `If-Modified-Since` from the stored validators; on a sliced
//! object the conditional request asks for slice 0, so a changed object's answer is a slice).
//! A `304` refreshes the stored fields and freshness, never the body (§4.3.4); any other
//! answer means the object changed: it is dropped and filled again. An origin that fails (no
//! answer, or 5xx) leaves the stored object usable within `stale-if-error`.
//!
//! Every revalidation of one object, foreground or background, on any worker, goes through
//! the fill table under a key of its own, so a burst of requests for a stale object sends one
//! conditional request; the others wait for it and look again.

use crate::cache::fields::Fields;
use crate::cache::fill::{FillKey, Join, Progress};
use crate::cache::freshness::{Freshness, OnError, Use};
use crate::cache::meta::Meta;
use crate::cache::revalidate::{apply_not_modified, conditional_fields, Update};
use crate::cache::store::Part;

use super::fetch::{send, OwnedWant, Want};
use super::{unix_now, Lookup, WorkerEdge, DEADLINES};

/// The fill-table part under which an object's revalidation is coalesced (no slice has
/// this index).
const REVALIDATION: Part = Part::Slice(u64::MAX);

/// How the stored object may answer this request.
pub(crate) enum Stored {
    /// Fresh.
    Fresh,
    /// Stale within `stale-while-revalidate`: served, revalidated in the background.
    StaleWhileRevalidate,
    /// Revalidated now (by this request or one it waited for): the origin said `304`.
    Refreshed,
    /// Stale, the origin failing with this status, within `stale-if-error`.
    StaleOnError(u16),
    /// Not stored; `stale`: a stale copy was dropped (changed at the origin or unrevalidatable).
    Miss {
        /// A stale copy was there.
        stale: bool,
    },
    /// Stale beyond `stale-if-error` and the origin failing: 502 or 504.
    Fail(u16),
}

/// Decides (revalidating when needed) how the stored object may answer.
pub(crate) async fn usable(edge: &WorkerEdge, want: &Want<'_>) -> Stored {
    let shared = &edge.shared;
    let mut waited = false;
    loop {
        let now = unix_now();
        let meta = match shared.lookup(&want.id) {
            Lookup::Has(m) => m,
            Lookup::Missing | Lookup::Failed => return Stored::Miss { stale: waited },
        };
        match meta.freshness.evaluate(now) {
            Use::Fresh { .. } if waited => return Stored::Refreshed,
            Use::Fresh { .. } => return Stored::Fresh,
            Use::StaleWhileRevalidate { .. } => {
                background(edge, want);
                return Stored::StaleWhileRevalidate;
            }
            Use::Revalidate { .. } => {}
        }
        match shared.fills.join(FillKey { id: want.id, part: REVALIDATION }, now) {
            Join::Writer(w) => {
                let r = revalidate(edge, want, meta).await;
                w.release();
                return r;
            }
            Join::Waiter(waiter) => {
                waited = true;
                let mut seen = 0;
                while let Progress::Growing { committed, .. } = waiter.wait(seen).await {
                    seen = committed;
                }
            }
            Join::HitForMiss => return Stored::Miss { stale: true },
        }
    }
}

/// Starts one background revalidation of the object unless one is running already.
fn background(edge: &WorkerEdge, want: &Want<'_>) {
    let edge = edge.detached();
    let owned = OwnedWant::of(want);
    let id = want.id;
    monoio::spawn(async move {
        let origin_time = std::cell::Cell::new(std::time::Duration::ZERO);
        let want = owned.want(&origin_time);
        let Join::Writer(w) =
            edge.shared.fills.join(FillKey { id, part: REVALIDATION }, unix_now())
        else {
            return;
        };
        if let Lookup::Has(meta) = edge.shared.lookup(&id) {
            if !matches!(meta.freshness.evaluate(unix_now()), Use::Fresh { .. }) {
                let _ = revalidate(&edge, &want, meta).await;
            }
        }
        w.release();
    });
}

/// Sends the conditional request for `meta` and acts on the answer.
async fn revalidate(edge: &WorkerEdge, want: &Want<'_>, mut meta: Meta) -> Stored {
    let shared = &edge.shared;
    let conditional = conditional_fields(&meta.fields);
    if conditional.len() == 0 {
        // No validator: nothing to ask; fetched again.
        let _ = shared.store.remove(&want.id);
        return Stored::Miss { stale: true };
    }
    let range = meta.slicing.map(|s| s.origin_range(0));
    let requested = unix_now();
    let resp = match send(edge, want, range.as_deref(), Some(&conditional)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "revalidation failed");
            return on_error(&meta, e.status());
        }
    };
    let status = resp.head.status;
    if status >= 500 {
        return on_error(&meta, status);
    }
    if status != 304 {
        // Changed at the origin: the stored copy goes; the request fills again.
        tracing::debug!(key = want.key.as_str(), status, "revalidation: changed");
        let _ = shared.store.remove(&want.id);
        return Stored::Miss { stale: true };
    }
    let mut fields: Fields = resp.head.fields.clone();
    fields.strip_hop_by_hop();
    let _ = resp.body(&edge.pool, &DEADLINES, &mut |_| Ok(())).await;
    match apply_not_modified(&mut meta.fields, &fields) {
        Update::Updated => {
            meta.freshness =
                Freshness::compute(200, &meta.fields, requested, unix_now(), &shared.policy);
            if let Err(e) = shared.store.commit(&want.id, &meta) {
                tracing::warn!(error = %e, "storing refreshed metadata failed");
            }
            Stored::Refreshed
        }
        Update::NotSelected => {
            let _ = shared.store.remove(&want.id);
            Stored::Miss { stale: true }
        }
    }
}

/// The stored object within `stale-if-error`, or the failure.
fn on_error(meta: &Meta, status: u16) -> Stored {
    match meta.freshness.on_origin_error(unix_now()) {
        OnError::ServeStale { .. } => Stored::StaleOnError(status),
        OnError::Fail => Stored::Fail(if status == 504 { 504 } else { 502 }),
    }
}
