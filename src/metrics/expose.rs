//! The Prometheus text exposition format (version 0.0.4) of a [`Registry`].
//!
//! Every series is written once per worker (`worker="0"`, `worker="1"`, ...) and only per
//! worker: the Prometheus convention leaves aggregation to the query (`sum without (worker)
//! (x)`), so a sum over every series of a family counts each event exactly once.

use std::fmt::Write as _;

use super::{
    Counter, Registry, WorkerMetrics, BODY_STRATEGIES, CONN_ERRORS, DURATION_BUCKETS_MICROS,
    METHODS, STATUS_CLASSES, TLS_RECORD_LAYERS,
};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes every metric of `registry` into `out`.
pub fn render(registry: &Registry, out: &mut String) {
    let workers = registry.workers();
    let labels: Vec<String> = (0..workers.len()).map(|i| i.to_string()).collect();

    family(
        out,
        "ringcast_requests_total",
        "counter",
        "Responses sent, by method and status class.",
    );
    for (m, method) in METHODS.iter().enumerate() {
        for (c, class) in STATUS_CLASSES.iter().enumerate() {
            let extra = format!("method=\"{method}\",status=\"{class}\"");
            series(out, "ringcast_requests_total", &extra, workers, &labels, |w| &w.requests[m][c]);
        }
    }

    family(out, "ringcast_sent_bytes_total", "counter", "Bytes written to client sockets.");
    series(out, "ringcast_sent_bytes_total", "", workers, &labels, |w| &w.sent_bytes);

    family(out, "ringcast_body_strategy_total", "counter", "Responses by how their body was sent.");
    for (s, name) in BODY_STRATEGIES.iter().enumerate() {
        let extra = format!("strategy=\"{name}\"");
        series(out, "ringcast_body_strategy_total", &extra, workers, &labels, |w| {
            &w.body_strategy[s]
        });
    }

    family(out, "ringcast_connections_accepted_total", "counter", "Connections accepted.");
    series(out, "ringcast_connections_accepted_total", "", workers, &labels, |w| &w.accepted);

    family(out, "ringcast_connections_active", "gauge", "Connections open now.");
    series(out, "ringcast_connections_active", "", workers, &labels, |w| &w.active);

    family(
        out,
        "ringcast_connection_errors_total",
        "counter",
        "Connections ended by an error, by kind.",
    );
    for (k, (_, kind)) in CONN_ERRORS.iter().enumerate() {
        let extra = format!("kind=\"{kind}\"");
        series(out, "ringcast_connection_errors_total", &extra, workers, &labels, |w| {
            &w.conn_errors[k]
        });
    }

    for (name, help, pick) in [
        (
            "ringcast_file_cache_hits_total",
            "Open-file cache hits.",
            (|w| &w.file_cache_hits) as fn(&WorkerMetrics) -> &Counter,
        ),
        ("ringcast_file_cache_misses_total", "Open-file cache misses.", |w| &w.file_cache_misses),
        ("ringcast_file_cache_evictions_total", "Open-file cache evictions.", |w| {
            &w.file_cache_evictions
        }),
        (
            "ringcast_access_log_dropped_bytes_total",
            "Access-log bytes dropped because the writer fell behind.",
            |w| &w.access_log_dropped_bytes,
        ),
    ] {
        family(out, name, "counter", help);
        series(out, name, "", workers, &labels, pick);
    }

    family(
        out,
        "ringcast_tls_connections_total",
        "counter",
        "TLS connections past the handshake, by record layer (user: rustls; kernel: kTLS).",
    );
    for (i, layer) in TLS_RECORD_LAYERS.iter().enumerate() {
        let extra = format!("record_layer=\"{layer}\"");
        series(out, "ringcast_tls_connections_total", &extra, workers, &labels, |w| {
            &w.tls_connections[i]
        });
    }

    family(
        out,
        "ringcast_edge_requests_total",
        "counter",
        "Edge mode: requests by how the cache answered them.",
    );
    for (k, name) in super::CACHE_OUTCOMES.iter().enumerate() {
        let extra = format!("cache=\"{name}\"");
        series(out, "ringcast_edge_requests_total", &extra, workers, &labels, |w| {
            &w.cache_outcomes[k]
        });
    }
    for (name, help, pick) in [
        (
            "ringcast_edge_hit_bytes_total",
            "Edge mode: body bytes sent from the cache on hits.",
            (|w| &w.cache_hit_bytes) as fn(&WorkerMetrics) -> &Counter,
        ),
        ("ringcast_origin_requests_total", "Edge mode: requests sent to the origin.", |w| {
            &w.origin_requests
        }),
        ("ringcast_origin_bytes_total", "Edge mode: body bytes received from the origin.", |w| {
            &w.origin_bytes
        }),
        ("ringcast_origin_errors_total", "Edge mode: origin requests that failed.", |w| {
            &w.origin_errors
        }),
    ] {
        family(out, name, "counter", help);
        series(out, name, "", workers, &labels, pick);
    }

    histogram(out, workers, &labels);
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One line per worker.
fn series(
    out: &mut String,
    name: &str,
    extra: &str,
    workers: &[WorkerMetrics],
    labels: &[String],
    pick: impl Fn(&WorkerMetrics) -> &Counter,
) {
    let sep = if extra.is_empty() { "" } else { "," };
    for (w, label) in workers.iter().zip(labels) {
        let v = pick(w).get();
        let _ = writeln!(out, "{name}{{worker=\"{label}\"{sep}{extra}}} {v}");
    }
}

/// The request-duration histogram, per worker.
fn histogram(out: &mut String, workers: &[WorkerMetrics], labels: &[String]) {
    const NAME: &str = "ringcast_request_duration_seconds";
    family(
        out,
        NAME,
        "histogram",
        "Time from a parsed request head to its last byte handed to the socket.",
    );
    for (w, label) in workers.iter().zip(labels) {
        let buckets: Vec<u64> = w.duration_buckets.iter().map(Counter::get).collect();
        histogram_rows(out, NAME, label, &buckets, w.duration_sum_micros.get());
    }
}

fn histogram_rows(out: &mut String, name: &str, worker: &str, buckets: &[u64], sum_micros: u64) {
    let mut cumulative = 0u64;
    for (i, count) in buckets.iter().enumerate() {
        cumulative = cumulative.wrapping_add(*count);
        let le = match DURATION_BUCKETS_MICROS.get(i) {
            Some(&b) => seconds(b),
            None => "+Inf".to_string(),
        };
        let _ = writeln!(out, "{name}_bucket{{worker=\"{worker}\",le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum{{worker=\"{worker}\"}} {}", seconds(sum_micros));
    let _ = writeln!(out, "{name}_count{{worker=\"{worker}\"}} {cumulative}");
}

/// Microseconds as decimal seconds, exactly (no float rounding): `2500` → `0.0025`.
fn seconds(micros: u64) -> String {
    let whole = micros / 1_000_000;
    let frac = micros % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seconds_are_exact() {
        let cases =
            [(0, "0"), (500, "0.0005"), (2_500, "0.0025"), (1_000_000, "1"), (1_250_000, "1.25")];
        for (micros, want) in cases {
            assert_eq!(seconds(micros), want);
        }
    }

    /// Per-worker series only: a sum over every series of a family counts each event once.
    #[test]
    fn per_worker_only() {
        let r = Registry::new(2);
        r.worker(0).response(0, 200, 100, 1, Duration::from_micros(700));
        r.worker(1).response(0, 200, 50, 3, Duration::from_micros(700));
        r.worker(1).response(3, 404, 7, 1, Duration::from_secs(100));
        let mut out = String::new();
        render(&r, &mut out);
        for line in [
            "ringcast_requests_total{worker=\"0\",method=\"GET\",status=\"2xx\"} 1",
            "ringcast_requests_total{worker=\"1\",method=\"GET\",status=\"2xx\"} 1",
            "ringcast_requests_total{worker=\"1\",method=\"other\",status=\"4xx\"} 1",
            "ringcast_sent_bytes_total{worker=\"1\"} 57",
            "ringcast_body_strategy_total{worker=\"1\",strategy=\"sendfile\"} 1",
            "ringcast_request_duration_seconds_bucket{worker=\"1\",le=\"0.0005\"} 0",
            "ringcast_request_duration_seconds_bucket{worker=\"1\",le=\"0.001\"} 1",
            "ringcast_request_duration_seconds_bucket{worker=\"1\",le=\"60\"} 1",
            "ringcast_request_duration_seconds_bucket{worker=\"1\",le=\"+Inf\"} 2",
            "ringcast_request_duration_seconds_sum{worker=\"1\"} 100.0007",
            "ringcast_request_duration_seconds_count{worker=\"0\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line}\n{out}");
        }
        assert!(!out.contains("worker=\"all\""), "an aggregate series is exported\n{out}");
        let requests: u64 = out
            .lines()
            .filter(|l| l.starts_with("ringcast_requests_total{"))
            .map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
            .sum();
        assert_eq!(requests, 3, "the sum over all series counts each response once\n{out}");
    }
}
