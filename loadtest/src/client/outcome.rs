//! One recorded request: the exchange bounded by `--timeout`, judged and recorded.
//!
//! [`judge`] is the single place that decides what a response counts as
//! (success, `status`, `checksum`, or the exchange's own failure); [`fetch`]
//! runs an exchange on a connection, records it with what it saw (a new
//! connection, its TLS handshake, the cache field) and, with `--new-conn`,
//! ends the connection cleanly after a complete response.

use super::conn::{BodyMode, Conn, Failure, Response};
use super::{Seen, ThreadCtx};
use crate::config::Config;
use crate::stats::ErrorKind;
use crate::sys::monotonic_ns;

/// What a finished request counts as: `Ok(bytes)` or `Err((kind, bytes))`.
pub(crate) fn judge(
    cfg: &Config,
    result: &Result<Response, Failure>,
) -> Result<u64, (ErrorKind, u64)> {
    match result {
        Err(f) => Err((f.kind, f.bytes)),
        Ok(r) if !cfg.status_ok(r.status) => Err((ErrorKind::Status, r.bytes)),
        // Only a body the caller asked to checksum has a CRC-32 to compare.
        Ok(r) if r.crc32.is_some() && r.crc32 != cfg.checksum => {
            Err((ErrorKind::Checksum, r.bytes))
        }
        Ok(r) => Ok(r.bytes),
    }
}

/// A recorded request's end.
pub(crate) struct Fetched {
    /// Completion time, ns.
    pub done_ns: u64,
    /// The response if it counted as a success, else the error kind recorded.
    pub result: Result<Response, ErrorKind>,
}

/// Sends the request prepared in `conn` to `origin` now, as intended at `intended_ns`,
/// and records it.
pub(crate) async fn fetch(
    ctx: &ThreadCtx,
    conn: &mut Conn,
    intended_ns: u64,
    origin: usize,
    mode: BodyMode,
) -> Fetched {
    let cfg = &ctx.cfg;
    let sent = monotonic_ns();
    let result = tokio::time::timeout(cfg.timeout, conn.exchange(origin, mode)).await;
    let done_ns = monotonic_ns();
    let result = result.unwrap_or_else(|_elapsed| {
        let bytes = conn.bytes_in_flight();
        conn.close();
        Err(Failure { kind: ErrorKind::Timeout, bytes })
    });
    let seen = Seen {
        connection: conn.opened().then(|| conn.handshake()),
        cache: result.as_ref().ok().map(|r| (r.cache, r.bytes)),
    };
    let outcome = judge(cfg, &result);
    ctx.record(intended_ns, sent, done_ns, outcome, &seen);
    if cfg.new_conn {
        conn.finish().await;
    }
    let result = match (outcome, result) {
        (Ok(_), Ok(response)) => Ok(response),
        (Err((kind, _)), _) => Err(kind),
        // `judge` fails every failed exchange.
        (Ok(_), Err(f)) => Err(f.kind),
    };
    Fetched { done_ns, result }
}
