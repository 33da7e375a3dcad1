//! A client connection's socket: readiness waits through the runtime, bytes moved by direct
//! non-blocking syscalls (`sys`).
//!
//! Waiting for readability before reading means an idle keep-alive connection owns no buffer;
//! the bytes land in the worker's shared receive buffer. Every wait for writability is bounded
//! by the send timeout, measured from the last progress, so a client that stops reading is cut
//! off and a slow one that keeps reading is not.

use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::net::TcpStream;

use crate::sys;

mod turn;

/// Why a response could not be sent in full. Every variant ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The client accepted no bytes for the whole send timeout.
    #[error("send stalled for {0:?}")]
    Stalled(Duration),
    /// The file ended before the planned length (truncated while being sent).
    #[error("file shorter than planned: truncated while being sent")]
    Truncated,
    /// The socket or the file failed (a reset or closed client most often).
    #[error("{op}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl SendError {
    /// An I/O error from `op`.
    pub fn io(op: &'static str, source: io::Error) -> Self {
        SendError::Io { op, source }
    }

    /// As an I/O error (for a wait that reports one).
    pub fn into_io(self) -> io::Error {
        match self {
            SendError::Io { source, .. } => source,
            SendError::Stalled(d) => {
                io::Error::new(io::ErrorKind::TimedOut, format!("send stalled for {d:?}"))
            }
            SendError::Truncated => io::Error::other("file truncated while being sent"),
        }
    }

    /// True when the client went away (reset, broken pipe): expected, logged at debug.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, SendError::Io { source, .. } if matches!(
            source.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        ))
    }
}

/// One accepted connection.
#[derive(Debug)]
pub struct Socket {
    stream: TcpStream,
    fd: RawFd,
    send_timeout: Duration,
}

impl Socket {
    /// Wraps an accepted stream: non-blocking (io_uring hands out blocking sockets; a direct
    /// syscall must never sleep on the worker thread) and `TCP_NODELAY`.
    pub fn new(stream: TcpStream, send_timeout: Duration) -> io::Result<Self> {
        let fd = stream.as_raw_fd();
        sys::set_nonblocking(fd)?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, fd, send_timeout })
    }

    /// The descriptor, for `sendfile` and `shutdown`.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The local address the client connected to.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.stream.local_addr()
    }

    /// Waits until bytes (or end of stream) can be read.
    pub async fn readable(&self) -> io::Result<()> {
        // relaxed=false: on epoll the readiness is re-checked with poll(2), since our reads
        // bypass monoio and never clear its readiness state.
        self.stream.readable(false).await
    }

    /// Reads what is there without waiting; `Ok(0)` is end of stream.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv(self.fd, buf)
    }

    /// Waits until the socket accepts bytes, at most the send timeout.
    pub async fn writable(&self) -> Result<(), SendError> {
        // Boxed: a monoio timer is ~640 bytes, and this wait is only reached when the socket
        // buffer is full; inline it would grow every response's future by that much.
        let wait = Box::pin(monoio::time::timeout(self.send_timeout, self.stream.writable(false)));
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::io("poll", e)),
            Err(_) => Err(SendError::Stalled(self.send_timeout)),
        }
    }

    /// Gives the other connections of this worker their turn in the middle of a bulk transfer.
    ///
    /// On io_uring: a writability poll through the ring, which completes at once (the socket has
    /// room) but resumes this task only after the runtime has submitted and reaped completions,
    /// so the readiness of every other connection is collected first. A plain yield would not do
    /// that: monoio runs up to twice as many tasks as are queued before it polls its ring, and a
    /// transfer that yields goes straight back into the same queue, taking most of those turns
    /// (a 1 KiB stream beside back-to-back cached 1 GiB downloads waited 50–190 ms). On epoll
    /// the runtime answers a writability poll from readiness of its own without polling epoll;
    /// there the turn waits for an event of the worker's own ([`turn`]).
    pub async fn take_turn(&self) -> Result<(), SendError> {
        if monoio::utils::is_legacy() {
            if let Err(e) = turn::epoll_turn().await {
                tracing::debug!("turn through epoll failed ({e}); yielding instead");
                yield_now().await;
            }
            Ok(())
        } else {
            self.writable().await
        }
    }

    /// Sends what the socket takes of `buf` now, without waiting.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        sys::send(self.fd, buf, false)
    }

    /// Sends all of `buf`. With `more`, TCP holds a partial segment for the data that follows.
    pub async fn write_all(&self, mut buf: &[u8], more: bool) -> Result<(), SendError> {
        while !buf.is_empty() {
            match sys::send(self.fd, buf, more) {
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SendError::io("send", e)),
            }
        }
        Ok(())
    }

    /// Sends all of `slices` (advancing them as bytes leave), in as few `sendmsg` calls as the
    /// socket allows.
    pub async fn write_vectored_all(
        &self,
        mut slices: &mut [IoSlice<'_>],
        more: bool,
    ) -> Result<(), SendError> {
        while !slices.is_empty() {
            match sys::send_vectored(self.fd, slices, more) {
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SendError::io("sendmsg", e)),
            }
        }
        Ok(())
    }

    /// Half-closes our side (FIN) so a final response is delivered before the close.
    pub fn shutdown_write(&self) {
        let _ = sys::shutdown_write(self.fd);
    }
}

/// What carries a connection's bytes: the plain [`Socket`], or TLS over it
/// (`crate::tls::TlsSocket`). The connection loop is generic over it, so the plain path is
/// compiled as before: no dynamic dispatch, no extra state in an idle connection.
#[allow(async_fn_in_trait, reason = "used by this crate's single-threaded tasks only")]
pub trait Transport {
    /// Whether bytes are encrypted (TLS), whoever does it.
    const ENCRYPTED: bool;
    /// The socket's descriptor (deadlines shut its read side).
    fn fd(&self) -> RawFd;
    /// Waits until a read would not block.
    async fn readable(&self) -> io::Result<()>;
    /// Reads what is there (plaintext) without waiting; `Ok(0)` is end of stream.
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends all of `buf`; `more` as in [`Socket::write_all`].
    async fn write_all(&self, buf: &[u8], more: bool) -> Result<(), SendError>;
    /// Ends our sending side (after close_notify, for TLS).
    fn shutdown_write(&self);
    /// How response bodies reach the client.
    fn body_path(&self) -> BodyPath<'_>;
}

/// How a response body reaches the client.
pub enum BodyPath<'a> {
    /// Straight to the socket, by any body strategy (plain HTTP, or TLS done by the kernel).
    Plain(&'a Socket),
    /// Encrypted in user space first.
    Encrypted(&'a crate::tls::TlsSocket),
}

impl Transport for Socket {
    const ENCRYPTED: bool = false;

    fn fd(&self) -> RawFd {
        self.fd
    }

    async fn readable(&self) -> io::Result<()> {
        Socket::readable(self).await
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Socket::try_recv(self, buf)
    }

    async fn write_all(&self, buf: &[u8], more: bool) -> Result<(), SendError> {
        Socket::write_all(self, buf, more).await
    }

    fn shutdown_write(&self) {
        Socket::shutdown_write(self);
    }

    fn body_path(&self) -> BodyPath<'_> {
        BodyPath::Plain(self)
    }
}

/// Yields once to the runtime so other connections on this worker run (fairness between one
/// fast bulk transfer and everyone else).
pub fn yield_now() -> impl Future<Output = ()> {
    YieldNow(false)
}

struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
