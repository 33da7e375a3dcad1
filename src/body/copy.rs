//! The copy strategy: `pread` into a user-space buffer, then `send`.
//!
//! It is the reference the zero-copy strategies are measured against and the path for small
//! ranges, where reading into the head's buffer lets head and body leave in one `send`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::socket::{SendError, Socket};

/// Largest chunk read at once; bounds the memory one connection holds while copying.
const CHUNK: u64 = 64 * 1024;

/// Appends `len` bytes of `file` at `offset` to `pending`, flushing `pending` to the socket
/// whenever it holds a full chunk. Leaves the tail in `pending` for the caller to send with
/// what follows (or to flush). `more` says whether anything follows this range.
pub async fn send_range(
    socket: &Socket,
    pending: &mut Vec<u8>,
    file: &File,
    mut offset: u64,
    len: u64,
    more: bool,
) -> Result<(), SendError> {
    let end = offset + len;
    while offset < end {
        let chunk = (end - offset).min(CHUNK);
        let at = pending.len();
        let chunk_len = usize::try_from(chunk).expect("chunk fits in memory");
        pending.resize(at + chunk_len, 0);
        match file.read_exact_at(&mut pending[at..], offset) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(SendError::Truncated),
            Err(e) => return Err(SendError::io("pread", e)),
        }
        offset += chunk;
        if offset < end || (more && pending.len() as u64 >= CHUNK) {
            socket.write_all(pending, true).await?;
            pending.clear();
        }
    }
    Ok(())
}
