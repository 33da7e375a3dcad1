//! Measurements: one HdrHistogram per metric, plus counters, per thread.
//!
//! Each worker thread owns a [`Stats`] and records into it without
//! synchronisation; the threads' stats are merged once, after the run.
//! Histograms hold microseconds from 1 µs to one hour at 3 significant
//! digits; larger values saturate at the top instead of being lost.

#![forbid(unsafe_code)]

use hdrhistogram::Histogram;

use crate::http::CacheClass;

/// Largest value a histogram tracks: one hour, in microseconds.
pub const HIGHEST_US: u64 = 3_600_000_000;

/// Why a request failed. Every scheduled request ends in success or exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection could not be established.
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection failed or was closed before a response began.
    Reset,
    /// A status other than the expected one.
    Status,
    /// The connection closed before the body announced by the head was complete.
    ShortBody,
    /// The response (or playlist) could not be parsed.
    Parse,
    /// The body's CRC-32 differs from `--checksum`.
    Checksum,
    /// The TLS handshake failed (certificate, alert, protocol) or a TLS record was bad.
    Tls,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Status,
        ErrorKind::ShortBody,
        ErrorKind::Parse,
        ErrorKind::Checksum,
        ErrorKind::Tls,
    ];

    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Status => "status",
            ErrorKind::ShortBody => "short_body",
            ErrorKind::Parse => "parse",
            ErrorKind::Checksum => "checksum",
            ErrorKind::Tls => "tls",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A fresh microsecond histogram.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy hdrhistogram's preconditions.
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

/// Counters for `--hls` runs.
#[derive(Debug, Clone)]
pub struct HlsStats {
    /// Viewer sessions started (a viewer starts a new one when a VOD playlist ends).
    pub sessions: u64,
    /// Segments downloaded completely.
    pub segments: u64,
    /// Segments that finished after the player needed them (see `hls::player`).
    pub late_segments: u64,
    /// Segment download time, µs.
    pub segment_download_us: Histogram<u64>,
    /// Stall length of each late segment, µs.
    pub stall_us: Histogram<u64>,
    /// Time from session start to the first segment being playable, µs.
    pub startup_us: Histogram<u64>,
}

impl Default for HlsStats {
    fn default() -> Self {
        Self {
            sessions: 0,
            segments: 0,
            late_segments: 0,
            segment_download_us: new_histogram(),
            stall_us: new_histogram(),
            startup_us: new_histogram(),
        }
    }
}

/// A completed TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// From the `ClientHello` to the point the request can be sent, ns.
    pub ns: u64,
    /// The server accepted a session from the client's cache.
    pub resumed: bool,
}

/// TLS handshakes of connections opened for recorded requests.
#[derive(Debug, Clone)]
pub struct TlsStats {
    /// Full handshakes (including those with a HelloRetryRequest).
    pub full: u64,
    /// Resumed handshakes.
    pub resumed: u64,
    /// Handshake time, µs (TCP connect not included).
    pub handshake_us: Histogram<u64>,
}

impl Default for TlsStats {
    fn default() -> Self {
        Self { full: 0, resumed: 0, handshake_us: new_histogram() }
    }
}

/// Responses by what their cache field said (see `http::cache`), with their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Responses whose nearest cache served them.
    pub hits: u64,
    /// Responses the nearest cache forwarded.
    pub misses: u64,
    /// Responses with a cache field saying neither.
    pub other: u64,
    /// Bytes of the hits.
    pub hit_bytes: u64,
    /// Bytes of the misses.
    pub miss_bytes: u64,
    /// Bytes of the others.
    pub other_bytes: u64,
}

impl CacheStats {
    /// Counts one complete response of `bytes` bytes.
    pub fn record(&mut self, class: CacheClass, bytes: u64) {
        let (count, total) = match class {
            CacheClass::None => return,
            CacheClass::Hit => (&mut self.hits, &mut self.hit_bytes),
            CacheClass::Miss => (&mut self.misses, &mut self.miss_bytes),
            CacheClass::Other => (&mut self.other, &mut self.other_bytes),
        };
        *count += 1;
        *total += bytes;
    }

    /// Responses that carried a cache field.
    pub fn responses(&self) -> u64 {
        self.hits + self.misses + self.other
    }

    /// Hits over responses with a cache field (0 when there were none).
    pub fn hit_ratio(&self) -> f64 {
        ratio(self.hits, self.responses())
    }

    /// Hit bytes over the bytes of responses with a cache field.
    pub fn byte_hit_ratio(&self) -> f64 {
        ratio(self.hit_bytes, self.hit_bytes + self.miss_bytes + self.other_bytes)
    }

    fn merge(&mut self, o: &CacheStats) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.other += o.other;
        self.hit_bytes += o.hit_bytes;
        self.miss_bytes += o.miss_bytes;
        self.other_bytes += o.other_bytes;
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Everything one thread measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Completion − intended send time (coordinated-omission corrected), µs.
    pub latency_us: Histogram<u64>,
    /// Completion − actual send time, µs.
    pub service_time_us: Histogram<u64>,
    /// Successful requests recorded.
    pub requests: u64,
    /// Response bytes (head + body) of recorded requests, successful or not.
    pub bytes: u64,
    /// Failed requests by [`ErrorKind`].
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Open loop: requests scheduled inside the run that were never sent because
    /// their connection was still busy when the run ended.
    pub missed: u64,
    /// Latest completion time recorded, ns on `CLOCK_MONOTONIC` (0 = none).
    pub last_done_ns: u64,
    /// Per-viewer results, for `--hls`.
    pub hls: HlsStats,
    /// Connections opened (TCP connects that succeeded) for recorded requests.
    pub connections_opened: u64,
    /// TLS handshakes.
    pub tls: TlsStats,
    /// Cache fields of complete responses.
    pub cache: CacheStats,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency_us: new_histogram(),
            service_time_us: new_histogram(),
            requests: 0,
            bytes: 0,
            errors: [0; ErrorKind::ALL.len()],
            missed: 0,
            last_done_ns: 0,
            hls: HlsStats::default(),
            connections_opened: 0,
            tls: TlsStats::default(),
            cache: CacheStats::default(),
        }
    }
}

/// Nanoseconds to whole microseconds, at least 1 (the histogram's floor).
pub fn ns_to_us(ns: u64) -> u64 {
    (ns / 1_000).max(1)
}

impl Stats {
    /// Records a successful request.
    pub fn record_ok(&mut self, intended_ns: u64, sent_ns: u64, done_ns: u64, bytes: u64) {
        self.latency_us.saturating_record(ns_to_us(done_ns.saturating_sub(intended_ns)));
        self.service_time_us.saturating_record(ns_to_us(done_ns.saturating_sub(sent_ns)));
        self.requests += 1;
        self.bytes += bytes;
        self.last_done_ns = self.last_done_ns.max(done_ns);
    }

    /// Records a failed request.
    pub fn record_error(&mut self, kind: ErrorKind, done_ns: u64, bytes: u64) {
        self.errors[kind.index()] += 1;
        self.bytes += bytes;
        self.last_done_ns = self.last_done_ns.max(done_ns);
    }

    /// Records a connection opened for a request, with its TLS handshake if it had one.
    pub fn record_connection(&mut self, handshake: Option<Handshake>) {
        self.connections_opened += 1;
        if let Some(h) = handshake {
            if h.resumed {
                self.tls.resumed += 1;
            } else {
                self.tls.full += 1;
            }
            self.tls.handshake_us.saturating_record(ns_to_us(h.ns));
        }
    }

    /// Failed requests of one kind.
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }

    /// All failed requests.
    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Folds another thread's stats into this one.
    pub fn merge(&mut self, other: &Stats) {
        // Both histograms share the same bounds, so `add` cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.service_time_us.add(&other.service_time_us);
        self.requests += other.requests;
        self.bytes += other.bytes;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.missed += other.missed;
        self.last_done_ns = self.last_done_ns.max(other.last_done_ns);
        let (h, o) = (&mut self.hls, &other.hls);
        h.sessions += o.sessions;
        h.segments += o.segments;
        h.late_segments += o.late_segments;
        let _ = h.segment_download_us.add(&o.segment_download_us);
        let _ = h.stall_us.add(&o.stall_us);
        let _ = h.startup_us.add(&o.startup_us);
        self.connections_opened += other.connections_opened;
        self.tls.full += other.tls.full;
        self.tls.resumed += other.tls.resumed;
        let _ = self.tls.handshake_us.add(&other.tls.handshake_us);
        self.cache.merge(&other.cache);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Stats::default();
        a.record_ok(0, 500_000, 1_000_000, 10);
        let mut b = Stats::default();
        b.record_error(ErrorKind::Timeout, 2_000_000, 3);
        b.record_ok(1_000_000, 1_000_000, 1_000_400, 10);
        a.merge(&b);
        assert_eq!(a.requests, 2);
        assert_eq!(a.bytes, 23);
        assert_eq!(a.error_count(ErrorKind::Timeout), 1);
        assert_eq!(a.total_errors(), 1);
        assert_eq!(a.last_done_ns, 2_000_000);
        // Latency is measured from the intended time, service time from the send.
        assert_eq!(a.latency_us.max(), 1000);
        assert_eq!(a.service_time_us.max(), 500);
        // Sub-microsecond samples are kept at the 1 µs floor.
        assert_eq!(a.latency_us.min(), 1);
    }

    #[test]
    fn cache_ratios_by_requests_and_bytes() {
        let mut a = Stats::default();
        a.cache.record(CacheClass::Hit, 100);
        a.cache.record(CacheClass::Hit, 100);
        a.cache.record(CacheClass::None, 5000);
        let mut b = Stats::default();
        b.cache.record(CacheClass::Miss, 600);
        b.cache.record(CacheClass::Other, 200);
        a.merge(&b);
        let c = a.cache;
        assert_eq!((c.hits, c.misses, c.other, c.responses()), (2, 1, 1, 4));
        assert_eq!(c.hit_ratio(), 0.5);
        assert_eq!(c.byte_hit_ratio(), 0.2);
        assert_eq!(CacheStats::default().hit_ratio(), 0.0);
    }

    #[test]
    fn handshakes_are_counted_by_kind() {
        let mut a = Stats::default();
        a.record_connection(None);
        a.record_connection(Some(Handshake { ns: 2_000_000, resumed: false }));
        let mut b = Stats::default();
        b.record_connection(Some(Handshake { ns: 500_000, resumed: true }));
        a.merge(&b);
        assert_eq!(a.connections_opened, 3);
        assert_eq!((a.tls.full, a.tls.resumed), (1, 1));
        assert_eq!(a.tls.handshake_us.len(), 2);
        assert_eq!(a.tls.handshake_us.max(), 2000);
    }
}
