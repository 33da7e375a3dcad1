//! Workers: one OS thread per CPU, pinned, each with its own runtime, listener and context.
//!
//! Start-up binds every listener in the main thread (the first one picks the port when the
//! address has port 0; the others join its `SO_REUSEPORT` group), then hands one listener to
//! each worker thread, so the `listening on` line is printed only once every worker accepts.
//! Shutdown: the main thread takes SIGINT/SIGTERM with `sigwait` and triggers one `Shutdown`
//! that wakes a task of each worker (no polling, see `shutdown`); a worker then wakes its idle
//! connections, accepts what is already queued on its listener and closes it (so a restart on
//! the same address resets no one, see `listener::close_gracefully`), and waits up to the drain
//! timeout for busy connections before its runtime ends. SIGUSR1 reopens the access log.
//!
//! Around the workers: the metrics listener (its own thread, reading the per-worker counters)
//! and the access-log writer (its own thread, fed whole buffers by the workers).

mod listener;
mod runtime;
mod shutdown;

use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context as _;
use tracing::{debug, error, info, warn};

use crate::access_log;
use crate::config::Config;
use crate::conn::record::{self, Observer};
use crate::conn::{self, Context};
use crate::fs::Root;
use crate::metrics::{self, Registry};
use crate::sys;

/// How often expired connection deadlines are fired: the resolution of the keep-alive and head
/// timeouts.
const DEADLINE_SWEEP: Duration = Duration::from_millis(100);

/// Runs the server until SIGINT or SIGTERM, then drains and returns.
pub fn run(config: Config) -> anyhow::Result<()> {
    sys::block_shutdown_signals().context("blocking SIGINT/SIGTERM/SIGUSR1")?;
    match sys::raise_nofile_limit() {
        Ok(n) => debug!(open_files = n, "descriptor limit"),
        Err(e) => warn!(error = %e, "could not raise the descriptor limit"),
    }
    let cpus = sys::allowed_cpus().context("reading the CPU affinity mask")?;
    let workers = if config.workers == 0 { cpus.len().max(1) } else { config.workers };
    let driver = runtime::choose(config.driver)?;
    let listeners = listener::bind_all(config.listen, workers)
        .with_context(|| format!("binding {}", config.listen))?;
    let local: SocketAddr = listeners[0].local_addr()?;
    let https = bind_https(&config, workers)?;
    let root = Root::open(&config.root)
        .with_context(|| format!("opening root {}", config.root.display()))?;
    let registry = Arc::new(Registry::new(workers));
    let edge = config.edge.as_ref().map(crate::edge::Shared::open).transpose()?;
    let purger = edge.clone().map(|e| -> metrics::server::Purger {
        Arc::new(move |target: &str, prefix: bool, soft: bool| e.purge(target, prefix, soft))
    });
    let metrics_addr = match config.metrics_listen {
        Some(addr) => Some(
            metrics::server::spawn(addr, Arc::clone(&registry), purger)
                .with_context(|| format!("binding the metrics listener {addr}"))?,
        ),
        None => None,
    };
    let access = access_log::Writer::start(&config.access_log, config.log_format)
        .with_context(|| format!("opening the access log {}", config.access_log))?;
    let config = Arc::new(config);
    let shutdown = Arc::new(shutdown::Shutdown::default());

    let settled = Settled {
        workers,
        driver,
        cpus: &cpus,
        listen: local,
        metrics: metrics_addr,
        https: https.as_ref(),
    };
    info!("starting with this configuration:\n{}", startup_block(&config, &settled));

    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
    let mut handles = Vec::with_capacity(workers);
    let (mut tls_listeners, shared_tls) = match &https {
        Some(h) => (h.take_listeners(), Some((Arc::clone(&h.tls), h.ktls, h.addrs[0].port()))),
        None => (Vec::new(), None),
    };
    for (id, std_listener) in listeners.into_iter().enumerate() {
        let tls_listeners = tls_listeners.get_mut(id).map(std::mem::take).unwrap_or_default();
        let worker_tls = shared_tls.clone();
        let cpu = cpus.get(id % cpus.len().max(1)).copied();
        let config = Arc::clone(&config);
        let shutdown = Arc::clone(&shutdown);
        let ready = ready_tx.clone();
        let root = root.try_clone().context("duplicating the root descriptor")?;
        let log = access.as_ref().map(|w| w.worker_log(id));
        let observer = Observer::new(Arc::clone(&registry), id, log, config.body_strategy);
        let edge = edge.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ringcast-w{id}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    if let Err(e) = sys::pin_current_thread(cpu) {
                        warn!(worker = id, cpu, error = %e, "could not pin worker");
                    }
                }
                let result = runtime::block_on(driver, || {
                    let listeners = Listeners { plain: std_listener, tls: tls_listeners };
                    let tls =
                        worker_tls.map(|(t, ktls, port)| crate::tls::WorkerTls::new(t, ktls, port));
                    let parts = WorkerParts { listeners, tls, edge };
                    worker_main(id, config, root, parts, observer, shutdown, ready.clone())
                });
                if let Err(e) = result {
                    let _ = ready.send(Err(format!("worker {id}: {e}")));
                }
            })
            .context("spawning a worker thread")?;
        handles.push(handle);
    }
    drop(ready_tx);
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => anyhow::bail!("{e}"),
            Err(_) => anyhow::bail!("a worker exited during start-up"),
        }
    }
    if let (Some(h), Some(every)) = (&https, config.tls_watch) {
        let tls = Arc::clone(&h.tls);
        std::thread::Builder::new()
            .name("ringcast-tls-watch".into())
            .spawn(move || watch_certificates(&tls, every))
            .context("spawning the certificate watcher")?;
    }
    let ip = local.ip();
    let shown = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{shown}:{}", local.port())?;
    for addr in https.iter().flat_map(|h| &h.addrs) {
        let ip = addr.ip();
        let shown = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
        writeln!(stdout, "listening on https://{shown}:{}", addr.port())?;
    }
    stdout.flush()?;
    drop(stdout);

    loop {
        let sig = sys::wait_shutdown_signal().context("waiting for a signal")?;
        if sig == libc::SIGUSR1 {
            match &access {
                Some(writer) => {
                    info!("SIGUSR1: reopening the access log");
                    writer.reopen();
                }
                None => info!("SIGUSR1: no access log to reopen"),
            }
            continue;
        }
        if sig == libc::SIGHUP {
            match &https {
                Some(h) => match h.tls.reload() {
                    Ok(()) => info!(names = ?h.tls.names(), "SIGHUP: TLS certificates reloaded"),
                    Err(e) => {
                        error!(error = %e, "SIGHUP: new TLS certificates refused; the old ones stay")
                    }
                },
                None => info!("SIGHUP: no TLS certificates to reload"),
            }
            continue;
        }
        info!(signal = sig, drain_timeout = ?config.drain_timeout, "shutting down: draining");
        break;
    }
    shutdown.trigger();
    for h in handles {
        if h.join().is_err() {
            error!("a worker panicked");
        }
    }
    if let Some(writer) = access {
        writer.finish();
    }
    info!("stopped");
    Ok(())
}

/// Reloads the TLS certificates whenever their files change (`--tls-watch`), for the life of the
/// process. The files are compared with what the load in force read (recorded by the load
/// itself, before reading), so a change made before this thread first runs is not missed. A
/// change seen in the middle of a renewal (the certificate replaced, the key not yet) fails the
/// checks and is logged; the next change, once both files are in place, succeeds.
fn watch_certificates(tls: &crate::tls::Tls, every: Duration) {
    loop {
        std::thread::sleep(every);
        if !tls.files_changed() {
            continue;
        }
        match tls.reload() {
            Ok(()) => {
                info!(names = ?tls.names(), "certificate files changed: TLS certificates reloaded")
            }
            Err(e) => {
                error!(error = %e, "certificate files changed: new TLS certificates refused; the old ones stay")
            }
        }
    }
}

/// What start-up decided beyond the configuration.
struct Settled<'a> {
    workers: usize,
    driver: runtime::Selected,
    cpus: &'a [usize],
    listen: SocketAddr,
    metrics: Option<SocketAddr>,
    https: Option<&'a Https>,
}

/// The HTTPS side, when configured: the shared TLS state and the listeners.
struct Https {
    tls: Arc<crate::tls::Tls>,
    /// Whether connections hand their keys to the kernel.
    ktls: bool,
    /// Why not, when they do not.
    ktls_note: String,
    /// The bound addresses, one per `--tls-listen`.
    addrs: Vec<SocketAddr>,
    /// Per worker, one listener per address.
    listeners: std::cell::RefCell<Vec<Vec<std::net::TcpListener>>>,
}

impl Https {
    fn take_listeners(&self) -> Vec<Vec<std::net::TcpListener>> {
        std::mem::take(&mut *self.listeners.borrow_mut())
    }
}

/// Binds every `--tls-listen` address once per worker, decides kTLS and loads the certificates.
fn bind_https(config: &Config, workers: usize) -> anyhow::Result<Option<Https>> {
    if config.tls_listen.is_empty() {
        return Ok(None);
    }
    let (ktls, ktls_note) = match config.ktls {
        crate::tls::KtlsMode::Off => (false, "off".to_string()),
        mode => {
            let support = crate::tls::ktls::probe();
            let ktls = crate::tls::ktls::resolve(mode, support).map_err(anyhow::Error::msg)?;
            (ktls, crate::tls::ktls::describe(mode, support))
        }
    };
    let tls = crate::tls::Tls::new(config.tls_certs.clone(), ktls)
        .context("loading the TLS certificates")?;
    let mut per_worker: Vec<Vec<std::net::TcpListener>> =
        (0..workers).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    for addr in &config.tls_listen {
        let bound =
            listener::bind_all(*addr, workers).with_context(|| format!("binding {addr}"))?;
        addrs.push(bound[0].local_addr()?);
        for (w, l) in bound.into_iter().enumerate() {
            per_worker[w].push(l);
        }
    }
    Ok(Some(Https {
        tls: Arc::new(tls),
        ktls,
        ktls_note,
        addrs,
        listeners: std::cell::RefCell::new(per_worker),
    }))
}

/// One worker's listening sockets.
struct Listeners {
    plain: std::net::TcpListener,
    tls: Vec<std::net::TcpListener>,
}

/// Whether a listener closing at a restart hands its queue to the new process.
fn restart_handover() -> String {
    match std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req").map(|v| v.trim().to_owned()) {
        Ok(v) if v == "1" => "net.ipv4.tcp_migrate_req = 1: queued connections move to the new process".into(),
        Ok(v) => format!(
            "net.ipv4.tcp_migrate_req = {v}: a handshake caught by a listener's close is reset (set 1, see docs/operations.md)"
        ),
        Err(_) => "net.ipv4.tcp_migrate_req unavailable (Linux 5.14+)".into(),
    }
}

/// The configuration the server settled on, one aligned line per subject.
fn startup_block(c: &Config, s: &Settled<'_>) -> String {
    let pinned: Vec<String> = (0..s.workers)
        .map(|i| s.cpus.get(i % s.cpus.len().max(1)).map_or("-".into(), |c| c.to_string()))
        .collect();
    let open_files = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines().find(|l| l.starts_with("Max open files")).map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} soft, {} hard", f.get(3).unwrap_or(&"?"), f.get(4).unwrap_or(&"?"))
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let access = match &c.access_log {
        access_log::Target::Off => "off".to_string(),
        t => format!("{t} ({:?})", c.log_format).to_lowercase(),
    };
    let rows = [
        ("workers", format!("{} pinned to CPUs [{}]", s.workers, pinned.join(", "))),
        ("driver", format!("{:?} (asked: {:?})", s.driver, c.driver).to_lowercase()),
        ("listen", format!("{} (SO_REUSEPORT)", s.listen)),
        ("metrics", s.metrics.map_or("off".into(), |a| format!("http://{a}/metrics"))),
        (
            "https",
            s.https.map_or("off".into(), |h| {
                let addrs: Vec<String> = h.addrs.iter().map(ToString::to_string).collect();
                format!(
                    "{} (SO_REUSEPORT), names [{}]{}, redirect-http {}",
                    addrs.join(", "),
                    h.tls.names().join(", "),
                    if c.tls_certs.len() > 1 { " chosen by SNI" } else { "" },
                    if c.redirect_http { "on" } else { "off" }
                ) + &c.tls_watch.map_or(String::new(), |d| format!(", files watched every {d:?}"))
            }),
        ),
        ("ktls", s.https.map_or("-".into(), |h| h.ktls_note.clone())),
        ("access log", access),
        ("root", c.root.display().to_string()),
        (
            "edge",
            c.edge.as_ref().map_or("off".into(), |e| {
                format!(
                    "origin {} ({}), cache {} ({} bytes), slices of {} bytes",
                    e.origin_host,
                    e.origin,
                    e.cache_dir.display(),
                    e.cache_size,
                    e.slice_size
                )
            }),
        ),
        ("config file", c.config_file.as_ref().map_or("none".into(), |p| p.display().to_string())),
        (
            "timeouts",
            format!(
                "header {:?}, keep-alive {:?}, send {:?}, drain {:?}",
                c.header_timeout, c.keepalive_timeout, c.send_timeout, c.drain_timeout
            ),
        ),
        (
            "limits",
            format!(
                "{} connections per worker, head {} B, target {} B, {} ranges, discard {} B",
                c.max_connections,
                c.max_header_bytes,
                c.max_uri_bytes,
                c.max_ranges,
                c.max_discard_bytes
            ),
        ),
        ("open files", open_files),
        ("restarts", restart_handover()),
        (
            "bodies",
            format!(
                "{:?}, precompressed {}",
                c.body_strategy,
                if c.precompressed { "on" } else { "off" }
            )
            .to_lowercase(),
        ),
        (
            "file cache",
            format!(
                "{} entries per worker, revalidated every {:?}, contents of files up to {} B within {} B",
                c.file_cache.max_entries,
                c.file_cache.revalidate,
                c.file_cache.memory_max_file,
                c.file_cache.memory_budget
            ),
        ),
        (
            "files",
            format!(
                "index {}, dotfiles {}, cors {}",
                c.index,
                if c.serve_dotfiles { "served" } else { "hidden" },
                if c.cors.is_some() { "on" } else { "off" }
            ),
        ),
    ];
    let mut out = String::new();
    for (name, value) in rows {
        out.push_str(&format!("  {name:<12} {value}\n"));
    }
    out.pop();
    out
}

/// What a worker is given besides its configuration: its listeners, TLS and edge state.
struct WorkerParts {
    listeners: Listeners,
    tls: Option<crate::tls::WorkerTls>,
    edge: Option<Arc<crate::edge::Shared>>,
}

#[allow(clippy::too_many_arguments, reason = "one call site; each value is moved in once")]
async fn worker_main(
    id: usize,
    config: Arc<Config>,
    root: Root,
    parts: WorkerParts,
    observer: Observer,
    shutdown: Arc<shutdown::Shutdown>,
    ready: mpsc::Sender<Result<usize, String>>,
) {
    let WorkerParts { listeners, tls, edge } = parts;
    let listener = match listener::Listener::new(listeners.plain, false) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("worker {id}: listener: {e}")));
            return;
        }
    };
    let mut tls_listeners = Vec::with_capacity(listeners.tls.len());
    for l in listeners.tls {
        match listener::Listener::new(l, true) {
            Ok(l) => tls_listeners.push(l),
            Err(e) => {
                let _ = ready.send(Err(format!("worker {id}: HTTPS listener: {e}")));
                return;
            }
        }
    }
    let observer = Rc::new(observer);
    record::install(Rc::clone(&observer));
    if observer.logs() {
        monoio::spawn(flush_access_log(Rc::clone(&observer)));
    }
    let mut ctx = Context::new(Arc::clone(&config), id, root);
    if let Some(tls) = tls {
        ctx = ctx.with_tls(tls);
    }
    if let Some(edge) = edge {
        ctx = ctx.with_edge(edge);
    }
    let ctx = Rc::new(ctx);
    monoio::spawn(sweep_deadlines(Rc::clone(&ctx)));
    let _ = ready.send(Ok(id));
    drop(ready);

    let (stop, stop_handle) = listener::stop_switch();
    monoio::spawn(async move {
        shutdown.wait().await;
        stop.stop();
    });
    let tls_loops: Vec<_> = tls_listeners
        .into_iter()
        .map(|l| {
            let (ctx, stop) = (Rc::clone(&ctx), stop_handle.clone());
            monoio::spawn(async move {
                listener::accept_loop(&l, &ctx, stop).await;
                l
            })
        })
        .collect();
    listener::accept_loop(&listener, &ctx, stop_handle).await;
    let mut stopped = Vec::with_capacity(tls_loops.len());
    for handle in tls_loops {
        stopped.push(handle.await);
    }
    ctx.start_drain();
    let mut queued = listener::close_gracefully(listener, &ctx).await;
    for l in stopped {
        queued += listener::close_gracefully(l, &ctx).await;
    }
    debug!(worker = id, queued, "listener closed");
    let deadline = monoio::time::Instant::now() + config.drain_timeout;
    loop {
        // Sleep first: connections just taken from the queue are spawned but count themselves
        // active only once their task first runs, which a sleep guarantees.
        monoio::time::sleep(Duration::from_millis(20)).await;
        if ctx.active.get() == 0 || monoio::time::Instant::now() >= deadline {
            break;
        }
    }
    let left = ctx.active.get();
    if left > 0 {
        warn!(worker = id, connections = left, "drain timeout: closing remaining connections");
    } else {
        debug!(worker = id, "drained");
    }
    observer.flush_log_blocking();
    record::uninstall();
}

/// Hands this worker's access-log buffer to the writer at least once a second, forever.
async fn flush_access_log(observer: Rc<Observer>) {
    loop {
        monoio::time::sleep(access_log::FLUSH_INTERVAL).await;
        observer.flush_log();
    }
}

/// Fires expired keep-alive and head deadlines (see `conn::deadline`), forever; parked while no
/// connection waits.
async fn sweep_deadlines(ctx: Rc<Context>) {
    loop {
        ctx.deadlines.until_armed().await;
        monoio::time::sleep(DEADLINE_SWEEP).await;
        ctx.deadlines.sweep(monoio::time::Instant::now());
    }
}

/// Spawns the task serving one connection (HTTPS when accepted on a TLS listener).
fn spawn_connection(
    ctx: &Rc<Context>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    tls: bool,
) {
    if tls {
        monoio::spawn(crate::tls::serve(Rc::clone(ctx), stream, peer));
    } else {
        monoio::spawn(conn::serve(Rc::clone(ctx), stream, peer));
    }
}
