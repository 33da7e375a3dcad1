//! The copy strategy: `pread` into a user-space buffer, then `sendmsg`.
//!
//! It is the reference the zero-copy strategies are measured against and the path for small
//! ranges, where the bytes read join the head in one `sendmsg`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};

use crate::body::Queue;
use crate::socket::{SendError, Socket};

/// Largest chunk read at once; bounds the memory one connection holds while copying.
const CHUNK: u64 = 64 * 1024;

/// Queues `len` bytes of `file` at `offset`, flushing before each further chunk. The last chunk
/// stays queued to leave with whatever follows.
pub async fn send_range(
    socket: &Socket,
    queue: &mut Queue,
    file: &File,
    mut offset: u64,
    len: u64,
) -> Result<(), SendError> {
    let end = offset + len;
    while offset < end {
        let chunk = usize::try_from((end - offset).min(CHUNK)).expect("chunk fits in memory");
        let mut buf = BytesMut::zeroed(chunk);
        match file.read_exact_at(&mut buf, offset) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(SendError::Truncated),
            Err(e) => return Err(SendError::io("pread", e)),
        }
        offset += chunk as u64;
        queue.push(Bytes::from(buf));
        // Flush between chunks only: the last chunk stays queued and leaves with whatever follows
        // (or in the final flush, without MSG_MORE). Flushing it here with MSG_MORE when nothing
        // follows would leave the tail in the kernel until the client's delayed ACK.
        if offset < end {
            queue.flush(socket, None, true).await?;
        }
    }
    Ok(())
}
