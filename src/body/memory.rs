//! The memory strategy for files that are not in the cache's memory: map the file and let the
//! kernel copy from the mapping in `sendmsg` (no `read` into a buffer of ours).
//!
//! Small files are served from the file cache's `Bytes` instead (see `fs::cache`); this path is
//! what `--body-strategy memory` uses for the rest. The mapping lives for one response.
//! Truncation while sending makes `sendmsg` fail with `EFAULT` and the connection close; user
//! space never touches the mapping (see `sys::Mapped`).

use std::fs::File;

use crate::body::Queue;
use crate::socket::{SendError, Socket};
use crate::sys::Mapped;

/// Most bytes handed to one `sendmsg` from the mapping, so other connections get their turn.
const CHUNK: u64 = 2 * 1024 * 1024;

/// Sends the queue, then `len` bytes of `file` at `offset` from a memory map.
pub async fn send_mapped(
    socket: &Socket,
    queue: &mut Queue,
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(), SendError> {
    if len == 0 {
        return Ok(());
    }
    let map = Mapped::new(file).map_err(|e| SendError::io("mmap", e))?;
    let end = offset + len;
    if end > map.len() as u64 {
        return Err(SendError::Truncated);
    }
    let mut pos = offset;
    while pos < end {
        let chunk = (end - pos).min(CHUNK);
        let (at, n) = (usize::try_from(pos), usize::try_from(chunk));
        let (at, n) = (at.expect("mapped offset fits"), n.expect("chunk fits"));
        queue.flush(socket, Some(map.io_slice(at, n)), pos + chunk < end).await.map_err(|e| {
            match e {
                // A page past a concurrent truncation.
                SendError::Io { source, .. } if source.raw_os_error() == Some(libc::EFAULT) => {
                    SendError::Truncated
                }
                other => other,
            }
        })?;
        pos += chunk;
        if pos < end {
            socket.take_turn().await?;
        }
    }
    Ok(())
}
