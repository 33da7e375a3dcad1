//! HTTP over user-space TLS: a [`Socket`] and a rustls session, seen by the connection loop as
//! one more [`Transport`].
//!
//! Receiving: ciphertext is read from the non-blocking socket straight into rustls (no buffer
//! of ours), decrypted, and the plaintext copied into the worker's receive buffer as a plain
//! read would. Sending: plaintext is encrypted into records of up to 16 KiB inside rustls
//! ([`TlsSocket::encrypt`], no I/O, so callers may encrypt from a per-worker buffer they do not
//! hold across a wait), then [`TlsSocket::flush`] writes the records out, up to 64 per
//! `sendmsg`, waiting for writability (bounded by the send timeout) when the socket is full.
//!
//! Errors: a record rustls refuses queues an alert, which is sent at once (best effort), and
//! the read fails with `InvalidData` naming the problem; bytes that look like plain HTTP are
//! called so. A peer that closes without close_notify (truncation) is seen as end of stream:
//! HTTP/1.1 framing already tells a complete request from a cut one.
//!
//! The session lives in a box (several KiB of state and buffers), paid only by TLS
//! connections.

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::RawFd;

use rustls::{ProtocolVersion, ServerConnection};

use crate::socket::{BodyPath, SendError, Socket, Transport};
use crate::sys;

/// One TLS connection in user space.
pub struct TlsSocket {
    socket: Socket,
    session: RefCell<Box<ServerConnection>>,
    /// The first byte the client sent, to name plain HTTP sent to this port.
    first_byte: Cell<Option<u8>>,
    /// close_notify was queued (by a half-close or [`TlsSocket::close`]).
    closed: Cell<bool>,
}

/// The socket as rustls's reader and writer: one non-blocking syscall per call.
struct Wire<'a> {
    fd: RawFd,
    first_byte: Option<&'a Cell<Option<u8>>>,
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = sys::recv(self.fd, buf)?;
        if let (Some(first), true) = (self.first_byte, n > 0) {
            if first.get().is_none() {
                first.set(Some(buf[0]));
            }
        }
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send(self.fd, buf, false)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sys::send_vectored(self.fd, bufs, false)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsSocket {
    /// Wraps an accepted socket and a fresh server session.
    pub fn new(socket: Socket, mut session: ServerConnection) -> Self {
        // Our own calls bound what is buffered: [`TlsSocket::encrypt`] callers flush after each
        // chunk of at most a few tens of KiB.
        session.set_buffer_limit(None);
        Self {
            socket,
            session: RefCell::new(Box::new(session)),
            first_byte: Cell::new(None),
            closed: Cell::new(false),
        }
    }

    /// The socket underneath.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    fn wire(&self) -> Wire<'_> {
        Wire { fd: self.socket.fd(), first_byte: Some(&self.first_byte) }
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.session.borrow().is_handshaking()
    }

    /// The negotiated protocol version.
    pub fn protocol(&self) -> Option<ProtocolVersion> {
        self.session.borrow().protocol_version()
    }

    /// The server name the client asked for.
    pub fn server_name(&self) -> Option<String> {
        self.session.borrow().server_name().map(str::to_string)
    }

    /// Reads what the socket has into the session and processes it; handshake replies and
    /// alerts are sent without waiting (the rest goes with the next [`TlsSocket::flush`]).
    /// `Ok(false)` at end of stream; `WouldBlock` when nothing arrived.
    pub fn advance(&self) -> io::Result<bool> {
        let mut session = self.session.borrow_mut();
        let n = session.read_tls(&mut self.wire())?;
        let processed = session.process_new_packets();
        if session.wants_write() {
            // Best effort: what the socket does not take now is flushed before the next wait.
            let _ = session.write_tls(&mut self.wire());
        }
        if let Err(e) = processed {
            return Err(self.refused(e));
        }
        Ok(n > 0)
    }

    /// The error for a record rustls refused.
    fn refused(&self, e: rustls::Error) -> io::Error {
        let plain_http = self.first_byte.get().is_some_and(|b| b.is_ascii_uppercase());
        let hint = if plain_http { " (plain HTTP sent to the HTTPS port?)" } else { "" };
        io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}{hint}"))
    }

    /// Encrypts `bufs` into records queued for sending. No I/O.
    pub fn encrypt(&self, bufs: &[IoSlice<'_>]) -> Result<(), SendError> {
        let mut session = self.session.borrow_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut done = 0;
        while done < total {
            // rustls takes everything while unbuffered (`set_buffer_limit(None)`); the loop only
            // guards against a partial take.
            let mut rest: Vec<IoSlice<'_>> = Vec::new();
            let slices: &[IoSlice<'_>] = if done == 0 {
                bufs
            } else {
                let mut skip = done;
                for b in bufs {
                    if skip >= b.len() {
                        skip -= b.len();
                    } else {
                        rest.push(IoSlice::new(&b[skip..]));
                        skip = 0;
                    }
                }
                &rest
            };
            match session.writer().write_vectored(slices) {
                Ok(0) => return Err(SendError::io("encrypt", io::ErrorKind::WriteZero.into())),
                Ok(n) => done += n,
                Err(e) => return Err(SendError::io("encrypt", e)),
            }
        }
        Ok(())
    }

    /// Sends every queued record, waiting for the socket as needed.
    pub async fn flush(&self) -> Result<(), SendError> {
        loop {
            let sent = {
                let mut session = self.session.borrow_mut();
                if !session.wants_write() {
                    return Ok(());
                }
                session.write_tls(&mut self.wire())
            };
            match sent {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SendError::io("send", e)),
            }
        }
    }

    /// Queues close_notify once.
    fn queue_close_notify(&self) {
        if !self.closed.replace(true) {
            self.session.borrow_mut().send_close_notify();
        }
    }

    /// Ends the TLS session: close_notify, sent within the send timeout.
    pub async fn close(&self) {
        self.queue_close_notify();
        let _ = self.flush().await;
    }

    /// Whether plaintext (or the peer's close) waits in the session, so a read would not block.
    fn has_buffered(&self) -> bool {
        match self.session.borrow_mut().process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            Err(_) => true, // the read reports it
        }
    }
}

impl Transport for TlsSocket {
    const ENCRYPTED: bool = true;

    fn fd(&self) -> RawFd {
        self.socket.fd()
    }

    async fn readable(&self) -> io::Result<()> {
        // Replies the session owes (tickets, a KeyUpdate answer) leave before we wait.
        self.flush().await.map_err(SendError::into_io)?;
        if self.has_buffered() {
            return Ok(());
        }
        self.socket.readable().await
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.borrow_mut().reader().read(buf) {
                Ok(n) => return Ok(n), // 0: close_notify received
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: a truncation attack cannot cut a request short
                // unnoticed (the head or the length is incomplete), so it is an end like any.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !self.advance()? {
                // End of stream: what is left, then close_notify or truncation, both an end.
                return match self.session.borrow_mut().reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(e),
                    Err(_) => Ok(0),
                };
            }
        }
    }

    async fn write_all(&self, buf: &[u8], _more: bool) -> Result<(), SendError> {
        self.encrypt(&[IoSlice::new(buf)])?;
        self.flush().await
    }

    fn shutdown_write(&self) {
        self.queue_close_notify();
        // Best effort without waiting: the response before it was flushed in full, so the
        // socket has room for the alert.
        let _ = self.session.borrow_mut().write_tls(&mut self.wire());
        self.socket.shutdown_write();
    }

    fn body_path(&self) -> BodyPath<'_> {
        BodyPath::Encrypted(self)
    }
}
