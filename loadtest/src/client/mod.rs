//! Worker threads: one pinned thread, one tokio-uring runtime, many connections.
//!
//! [`run`] starts `--threads` threads, each pinned to its own allowed CPU and
//! running its own io_uring. Connection (or viewer) `k` lives on thread
//! `k mod T`. A thread shares nothing with the others while the run lasts
//! except its [`LiveCounters`] slot, which only it writes; its [`Stats`] are
//! returned when its last connection ends and merged by the caller.
//!
//! Connections drive what the pure modules decide: [`load`] the request loop
//! of a URL list or catalog, [`viewer`] an HLS player ([`crate::hls`]); both
//! send through [`conn`] and count each request the same way ([`outcome`]).
//!
//! Every connection ends by itself: at its request share, or at the end of
//! the measured window (requests in flight then may still finish, bounded by
//! `--timeout`).

pub mod conn;
mod link;
pub mod load;
mod outcome;
pub mod timer;
pub mod viewer;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::live::{LiveCounters, LiveSnapshot};
use crate::stats::{ErrorKind, Handshake, Stats};
use crate::sys::{self, DiscardBuf};

/// What every task on one worker thread shares (single-threaded, no locks).
pub struct ThreadCtx {
    /// The run's configuration.
    pub cfg: Arc<Config>,
    /// This thread's measurements.
    pub stats: RefCell<Stats>,
    /// Address space `recv(MSG_TRUNC)` is pointed at (never touched), with `--discard`.
    pub discard_buf: Option<Rc<DiscardBuf>>,
    /// Time of schedule slot 0 (the start of the warm-up), ns.
    pub start_ns: u64,
    /// Requests intended before this are warm-up and not recorded, ns.
    pub record_from_ns: u64,
    /// No request is started at or after this, ns.
    pub end_ns: Option<u64>,
    /// This thread's index (its lane of the schedule).
    pub thread: usize,
    /// The lane's next unclaimed request (see `load`).
    pub next_ticket: Cell<u64>,
    /// This thread's TLS client configuration (its own session cache), for https origins.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    live: Arc<LiveCounters>,
    live_totals: Cell<LiveSnapshot>,
    /// A failed TLS handshake was logged (once per thread; later ones are only counted).
    tls_failure_logged: Cell<bool>,
}

impl ThreadCtx {
    /// Records one request's outcome and what its exchange saw, unless it belongs to the warm-up.
    pub fn record(
        &self,
        intended_ns: u64,
        sent_ns: u64,
        done_ns: u64,
        outcome: Result<u64, (ErrorKind, u64)>,
        seen: &Seen,
    ) {
        let mut live = self.live_totals.get();
        match outcome {
            Ok(bytes) => {
                live.requests += 1;
                live.bytes += bytes;
            }
            Err((_, bytes)) => {
                live.errors += 1;
                live.bytes += bytes;
            }
        }
        self.live_totals.set(live);
        self.live.publish(live);
        if intended_ns < self.record_from_ns {
            return;
        }
        let mut stats = self.stats.borrow_mut();
        match outcome {
            Ok(bytes) => stats.record_ok(intended_ns, sent_ns, done_ns, bytes),
            Err((kind, bytes)) => stats.record_error(kind, done_ns, bytes),
        }
        if let Some(handshake) = seen.connection {
            stats.record_connection(handshake);
        }
        if let Some((class, bytes)) = seen.cache {
            stats.cache.record(class, bytes);
        }
    }

    /// Logs why a TLS handshake with `authority` failed, the first time on this thread.
    pub fn log_tls_failure(&self, authority: &str, reason: &rustls::Error) {
        if !self.tls_failure_logged.replace(true) {
            eprintln!(
                "ringcast-load: TLS handshake with {authority} failed: {reason} \
                 (further failures on this thread are counted as `tls` errors only)"
            );
        }
    }

    /// Whether a request intended at `t_ns` is past the end of the run.
    pub fn past_end(&self, t_ns: u64) -> bool {
        self.end_ns.is_some_and(|end| t_ns >= end)
    }
}

/// What one request's exchange saw besides its outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// A connection was opened for it (with its TLS handshake, if any).
    pub connection: Option<Option<Handshake>>,
    /// The complete response's cache field and bytes.
    pub cache: Option<(crate::http::CacheClass, u64)>,
}

/// Shared inputs of a run, fixed before any thread starts.
#[derive(Clone)]
pub struct RunPlan {
    /// Configuration.
    pub cfg: Arc<Config>,
    /// Slot 0 of the schedule, ns on `CLOCK_MONOTONIC`.
    pub start_ns: u64,
    /// One live-counter slot per thread.
    pub live: Arc<[Arc<LiveCounters>]>,
}

impl RunPlan {
    /// A plan whose schedule starts a little after now, so threads are up first.
    pub fn new(cfg: Arc<Config>) -> Self {
        let start_ns = sys::monotonic_ns() + 20_000_000;
        let live = (0..cfg.threads).map(|_| Arc::new(LiveCounters::default())).collect();
        Self { cfg, start_ns, live }
    }

    /// Measured window start, ns.
    pub fn record_from_ns(&self) -> u64 {
        self.start_ns + duration_ns(self.cfg.warmup)
    }
}

/// A duration in whole nanoseconds (saturating at ~584 years).
pub fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The ring set-up: `IORING_SETUP_COOP_TASKRUN` (Linux 5.19) and `IORING_SETUP_SINGLE_ISSUER`
/// (Linux 6.0) when the kernel has them, the default set-up otherwise.
///
/// Without `COOP_TASKRUN`, every response that arrives while the thread is running makes the
/// kernel interrupt it with an inter-processor interrupt to run the receive's task work
/// (on a virtual machine, a VM exit each); with it, that work waits for the thread's next
/// system call, which in a load loop is microseconds away. Each ring is created and used by
/// its own thread only, which is what `SINGLE_ISSUER` promises.
fn ring_setup() -> io_uring::Builder {
    let mut ring = tokio_uring::uring_builder();
    ring.setup_coop_taskrun().setup_single_issuer();
    if ring.build(8).is_ok() {
        ring
    } else {
        tokio_uring::uring_builder()
    }
}

/// Runs worker thread `thread` of `plan` to completion and returns its stats.
pub fn run_thread(plan: &RunPlan, thread: usize, cpu: Option<usize>) -> std::io::Result<Stats> {
    if let Some(cpu) = cpu {
        sys::pin_current_thread(cpu)?;
    }
    let cfg = plan.cfg.clone();
    let record_from_ns = plan.record_from_ns();
    let ctx = Rc::new(ThreadCtx {
        cfg: cfg.clone(),
        stats: RefCell::new(Stats::default()),
        discard_buf: cfg.discard.then(|| Rc::new(DiscardBuf::new())),
        start_ns: plan.start_ns,
        record_from_ns,
        end_ns: cfg.duration.map(|d| record_from_ns + duration_ns(d)),
        thread,
        next_ticket: Cell::new(0),
        tls: cfg.tls.as_ref().map(|t| crate::tls::per_thread(&t.config, t.resume)),
        live: plan.live[thread].clone(),
        live_totals: Cell::new(LiveSnapshot::default()),
        tls_failure_logged: Cell::new(false),
    });
    let mine: Vec<usize> = (thread..cfg.connections).step_by(cfg.threads).collect();
    // Room for every connection's read and write plus timers, rounded to a power of two.
    let entries =
        u32::try_from((mine.len() * 4).next_power_of_two().clamp(256, 32768)).unwrap_or(4096);
    let task_ctx = ctx.clone();
    tokio_uring::builder().entries(entries).uring_builder(&ring_setup()).start(async move {
        let mut tasks = Vec::with_capacity(mine.len());
        for k in mine {
            let ctx = task_ctx.clone();
            tasks.push(tokio_uring::spawn(async move {
                if ctx.cfg.hls.is_some() {
                    viewer::run_viewer(ctx, k).await;
                } else {
                    load::run_connection(ctx, k).await;
                }
            }));
        }
        for t in tasks {
            // A panicking task is a bug; surface it rather than report partial numbers silently.
            if let Err(e) = t.await {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    });
    let stats = ctx.stats.borrow().clone();
    Ok(stats)
}
