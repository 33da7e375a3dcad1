//! Listening sockets: one per worker in one `SO_REUSEPORT` group, and the accept loop.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

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

/// Accepts until the future is dropped (at shutdown), spawning one task per connection.
pub async fn accept_loop(listener: &TcpListener, ctx: &Rc<Context>) {
    let max = ctx.config.max_connections;
    let mut full_logged = false;
    loop {
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
        match listener.accept().await {
            Ok((stream, peer)) => super::spawn_connection(ctx, stream, peer),
            Err(e) => match e.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    error!(worker = ctx.worker_id, error = %e, "accept: out of resources; backing off");
                    monoio::time::sleep(ACCEPT_BACKOFF).await;
                }
                // The peer gave up before we accepted, or a transient network error.
                Some(
                    libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR | libc::EAGAIN,
                ) => {}
                _ => {
                    error!(worker = ctx.worker_id, error = %e, "accept failed");
                    monoio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}
