//! Moving a response (head and body) to the socket: one file per mechanism, one function,
//! [`choose`], picking among them per file range.
//!
//! A body is a list of [`Segment`]s: bytes in memory (cached small files, error text, multipart
//! part heads) and ranges of an open file. Bytes queue up behind the head and leave with it in
//! one `sendmsg`; a file range goes by its mechanism:
//!
//! | mechanism | file | how |
//! |---|---|---|
//! | copy | `copy.rs` | `pread` into a buffer, queued like bytes; the reference |
//! | sendfile | `sendfile.rs` | page cache → socket; head first with `MSG_MORE` |
//! | splice | `splice.rs` | file → per-worker pipe → socket |
//! | map | `memory.rs` | `mmap` the file, `sendmsg` from the mapping |
//! | encrypted | `encrypted.rs` | user-space TLS: `pread` into a per-worker buffer, encrypt, send |
//!
//! Over user-space TLS every strategy becomes `encrypted.rs` (the bytes must pass through
//! user space to be encrypted); over kernel TLS the socket takes plaintext and the table
//! applies unchanged.
//!
//! Small whole files come from the per-worker file cache as `Bytes` (the memory strategy) and
//! never reach [`choose`]. On error the caller closes the connection; nothing here holds state
//! across calls, so a dropped future leaks nothing (a splice pipe with bytes left in it is closed,
//! not reused).

mod cold;
mod copy;
mod encrypted;
mod memory;
mod sendfile;
mod splice;

use std::cell::RefCell;
use std::fs::File;
use std::io::{ErrorKind, IoSlice};
use std::rc::Rc;

use bytes::Bytes;
use clap::ValueEnum;
use smallvec::SmallVec;

use crate::socket::{BodyPath, SendError, Socket, Transport};

/// How file bytes reach the socket (`--body-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Small files from memory, small ranges copied with the head, the rest with `sendfile`.
    Auto,
    /// From memory: cached content for small files, a memory map for the others.
    Memory,
    /// `sendfile(2)` for every file range.
    Sendfile,
    /// `splice(2)` file → pipe → socket for every file range.
    Splice,
    /// `pread` + `send` for every file range (the reference the others are measured against).
    Copy,
}

impl Strategy {
    /// Whether cached content of small files may be used.
    pub fn uses_cached_content(self) -> bool {
        matches!(self, Strategy::Auto | Strategy::Memory)
    }
}

/// Under [`Strategy::Auto`], file ranges up to this size are read and sent with the head in one
/// call; larger ones use `sendfile`. See docs/benchmarks.md for the measurements behind it.
pub const INLINE_MAX: u64 = 16 * 1024;

/// Responses moving at least this many bytes by a bulk mechanism are sent corked; below it the
/// two extra `setsockopt` calls cost more than they save (the head already goes with
/// `MSG_MORE`).
pub const CORK_MIN: u64 = 256 * 1024;

/// Bodies held in memory up to this size are copied behind the head, in a buffer each worker
/// keeps for it, and leave in one `send`: copying a few KiB costs less than what the kernel's
/// `sendmsg` spends on a message header and an I/O vector. See docs/benchmarks.md.
pub const COPY_BEHIND_HEAD_MAX: u64 = 4 * 1024;

thread_local! {
    /// The worker's buffer for assembling a small response (see [`COPY_BEHIND_HEAD_MAX`]).
    static ASSEMBLY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The mechanism for one file range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `pread` + `sendmsg`.
    Copy,
    /// `sendfile`.
    Sendfile,
    /// `splice` through a pipe.
    Splice,
    /// `sendmsg` from a memory map.
    Map,
}

/// Picks the mechanism for a file range of `len` bytes.
pub fn choose(strategy: Strategy, len: u64) -> Mechanism {
    match strategy {
        Strategy::Copy => Mechanism::Copy,
        Strategy::Sendfile => Mechanism::Sendfile,
        Strategy::Splice => Mechanism::Splice,
        Strategy::Memory => Mechanism::Map,
        Strategy::Auto if len <= INLINE_MAX => Mechanism::Copy,
        Strategy::Auto => Mechanism::Sendfile,
    }
}

/// One piece of a response body.
#[derive(Debug, Clone)]
pub enum Segment {
    /// Bytes held in memory.
    Bytes(Bytes),
    /// `len` bytes of the body's file from `offset`.
    File {
        /// Offset in the file.
        offset: u64,
        /// Length.
        len: u64,
    },
}

/// The pieces of a body.
pub type Segments = SmallVec<[Segment; 1]>;

/// A response body.
#[derive(Debug, Default)]
pub struct Body {
    /// The file the [`Segment::File`] pieces refer to (shared with the file cache).
    pub file: Option<Rc<File>>,
    /// The pieces, in order; one (a whole file or a single range) is held inline.
    pub segments: Segments,
}

impl Body {
    /// No body.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A body of bytes held in memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self { file: None, segments: smallvec::smallvec![Segment::Bytes(bytes.into())] }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::File { len, .. } => *len,
            })
            .sum()
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bytes waiting to be sent together in one `sendmsg`: the response head (kept as the vector it
/// was written into), then pieces of the body. Inline up to a few pieces, so the common
/// response (head and one piece) allocates nothing here.
#[derive(Debug, Default)]
pub struct Queue {
    head: Vec<u8>,
    parts: SmallVec<[Bytes; 2]>,
    len: usize,
}

impl Queue {
    /// A queue holding `head`.
    pub fn with_head(head: Vec<u8>) -> Self {
        Self { len: head.len(), head, parts: SmallVec::new() }
    }

    /// Queues `b`.
    pub fn push(&mut self, b: Bytes) {
        self.len += b.len();
        if !b.is_empty() {
            self.parts.push(b);
        }
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sends everything queued, followed by `tail` (bytes only the kernel may read, e.g. from a
    /// memory map). `more`: more data follows this call.
    pub async fn flush(
        &mut self,
        socket: &Socket,
        tail: Option<IoSlice<'_>>,
        more: bool,
    ) -> Result<(), SendError> {
        let mut slices: SmallVec<[IoSlice<'_>; 4]> = SmallVec::new();
        if !self.head.is_empty() {
            slices.push(IoSlice::new(&self.head));
        }
        slices.extend(self.parts.iter().map(|b| IoSlice::new(b)));
        slices.extend(tail);
        socket.write_vectored_all(&mut slices, more).await?;
        drop(slices);
        self.head.clear();
        self.parts.clear();
        self.len = 0;
        Ok(())
    }
}

/// Sends `head` and then `body` (unless `head_only`, for HEAD requests and bodiless statuses)
/// by the transport's body path. Returns the body bytes sent.
pub async fn send<T: Transport>(
    transport: &T,
    head: Vec<u8>,
    body: &Body,
    head_only: bool,
    strategy: Strategy,
) -> Result<u64, SendError> {
    match transport.body_path() {
        BodyPath::Plain(socket) => send_plain(socket, head, body, head_only, strategy).await,
        BodyPath::Encrypted(tls) => encrypted::send(tls, head, body, head_only).await,
    }
}

/// [`send`] straight to the socket, by `strategy`.
async fn send_plain(
    socket: &Socket,
    head: Vec<u8>,
    body: &Body,
    head_only: bool,
    strategy: Strategy,
) -> Result<u64, SendError> {
    if head_only {
        socket.write_all(&head, false).await?;
        return Ok(0);
    }
    let body_len = body.len();
    if body.file.is_none() && body_len <= COPY_BEHIND_HEAD_MAX {
        send_small(socket, &head, body).await?;
        return Ok(body_len);
    }
    let mut queue = Queue::with_head(head);
    // Bulk mechanisms run corked (as nginx's `tcp_nopush`): TCP then sends only full segments
    // instead of pushing a partial one at the end of every call, which costs measurably more
    // CPU per byte on a fast link. Uncorked when the response is out (or abandoned).
    let bulk: u64 = body
        .segments
        .iter()
        .map(|s| match s {
            Segment::File { len, .. } if choose(strategy, *len) != Mechanism::Copy => *len,
            _ => 0,
        })
        .sum();
    let _cork = (bulk >= CORK_MIN).then(|| Cork::set(socket));
    let mut sent = 0u64;
    for segment in &body.segments {
        match segment {
            Segment::Bytes(b) => {
                queue.push(b.clone());
                sent += b.len() as u64;
            }
            Segment::File { offset, len } => {
                let file = body.file.as_deref().expect("file segment without a file");
                match choose(strategy, *len) {
                    Mechanism::Copy => {
                        copy::send_range(socket, &mut queue, file, *offset, *len).await?;
                    }
                    Mechanism::Sendfile => {
                        queue.flush(socket, None, true).await?;
                        sendfile::send_range(socket, file, *offset, *len).await?;
                    }
                    Mechanism::Splice => {
                        queue.flush(socket, None, true).await?;
                        splice::send_range(socket, file, *offset, *len).await?;
                    }
                    Mechanism::Map => {
                        memory::send_mapped(socket, &mut queue, file, *offset, *len).await?;
                    }
                }
                sent += len;
            }
        }
    }
    if !queue.is_empty() {
        queue.flush(socket, None, false).await?;
    }
    Ok(sent)
}

/// Sends `head` and `body` (bytes only: a body without a file) assembled in the worker's
/// buffer, in one `send` when the socket takes it all, as it almost always does; the rest, if
/// any, is sent from a copy, since the buffer is not held across a wait.
async fn send_small(socket: &Socket, head: &[u8], body: &Body) -> Result<(), SendError> {
    let rest = ASSEMBLY.with_borrow_mut(|buf| {
        buf.clear();
        buf.extend_from_slice(head);
        for segment in &body.segments {
            if let Segment::Bytes(b) = segment {
                buf.extend_from_slice(b);
            }
        }
        match socket.try_send(buf) {
            Ok(n) if n == buf.len() => Ok(None),
            Ok(n) => Ok(Some(buf[n..].to_vec())),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                Ok(Some(buf.clone()))
            }
            Err(e) => Err(SendError::io("send", e)),
        }
    })?;
    match rest {
        Some(rest) => socket.write_all(&rest, false).await,
        None => Ok(()),
    }
}

/// `TCP_CORK` for the life of one response.
struct Cork<'a>(&'a Socket);

impl<'a> Cork<'a> {
    fn set(socket: &'a Socket) -> Self {
        let _ = crate::sys::set_cork(socket.fd(), true);
        Cork(socket)
    }
}

impl Drop for Cork<'_> {
    fn drop(&mut self) {
        // Clearing the cork sends whatever is still queued.
        let _ = crate::sys::set_cork(self.0.fd(), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_chooses_by_size() {
        let cases = [
            (Strategy::Auto, 0, Mechanism::Copy),
            (Strategy::Auto, INLINE_MAX, Mechanism::Copy),
            (Strategy::Auto, INLINE_MAX + 1, Mechanism::Sendfile),
            (Strategy::Auto, 1 << 30, Mechanism::Sendfile),
            (Strategy::Copy, 1 << 30, Mechanism::Copy),
            (Strategy::Sendfile, 1, Mechanism::Sendfile),
            (Strategy::Splice, 1, Mechanism::Splice),
            (Strategy::Memory, 1 << 30, Mechanism::Map),
        ];
        for (strategy, len, want) in cases {
            assert_eq!(choose(strategy, len), want, "{strategy:?} {len}");
        }
    }
}
