//! One keep-alive HTTP/1.1 client connection on the thread's io_uring.
//!
//! [`Conn::exchange`] sends the prepared request and reads one response:
//! the head through an io_uring read into the connection's buffer, the body
//! either the same way (copied, so it can be checksummed or kept) or, with
//! `--discard`, dropped in the kernel by an io_uring `recv(MSG_TRUNC)` (see
//! [`crate::sys::uring`]). Requests are never pipelined.
//!
//! On any error, on a timeout (the caller drops the future; tokio-uring then
//! cancels the in-flight operation and keeps its buffer alive until the kernel
//! lets go of it) and on `Connection: close`, the connection is dropped and
//! the next request reconnects. A response is complete only when its framed
//! body is; bytes beyond it stay in the buffer for the next head.

use std::io;
use std::mem;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use tokio_uring::net::TcpStream;

use super::ThreadCtx;
use crate::http::{parse_head, BodyFraming, ChunkedDecoder, HeadParse, ParseError};
use crate::stats::ErrorKind;
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
    /// Bytes received (head + body).
    pub bytes: u64,
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

struct Link {
    origin: usize,
    stream: TcpStream,
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
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Reset,
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

    /// Sends the request in [`Conn::request_buf`] to `origin` and reads the response.
    ///
    /// The caller bounds it with the request timeout and calls [`Conn::close`] if it fires.
    pub async fn exchange(&mut self, origin: usize, mode: BodyMode) -> Result<Response, Failure> {
        self.received = 0;
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
        let addr = self.ctx.cfg.workload_origin(origin).addr;
        let stream = TcpStream::connect(addr).await.map_err(|_| ErrorKind::Connect)?;
        // Requests are single small writes; Nagle would only delay them.
        stream.set_nodelay(true).map_err(|_| ErrorKind::Connect)?;
        self.link = Some(Link { origin, stream });
        Ok(())
    }

    /// Reads more bytes into `buf` (appending, at most `max` new bytes); returns how many (0 = closed).
    async fn read_more(&mut self, max: usize) -> Result<usize, ErrorKind> {
        let link = self.link.as_ref().ok_or(ErrorKind::Reset)?;
        let mut buf = mem::take(&mut self.buf);
        let len = buf.len();
        if buf.capacity() - len < max.min(READ_BUF_BYTES) {
            buf.reserve(max.min(READ_BUF_BYTES));
        }
        let (res, buf) = uring::recv(link.stream.as_raw_fd(), buf, max).await;
        self.buf = buf;
        let n = res.map_err(|e| io_kind(&e))?;
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
        let discard = mode.discard && !mode.keep && !mode.checksum;
        let head_read = if discard { DISCARD_HEAD_READ_BYTES } else { READ_BUF_BYTES };
        let fd = self.link.as_ref().ok_or(ErrorKind::Reset)?.stream.as_raw_fd();
        let req = mem::take(&mut self.req);
        // The first read may be queued with the send only when nothing is buffered:
        // leftover bytes must be parsed before deciding to read.
        let mut read_closed = false;
        if fresh {
            let mut buf = mem::take(&mut self.buf);
            if buf.capacity() < head_read.min(READ_BUF_BYTES) {
                buf.reserve(head_read.min(READ_BUF_BYTES));
            }
            let req_len = req.len();
            let (sent, req, received, buf) = uring::send_then_recv(fd, req, buf, head_read).await;
            self.req = req;
            self.buf = buf;
            if sent.map_err(|e| io_kind(&e))? != req_len {
                return Err(ErrorKind::Reset);
            }
            let n = received.map_err(|e| io_kind(&e))?;
            self.received += n as u64;
            read_closed = n == 0;
        } else {
            let (res, req) = uring::send_all(fd, req).await;
            self.req = req;
            res.map_err(|e| io_kind(&e))?;
        }
        let head = loop {
            match parse_head(&self.buf) {
                // RFC 9110 §15.2: interim 1xx responses precede the final one (101 would switch protocols).
                Ok(HeadParse::Complete(h)) if (100..200).contains(&h.status) && h.status != 101 => {
                    self.buf.drain(..h.head_len);
                    continue;
                }
                Ok(HeadParse::Complete(h)) => break h,
                Ok(HeadParse::Partial) => {}
                Err(_) => return Err(ErrorKind::Parse),
            }
            let closed = read_closed || self.read_more(head_read).await? == 0;
            if closed {
                // Closed before any byte: the server dropped an idle keep-alive connection or reset.
                return Err(if self.buf.is_empty() && fresh {
                    ErrorKind::Reset
                } else {
                    ErrorKind::Parse
                });
            }
        };
        // The head is dropped from the buffer together with the body bytes that follow it,
        // so a response that arrived whole costs no copy at all (see the Length arm).
        let head_len = head.head_len;
        if !matches!(head.framing, BodyFraming::Length(_)) {
            self.buf.drain(..head_len);
        }

        let mut body = mode.keep.then(Vec::new);
        let mut crc = mode.checksum.then(crc32fast::Hasher::new);
        let mut sink = |bytes: &[u8]| {
            if let Some(b) = body.as_mut() {
                b.extend_from_slice(bytes);
            }
            if let Some(c) = crc.as_mut() {
                c.update(bytes);
            }
        };

        match head.framing {
            BodyFraming::Empty => {}
            BodyFraming::Length(len) => {
                let available = self.buf.len() - head_len;
                let buffered = usize::try_from(len).map_or(available, |l| l.min(available));
                sink(&self.buf[head_len..head_len + buffered]);
                if head_len + buffered == self.buf.len() {
                    self.buf.clear();
                } else {
                    self.buf.drain(..head_len + buffered);
                }
                let mut remaining = len - buffered as u64;
                if discard {
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
                        let n = uring::recv_discard(fd, span.clone(), want)
                            .await
                            .map_err(|e| io_kind(&e))?;
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
                }
                while remaining > 0 {
                    let want = usize::try_from(remaining).unwrap_or(usize::MAX);
                    let n = self.read_more(want).await?;
                    if n == 0 {
                        return Err(ErrorKind::ShortBody);
                    }
                    sink(&self.buf);
                    remaining -= self.buf.len() as u64;
                    self.buf.clear();
                }
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                loop {
                    let progress = decoder
                        .decode(&self.buf, &mut sink)
                        .map_err(|_: ParseError| ErrorKind::Parse)?;
                    self.buf.drain(..progress.consumed);
                    if progress.done {
                        break;
                    }
                    if self.read_more(READ_BUF_BYTES).await? == 0 {
                        return Err(ErrorKind::ShortBody);
                    }
                }
            }
            BodyFraming::UntilClose => loop {
                sink(&self.buf);
                self.buf.clear();
                if self.read_more(READ_BUF_BYTES).await? == 0 {
                    break;
                }
            },
        }
        if head.close {
            self.close();
        }
        Ok(Response {
            status: head.status,
            bytes: self.received,
            body,
            crc32: crc.map(crc32fast::Hasher::finalize),
        })
    }
}
