//! Workers: one OS thread per CPU, pinned, each with its own runtime, listener and context.
//!
//! Start-up binds every listener in the main thread (the first one picks the port when the
//! address has port 0; the others join its `SO_REUSEPORT` group), then hands one listener to
//! each worker thread, so the `listening on` line is printed only once every worker accepts.
//! Shutdown: the main thread takes SIGINT/SIGTERM with `sigwait`, sets one flag that each worker
//! polls off the request path; a worker then closes its listener, wakes its idle connections
//! and waits up to the drain timeout for busy ones before its runtime ends.

mod listener;
mod runtime;

use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context as _;
use monoio::net::TcpListener;
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::conn::{self, Context};
use crate::fs::Root;
use crate::sys;

/// How often expired connection deadlines are fired: the resolution of the keep-alive and head
/// timeouts.
const DEADLINE_SWEEP: Duration = Duration::from_millis(100);

/// How often a worker looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// Runs the server until SIGINT or SIGTERM, then drains and returns.
pub fn run(config: Config) -> anyhow::Result<()> {
    sys::block_shutdown_signals().context("blocking SIGINT/SIGTERM")?;
    let cpus = sys::allowed_cpus().context("reading the CPU affinity mask")?;
    let workers = if config.workers == 0 { cpus.len().max(1) } else { config.workers };
    let driver = runtime::choose(config.driver)?;
    let listeners = listener::bind_all(config.listen, workers)
        .with_context(|| format!("binding {}", config.listen))?;
    let local: SocketAddr = listeners[0].local_addr()?;
    let root = Root::open(&config.root)
        .with_context(|| format!("opening root {}", config.root.display()))?;
    let config = Arc::new(config);
    let shutdown = Arc::new(AtomicBool::new(false));

    info!(
        workers,
        driver = ?driver,
        cpus = ?cpus,
        root = %config.root.display(),
        listen = %local,
        header_timeout = ?config.header_timeout,
        keepalive_timeout = ?config.keepalive_timeout,
        send_timeout = ?config.send_timeout,
        max_connections_per_worker = config.max_connections,
        body_strategy = ?config.body_strategy,
        "starting"
    );

    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
    let mut handles = Vec::with_capacity(workers);
    for (id, std_listener) in listeners.into_iter().enumerate() {
        let cpu = cpus.get(id % cpus.len().max(1)).copied();
        let config = Arc::clone(&config);
        let shutdown = Arc::clone(&shutdown);
        let ready = ready_tx.clone();
        let root = root.try_clone().context("duplicating the root descriptor")?;
        let handle = std::thread::Builder::new()
            .name(format!("ringcast-w{id}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    if let Err(e) = sys::pin_current_thread(cpu) {
                        warn!(worker = id, cpu, error = %e, "could not pin worker");
                    }
                }
                let result = runtime::block_on(driver, || {
                    worker_main(id, config, root, std_listener, shutdown, ready.clone())
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
    let ip = local.ip();
    let shown = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{shown}:{}", local.port())?;
    stdout.flush()?;
    drop(stdout);

    let sig = sys::wait_shutdown_signal().context("waiting for a signal")?;
    info!(signal = sig, drain_timeout = ?config.drain_timeout, "shutting down: draining");
    shutdown.store(true, Ordering::Release);
    for h in handles {
        if h.join().is_err() {
            error!("a worker panicked");
        }
    }
    info!("stopped");
    Ok(())
}

async fn worker_main(
    id: usize,
    config: Arc<Config>,
    root: Root,
    std_listener: std::net::TcpListener,
    shutdown: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<usize, String>>,
) {
    let listener = match TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("worker {id}: listener: {e}")));
            return;
        }
    };
    let ctx = Rc::new(Context::new(Arc::clone(&config), id, root));
    monoio::spawn(sweep_deadlines(Rc::clone(&ctx)));
    let _ = ready.send(Ok(id));
    drop(ready);

    let stop = async {
        while !shutdown.load(Ordering::Acquire) {
            monoio::time::sleep(SHUTDOWN_POLL).await;
        }
    };
    monoio::select! {
        _ = stop => {}
        _ = listener::accept_loop(&listener, &ctx) => {}
    }
    drop(listener);
    ctx.start_drain();
    let deadline = monoio::time::Instant::now() + config.drain_timeout;
    while ctx.active.get() > 0 && monoio::time::Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = ctx.active.get();
    if left > 0 {
        warn!(worker = id, connections = left, "drain timeout: closing remaining connections");
    } else {
        debug!(worker = id, "drained");
    }
}

/// Fires expired keep-alive and head deadlines (see `conn::deadline`), forever.
async fn sweep_deadlines(ctx: Rc<Context>) {
    loop {
        monoio::time::sleep(DEADLINE_SWEEP).await;
        ctx.deadlines.sweep(monoio::time::Instant::now());
    }
}

/// Spawns the task serving one connection.
fn spawn_connection(ctx: &Rc<Context>, stream: monoio::net::TcpStream, peer: SocketAddr) {
    monoio::spawn(conn::serve(Rc::clone(ctx), stream, peer));
}
