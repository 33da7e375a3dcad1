//! Listening sockets: one per worker in one `SO_REUSEPORT` group, the accept loop, and how a
//! worker stops listening at shutdown without resetting a connection the kernel already
//! accepted for it (so a new ringcast on the same address can take over: see
//! docs/operations.md, "Upgrade without dropping viewers").

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use monoio::io::{CancelHandle, Canceller};
use monoio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{error, warn};

use crate::conn::Context;

/// Pending-connection queue per listener (capped by `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Pause after `EMFILE`/`ENFILE` on accept before trying again: existing connections keep
/// being served, and the loop does not spin while no descriptor is free.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds `count` listeners to `addr` with `SO_REUSEPORT`; with port 0 the first picks the port
/// and the rest join it.
pub fn bind_all(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let l = bind_one(addr)?;
        addr = l.local_addr()?;
        listeners.push(l);
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// One worker's listening socket, and how accepting on it stops.
///
/// Stopping must not lose a connection. An accept in flight on io_uring holds a reference to
/// the socket and may complete with a connection at any moment; dropping it would leave the
/// socket open (and in the `SO_REUSEPORT` group) until the kernel finishes the operation, and
/// throw away the connection it returns. So the accept is cancelled (`IORING_OP_ASYNC_CANCEL`)
/// and then awaited to its end: it returns either `ECANCELED` or a connection, which is served.
pub struct Listener {
    /// The socket as the runtime sees it.
    socket: TcpListener,
    /// The same socket (a duplicate descriptor), non-blocking, to empty the queue at the end.
    std: std::net::TcpListener,
    /// Connections speak TLS.
    tls: bool,
}

impl Listener {
    /// Wraps a listener bound by [`bind_all`]; with `tls`, its connections speak HTTPS.
    pub fn new(socket: std::net::TcpListener, tls: bool) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let std = socket.try_clone()?;
        Ok(Self { socket: TcpListener::from_std(socket)?, std, tls })
    }
}

/// Tells an [`accept_loop`] to stop.
pub struct Stop {
    canceller: Canceller,
    stopped: Rc<Cell<bool>>,
}

/// What an [`accept_loop`] watches.
#[derive(Clone)]
pub struct StopHandle {
    handle: CancelHandle,
    stopped: Rc<Cell<bool>>,
}

/// A stop switch and the handle the accept loop watches.
pub fn stop_switch() -> (Stop, StopHandle) {
    let canceller = Canceller::new();
    let stopped = Rc::new(Cell::new(false));
    let handle = StopHandle { handle: canceller.handle(), stopped: Rc::clone(&stopped) };
    (Stop { canceller, stopped }, handle)
}

impl Stop {
    /// Stops the loop: cancels its accept in flight (which still completes) and ends it.
    pub fn stop(self) {
        self.stopped.set(true);
        let _ = self.canceller.cancel();
    }
}

/// Accepts until stopped, spawning one task per connection. Returns once no accept is in
/// flight any more.
pub async fn accept_loop(listener: &Listener, ctx: &Rc<Context>, stop: StopHandle) {
    let max = ctx.config.max_connections;
    let mut full_logged = false;
    while !stop.stopped.get() {
        if ctx.active.get() >= max {
            // At the per-worker limit: leave new connections in the kernel's queue (or to the
            // other workers' listeners) until one of ours closes.
            if !full_logged {
                warn!(worker = ctx.worker_id, max, "connection limit reached; pausing accept");
                full_logged = true;
            }
            monoio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        full_logged = false;
        match listener.socket.cancelable_accept(stop.handle.clone()).await {
            Ok((stream, peer)) => super::spawn_connection(ctx, stream, peer, listener.tls),
            Err(_) if stop.stopped.get() => return,
            Err(e) => match e.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    crate::conn::record::accept_failed();
                    error!(worker = ctx.worker_id, error = %e, "accept: out of resources; backing off");
                    monoio::time::sleep(ACCEPT_BACKOFF).await;
                }
                // The peer gave up before we accepted, or a transient network error.
                Some(
                    libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR | libc::EAGAIN,
                ) => {}
                _ => {
                    crate::conn::record::accept_failed();
                    error!(worker = ctx.worker_id, error = %e, "accept failed");
                    monoio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}

fn spawn(ctx: &Rc<Context>, stream: std::net::TcpStream, peer: SocketAddr, tls: bool) {
    match monoio::net::TcpStream::from_std(stream) {
        Ok(stream) => super::spawn_connection(ctx, stream, peer, tls),
        Err(e) => {
            crate::conn::record::accept_failed();
            error!(worker = ctx.worker_id, error = %e, "registering an accepted connection failed");
        }
    }
}

/// Stops listening without resetting anyone: accepts every connection already in the kernel's
/// queue (each then gets one response and `Connection: close`, since the worker is draining),
/// then closes the socket. Returns how many were taken.
///
/// Closing a listener resets the connections still in its accept queue, and with
/// `SO_REUSEPORT` the kernel keeps hashing new handshakes to a listener until its last
/// descriptor is closed. So the queue is emptied right before our close, and that close must
/// be the last reference: the runtime's descriptor is closed asynchronously on io_uring, so it
/// is dropped first and given [`RELEASE_ROUNDS`] short pauses, accepting all the while (the
/// accept loop has already ended, with no operation left in flight). What remains is in the
/// kernel: a connection queued between the last empty `accept` and `close`, or a handshake in
/// flight to this listener when it closes, is reset (a window of microseconds);
/// `net.ipv4.tcp_migrate_req = 1` (Linux 5.14+) closes it, by moving both to another listener
/// of the group (see docs/operations.md).
pub async fn close_gracefully(listener: Listener, ctx: &Rc<Context>) -> usize {
    let Listener { socket: ring, std: socket, tls } = listener;
    drop(ring);
    let mut taken = accept_queued(&socket, ctx, tls);
    for _ in 0..RELEASE_ROUNDS {
        monoio::time::sleep(RELEASE_PAUSE).await;
        taken += accept_queued(&socket, ctx, tls);
    }
    drop(socket);
    taken
}

/// Pauses while the runtime releases its references to a listener being closed.
const RELEASE_ROUNDS: usize = 4;

/// Length of one such pause.
const RELEASE_PAUSE: Duration = Duration::from_millis(5);

/// Accepts until the queue is empty.
fn accept_queued(socket: &std::net::TcpListener, ctx: &Rc<Context>, tls: bool) -> usize {
    let mut taken = 0;
    loop {
        match socket.accept() {
            Ok((stream, peer)) => {
                spawn(ctx, stream, peer, tls);
                taken += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(_) => return taken, // empty (EAGAIN) or out of descriptors: nothing more to take
        }
    }
}
