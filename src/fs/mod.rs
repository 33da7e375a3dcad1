//! The served root: turning a normalised path into an open file, with the kernel keeping every
//! open beneath the root.
//!
//! Each worker holds its own [`Root`] (its own directory descriptor) so nothing is shared across
//! cores. Opens use `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` relative to that
//! descriptor: `..`, absolute symlinks and symlinks pointing outside fail with `EXDEV`, which we
//! answer as 404 (the path does not exist *here*).

pub mod cache;
pub mod path;

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use crate::http::response::Status;
use crate::sys;

/// A directory descriptor for the served root.
#[derive(Debug)]
pub struct Root {
    dir: File,
}

/// What a path resolved to.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "returned once per request and matched at once")]
pub enum Resolved {
    /// A regular file, open, with its metadata and its path relative to the root (the index
    /// file's path for a directory).
    File(File, Metadata, Vec<u8>),
    /// A directory asked for without a trailing slash: redirect to the slash form.
    Directory,
}

/// Why a path could not be served, as the status to answer.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path:?}: {source}")]
pub struct OpenError {
    /// The operation that failed.
    pub op: &'static str,
    /// The path, relative to the root.
    pub path: String,
    /// The OS error.
    pub source: io::Error,
}

impl OpenError {
    /// The error for a path that does not name a servable file.
    pub fn not_found(relative: &[u8]) -> Self {
        not_found(relative)
    }

    /// The status a client gets for this error (the one place that mapping lives).
    pub fn status(&self) -> Status {
        match self.source.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR | libc::EXDEV | libc::ELOOP | libc::ENAMETOOLONG) => {
                Status::NotFound
            }
            Some(libc::EACCES | libc::EPERM) => Status::Forbidden,
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => Status::ServiceUnavailable,
            _ => Status::InternalServerError,
        }
    }
}

impl Root {
    /// Opens the root directory.
    pub fn open(path: &Path) -> io::Result<Self> {
        let dir = File::open(path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "root is not a directory"));
        }
        Ok(Self { dir })
    }

    /// The root's directory descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Another descriptor for the same root (one per worker).
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self { dir: self.dir.try_clone()? })
    }

    /// Resolves `relative` (from [`path::normalize`]): a regular file, or a directory's index
    /// when `want_dir` (the target ended in `/`).
    pub fn resolve(
        &self,
        relative: &[u8],
        want_dir: bool,
        index: &str,
    ) -> Result<Resolved, OpenError> {
        let (file, meta) = self.open_with_metadata(relative)?;
        if meta.is_file() {
            if want_dir {
                // "/file.txt/" names nothing (RFC 3986 path semantics, as nginx answers).
                return Err(not_found(relative));
            }
            return Ok(Resolved::File(file, meta, relative.to_vec()));
        }
        if !meta.is_dir() {
            // FIFOs, sockets, devices: never served.
            return Err(not_found(relative));
        }
        if !want_dir {
            return Ok(Resolved::Directory);
        }
        let mut index_path = relative.to_vec();
        if !index_path.is_empty() {
            index_path.push(b'/');
        }
        index_path.extend_from_slice(index.as_bytes());
        let (file, meta) = self.open_with_metadata(&index_path)?;
        if !meta.is_file() {
            return Err(not_found(&index_path));
        }
        Ok(Resolved::File(file, meta, index_path))
    }

    fn open_with_metadata(&self, relative: &[u8]) -> Result<(File, Metadata), OpenError> {
        let display = || String::from_utf8_lossy(relative).into_owned();
        let c_path = if relative.is_empty() {
            CString::new(".").expect("no NUL")
        } else {
            CString::new(relative).map_err(|_| OpenError {
                op: "open",
                path: display(),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            })?
        };
        let fd = sys::open_beneath(self.dir.as_fd(), &c_path).map_err(|source| OpenError {
            op: "open",
            path: display(),
            source,
        })?;
        let file = File::from(fd);
        let meta =
            file.metadata().map_err(|source| OpenError { op: "stat", path: display(), source })?;
        Ok((file, meta))
    }
}

fn not_found(relative: &[u8]) -> OpenError {
    OpenError {
        op: "open",
        path: String::from_utf8_lossy(relative).into_owned(),
        source: io::Error::from_raw_os_error(libc::ENOENT),
    }
}
