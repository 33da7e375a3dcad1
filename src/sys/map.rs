//! Read-only memory maps of files, handed only to the kernel.

use std::fs::File;
use std::io;

/// A read-only shared mapping of a whole file.
///
/// Its bytes are reachable only through [`Mapped::io_slice`], which exists to give them to
/// `sendmsg`: user space never reads the mapping. That matters when the file is truncated while
/// mapped: a user-space read of a page past the new end raises SIGBUS, while the kernel's own
/// copy in `sendmsg` fails that call with `EFAULT` and the connection is closed.
#[derive(Debug)]
pub struct Mapped {
    map: memmap2::Mmap,
}

impl Mapped {
    /// Maps `file` whole (an empty file cannot be mapped: `EINVAL`).
    pub fn new(file: &File) -> io::Result<Self> {
        // SAFETY: memmap2 requires that the file is not modified through other mappings or
        // truncated while mapped, or reads of the slice may see changes or fault. We never read
        // the slice in user space (see the type's documentation): only the kernel copies from
        // it, and it reports a fault as an error, not a signal.
        let map = unsafe { memmap2::MmapOptions::new().map(file)? };
        Ok(Self { map })
    }

    /// The length of the mapping.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// `len` bytes at `offset`, for `sendmsg` only.
    pub fn io_slice(&self, offset: usize, len: usize) -> std::io::IoSlice<'_> {
        std::io::IoSlice::new(&self.map[offset..offset + len])
    }
}
