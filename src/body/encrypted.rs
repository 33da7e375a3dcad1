//! Bodies over user-space TLS: every byte is encrypted by rustls before it reaches the socket.
//!
//! Bytes in memory (cached small files, error text, multipart part heads) are encrypted where
//! they are. File ranges — whatever the strategy would have done on a plain socket — are read
//! with `pread` into a buffer each worker keeps, [`CHUNK`] at a time, encrypted into records of
//! up to 16 KiB at once (the buffer is free again before any wait), and sent: one `pread`, and
//! one `sendmsg` carrying the chunk's four records when the socket has room. The head shares the
//! first records with the start of the body. After every [`TURN_BYTES`] the transfer takes a
//! turn, as the plain mechanisms do.
//!
//! Cold files: a `pread` of pages missing from the page cache would wait for the disk on the
//! worker thread. Before each read a [`Warmer`] (`cold.rs`, shared with `sendfile.rs`) tells how
//! far the range can be read without waiting, warming it on the cold-read threads first when it
//! is not in the page cache; no read runs past that point.
//!
//! On error the caller closes the connection; a dropped future leaves encrypted records in the
//! session, which is dropped with it.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;

use super::cold::Warmer;
use crate::body::{Body, Segment};
use crate::socket::SendError;
use crate::tls::TlsSocket;

/// Bytes read and encrypted per step: four full records.
pub const CHUNK: usize = 64 * 1024;

/// Bytes sent between two turns.
const TURN_BYTES: u64 = 2 * 1024 * 1024;

thread_local! {
    /// The worker's buffer for file bytes on their way to encryption.
    static PLAINTEXT: RefCell<Box<[u8]>> = RefCell::new(vec![0; CHUNK].into_boxed_slice());
}

/// Sends `head` and then `body` (unless `head_only`). Returns the body bytes sent.
pub(super) async fn send(
    tls: &TlsSocket,
    head: Vec<u8>,
    body: &Body,
    head_only: bool,
) -> Result<u64, SendError> {
    // The head waits to be encrypted together with the first body bytes.
    let mut head = Some(head);
    let mut sent = 0u64;
    let mut since_turn = 0u64;
    if !head_only {
        for segment in &body.segments {
            match segment {
                Segment::Bytes(b) => {
                    encrypt_after(tls, &mut head, b)?;
                    sent += b.len() as u64;
                    since_turn += b.len() as u64;
                    if since_turn >= CHUNK as u64 {
                        tls.flush().await?;
                    }
                }
                Segment::File { offset, len } => {
                    let file = body.file.as_deref().expect("file segment without a file");
                    let (mut pos, end) = (*offset, offset + len);
                    let mut warmer = Warmer::new(file, *offset, *len);
                    while pos < end {
                        let ready = warmer.ready(pos).await;
                        let n = usize::try_from(ready - pos).unwrap_or(CHUNK).min(CHUNK);
                        PLAINTEXT.with_borrow_mut(|buf| {
                            match file.read_exact_at(&mut buf[..n], pos) {
                                Ok(()) => {}
                                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                                    return Err(SendError::Truncated)
                                }
                                Err(e) => return Err(SendError::io("pread", e)),
                            }
                            encrypt_after(tls, &mut head, &buf[..n])
                        })?;
                        pos += n as u64;
                        sent += n as u64;
                        since_turn += n as u64;
                        tls.flush().await?;
                        if since_turn >= TURN_BYTES && pos < end {
                            since_turn = 0;
                            tls.socket().take_turn().await?;
                        }
                    }
                }
            }
        }
    }
    if let Some(head) = head {
        tls.encrypt(&[IoSlice::new(&head)])?;
    }
    tls.flush().await?;
    Ok(sent)
}

/// Encrypts `bytes`, preceded by the head if it has not gone yet.
fn encrypt_after(
    tls: &TlsSocket,
    head: &mut Option<Vec<u8>>,
    bytes: &[u8],
) -> Result<(), SendError> {
    match head.take() {
        Some(h) => tls.encrypt(&[IoSlice::new(&h), IoSlice::new(bytes)]),
        None => tls.encrypt(&[IoSlice::new(bytes)]),
    }
}
