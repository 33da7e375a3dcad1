//! What a response leaves behind: the worker's counters and its access-log line.
//!
//! Each worker installs one [`Observer`] in a thread-local when it starts; the connection loop
//! calls the functions here, which find it there. A thread-local is the per-worker slot of a
//! thread-per-core server: reaching it costs a TLS offset and a `RefCell` flag, no atomic
//! read-modify-write and nothing another core writes. Without an installed observer (unit
//! tests driving `conn::serve` directly) every call is a no-op.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::access_log::{Entry, WorkerLog};
use crate::body::{Body, Strategy};
use crate::http::request::Request;
use crate::metrics::{self, ConnError, Registry, WorkerMetrics, BODY_STRATEGIES};
use crate::socket::SendError;

/// One worker's counters and access-log buffer.
#[derive(Debug)]
pub struct Observer {
    registry: Arc<Registry>,
    worker_id: usize,
    log: Option<WorkerLog>,
    strategy: Strategy,
}

impl Observer {
    /// The observer of worker `worker_id`.
    pub fn new(
        registry: Arc<Registry>,
        worker_id: usize,
        log: Option<WorkerLog>,
        strategy: Strategy,
    ) -> Self {
        Self { registry, worker_id, log, strategy }
    }

    fn metrics(&self) -> &WorkerMetrics {
        self.registry.worker(self.worker_id)
    }

    /// Whether this worker writes an access log.
    pub fn logs(&self) -> bool {
        self.log.is_some()
    }

    /// Hands the access-log buffer to the writer (at least once a second, and at the end).
    pub fn flush_log(&self) {
        if let Some(log) = &self.log {
            let dropped = log.flush();
            self.metrics().access_log_dropped_bytes.add(dropped);
        }
    }

    /// The last flush of a stopping worker: waits for room rather than drop lines.
    pub fn flush_log_blocking(&self) {
        if let Some(log) = &self.log {
            log.flush_blocking();
        }
    }
}

thread_local! {
    static OBSERVER: RefCell<Option<Rc<Observer>>> = const { RefCell::new(None) };
}

/// Makes `observer` the calling worker thread's observer.
pub fn install(observer: Rc<Observer>) {
    OBSERVER.with(|o| *o.borrow_mut() = Some(observer));
}

/// Removes the calling thread's observer (so its log buffer is dropped with the worker).
pub fn uninstall() {
    OBSERVER.with(|o| o.borrow_mut().take());
}

#[inline]
/// Runs `f` on this worker's counters (edge-mode counting).
pub(crate) fn metrics(f: impl FnOnce(&metrics::WorkerMetrics)) {
    with(|o| f(o.metrics()));
}

fn with(f: impl FnOnce(&Observer)) {
    OBSERVER.with(|o| {
        if let Some(obs) = o.borrow().as_ref() {
            f(obs);
        }
    });
}

/// True when this worker writes an access log (so the request's `Referer` and `User-Agent`
/// are worth extracting).
pub fn wants_client_fields() -> bool {
    OBSERVER.with(|o| o.borrow().as_ref().is_some_and(|obs| obs.log.is_some()))
}

/// A connection was accepted and is being served.
pub fn opened() {
    with(|o| {
        let m = o.metrics();
        m.accepted.inc();
        m.active.add(1);
    });
}

/// A connection ended.
pub fn closed() {
    with(|o| {
        let m = o.metrics();
        m.active.set(m.active.get().saturating_sub(1));
    });
}

/// `accept(2)` failed.
pub fn accept_failed() {
    with(|o| o.metrics().conn_error(ConnError::Accept));
}

/// A connection ended on `kind`.
pub fn conn_error(kind: ConnError) {
    with(|o| o.metrics().conn_error(kind));
}

/// A TLS connection finished its handshake; `kernel`: its keys went to the kernel.
pub fn tls_established(kernel: bool) {
    with(|o| o.metrics().tls_connections[usize::from(kernel)].inc());
}

/// A connection ended on a send error.
pub fn send_error(e: &SendError) {
    conn_error(match e {
        SendError::Stalled(_) => ConnError::SendStalled,
        SendError::Truncated => ConnError::Truncated,
        e if e.is_disconnect() => ConnError::Reset,
        SendError::Io { .. } => ConnError::Io,
    });
}

/// Copies the worker's open-file cache counts (cumulative, kept by the cache itself).
pub fn file_cache(stats: crate::fs::cache::Stats) {
    with(|o| {
        let m = o.metrics();
        m.file_cache_hits.set(stats.hits);
        m.file_cache_misses.set(stats.misses);
        m.file_cache_evictions.set(stats.evictions);
    });
}

/// The request fields only the access log needs.
#[derive(Debug, Default)]
pub struct ClientFields {
    /// `Referer`.
    pub referer: Option<Vec<u8>>,
    /// `User-Agent`.
    pub user_agent: Option<Vec<u8>>,
}

/// Extracts `Referer` and `User-Agent` from a complete request head, when an access log is
/// written (`None` otherwise, at the cost of one thread-local read).
pub fn client_fields(head: &[u8]) -> Option<Box<ClientFields>> {
    if !wants_client_fields() {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; crate::http::request::MAX_FIELDS];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    let mut fields = ClientFields::default();
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("referer") {
            fields.referer = Some(h.value.to_vec());
        } else if h.name.eq_ignore_ascii_case("user-agent") {
            fields.user_agent = Some(h.value.to_vec());
        }
    }
    Some(Box::new(fields))
}

/// What [`before_send`] measured, for [`after_send`].
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    head_bytes: u64,
    strategy: usize,
}

/// Notes what is about to be sent: the head's length and how the body will go.
pub fn before_send(head: &[u8], body: &Body, head_only: bool) -> Pending {
    let mut strategy = 0;
    with(|o| strategy = metrics::body_strategy(body, head_only, o.strategy));
    Pending { head_bytes: head.len() as u64, strategy }
}

/// Counts and logs one response whose last byte was handed to the socket. `request` is `None`
/// for a request that could not be parsed.
pub fn after_send(
    peer: SocketAddr,
    request: Option<&Request>,
    client: Option<&ClientFields>,
    status: u16,
    pending: Pending,
    body_bytes: u64,
    took: Duration,
) {
    after_send_with(peer, request, client, status, pending, body_bytes, took, None);
}

/// [`after_send`] with the edge mode's access-log fields.
#[allow(clippy::too_many_arguments, reason = "the access-log entry's parts, each used once")]
pub(crate) fn after_send_with(
    peer: SocketAddr,
    request: Option<&Request>,
    client: Option<&ClientFields>,
    status: u16,
    pending: Pending,
    body_bytes: u64,
    took: Duration,
    edge: Option<crate::access_log::EdgeFields>,
) {
    with(|o| {
        let m = o.metrics();
        let sent = pending.head_bytes + body_bytes;
        match request {
            Some(r) => m.request(r.method, status, sent, pending.strategy, took),
            None => m.response(3, status, sent, pending.strategy, took),
        }
        if let Some(log) = &o.log {
            let entry = Entry {
                peer,
                method: request.map(|r| r.method_token.as_ref()),
                target: request.map_or(&[][..], |r| &r.target),
                minor_version: request.map_or(1, |r| r.minor_version),
                status,
                body_bytes,
                referer: client.and_then(|c| c.referer.as_deref()),
                user_agent: client.and_then(|c| c.user_agent.as_deref()),
                duration: took,
                body_strategy: BODY_STRATEGIES[pending.strategy],
                edge,
            };
            let dropped = log.record(&entry);
            m.access_log_dropped_bytes.add(dropped);
        }
    });
}
