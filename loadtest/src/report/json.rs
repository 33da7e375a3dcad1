//! The `--json` file.
//!
//! Stable keys (scripts rely on them): `requests`, `errors`, `duration_s`,
//! `rate_achieved`, `bytes`, and `latency_us` / `service_time_us`, each with
//! `p50`, `p90`, `p99`, `p999`, `p9999`, `max`, `mean`. `latency_curve` is
//! the full percentile curve `ringcast-load plot` draws. `connections_opened`
//! is always present; `tls` appears when TLS handshakes were made, `cache` when
//! responses carried `Cache-Status` or `X-Cache`, `hls` in HLS mode.

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::{percentiles, Summary, PERCENTILES};
use crate::stats::ErrorKind;

fn histogram_json(h: &Histogram<u64>) -> Value {
    let (ps, max, mean) = percentiles(h);
    let mut m = Map::new();
    for (v, (_, key, _)) in ps.iter().zip(PERCENTILES) {
        m.insert(key.to_owned(), json!(v));
    }
    m.insert("max".to_owned(), json!(max));
    m.insert("mean".to_owned(), json!(mean));
    Value::Object(m)
}

/// `[[percentile, µs], ...]` at HdrHistogram's quantile steps (5 ticks per half distance).
pub fn curve(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!([]);
    }
    let points: Vec<Value> = h
        .iter_quantiles(5)
        .map(|v| {
            json!([v.quantile_iterated_to() * 100.0, h.highest_equivalent(v.value_iterated_to())])
        })
        .collect();
    Value::Array(points)
}

/// Renders the JSON document.
pub fn render(s: &Summary) -> Value {
    let st = &s.stats;
    let mut errors = Map::new();
    for k in ErrorKind::ALL {
        errors.insert(k.name().to_owned(), json!(st.error_count(k)));
    }
    let mut doc = json!({
        "requests": st.requests,
        "errors": st.total_errors(),
        "errors_by_kind": errors,
        "missed": st.missed,
        "duration_s": s.duration_s,
        "warmup_s": s.warmup_s,
        "rate_target": s.rate_target,
        "rate_achieved": s.rate_achieved(),
        "bytes": st.bytes,
        "mb_per_s": s.mb_per_s(),
        "connections": s.connections,
        "threads": s.threads,
        "client_cpu_s": s.client_cpu_s,
        "client_cpu_us_per_request": s.cpu_us_per_request(),
        "latency_us": histogram_json(&st.latency_us),
        "service_time_us": histogram_json(&st.service_time_us),
        "latency_curve": curve(&st.latency_us),
    });
    doc["connections_opened"] = json!(st.connections_opened);
    let tls = &st.tls;
    if tls.full + tls.resumed > 0 {
        doc["tls"] = json!({
            "handshakes": tls.full + tls.resumed,
            "full": tls.full,
            "resumed": tls.resumed,
            "handshake_us": histogram_json(&tls.handshake_us),
        });
    }
    let cache = &st.cache;
    if cache.responses() > 0 {
        doc["cache"] = json!({
            "responses": cache.responses(),
            "hits": cache.hits,
            "misses": cache.misses,
            "other": cache.other,
            "hit_bytes": cache.hit_bytes,
            "miss_bytes": cache.miss_bytes,
            "other_bytes": cache.other_bytes,
            "hit_ratio": cache.hit_ratio(),
            "byte_hit_ratio": cache.byte_hit_ratio(),
        });
    }
    let hls = &st.hls;
    if hls.sessions > 0 {
        doc["hls"] = json!({
            "viewers": s.connections,
            "sessions": hls.sessions,
            "segments": hls.segments,
            "late_segments": hls.late_segments,
            "late_share": if hls.segments > 0 { hls.late_segments as f64 / hls.segments as f64 } else { 0.0 },
            "segment_download_us": histogram_json(&hls.segment_download_us),
            "startup_us": histogram_json(&hls.startup_us),
            "stall_us": histogram_json(&hls.stall_us),
        });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::CacheClass;
    use crate::stats::{Handshake, Stats};

    fn summary(stats: Stats) -> Summary {
        Summary {
            stats,
            duration_s: 1.0,
            rate_target: None,
            connections: 1,
            threads: 1,
            client_cpu_s: 0.0,
            all_requests: 0,
            warmup_s: 0.0,
        }
    }

    #[test]
    fn tls_and_cache_sections_appear_only_when_measured() {
        let plain = render(&summary(Stats::default()));
        assert!(plain.get("tls").is_none() && plain.get("cache").is_none(), "{plain}");
        assert_eq!(plain["connections_opened"], json!(0));

        let mut stats = Stats::default();
        stats.record_connection(Some(Handshake { ns: 3_000_000, resumed: false }));
        stats.record_connection(Some(Handshake { ns: 1_000_000, resumed: true }));
        stats.cache.record(CacheClass::Hit, 300);
        stats.cache.record(CacheClass::Miss, 100);
        let doc = render(&summary(stats.clone()));
        assert_eq!(doc["connections_opened"], json!(2));
        assert_eq!(doc["tls"]["handshakes"], json!(2));
        assert_eq!(doc["tls"]["full"], json!(1));
        assert_eq!(doc["tls"]["resumed"], json!(1));
        // 3 ms at three significant digits.
        let max = doc["tls"]["handshake_us"]["max"].as_u64().unwrap();
        assert!((3000..3004).contains(&max), "{doc}");
        assert_eq!(doc["cache"]["hits"], json!(1));
        assert_eq!(doc["cache"]["hit_ratio"], json!(0.5));
        assert_eq!(doc["cache"]["byte_hit_ratio"], json!(0.75));

        let text = super::super::text::render(&summary(stats));
        assert!(
            text.contains("tls: 2 handshakes, 1 full, 1 resumed (2 connections opened)"),
            "{text}"
        );
        assert!(text.contains("cache: 1 hits, 1 misses, 0 other of 2 responses with a cache field; hit ratio 50.00% by requests, 75.00% by bytes"), "{text}");
    }
}
