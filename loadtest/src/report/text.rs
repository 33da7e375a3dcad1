//! The human-readable summary printed at the end of a run.

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::{percentiles, Summary, PERCENTILES};
use crate::stats::ErrorKind;

/// Microseconds as milliseconds with µs resolution.
fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

fn row(out: &mut String, name: &str, h: &Histogram<u64>) {
    let (ps, max, mean) = percentiles(h);
    let _ = write!(out, "  {name:<14}");
    for v in ps {
        let _ = write!(out, "{:>11}", ms(v));
    }
    let _ = writeln!(out, "{:>11}{:>11.3}", ms(max), mean / 1000.0);
}

/// Renders the summary.
pub fn render(s: &Summary) -> String {
    let st = &s.stats;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} requests in {:.3} s, {} connection(s) on {} thread(s){}",
        st.requests,
        s.duration_s,
        s.connections,
        s.threads,
        if s.warmup_s > 0.0 {
            format!(" (after {:.3} s warm-up, not recorded)", s.warmup_s)
        } else {
            String::new()
        }
    );
    let _ = write!(out, "  rate achieved: {:.1} req/s", s.rate_achieved());
    if let Some(target) = s.rate_target {
        let _ = write!(
            out,
            " of {target:.1} req/s scheduled ({:+.2}%)",
            (s.rate_achieved() / target - 1.0) * 100.0
        );
    }
    let _ = writeln!(out);
    if st.missed > 0 {
        let _ = writeln!(
            out,
            "  BEHIND SCHEDULE: {} requests were due but never sent (connections still busy)",
            st.missed
        );
    }
    let _ = writeln!(out, "  received: {:.3} MB, {:.2} MB/s", st.bytes as f64 / 1e6, s.mb_per_s());
    let _ = write!(out, "  {:<14}", "ms");
    for (_, _, label) in PERCENTILES {
        let _ = write!(out, "{label:>11}");
    }
    let _ = writeln!(out, "{:>11}{:>11}", "max", "mean");
    row(&mut out, "latency", &st.latency_us);
    row(&mut out, "service time", &st.service_time_us);
    if s.rate_target.is_some() {
        let _ = writeln!(
            out,
            "  (latency: from the intended send time; service time: from the actual send)"
        );
    }
    let _ = write!(out, "  errors: {}", st.total_errors());
    let kinds: Vec<String> = ErrorKind::ALL
        .iter()
        .filter(|&&k| st.error_count(k) > 0)
        .map(|&k| format!("{} {}", k.name(), st.error_count(k)))
        .collect();
    if !kinds.is_empty() {
        let _ = write!(out, " ({})", kinds.join(", "));
    }
    let _ = writeln!(out);
    let tls = &st.tls;
    if tls.full + tls.resumed > 0 {
        let _ = writeln!(
            out,
            "  tls: {} handshakes, {} full, {} resumed ({} connections opened)",
            tls.full + tls.resumed,
            tls.full,
            tls.resumed,
            st.connections_opened
        );
        row(&mut out, "handshake", &tls.handshake_us);
    }
    let cache = &st.cache;
    if cache.responses() > 0 {
        let _ = writeln!(
            out,
            "  cache: {} hits, {} misses, {} other of {} responses with a cache field; \
             hit ratio {:.2}% by requests, {:.2}% by bytes",
            cache.hits,
            cache.misses,
            cache.other,
            cache.responses(),
            cache.hit_ratio() * 100.0,
            cache.byte_hit_ratio() * 100.0
        );
    }
    let hls = &st.hls;
    if hls.sessions > 0 {
        let late_pct = if hls.segments > 0 {
            hls.late_segments as f64 * 100.0 / hls.segments as f64
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "  hls: {} viewers, {} sessions, {} segments, {} late ({late_pct:.2}%)",
            s.connections, hls.sessions, hls.segments, hls.late_segments
        );
        row(&mut out, "segment dl", &hls.segment_download_us);
        row(&mut out, "startup", &hls.startup_us);
        if hls.late_segments > 0 {
            row(&mut out, "stall", &hls.stall_us);
        }
    }
    let _ = writeln!(
        out,
        "  client CPU: {:.3} s ({:.2} µs per request)",
        s.client_cpu_s,
        s.cpu_us_per_request()
    );
    out
}
