//! Measurements: one HdrHistogram per metric, plus counters, per thread.
//!
//! Each worker thread owns a [`Stats`] and records into it without
//! synchronisation; the threads' stats are merged once, after the run.
//! Histograms hold microseconds from 1 µs to one hour at 3 significant
//! digits; larger values saturate at the top instead of being lost.

#![forbid(unsafe_code)]

use hdrhistogram::Histogram;

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
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Status,
        ErrorKind::ShortBody,
        ErrorKind::Parse,
        ErrorKind::Checksum,
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
}
