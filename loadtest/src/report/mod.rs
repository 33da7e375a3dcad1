//! Results: the merged [`Summary`] and its three renderings.
//!
//! [`text`] is the human summary, [`json`] the machine-readable file (its
//! keys are a contract with scripts), [`hgrm`] the HdrHistogram
//! percentile-distribution text that HdrHistogram's plotters read.

#![forbid(unsafe_code)]

pub mod hgrm;
pub mod json;
pub mod text;

use hdrhistogram::Histogram;

use crate::stats::Stats;

/// The percentiles every report shows, with their JSON keys and labels.
pub const PERCENTILES: [(f64, &str, &str); 5] = [
    (50.0, "p50", "p50"),
    (90.0, "p90", "p90"),
    (99.0, "p99", "p99"),
    (99.9, "p999", "p99.9"),
    (99.99, "p9999", "p99.99"),
];

/// Everything measured in one run, merged over threads.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Merged measurements.
    pub stats: Stats,
    /// Measured window: start of recording to the last recorded completion, s.
    pub duration_s: f64,
    /// Target rate, if open loop.
    pub rate_target: Option<f64>,
    /// Connections (or viewers).
    pub connections: usize,
    /// Worker threads.
    pub threads: usize,
    /// Process CPU time (user + system) over the whole run including warm-up, s.
    pub client_cpu_s: f64,
    /// Requests (successful or not) over the whole run including warm-up.
    pub all_requests: u64,
    /// Warm-up length, s.
    pub warmup_s: f64,
}

impl Summary {
    /// Successful requests per second over the measured window.
    pub fn rate_achieved(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.stats.requests as f64 / self.duration_s
        } else {
            0.0
        }
    }

    /// Received bytes per second, in MB (10^6) per second.
    pub fn mb_per_s(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.stats.bytes as f64 / 1e6 / self.duration_s
        } else {
            0.0
        }
    }

    /// Client CPU per request over the whole run, µs.
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.all_requests > 0 {
            self.client_cpu_s * 1e6 / self.all_requests as f64
        } else {
            0.0
        }
    }
}

/// `(p50, p90, p99, p99.9, p99.99, max, mean)` of a histogram; zeros when empty.
pub fn percentiles(h: &Histogram<u64>) -> ([u64; 5], u64, f64) {
    if h.is_empty() {
        return ([0; 5], 0, 0.0);
    }
    let mut out = [0; 5];
    for (slot, (p, _, _)) in out.iter_mut().zip(PERCENTILES) {
        *slot = h.value_at_percentile(p);
    }
    (out, h.max(), h.mean())
}
