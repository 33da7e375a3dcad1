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

/// Queues `len` bytes of `file` at `offset`, flushing whenever a chunk's worth is queued. The
/// tail stays queued to leave with whatever follows.
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
        if offset < end || queue.len() as u64 >= CHUNK {
            queue.flush(socket, None, true).await?;
        }
    }
    Ok(())
}
