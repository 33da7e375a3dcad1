//! Per-worker counters and their Prometheus text exposition.
//!
//! Every worker owns one [`WorkerMetrics`], written only by that worker's thread: a counter is
//! bumped with a relaxed load and a relaxed store (a plain `mov` on x86-64 and AArch64, no
//! locked instruction), never with a read-modify-write, and no other thread ever writes it. The
//! scrape thread ([`server`]) reads every worker's counters with relaxed loads; a scrape that
//! races a request may see a counter one step behind another, which Prometheus tolerates (each
//! series is monotonic on its own). Each worker's block is aligned to 128 bytes so two workers
//! never write to the same cache line.
//!
//! Nothing here allocates or takes a lock on the request path.

mod expose;
pub mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::body::{self, Body, Mechanism, Segment, Strategy};
use crate::http::request::Method;

pub use expose::{render, CONTENT_TYPE};

/// A counter with one writer: its worker thread.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Must only be called by the owning worker (single writer: load + store is
    /// exact without a read-modify-write).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Sets the value (for gauges).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value (any thread).
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Request methods as counted (label `method`).
pub const METHODS: [&str; 4] = ["GET", "HEAD", "OPTIONS", "other"];

/// Status classes as counted (label `status`).
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// How a response body left (label `strategy`): no body, bytes held in memory (cached small
/// files, error text), or the mechanism `body::choose` picked for its file ranges (`copy`,
/// `sendfile`, `splice`, `map`). A multipart response whose ranges went different ways counts
/// under the last of them in this list.
pub const BODY_STRATEGIES: [&str; 6] = ["none", "memory", "copy", "sendfile", "splice", "map"];

/// Kinds of connection error (label `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnError {
    /// A request head did not arrive within the header timeout (408).
    HeaderTimeout,
    /// A request head could not be parsed (400, 414, 431, 505, 501).
    BadRequest,
    /// The client accepted no bytes for the send timeout.
    SendStalled,
    /// The file was truncated while being sent.
    Truncated,
    /// The client reset or closed the connection mid-response.
    Reset,
    /// Another socket or file error.
    Io,
    /// `accept(2)` failed (out of descriptors or memory, most often).
    Accept,
}

/// Every [`ConnError`] and its label, in exposition order.
pub const CONN_ERRORS: [(ConnError, &str); 7] = [
    (ConnError::HeaderTimeout, "header_timeout"),
    (ConnError::BadRequest, "bad_request"),
    (ConnError::SendStalled, "send_stalled"),
    (ConnError::Truncated, "truncated"),
    (ConnError::Reset, "reset"),
    (ConnError::Io, "io"),
    (ConnError::Accept, "accept"),
];

/// How an edge-mode request was answered (label `cache`): from the cache (`hit`, also stale
/// within stale-while-revalidate), after going to the origin for a stale copy (`stale`:
/// revalidated, or served within stale-if-error, or refetched), a miss (`miss`, also a partial
/// hit), passed through uncached (`pass`), an origin failure (`error`), or answered locally
/// without the cache (`local`: 405, 508, 412, 416).
pub const CACHE_OUTCOMES: [&str; 6] = ["hit", "stale", "miss", "pass", "error", "local"];

/// Upper bounds of the request-duration histogram buckets, in microseconds (`+Inf` implied).
pub const DURATION_BUCKETS_MICROS: [u64; 16] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// One worker's counters. Written by that worker only; read by the scrape.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerMetrics {
    /// Responses by `[method][status class]`.
    pub requests: [[Counter; 5]; 4],
    /// Bytes handed to client sockets (heads and bodies).
    pub sent_bytes: Counter,
    /// Responses by body strategy, indexed like [`BODY_STRATEGIES`].
    pub body_strategy: [Counter; 6],
    /// Connections accepted.
    pub accepted: Counter,
    /// Connections open now (gauge).
    pub active: Counter,
    /// Connection errors, indexed like [`CONN_ERRORS`].
    pub conn_errors: [Counter; 7],
    /// Open-file cache hits.
    pub file_cache_hits: Counter,
    /// Open-file cache misses.
    pub file_cache_misses: Counter,
    /// Open-file cache evictions.
    pub file_cache_evictions: Counter,
    /// Access-log bytes dropped because the writer fell behind.
    pub access_log_dropped_bytes: Counter,
    /// Request-duration histogram: non-cumulative count per bucket, the last one `+Inf`.
    pub duration_buckets: [Counter; 17],
    /// Sum of request durations, microseconds.
    pub duration_sum_micros: Counter,
    /// TLS connections past the handshake, by record layer, indexed like [`TLS_RECORD_LAYERS`].
    pub tls_connections: [Counter; 2],
    /// Edge mode: requests by how the cache answered, indexed like [`CACHE_OUTCOMES`].
    pub cache_outcomes: [Counter; 6],
    /// Edge mode: body bytes of cache hits (origin offload = this / body bytes served).
    pub cache_hit_bytes: Counter,
    /// Edge mode: requests sent to the origin.
    pub origin_requests: Counter,
    /// Edge mode: body bytes received from the origin.
    pub origin_bytes: Counter,
    /// Edge mode: origin requests that failed (connect, timeout, framing, truncation).
    pub origin_errors: Counter,
}

/// Where a TLS connection's records are sealed and opened: rustls, or the kernel after a
/// hand-off (kTLS).
pub const TLS_RECORD_LAYERS: [&str; 2] = ["user", "kernel"];

impl WorkerMetrics {
    /// Counts one answered request.
    #[inline]
    pub fn request(&self, method: Method, status: u16, sent: u64, strategy: usize, took: Duration) {
        let m = match method {
            Method::Get => 0,
            Method::Head => 1,
            Method::Options => 2,
            Method::NotAllowed | Method::Unknown => 3,
        };
        self.response(m, status, sent, strategy, took);
    }

    /// Counts one response by method index (see [`METHODS`]).
    #[inline]
    pub fn response(&self, method: usize, status: u16, sent: u64, strategy: usize, took: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[method.min(3)][class].inc();
        self.sent_bytes.add(sent);
        self.body_strategy[strategy.min(BODY_STRATEGIES.len() - 1)].inc();
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = DURATION_BUCKETS_MICROS.partition_point(|&b| b < micros);
        self.duration_buckets[bucket].inc();
        self.duration_sum_micros.add(micros);
    }

    /// Counts one connection error.
    #[inline]
    pub fn conn_error(&self, kind: ConnError) {
        let i = CONN_ERRORS.iter().position(|(k, _)| *k == kind).unwrap_or(0);
        self.conn_errors[i].inc();
    }
}

/// Every worker's counters, shared between the workers (each writing its own) and the scrape.
#[derive(Debug)]
pub struct Registry {
    workers: Box<[WorkerMetrics]>,
}

impl Registry {
    /// Counters for `workers` workers, all zero.
    pub fn new(workers: usize) -> Self {
        Self { workers: (0..workers).map(|_| WorkerMetrics::default()).collect() }
    }

    /// Worker `id`'s counters.
    pub fn worker(&self, id: usize) -> &WorkerMetrics {
        &self.workers[id]
    }

    /// All workers' counters, by worker id.
    pub fn workers(&self) -> &[WorkerMetrics] {
        &self.workers
    }
}

/// The index into [`BODY_STRATEGIES`] for a response: the mechanism `body::choose` picks for
/// its file ranges, `memory` for a body of bytes, `none` for no body.
pub fn body_strategy(body: &Body, head_only: bool, strategy: Strategy) -> usize {
    if head_only || body.segments.is_empty() {
        return 0;
    }
    let mut used = 1;
    for segment in &body.segments {
        if let Segment::File { len, .. } = segment {
            let index = match body::choose(strategy, *len) {
                Mechanism::Copy => 2,
                Mechanism::Sendfile => 3,
                Mechanism::Splice => 4,
                Mechanism::Map => 5,
            };
            used = used.max(index);
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_buckets() {
        // (microseconds, bucket index); a bound belongs to its own bucket (`le`).
        let cases: &[(u64, usize)] = &[
            (0, 0),
            (500, 0),
            (501, 1),
            (1_000, 1),
            (60_000_000, 15),
            (60_000_001, 16),
            (u64::MAX, 16),
        ];
        for &(micros, want) in cases {
            let m = WorkerMetrics::default();
            m.response(0, 200, 0, 0, Duration::from_micros(micros));
            let got = m.duration_buckets.iter().position(|c| c.get() == 1).unwrap();
            assert_eq!(got, want, "{micros}us");
        }
    }

    #[test]
    fn status_classes() {
        let cases: &[(u16, usize)] = &[(100, 0), (200, 1), (206, 1), (304, 2), (416, 3), (503, 4)];
        for &(status, class) in cases {
            let m = WorkerMetrics::default();
            m.response(1, status, 10, 1, Duration::ZERO);
            assert_eq!(m.requests[1][class].get(), 1, "{status}");
            assert_eq!(m.sent_bytes.get(), 10);
        }
    }

    #[test]
    fn workers_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<WorkerMetrics>(), 128);
        let r = Registry::new(2);
        let a = std::ptr::from_ref(r.worker(0)) as usize;
        let b = std::ptr::from_ref(r.worker(1)) as usize;
        assert!(b - a >= 128);
    }
}
