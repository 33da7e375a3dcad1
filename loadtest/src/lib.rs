//! ringcast-load: an open-loop HTTP/1.1 load generator that measures tail latency honestly.
//!
//! Closed-loop tools wait for each response before sending the next request,
//! so a server stall delays the requests that would have measured it
//! (coordinated omission). With `--rate`, ringcast-load sends on a fixed
//! schedule and measures latency from each request's *intended* send time,
//! reporting the service time from the actual send beside it; the achieved
//! rate and any requests that fell behind schedule are reported, not hidden.
//!
//! Layout, following the data flow:
//! - [`config`]: command line → validated [`config::Config`]; [`probe`] learns file sizes for ranges.
//! - [`client`]: pinned worker threads, one tokio-uring runtime each; the per-connection
//!   request loop and the HLS viewer, the connection (plain or TLS), body discarding and
//!   precise timers.
//! - [`schedule`], [`workload`], [`zipf`], [`hls`]: what to send and when (pure logic).
//! - [`tls`]: the rustls client configuration for `https://` (trust, resumption).
//! - [`http`], [`url`]: HTTP/1.1 and URL handling without I/O.
//! - [`stats`], [`live`], [`report`], [`plot`]: measurements and their outputs.
//! - [`sys`]: every raw system call; the only module with `unsafe`.

pub mod client;
pub mod config;
pub mod hls;
pub mod http;
pub mod live;
pub mod plot;
pub mod probe;
pub mod report;
pub mod schedule;
pub mod stats;
pub mod sys;
pub mod tls;
pub mod url;
pub mod workload;
pub mod zipf;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use config::Config;
use live::LiveSnapshot;
use report::Summary;
use stats::Stats;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The start-up size probe failed.
    #[error("{0}")]
    Probe(String),
    /// A worker thread could not start or failed.
    #[error("worker thread {thread}: {source}")]
    Thread {
        /// Thread index.
        thread: usize,
        /// What failed.
        source: std::io::Error,
    },
}

/// Runs the load described by `cfg` and returns the merged results.
///
/// Prints one progress line a second to stderr when `cfg.progress` is set.
pub fn run(mut cfg: Config) -> Result<Summary, RunError> {
    if cfg.workload.range_size.is_some() {
        let tls = cfg.tls.as_ref().map(|t| t.config.clone());
        probe::probe_sizes(&mut cfg.workload, cfg.timeout, tls.as_ref())
            .map_err(RunError::Probe)?;
    }
    let cfg = Arc::new(cfg);
    let cpus = sys::allowed_cpus().unwrap_or_default();
    let cpu_before = sys::cpu_time_ns();
    let plan = client::RunPlan::new(cfg.clone());
    let (done_tx, done_rx) = mpsc::channel::<(usize, std::io::Result<Stats>)>();
    let mut handles = Vec::new();
    for thread in 0..cfg.threads {
        let plan = plan.clone();
        let tx = done_tx.clone();
        let cpu = (!cpus.is_empty()).then(|| cpus[thread % cpus.len()]);
        let handle = std::thread::Builder::new()
            .name(format!("load-{thread}"))
            .spawn(move || {
                let result = client::run_thread(&plan, thread, cpu);
                let _ = tx.send((thread, result));
            })
            .map_err(|source| RunError::Thread { thread, source })?;
        handles.push(handle);
    }
    drop(done_tx);

    let mut merged = Stats::default();
    let mut finished = 0;
    let mut first_error = None;
    let mut previous = LiveSnapshot::default();
    let mut tick = 1u64;
    while finished < cfg.threads {
        let next_tick_ns = plan.start_ns + tick * 1_000_000_000;
        let wait = Duration::from_nanos(next_tick_ns.saturating_sub(sys::monotonic_ns()));
        match done_rx.recv_timeout(wait) {
            Ok((thread, result)) => {
                finished += 1;
                match result {
                    Ok(stats) => merged.merge(&stats),
                    Err(source) => {
                        first_error.get_or_insert(RunError::Thread { thread, source });
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now =
                    plan.live.iter().map(|l| l.read()).fold(LiveSnapshot::default(), |a, b| {
                        LiveSnapshot {
                            requests: a.requests + b.requests,
                            errors: a.errors + b.errors,
                            bytes: a.bytes + b.bytes,
                        }
                    });
                if cfg.progress {
                    eprintln!(
                        "[{tick:>4}s] {:>9} req/s {:>10.2} MB/s {:>7} errors",
                        now.requests - previous.requests,
                        (now.bytes - previous.bytes) as f64 / 1e6,
                        now.errors - previous.errors
                    );
                }
                previous = now;
                tick += 1;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for handle in handles {
        // A worker panic already printed its message; report it as a failed thread.
        if handle.join().is_err() {
            first_error.get_or_insert(RunError::Thread {
                thread: usize::MAX,
                source: std::io::Error::other("worker thread panicked"),
            });
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let client_cpu_s = (sys::cpu_time_ns() - cpu_before) as f64 / 1e9;
    let all_requests = plan
        .live
        .iter()
        .map(|l| {
            let s = l.read();
            s.requests + s.errors
        })
        .sum();
    let record_from = plan.record_from_ns();
    let duration_s = if merged.last_done_ns > record_from {
        (merged.last_done_ns - record_from) as f64 / 1e9
    } else {
        0.0
    };
    Ok(Summary {
        stats: merged,
        duration_s,
        rate_target: cfg.rate,
        connections: cfg.connections,
        threads: cfg.threads,
        client_cpu_s,
        all_requests,
        warmup_s: cfg.warmup.as_secs_f64(),
    })
}
