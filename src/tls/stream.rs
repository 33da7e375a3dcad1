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
//!
//! After a kernel hand-off (`ktls`) the session is gone and the kernel seals and opens the
//! records: reads go through [`Kernel`], writes and bodies straight to the socket.

use std::cell::{Cell, RefCell, RefMut};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::RawFd;

use rustls::{ProtocolVersion, ServerConnection};

use crate::socket::{BodyPath, SendError, Socket, Transport};
use crate::sys;
use crate::tls::ktls::{Kernel, Negotiated, RecordBound};

/// One TLS connection in user space.
pub struct TlsSocket {
    socket: Socket,
    /// The user-space session; `None` once the kernel has the keys.
    session: RefCell<Option<Box<ServerConnection>>>,
    /// Set by the hand-off: the kernel seals and opens the records.
    kernel: Option<Box<Kernel>>,
    /// Handshake reads stop at record boundaries (a hand-off is planned).
    bound: Option<Cell<RecordBound>>,
    /// The first byte the client sent, to name plain HTTP sent to this port.
    first_byte: Cell<Option<u8>>,
    /// close_notify was queued (by a half-close or [`TlsSocket::close`]).
    closed: Cell<bool>,
}

/// The socket as rustls's reader and writer: one non-blocking syscall per call.
struct Wire<'a> {
    fd: RawFd,
    first_byte: Option<&'a Cell<Option<u8>>>,
    bound: Option<&'a Cell<RecordBound>>,
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.bound {
            None => sys::recv(self.fd, buf)?,
            Some(bound) => {
                let mut b = bound.get();
                let limit = b.limit(buf.len());
                let n = sys::recv(self.fd, &mut buf[..limit])?;
                b.consumed(&buf[..n]);
                bound.set(b);
                n
            }
        };
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
            session: RefCell::new(Some(Box::new(session))),
            kernel: None,
            bound: None,
            first_byte: Cell::new(None),
            closed: Cell::new(false),
        }
    }

    /// The socket underneath.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    fn wire(&self) -> Wire<'_> {
        Wire {
            fd: self.socket.fd(),
            first_byte: Some(&self.first_byte),
            bound: self.bound.as_ref(),
        }
    }

    /// The user-space session, while there is one.
    fn session(&self) -> io::Result<RefMut<'_, ServerConnection>> {
        RefMut::filter_map(self.session.borrow_mut(), |s| s.as_deref_mut())
            .map_err(|_| io::Error::other("TLS: the session was handed to the kernel"))
    }

    /// Reads the handshake record by record, so that no record after it is read in part
    /// (set before the handshake when the keys may go to the kernel).
    pub fn read_whole_records(&mut self) {
        self.bound = Some(Cell::new(RecordBound::default()));
    }

    /// Reads whatever the socket has again (after the handshake).
    pub fn read_freely(&mut self) {
        self.bound = None;
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.session().is_ok_and(|s| s.is_handshaking())
    }

    /// The negotiated protocol version.
    pub fn protocol(&self) -> Option<ProtocolVersion> {
        self.session().ok()?.protocol_version()
    }

    /// The server name the client asked for.
    pub fn server_name(&self) -> Option<String> {
        self.session().ok()?.server_name().map(str::to_string)
    }

    /// The negotiated version and suite of an established session.
    pub(crate) fn negotiated(&self) -> Option<Negotiated> {
        let session = self.session().ok()?;
        Some((session.protocol_version()?, session.negotiated_cipher_suite()?.suite()))
    }

    /// Whether the kernel seals and opens the records.
    pub fn in_kernel(&self) -> bool {
        self.kernel.is_some()
    }

    /// Moves record encryption to the kernel (see `ktls`): drains the plaintext rustls holds,
    /// extracts the keys and installs them. `Ok(false)`: the session cannot be handed off now
    /// and stays in user space. `Err`: the session was consumed and the kernel refused the
    /// keys; the connection must close.
    pub(crate) fn move_to_kernel(&mut self, version: ProtocolVersion) -> io::Result<bool> {
        let mut early = Vec::new();
        let mut ended = false;
        {
            let mut session = self.session()?;
            if session.wants_write() || session.is_handshaking() {
                return Ok(false);
            }
            let mut chunk = [0u8; 4096];
            loop {
                match session.reader().read(&mut chunk) {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(n) => early.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        let session = self.session.get_mut().take().expect("checked above");
        let secrets = session
            .dangerous_extract_secrets()
            .map_err(|e| io::Error::other(format!("TLS: extracting the secrets: {e}")))?;
        let cipher = crate::sys::ktls::Cipher::of(&secrets.tx.1);
        sys::ktls::install(self.socket.fd(), version, &secrets)?;
        self.kernel = Some(Box::new(Kernel::new(early, cipher, ended)));
        Ok(true)
    }

    /// Reads what the socket has into the session and processes it; handshake replies and
    /// alerts are sent without waiting (the rest goes with the next [`TlsSocket::flush`]).
    /// `Ok(false)` at end of stream; `WouldBlock` when nothing arrived.
    pub fn advance(&self) -> io::Result<bool> {
        let mut session = self.session()?;
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
        let mut session = self.session().map_err(|e| SendError::io("encrypt", e))?;
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
                let Ok(mut session) = self.session() else { return Ok(()) };
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
            if let Ok(mut session) = self.session() {
                session.send_close_notify();
            }
        }
    }

    /// Ends the TLS session: close_notify, sent within the send timeout.
    pub async fn close(&self) {
        if self.kernel.is_some() {
            if !self.closed.replace(true) {
                let _ = Kernel::close_notify(&self.socket).await;
            }
            return;
        }
        self.queue_close_notify();
        let _ = self.flush().await;
    }

    /// Whether plaintext (or the peer's close) waits in the session, so a read would not block.
    fn has_buffered(&self) -> bool {
        if let Some(kernel) = &self.kernel {
            return kernel.has_buffered();
        }
        let Ok(mut session) = self.session() else { return false };
        match session.process_new_packets() {
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
        if let Some(kernel) = &self.kernel {
            return kernel.try_recv(&self.socket, buf);
        }
        loop {
            match self.session()?.reader().read(buf) {
                Ok(n) => return Ok(n), // 0: close_notify received
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: a truncation attack cannot cut a request short
                // unnoticed (the head or the length is incomplete), so it is an end like any.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !self.advance()? {
                // End of stream: what is left, then close_notify or truncation, both an end.
                return match self.session()?.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(e),
                    Err(_) => Ok(0),
                };
            }
        }
    }

    async fn write_all(&self, buf: &[u8], more: bool) -> Result<(), SendError> {
        if self.kernel.is_some() {
            return self.socket.write_all(buf, more).await;
        }
        self.encrypt(&[IoSlice::new(buf)])?;
        self.flush().await
    }

    fn shutdown_write(&self) {
        // Best effort without waiting: the response before it was flushed in full, so the
        // socket has room for the alert.
        if self.kernel.is_some() {
            if !self.closed.replace(true) {
                Kernel::try_close_notify(&self.socket);
            }
        } else {
            self.queue_close_notify();
            if let Ok(mut session) = self.session() {
                let _ = session.write_tls(&mut self.wire());
            }
        }
        self.socket.shutdown_write();
    }

    fn body_path(&self) -> BodyPath<'_> {
        if self.kernel.is_some() {
            BodyPath::Plain(&self.socket)
        } else {
            BodyPath::Encrypted(self)
        }
    }
}
