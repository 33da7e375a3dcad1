//! Moving a response (head and body) to the socket: one file per mechanism, one function,
//! [`send`], choosing among them.
//!
//! A body is a list of [`Segment`]s: bytes we hold (error text, multipart part heads) and
//! ranges of an open file. Small file ranges are read into the head's buffer so head and body
//! leave in one `send`; larger ones go page cache → socket with `sendfile`, the head sent first
//! with `MSG_MORE` so it shares a segment with the first body bytes.
//!
//! On error the connection is closed by the caller; nothing here holds state across calls, so
//! cancellation (a dropped future) leaks nothing: the file is owned by the body, the socket by
//! the connection.

mod copy;
mod sendfile;

use std::fs::File;

use bytes::Bytes;
use clap::ValueEnum;

use crate::socket::{SendError, Socket};

/// How file bytes reach the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Per range: small ranges read into the head's buffer, larger ones with `sendfile`.
    Auto,
    /// `sendfile(2)` for every file range.
    Sendfile,
    /// `pread` + `send` for every file range (the reference the others are measured against).
    Copy,
}

/// File ranges up to this size are read into the head's buffer and sent with it in one call
/// under [`Strategy::Auto`].
pub const INLINE_MAX: u64 = 16 * 1024;

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

/// A response body.
#[derive(Debug, Default)]
pub struct Body {
    /// The file the [`Segment::File`] pieces refer to.
    pub file: Option<File>,
    /// The pieces, in order.
    pub segments: Vec<Segment>,
}

impl Body {
    /// No body.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A body of bytes held in memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self { file: None, segments: vec![Segment::Bytes(bytes.into())] }
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

/// Sends `head` and then `body` (unless `head_only`, for HEAD requests and bodiless statuses).
/// Returns the body bytes sent.
pub async fn send(
    socket: &Socket,
    mut head: Vec<u8>,
    body: &Body,
    head_only: bool,
    strategy: Strategy,
) -> Result<u64, SendError> {
    if head_only || body.segments.is_empty() {
        socket.write_all(&head, false).await?;
        return Ok(0);
    }
    let last = body.segments.len() - 1;
    let mut sent = 0u64;
    for (i, segment) in body.segments.iter().enumerate() {
        let more = i != last;
        match segment {
            Segment::Bytes(b) => {
                head.extend_from_slice(b);
                sent += b.len() as u64;
            }
            Segment::File { offset, len } => {
                let file = body.file.as_ref().expect("file segment without a file");
                let inline = match strategy {
                    Strategy::Copy => true,
                    Strategy::Sendfile => false,
                    Strategy::Auto => *len <= INLINE_MAX,
                };
                if inline {
                    copy::send_range(socket, &mut head, file, *offset, *len, more).await?;
                } else {
                    socket.write_all(&head, true).await?;
                    head.clear();
                    sendfile::send_range(socket, file, *offset, *len).await?;
                }
                sent += len;
            }
        }
    }
    if !head.is_empty() {
        socket.write_all(&head, false).await?;
    }
    Ok(sent)
}
