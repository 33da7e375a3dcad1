//! Getting one part of an object onto disk: from the store, by joining another request's fill,
//! or as the fill's writer fetching from the origin.
//!
//! A part is a slice `k` (the origin asked `Range: bytes=kS-(k+1)S-1`) or, when the origin
//! ignores `Range` and answers `200`, the whole object. Every slice is checked against the
//! stored ones (strong `ETag`, `Last-Modified`, total length): another version drops the object
//! and the fill fails, so nothing of two versions is ever stitched. A body is renamed into the
//! store only when its length is exact; a short one is deleted and its fill fails (its waiters
//! take the fill over).
//!
//! An answer that may not be stored (or that is not the object: an error status) is fetched
//! again without `Range` into a temporary file the requester serves from and drops; the fill
//! table remembers it briefly (hit-for-miss) so other requests go to the origin directly
//! instead of queueing behind it.
//!
//! Cancellation: a writer dropped mid-body (its client left) drops its `WriterGuard`, which
//! hands the fill to a waiter; the temporary body file is deleted on drop.

use std::rc::Rc;

use crate::cache::fields::Fields;
use crate::cache::fill::{FillKey, Join, Progress, WriterGuard};
use crate::cache::freshness::Freshness;
use crate::cache::key::ObjectId;
use crate::cache::meta::{Meta, SliceMap};
use crate::cache::policy::{storability, RequestFacts, Storability, Variant};
use crate::cache::slice::{Identity, SliceAnswer, SliceCheck};
use crate::cache::store::{BodyWriter, Part};
use crate::conn::record;
use crate::origin::conn::{request, Exchange, OriginError, Response};
use crate::origin::request::{write_head, OriginRequest};

use super::{unix_now, Lookup, WorkerEdge, DEADLINES, HEAD_LIMITS};

/// One requester's view of the object.
pub(crate) struct Want<'a> {
    pub(crate) id: ObjectId,
    pub(crate) key: &'a crate::cache::key::CacheKey,
    pub(crate) target: &'a str,
    pub(crate) client: &'a Fields,
    pub(crate) minor_version: u8,
    /// Time this request has spent waiting for the origin (access log).
    pub(crate) origin_time: &'a std::cell::Cell<std::time::Duration>,
}

/// A [`Want`]'s values, owned, for a task that outlives the request.
pub(crate) struct OwnedWant {
    id: ObjectId,
    key: crate::cache::key::CacheKey,
    target: String,
    client: Fields,
    minor_version: u8,
}

impl OwnedWant {
    pub(crate) fn of(want: &Want<'_>) -> Self {
        Self {
            id: want.id,
            key: want.key.clone(),
            target: want.target.to_string(),
            client: want.client.clone(),
            minor_version: want.minor_version,
        }
    }

    /// The borrowed view, adding origin time to `origin_time`.
    pub(crate) fn want<'a>(
        &'a self,
        origin_time: &'a std::cell::Cell<std::time::Duration>,
    ) -> Want<'a> {
        Want {
            id: self.id,
            key: &self.key,
            target: &self.target,
            client: &self.client,
            minor_version: self.minor_version,
            origin_time,
        }
    }
}

impl Want<'_> {
    /// Adds the time since `since` to the origin time.
    fn origin_since(&self, since: monoio::time::Instant) {
        self.origin_time.set(self.origin_time.get() + since.elapsed());
    }
}

/// What getting a part produced.
pub(crate) enum Got {
    /// The part is in the store; the object's metadata as it now stands.
    Stored {
        /// The metadata.
        meta: Meta,
        /// This request fetched it from the origin (`stored` in `Cache-Status`).
        fetched: bool,
        /// This request waited for another's fill (`collapsed`).
        collapsed: bool,
    },
    /// Not storable: the origin's answer, whole, in a temporary file.
    Pass(Passed),
}

/// An origin answer served once and not stored.
pub(crate) struct Passed {
    /// The origin's status.
    pub(crate) status: u16,
    /// Its end-to-end fields.
    pub(crate) fields: Fields,
    /// The body, open for reading.
    pub(crate) file: Rc<std::fs::File>,
    /// Body length.
    pub(crate) len: u64,
    /// Why it was not stored (`Cache-Status` detail).
    pub(crate) detail: &'static str,
    /// Keeps the temporary file until the answer is sent (deleted on drop).
    _writer: BodyWriter,
}

/// Why a part could not be had.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The origin failed: 502 or 504.
    Origin(u16),
    /// A slice beyond the end: the object's length.
    Unsatisfiable(u64),
    /// The store failed (disk): 500.
    Store,
}

impl From<OriginError> for Failed {
    fn from(e: OriginError) -> Self {
        tracing::info!(error = %e, "origin request failed");
        Failed::Origin(e.status())
    }
}

/// Gets part `k` (slice `k`, or the whole object for an unsliced one) onto disk.
pub(crate) async fn part(edge: &WorkerEdge, want: &Want<'_>, k: u64) -> Result<Got, Failed> {
    let shared = &edge.shared;
    let mut collapsed = false;
    loop {
        match shared.lookup(&want.id) {
            Lookup::Has(meta) if meta.slicing.is_none() || meta.slices.has(k) => {
                return Ok(Got::Stored { meta, fetched: false, collapsed });
            }
            Lookup::Failed => return Err(Failed::Store),
            _ => {}
        }
        match shared.fills.join(FillKey { id: want.id, part: Part::Slice(k) }, unix_now()) {
            Join::Writer(w) => {
                // The previous fill may have ended between the lookup and the join.
                if let Lookup::Has(meta) = shared.lookup(&want.id) {
                    if meta.slicing.is_none() || meta.slices.has(k) {
                        w.release();
                        return Ok(Got::Stored { meta, fetched: false, collapsed });
                    }
                }
                return fill(edge, want, k, w).await;
            }
            Join::Waiter(waiter) => {
                collapsed = true;
                let mut seen = 0;
                loop {
                    match waiter.wait(seen).await {
                        Progress::Growing { committed, .. } => seen = committed,
                        Progress::Complete { .. } | Progress::Retry => break,
                        Progress::Uncacheable => return pass(edge, want, None).await,
                    }
                }
            }
            Join::HitForMiss => return pass(edge, want, None).await,
        }
    }
}

/// Runs the fill of slice `k` (this request being its writer) as a task of its own on this
/// worker, so that the request reads the growing file like every waiter.
pub(crate) fn spawn_fill(edge: &WorkerEdge, want: &Want<'_>, k: u64, w: WriterGuard) {
    let edge = edge.detached();
    let owned = OwnedWant::of(want);
    monoio::spawn(async move {
        let origin_time = std::cell::Cell::new(std::time::Duration::ZERO);
        let want = owned.want(&origin_time);
        if let Err(e) = fill(&edge, &want, k, w).await {
            tracing::debug!(?e, slice = k, "slice fill failed");
        }
    });
}

/// The writer's side: asks the origin for slice `k`, stores it and publishes its progress.
async fn fill(edge: &WorkerEdge, want: &Want<'_>, k: u64, w: WriterGuard) -> Result<Got, Failed> {
    let shared = &edge.shared;
    let range = shared.slicing.origin_range(k);
    let requested = unix_now();
    let resp = match send(edge, want, Some(&range), None).await {
        Ok(r) => r,
        Err(e) => {
            w.fail();
            return Err(e.into());
        }
    };
    let received = unix_now();
    let mut fields = resp.head.fields.clone();
    fields.strip_hop_by_hop();
    let answer = shared.slicing.classify(k, resp.head.status, &fields);
    let (part, total) = match answer {
        SliceAnswer::Slice { total } => (Part::Slice(k), Some(total)),
        SliceAnswer::Whole => (Part::Whole, None),
        SliceAnswer::Unsatisfiable { total } => {
            w.release();
            return Err(Failed::Unsatisfiable(total));
        }
        SliceAnswer::Invalid | SliceAnswer::Other => {
            // Not the object (an error status, or a range answer that is not the slice
            // asked): served as the origin says, not stored.
            w.uncacheable(unix_now());
            return pass(edge, want, Some(resp)).await;
        }
    };
    let freshness = Freshness::compute(200, &fields, requested, received, &shared.policy);
    let facts =
        RequestFacts { is_get: true, has_authorization: want.client.contains("authorization") };
    let detail = match storability(facts, 200, &fields, &freshness) {
        Storability::Store(Variant::Single) => None,
        // Variants by Accept-Encoding are not kept apart yet: not stored.
        Storability::Store(Variant::AcceptEncoding) => Some("vary"),
        Storability::NotStorable(why) => Some(why.detail()),
    };
    if detail.is_some() {
        w.uncacheable(unix_now());
        // A slice of an uncacheable object is no use to this client: ask for all of it.
        drop(resp);
        return pass(edge, want, None).await;
    }
    if let (Some(total), Lookup::Has(stored)) = (total, shared.lookup(&want.id)) {
        let first = Identity::of(&stored.fields, stored.total);
        if stored.slicing.is_none()
            || first.check(&Identity::of(&fields, total)) == SliceCheck::DropAndRefetch
        {
            tracing::info!(key = want.key.as_str(), "object changed at the origin: dropped");
            let _ = shared.store.remove(&want.id);
            w.fail();
            return Err(Failed::Origin(502));
        }
    }
    let mut body = shared.store.begin_body(&want.id, part).map_err(store_failed)?;
    let expected = match total {
        Some(total) => shared.slicing.bounds(k, total).map(|b| b.1),
        None => match resp.head.framing {
            crate::origin::head::BodyFraming::Length(n) => Some(n),
            _ => None,
        },
    };
    match body.reader() {
        Ok(reader) => w.started(reader, expected),
        Err(e) => return Err(store_failed(e)),
    }
    let started = monoio::time::Instant::now();
    let got = resp
        .body(&edge.pool, &DEADLINES, &mut |bytes| {
            body.write(bytes).map_err(|e| e.to_string())?;
            w.progress(body.written());
            Ok(())
        })
        .await;
    want.origin_since(started);
    count_body(&got);
    let len = match got {
        Ok(len) => len,
        Err(e) => {
            w.fail();
            return Err(e.into());
        }
    };
    let path = match body.finish(expected.unwrap_or(len)) {
        Ok(p) => p,
        Err(e) => {
            w.fail();
            tracing::info!(error = %e, "origin body length wrong: not stored");
            return Err(Failed::Origin(502));
        }
    };
    let first = Meta {
        key: want.key.clone(),
        secondary: None,
        status: 200,
        freshness,
        fields,
        total: total.unwrap_or(len),
        slicing: total.map(|_| shared.slicing),
        slices: SliceMap::new(total.map_or(0, |t| shared.slicing.count(t))),
    };
    let meta = match total {
        Some(_) => shared.store.commit_slice(&want.id, k, &first).map(|(m, _)| m),
        None => shared.store.commit(&want.id, &first).map(|_| first),
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) => {
            w.fail();
            return Err(store_failed(e));
        }
    };
    w.complete(path, expected.unwrap_or(len));
    Ok(Got::Stored { meta, fetched: true, collapsed: false })
}

fn store_failed(e: crate::cache::store::StoreError) -> Failed {
    tracing::warn!(error = %e, "cache store failed");
    Failed::Store
}

/// Sends the origin request for the object (a slice of it with `range`).
pub(crate) async fn send(
    edge: &WorkerEdge,
    want: &Want<'_>,
    range: Option<&str>,
    conditional: Option<&Fields>,
) -> Result<Response, OriginError> {
    let shared = &edge.shared;
    let mut head = Vec::with_capacity(512);
    write_head(
        &OriginRequest {
            method: "GET",
            target: want.target,
            host: &shared.origin_host,
            client_fields: want.client,
            client_minor_version: want.minor_version,
            range,
            conditional,
        },
        &shared.identity,
        &mut head,
    );
    let ex = Exchange { addr: shared.origin, head: &head, is_head: false, idempotent: true };
    let started = monoio::time::Instant::now();
    let resp = request(&edge.pool, &ex, &HEAD_LIMITS, &DEADLINES).await;
    want.origin_since(started);
    record::metrics(|m| {
        m.origin_requests.inc();
        if resp.is_err() {
            m.origin_errors.inc();
        }
    });
    resp
}

/// Counts a body read from the origin: its bytes, or an error.
fn count_body(got: &Result<u64, OriginError>) {
    record::metrics(|m| match got {
        Ok(len) => m.origin_bytes.add(*len),
        Err(_) => m.origin_errors.inc(),
    });
}

/// Fetches the whole object without storing it (or reads the answer `resp` already begun) into
/// a temporary file.
async fn pass(edge: &WorkerEdge, want: &Want<'_>, resp: Option<Response>) -> Result<Got, Failed> {
    let resp = match resp {
        Some(r) => r,
        None => send(edge, want, None, None).await?,
    };
    let mut fields = resp.head.fields.clone();
    fields.strip_hop_by_hop();
    let status = resp.head.status;
    let temp = want.key.id(Some(format!("pass-{}", edge.next_pass()).as_bytes()));
    let mut body = edge.shared.store.begin_body(&temp, Part::Whole).map_err(store_failed)?;
    let file = Rc::new(body.reader().map_err(store_failed)?);
    let started = monoio::time::Instant::now();
    let got = resp
        .body(&edge.pool, &DEADLINES, &mut |bytes| body.write(bytes).map_err(|e| e.to_string()))
        .await;
    want.origin_since(started);
    count_body(&got);
    let len = got?;
    let detail = if (200..300).contains(&status) { "not-storable" } else { "status" };
    Ok(Got::Pass(Passed { status, fields, file, len, detail, _writer: body }))
}
