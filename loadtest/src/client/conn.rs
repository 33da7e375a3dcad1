//! One keep-alive HTTP/1.1 client connection on the thread's io_uring.
//!
//! [`Conn::exchange`] sends the prepared request and reads one response over
//! its [`Link`] (plain TCP or TLS): the head through a read into the
//! connection's buffer, the body either the same way (copied, so it can be
//! checksummed or kept) or, with `--discard` on a plain link, dropped in the
//! kernel by an io_uring `recv(MSG_TRUNC)` (see [`crate::sys::uring`]; a TLS
//! body has to be decrypted, so it is copied). Requests are never pipelined.
//!
//! On any error, on a timeout (the caller drops the future; tokio-uring then
//! cancels the in-flight operation and keeps its buffer alive until the kernel
//! lets go of it) and on `Connection: close`, the connection is dropped and
//! the next request reconnects. A response is complete only when its framed
//! body is; bytes beyond it stay in the buffer for the next head.

use std::rc::Rc;

use super::link::{io_kind, Link};
use super::ThreadCtx;
use crate::http::{parse_head, BodyFraming, CacheClass, ChunkedDecoder, HeadParse, ResponseHead};
use crate::stats::{ErrorKind, Handshake};
use crate::sys::{self, uring};

/// Receive buffer size; one io_uring read fills at most this much.
const READ_BUF_BYTES: usize = 64 * 1024;
/// With `--discard`, reads of the head copy at most this much body along with it.
const DISCARD_HEAD_READ_BYTES: usize = 4 * 1024;
/// With `--discard`, `SO_RCVLOWAT` while a large body is dropped: one wake-up per this much.
const DISCARD_LOW_WATER_BYTES: usize = 1 << 20;
/// Bodies from this size on are dropped with the low-water mark raised (two extra
/// `setsockopt` calls per response, negligible beside megabytes).
const DISCARD_LOW_WATER_MIN_BODY: u64 = 4 << 20;

/// What one exchange produced.
#[derive(Debug, Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Bytes received (head + body; for TLS, the decrypted HTTP bytes).
    pub bytes: u64,
    /// What the response's `Cache-Status` or `X-Cache` header says.
    pub cache: CacheClass,
    /// The body, when the caller asked to keep it.
    pub body: Option<Vec<u8>>,
    /// CRC-32 of the body, when the caller asked for it.
    pub crc32: Option<u32>,
}

/// How to read the body.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyMode {
    /// Keep the body (playlists).
    pub keep: bool,
    /// Compute its CRC-32.
    pub checksum: bool,
    /// Drop it in the kernel without copying (ignored when `keep` or `checksum`).
    pub discard: bool,
}

/// A failure, with the bytes received before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Bytes received before it went wrong.
    pub bytes: u64,
}

/// A client connection that reconnects when needed.
pub struct Conn {
    ctx: Rc<ThreadCtx>,
    link: Option<Link>,
    /// Received, unconsumed bytes.
    buf: Vec<u8>,
    /// The next request's bytes, filled by the caller through [`Conn::request_buf`].
    req: Vec<u8>,
    /// Bytes received during the current exchange.
    received: u64,
    /// The current exchange opened a new connection.
    opened: bool,
    /// The TLS handshake of that connection.
    handshake: Option<Handshake>,
}

/// Where body bytes go: kept, checksummed, or neither.
struct BodySink {
    body: Option<Vec<u8>>,
    crc: Option<crc32fast::Hasher>,
}

impl BodySink {
    fn new(mode: BodyMode) -> Self {
        Self { body: mode.keep.then(Vec::new), crc: mode.checksum.then(crc32fast::Hasher::new) }
    }

    fn take(&mut self, bytes: &[u8]) {
        if let Some(b) = self.body.as_mut() {
            b.extend_from_slice(bytes);
        }
        if let Some(c) = self.crc.as_mut() {
            c.update(bytes);
        }
    }
}

impl Conn {
    /// A connection that connects on first use.
    pub fn new(ctx: Rc<ThreadCtx>) -> Self {
        Self {
            ctx,
            link: None,
            buf: Vec::with_capacity(READ_BUF_BYTES),
            req: Vec::with_capacity(256),
            received: 0,
            opened: false,
            handshake: None,
        }
    }

    /// The buffer the next request is written into.
    pub fn request_buf(&mut self) -> &mut Vec<u8> {
        &mut self.req
    }

    /// Drops the connection (and anything buffered); the next exchange reconnects.
    pub fn close(&mut self) {
        self.link = None;
        self.buf.clear();
    }

    /// Ends the connection cleanly (TLS: with `close_notify`); the next exchange reconnects.
    pub async fn finish(&mut self) {
        self.buf.clear();
        if let Some(link) = self.link.take() {
            link.finish().await;
        }
    }

    /// Whether the last exchange opened a new connection (connected, and for TLS handshaken).
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// The TLS handshake the last exchange performed, if it opened a TLS connection.
    pub fn handshake(&self) -> Option<Handshake> {
        self.handshake
    }

    /// Sends the request in [`Conn::request_buf`] to `origin` and reads the response.
    ///
    /// The caller bounds it with the request timeout and calls [`Conn::close`] if it fires.
    pub async fn exchange(&mut self, origin: usize, mode: BodyMode) -> Result<Response, Failure> {
        self.received = 0;
        self.opened = false;
        self.handshake = None;
        let result = self.exchange_inner(origin, mode).await;
        result.map_err(|kind| {
            self.close();
            Failure { kind, bytes: self.received }
        })
    }

    /// Bytes received so far in the current exchange (for a caller whose timeout fired).
    pub fn bytes_in_flight(&self) -> u64 {
        self.received
    }

    async fn connect(&mut self, origin: usize) -> Result<(), ErrorKind> {
        if self.link.as_ref().is_some_and(|l| l.origin == origin) {
            return Ok(());
        }
        self.close();
        let ctx = self.ctx.clone();
        let server = ctx.cfg.workload_origin(origin);
        let (link, handshake) =
            Link::open(origin, server, ctx.tls.as_ref()).await.map_err(|e| {
                if let Some(reason) = e.tls {
                    ctx.log_tls_failure(&server.authority, &reason);
                }
                e.kind
            })?;
        self.link = Some(link);
        self.opened = true;
        self.handshake = handshake;
        Ok(())
    }

    fn link(&mut self) -> Result<&mut Link, ErrorKind> {
        self.link.as_mut().ok_or(ErrorKind::Reset)
    }

    /// Reads more bytes into `buf` (appending, at most `max` new bytes); returns how many (0 = closed).
    async fn read_more(&mut self, max: usize) -> Result<usize, ErrorKind> {
        let want = max.min(READ_BUF_BYTES);
        if self.buf.capacity() - self.buf.len() < want {
            self.buf.reserve(want);
        }
        let link = self.link.as_mut().ok_or(ErrorKind::Reset)?;
        let n = link.recv(&mut self.buf, max).await?;
        self.received += n as u64;
        Ok(n)
    }

    async fn exchange_inner(
        &mut self,
        origin: usize,
        mode: BodyMode,
    ) -> Result<Response, ErrorKind> {
        self.connect(origin).await?;
        let fresh = self.buf.is_empty();
        let plain = self.link()?.is_plain();
        let discard = mode.discard && !mode.keep && !mode.checksum && plain;
        let head_read = if discard { DISCARD_HEAD_READ_BYTES } else { READ_BUF_BYTES };
        let read_closed = self.send_request(fresh, head_read).await?;
        let head = self.read_head(fresh, read_closed, head_read).await?;
        let mut sink = BodySink::new(mode);
        match head.framing {
            BodyFraming::Empty => {
                self.buf.drain(..head.head_len);
            }
            BodyFraming::Length(len) => {
                self.read_length_body(&head, len, discard, &mut sink).await?
            }
            BodyFraming::Chunked => self.read_chunked_body(&head, &mut sink).await?,
            BodyFraming::UntilClose => self.read_body_until_close(&head, &mut sink).await?,
        }
        if head.close {
            self.finish().await;
        }
        Ok(Response {
            status: head.status,
            bytes: self.received,
            cache: head.cache,
            body: sink.body,
            crc32: sink.crc.map(crc32fast::Hasher::finalize),
        })
    }

    /// Sends the request; returns whether the first read of the answer, queued with it,
    /// found the connection closed.
    async fn send_request(&mut self, fresh: bool, head_read: usize) -> Result<bool, ErrorKind> {
        let link = self.link.as_mut().ok_or(ErrorKind::Reset)?;
        // The first read may be queued with the send only when nothing is buffered:
        // leftover bytes must be parsed before deciding to read.
        if !fresh {
            link.send(&mut self.req).await?;
            return Ok(false);
        }
        if self.buf.capacity() < head_read {
            self.buf.reserve(head_read);
        }
        let n = link.send_then_recv(&mut self.req, &mut self.buf, head_read).await?;
        self.received += n as u64;
        Ok(n == 0)
    }

    /// Reads until a final (non-1xx) response head is complete; interim responses are dropped.
    async fn read_head(
        &mut self,
        fresh: bool,
        mut read_closed: bool,
        head_read: usize,
    ) -> Result<ResponseHead, ErrorKind> {
        loop {
            match parse_head(&self.buf) {
                // RFC 9110 §15.2: interim 1xx responses precede the final one (101 would switch protocols).
                Ok(HeadParse::Complete(h)) if (100..200).contains(&h.status) && h.status != 101 => {
                    self.buf.drain(..h.head_len);
                    continue;
                }
                Ok(HeadParse::Complete(h)) => return Ok(h),
                Ok(HeadParse::Partial) => {}
                Err(_) => return Err(ErrorKind::Parse),
            }
            let closed = read_closed || self.read_more(head_read).await? == 0;
            read_closed = false;
            if closed {
                // Closed before any byte: the server dropped an idle keep-alive connection or reset.
                return Err(if self.buf.is_empty() && fresh {
                    ErrorKind::Reset
                } else {
                    ErrorKind::Parse
                });
            }
        }
    }

    /// A `Content-Length` body. The head is dropped from the buffer together with the body
    /// bytes that follow it, so a response that arrived whole costs no copy at all.
    async fn read_length_body(
        &mut self,
        head: &ResponseHead,
        len: u64,
        discard: bool,
        sink: &mut BodySink,
    ) -> Result<(), ErrorKind> {
        let head_len = head.head_len;
        let available = self.buf.len() - head_len;
        let buffered = usize::try_from(len).map_or(available, |l| l.min(available));
        sink.take(&self.buf[head_len..head_len + buffered]);
        if head_len + buffered == self.buf.len() {
            self.buf.clear();
        } else {
            self.buf.drain(..head_len + buffered);
        }
        let mut remaining = len - buffered as u64;
        if discard {
            self.discard_body(remaining).await?;
            return Ok(());
        }
        while remaining > 0 {
            let want = usize::try_from(remaining).unwrap_or(usize::MAX);
            let n = self.read_more(want).await?;
            if n == 0 {
                return Err(ErrorKind::ShortBody);
            }
            sink.take(&self.buf);
            remaining -= self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Drops `remaining` body bytes in the kernel (plain links only, see [`BodyMode::discard`]).
    async fn discard_body(&mut self, mut remaining: u64) -> Result<(), ErrorKind> {
        let fd = self.link()?.fd();
        let span = self.ctx.discard_buf.clone().ok_or(ErrorKind::Reset)?;
        // Large bodies: let the socket wake this connection only once a big slice is
        // queued (never more than what is left), so each wake-up drops megabytes.
        let mut low_water = 1;
        let use_low_water = remaining >= DISCARD_LOW_WATER_MIN_BODY;
        while remaining > 0 {
            let want = usize::try_from(remaining).unwrap_or(usize::MAX);
            let wanted_low = want.min(DISCARD_LOW_WATER_BYTES);
            if use_low_water && wanted_low != low_water {
                sys::set_recv_low_water(fd, wanted_low).map_err(|e| io_kind(&e))?;
                low_water = wanted_low;
            }
            let n = uring::recv_discard(fd, span.clone(), want).await.map_err(|e| io_kind(&e))?;
            if n == 0 {
                return Err(ErrorKind::ShortBody);
            }
            self.received += n as u64;
            remaining -= n as u64;
        }
        if low_water != 1 {
            // The next response head must wake the connection at its first byte.
            sys::set_recv_low_water(fd, 1).map_err(|e| io_kind(&e))?;
        }
        Ok(())
    }

    async fn read_chunked_body(
        &mut self,
        head: &ResponseHead,
        sink: &mut BodySink,
    ) -> Result<(), ErrorKind> {
        self.buf.drain(..head.head_len);
        let mut decoder = ChunkedDecoder::new();
        loop {
            let progress = decoder
                .decode(&self.buf, &mut |bytes: &[u8]| sink.take(bytes))
                .map_err(|_| ErrorKind::Parse)?;
            self.buf.drain(..progress.consumed);
            if progress.done {
                return Ok(());
            }
            if self.read_more(READ_BUF_BYTES).await? == 0 {
                return Err(ErrorKind::ShortBody);
            }
        }
    }

    async fn read_body_until_close(
        &mut self,
        head: &ResponseHead,
        sink: &mut BodySink,
    ) -> Result<(), ErrorKind> {
        self.buf.drain(..head.head_len);
        loop {
            sink.take(&self.buf);
            self.buf.clear();
            if self.read_more(READ_BUF_BYTES).await? == 0 {
                return Ok(());
            }
        }
    }
}
