//! The transport under a client connection: plain TCP, or TLS over TCP, on the thread's io_uring.
//!
//! A [`Link`] moves request bytes out and response bytes in; the HTTP framing
//! above it ([`super::conn`]) never sees which. TLS is rustls driven by hand:
//! ciphertext is received with the same io_uring operations as plain bodies
//! ([`crate::sys::uring`]), handed to rustls, and the plaintext appended to the
//! caller's buffer; outgoing records are collected from rustls and sent with
//! one io_uring send. The handshake runs when the link opens and is timed from
//! the `ClientHello` to the moment the client may send its request (TCP connect
//! time excluded); whether it resumed a session is reported with it.
//!
//! A TLS peer that closes without `close_notify` reads as an ordinary close:
//! the HTTP framing then decides whether the response was complete. On a
//! timeout the caller drops the future and then the link; operations in flight
//! are cancelled by tokio-uring as for plain connections.

use std::io::{self, Read, Write};
use std::mem;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, HandshakeKind};
use tokio_uring::net::TcpStream;

use crate::stats::{ErrorKind, Handshake};
use crate::sys::{monotonic_ns, uring};
use crate::tls::server_name;
use crate::url::Scheme;
use crate::workload::Origin;

/// Ciphertext read at once: a few TLS records (16 KiB of plaintext each at most).
const TLS_READ_BYTES: usize = 64 * 1024;

/// Why a link could not be opened.
#[derive(Debug)]
pub(crate) struct OpenError {
    /// The request's error kind.
    pub(crate) kind: ErrorKind,
    /// rustls' reason, when the TLS handshake failed.
    pub(crate) tls: Option<rustls::Error>,
}

impl From<ErrorKind> for OpenError {
    fn from(kind: ErrorKind) -> Self {
        Self { kind, tls: None }
    }
}

/// The kind of failure an I/O error is.
pub(crate) fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Reset,
    }
}

/// One open connection to one origin.
pub(crate) struct Link {
    /// Index of the origin it is connected to.
    pub(crate) origin: usize,
    stream: TcpStream,
    tls: Option<Box<Tls>>,
}

/// rustls' state plus the ciphertext on its way in and out.
struct Tls {
    session: ClientConnection,
    /// Why rustls failed the connection, for the one log line a thread prints.
    error: Option<rustls::Error>,
    /// Ciphertext received; `incoming[fed..]` is not yet handed to rustls.
    incoming: Vec<u8>,
    fed: usize,
    /// Ciphertext collected from rustls for one send.
    outgoing: Vec<u8>,
}

impl Link {
    /// Connects to `origin` (index `index`) and, for `https`, completes the TLS handshake.
    pub(crate) async fn open(
        index: usize,
        origin: &Origin,
        tls_config: Option<&Arc<ClientConfig>>,
    ) -> Result<(Self, Option<Handshake>), OpenError> {
        let stream = TcpStream::connect(origin.addr).await.map_err(|_| ErrorKind::Connect)?;
        // Requests are single small writes; Nagle would only delay them.
        stream.set_nodelay(true).map_err(|_| ErrorKind::Connect)?;
        let mut link = Self { origin: index, stream, tls: None };
        if origin.scheme != Scheme::Https {
            return Ok((link, None));
        }
        // Config validation builds a TLS configuration whenever an https origin exists.
        let config = tls_config.ok_or(ErrorKind::Tls)?;
        let name = server_name(&origin.host).ok_or(ErrorKind::Tls)?;
        let started = monotonic_ns();
        let session = ClientConnection::new(config.clone(), name).map_err(|_| ErrorKind::Tls)?;
        let fd = link.fd();
        let tls = link.tls.insert(Box::new(Tls {
            session,
            error: None,
            incoming: Vec::with_capacity(TLS_READ_BYTES),
            fed: 0,
            outgoing: Vec::new(),
        }));
        if let Err(kind) = tls.handshake(fd).await {
            return Err(OpenError { kind, tls: tls.error.take() });
        }
        let resumed = tls.session.handshake_kind() == Some(HandshakeKind::Resumed);
        Ok((link, Some(Handshake { ns: monotonic_ns().saturating_sub(started), resumed })))
    }

    /// The socket, for operations only a plain link can use (see [`Link::is_plain`]).
    pub(crate) fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Whether bytes on the socket are the HTTP bytes themselves (no TLS).
    pub(crate) fn is_plain(&self) -> bool {
        self.tls.is_none()
    }

    /// Sends all of `req`.
    pub(crate) async fn send(&mut self, req: &mut Vec<u8>) -> Result<(), ErrorKind> {
        let fd = self.fd();
        match self.tls.as_mut() {
            Some(tls) => tls.send(fd, req).await,
            None => {
                let (res, back) = uring::send_all(fd, mem::take(req)).await;
                *req = back;
                res.map_err(|e| io_kind(&e))
            }
        }
    }

    /// Sends all of `req`, then receives at most `max` bytes of the answer into `buf`.
    ///
    /// On a plain link both are queued together (see [`uring::send_then_recv`]).
    pub(crate) async fn send_then_recv(
        &mut self,
        req: &mut Vec<u8>,
        buf: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, ErrorKind> {
        if self.tls.is_some() {
            self.send(req).await?;
            return self.recv(buf, max).await;
        }
        let req_len = req.len();
        let (sent, back_req, received, back_buf) =
            uring::send_then_recv(self.fd(), mem::take(req), mem::take(buf), max).await;
        *req = back_req;
        *buf = back_buf;
        if sent.map_err(|e| io_kind(&e))? != req_len {
            return Err(ErrorKind::Reset);
        }
        received.map_err(|e| io_kind(&e))
    }

    /// Appends at most `max` received bytes to `buf` (within its spare capacity for a plain
    /// link); returns how many, 0 when the peer closed.
    pub(crate) async fn recv(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<usize, ErrorKind> {
        let fd = self.fd();
        match self.tls.as_mut() {
            Some(tls) => tls.recv(fd, buf, max).await,
            None => {
                let (res, back) = uring::recv(fd, mem::take(buf), max).await;
                *buf = back;
                res.map_err(|e| io_kind(&e))
            }
        }
    }

    /// Ends the link cleanly: a TLS link sends `close_notify` first (RFC 8446 §6.1).
    pub(crate) async fn finish(mut self) {
        let fd = self.fd();
        if let Some(tls) = self.tls.as_mut() {
            tls.session.send_close_notify();
            let _ = tls.flush(fd).await;
        }
    }
}

impl Tls {
    async fn handshake(&mut self, fd: RawFd) -> Result<(), ErrorKind> {
        while self.session.is_handshaking() {
            if self.session.wants_write() {
                self.flush(fd).await?;
            } else if self.pull(fd).await? {
                // Closed during the handshake: the server refused it (or never spoke TLS).
                return Err(ErrorKind::Tls);
            }
        }
        // The client's last handshake flight (TLS 1.3 Finished) leaves with the request.
        Ok(())
    }

    /// Sends everything rustls has queued.
    async fn flush(&mut self, fd: RawFd) -> Result<(), ErrorKind> {
        self.outgoing.clear();
        while self.session.wants_write() {
            self.session.write_tls(&mut self.outgoing).map_err(|_| ErrorKind::Tls)?;
        }
        if self.outgoing.is_empty() {
            return Ok(());
        }
        let (res, back) = uring::send_all(fd, mem::take(&mut self.outgoing)).await;
        self.outgoing = back;
        res.map_err(|e| io_kind(&e))
    }

    async fn send(&mut self, fd: RawFd, req: &[u8]) -> Result<(), ErrorKind> {
        self.session.writer().write_all(req).map_err(|_| ErrorKind::Tls)?;
        self.flush(fd).await
    }

    /// Hands rustls more ciphertext: what is left of the last receive, else a new receive.
    /// Returns `true` once the peer has closed and everything received was processed.
    async fn pull(&mut self, fd: RawFd) -> Result<bool, ErrorKind> {
        if self.fed == self.incoming.len() {
            self.incoming.clear();
            self.fed = 0;
            let (res, back) = uring::recv(fd, mem::take(&mut self.incoming), TLS_READ_BYTES).await;
            self.incoming = back;
            if res.map_err(|e| io_kind(&e))? == 0 {
                // An empty read tells rustls the transport ended.
                let _ = self.session.read_tls(&mut io::empty());
                return Ok(true);
            }
        }
        let mut rest = &self.incoming[self.fed..];
        // rustls takes what it can buffer; the rest is fed on the next call.
        self.session.read_tls(&mut rest).map_err(|_| ErrorKind::Tls)?;
        self.fed = self.incoming.len() - rest.len();
        if let Err(e) = self.session.process_new_packets() {
            self.error = Some(e);
            return Err(ErrorKind::Tls);
        }
        Ok(false)
    }

    async fn recv(&mut self, fd: RawFd, buf: &mut Vec<u8>, max: usize) -> Result<usize, ErrorKind> {
        let limit = u64::try_from(max).unwrap_or(u64::MAX);
        loop {
            let before = buf.len();
            let res = self.session.reader().take(limit).read_to_end(buf);
            let n = buf.len() - before;
            match res {
                _ if n > 0 => return Ok(n),
                // `close_notify` (Ok) or a close without it (UnexpectedEof): the stream ended.
                Ok(_) => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(_) => return Err(ErrorKind::Tls),
            }
            if self.session.wants_write() {
                // A key update or an alert to answer.
                self.flush(fd).await?;
            }
            if self.pull(fd).await? {
                // Everything received before the close was fed and its plaintext drained.
                return Ok(0);
            }
        }
    }
}
