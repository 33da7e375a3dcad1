//! Sending one slice of a response: from its stored file, or read-while-write from the file a
//! fill is still writing, as its bytes commit.
//!
//! A slice not stored yet is fetched by a fill task of its own (spawned on this worker by the
//! request that became its writer), so the writer's client reads the growing file exactly like
//! every waiter, on any worker: each commit wakes them (no polling interval) and they send the
//! committed bytes with the ordinary body path.
//!
//! The response's head is already sent with the first slice's `ETag` and length, so before
//! each slice the stored object must still be that version: if it was dropped (another
//! version arrived) the connection is closed. A fill that fails after some of the slice was
//! sent closes the connection too; one that fails before hands over and is waited for again.

use std::rc::Rc;

use smallvec::smallvec;

use crate::body::{self, Body, Segment};
use crate::cache::fill::{FillKey, Join, Progress};
use crate::cache::store::Part;
use crate::socket::{SendError, Transport};

use super::fetch::{spawn_fill, Want};
use super::{abort, unix_now, Lookup, WorkerEdge};

/// The version a response's head announced: its `ETag` and total length.
pub(crate) struct Version<'a> {
    pub(crate) etag: &'a str,
    pub(crate) total: u64,
}

/// Sends bytes `lo..hi` of slice `k` (offsets within the slice), the head first if it has not
/// left yet. Returns the body bytes sent.
#[allow(clippy::too_many_arguments, reason = "one call site; the response's state")]
pub(crate) async fn send_slice<T: Transport>(
    edge: &WorkerEdge,
    socket: &T,
    want: &Want<'_>,
    version: &Version<'_>,
    k: u64,
    (lo, hi): (u64, u64),
    head: &mut Option<Vec<u8>>,
    strategy: body::Strategy,
) -> Result<u64, SendError> {
    let shared = &edge.shared;
    let mut sent_to = lo;
    let mut sent = 0;
    // Fills of this slice that failed before any of it was sent: an origin failing each time
    // ends the response rather than the request looping.
    let mut failed_fills = 0;
    loop {
        let meta = match shared.lookup(&want.id) {
            Lookup::Has(m) => m,
            _ => return Err(abort("the object was dropped while being sent")),
        };
        let same = meta.total == version.total
            && meta.fields.get("etag").unwrap_or_default() == version.etag.as_bytes();
        if !same {
            return Err(abort("the object changed between slices"));
        }
        if meta.slicing.is_none() || meta.slices.has(k) {
            let part = if meta.slicing.is_some() { Part::Slice(k) } else { Part::Whole };
            let path = shared.store.body_path(&want.id, part);
            let file =
                std::fs::File::open(&path).map_err(|e| SendError::io("open cached body", e))?;
            return Ok(sent + send_range(socket, Rc::new(file), sent_to, hi, head, strategy).await?);
        }
        let waiter =
            match shared.fills.join(FillKey { id: want.id, part: Part::Slice(k) }, unix_now()) {
                Join::Writer(w) => {
                    // The previous fill may have ended between the lookup and the join.
                    match shared.lookup(&want.id) {
                        Lookup::Has(m) if m.slicing.is_none() || m.slices.has(k) => w.release(),
                        _ => spawn_fill(edge, want, k, w),
                    }
                    continue;
                }
                Join::Waiter(waiter) => waiter,
                Join::HitForMiss => {
                    return Err(abort("the object became uncacheable while being sent"))
                }
            };
        let mut seen = 0;
        let mut reader: Option<Rc<std::fs::File>> = None;
        loop {
            match waiter.wait(seen).await {
                Progress::Growing { file, committed, .. } => {
                    seen = committed;
                    let upto = committed.min(hi);
                    if upto > sent_to {
                        let rc = match &reader {
                            Some(r) => Rc::clone(r),
                            None => {
                                let f = file
                                    .try_clone()
                                    .map_err(|e| SendError::io("dup growing body", e))?;
                                Rc::clone(reader.insert(Rc::new(f)))
                            }
                        };
                        sent += send_range(socket, rc, sent_to, upto, head, strategy).await?;
                        sent_to = upto;
                    }
                    if sent_to >= hi {
                        return Ok(sent);
                    }
                }
                // Stored now: the rest from the store (after the version check above).
                Progress::Complete { .. } => break,
                Progress::Retry if sent_to == lo && failed_fills < 2 => {
                    failed_fills += 1;
                    break;
                }
                Progress::Retry | Progress::Uncacheable => {
                    return Err(abort("the fill of a slice being sent failed"))
                }
            }
        }
    }
}

/// Sends `from..to` of `file` (the head first if it has not left yet).
async fn send_range<T: Transport>(
    socket: &T,
    file: Rc<std::fs::File>,
    from: u64,
    to: u64,
    head: &mut Option<Vec<u8>>,
    strategy: body::Strategy,
) -> Result<u64, SendError> {
    if to <= from {
        if let Some(h) = head.take() {
            body::send(socket, h, &Body::empty(), true, strategy).await?;
        }
        return Ok(0);
    }
    let body = Body {
        file: Some(file),
        segments: smallvec![Segment::File { offset: from, len: to.saturating_sub(from) }],
    };
    body::send(socket, head.take().unwrap_or_default(), &body, false, strategy).await
}
