//! The per-worker open-file cache: descriptor, validators and (for small files) content per
//! path, so a hot file costs no `openat2`, no `fstat` and no read per request.
//!
//! Each worker owns one; nothing is shared across cores. Entries are bounded in number (CLOCK
//! eviction: a second chance for recently used entries, amortised O(1)) and the cached contents
//! in bytes. An entry is revalidated with `fstatat` at most once per `revalidate` interval: a
//! file that was changed (size, mtime), replaced (device, inode) or deleted is noticed then and
//! opened afresh. Evicting an entry closes its descriptor once no response in flight still
//! holds it (`Rc<File>`).
//!
//! Symlinks: revalidation follows them (it only compares metadata); a changed target shows as a
//! changed inode and the path is opened again with `openat2(RESOLVE_BENEATH)`, so a link swapped
//! to point outside the root is refused then.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use monoio::time::Instant;

use crate::fs::{OpenError, Resolved, Root};
use crate::http::{date, mime};
use crate::sys;

/// Limits of one worker's cache.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries (open descriptors) kept.
    pub max_entries: usize,
    /// Most bytes of file content kept in memory.
    pub memory_budget: u64,
    /// Largest file whose content is kept in memory.
    pub memory_max_file: u64,
    /// How often an entry is checked against the file system.
    pub revalidate: Duration,
}

/// What the cache knows of one file.
#[derive(Debug)]
pub struct CachedFile {
    /// The open file, shared with responses in flight.
    pub file: Rc<File>,
    /// Its path relative to the root (the index file's path for a directory).
    pub path: Vec<u8>,
    /// The last extension of the path, lowercased ([`mime::extension_of`]): what the media-type,
    /// caching and precompression rules go by, found once here rather than for every response.
    pub extension: Option<Rc<str>>,
    /// Size in bytes.
    pub len: u64,
    /// Modification time, whole seconds (what `Last-Modified` says).
    pub modified: SystemTime,
    /// Strong entity tag.
    pub etag: String,
    /// `Last-Modified` value.
    pub last_modified: String,
    /// The whole content, when the file is small enough and the budget allows.
    pub content: Option<Bytes>,
    id: FileId,
}

/// Identity and version of a file, as `stat` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

struct Slot {
    entry: Rc<CachedFile>,
    checked: Instant,
    referenced: bool,
}

/// Counters of one worker's cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that opened the file.
    pub misses: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Entries dropped because the file changed or disappeared.
    pub invalidations: u64,
}

/// One worker's open-file cache.
pub struct FileCache {
    limits: Limits,
    /// Entries by path, one map for targets without and one for targets with a trailing slash
    /// (so a lookup borrows the path instead of building a key).
    maps: [HashMap<Vec<u8>, Slot>; 2],
    /// Paths found missing, and when: answered 404 without a syscall for one `revalidate`
    /// interval (precompressed variants are looked up for every text request).
    missing: [HashMap<Vec<u8>, Instant>; 2],
    clock: VecDeque<(Vec<u8>, bool)>,
    memory_used: u64,
    stats: Stats,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCache")
            .field("entries", &self.len())
            .field("memory_used", &self.memory_used)
            .field("stats", &self.stats)
            .finish()
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// A regular file.
    File(Rc<CachedFile>),
    /// A directory asked for without a trailing slash.
    Directory,
}

impl FileCache {
    /// An empty cache.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            maps: [HashMap::new(), HashMap::new()],
            missing: [HashMap::new(), HashMap::new()],
            clock: VecDeque::new(),
            memory_used: 0,
            stats: Stats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.maps[0].len() + self.maps[1].len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of content held.
    pub fn memory_used(&self) -> u64 {
        self.memory_used
    }

    /// Resolves `relative` (see [`Root::resolve`]) through the cache.
    pub fn lookup(
        &mut self,
        root: &Root,
        relative: &[u8],
        want_dir: bool,
        index: &str,
        now: Instant,
    ) -> Result<Lookup, OpenError> {
        let which = usize::from(want_dir);
        if let Some(slot) = self.maps[which].get_mut(relative) {
            let fresh = now.saturating_duration_since(slot.checked) < self.limits.revalidate;
            let valid = fresh
                || match root.stat(&slot.entry.path) {
                    Ok(id) => id == slot.entry.id,
                    Err(_) => false,
                };
            if valid {
                if !fresh {
                    slot.checked = now;
                }
                slot.referenced = true;
                self.stats.hits += 1;
                return Ok(Lookup::File(Rc::clone(&slot.entry)));
            }
            self.stats.invalidations += 1;
            self.remove(&(relative.to_vec(), want_dir));
        }
        if let Some(&seen) = self.missing[which].get(relative) {
            if now.saturating_duration_since(seen) < self.limits.revalidate {
                self.stats.hits += 1;
                return Err(OpenError::not_found(relative));
            }
            self.missing[which].remove(relative);
        }
        self.stats.misses += 1;
        let resolved = match root.resolve(relative, want_dir, index) {
            Ok(r) => r,
            Err(e) => {
                if e.status() == crate::http::response::Status::NotFound
                    && self.limits.max_entries > 0
                {
                    if self.missing[which].len() >= self.limits.max_entries {
                        self.missing[which].clear();
                    }
                    self.missing[which].insert(relative.to_vec(), now);
                }
                return Err(e);
            }
        };
        let key = (relative.to_vec(), want_dir);
        let (file, meta, path) = match resolved {
            Resolved::File(file, meta, path) => (file, meta, path),
            Resolved::Directory => return Ok(Lookup::Directory),
        };
        let len = meta.len();
        let content = if len <= self.limits.memory_max_file
            && self.memory_used + len <= self.limits.memory_budget
        {
            read_small(&file, len)
        } else {
            None
        };
        // RFC 9110 §8.8.2.1: never a Last-Modified later than the response's Date.
        let modified = date::truncate_to_second(
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH).min(SystemTime::now()),
        );
        let entry = Rc::new(CachedFile {
            file: Rc::new(file),
            extension: mime::extension_of(&String::from_utf8_lossy(&path)).map(Rc::from),
            path,
            len,
            modified,
            etag: etag(&meta),
            last_modified: date::format(modified),
            content,
            id: FileId::of(&meta),
        });
        self.insert(key, Rc::clone(&entry), now);
        Ok(Lookup::File(entry))
    }

    fn insert(&mut self, key: (Vec<u8>, bool), entry: Rc<CachedFile>, now: Instant) {
        if self.limits.max_entries == 0 {
            return;
        }
        while self.len() >= self.limits.max_entries {
            self.evict_one();
        }
        self.memory_used += entry.content.as_ref().map_or(0, |c| c.len() as u64);
        self.clock.push_back(key.clone());
        let (path, want_dir) = key;
        self.maps[usize::from(want_dir)]
            .insert(path, Slot { entry, checked: now, referenced: false });
    }

    /// CLOCK: the oldest entry goes unless it was used since the hand last passed; then it gets
    /// a second chance at the back.
    fn evict_one(&mut self) {
        while let Some(key) = self.clock.pop_front() {
            match self.maps[usize::from(key.1)].get_mut(&key.0) {
                None => continue, // removed earlier (invalidated)
                Some(slot) if slot.referenced => {
                    slot.referenced = false;
                    self.clock.push_back(key);
                }
                Some(_) => {
                    self.stats.evictions += 1;
                    self.remove(&key);
                    return;
                }
            }
        }
    }

    fn remove(&mut self, key: &(Vec<u8>, bool)) {
        if let Some(slot) = self.maps[usize::from(key.1)].remove(&key.0) {
            self.memory_used -= slot.entry.content.as_ref().map_or(0, |c| c.len() as u64);
        }
        // The clock keeps the key until the hand reaches it; it is skipped then.
        if self.clock.len() > 2 * self.limits.max_entries.max(16) {
            let maps = &self.maps;
            self.clock.retain(|(path, dir)| maps[usize::from(*dir)].contains_key(path));
        }
    }
}

/// Reads a small file whole; `None` if it changed size under us (it is then served from the
/// descriptor, whose reads see the same change).
fn read_small(file: &File, len: u64) -> Option<Bytes> {
    let mut buf = vec![0; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, 0).ok()?;
    Some(Bytes::from(buf))
}

/// The strong validator for a file: size and modification time to the nanosecond, in hex.
pub fn etag(meta: &std::fs::Metadata) -> String {
    let nanos = meta.mtime().unsigned_abs().saturating_mul(1_000_000_000)
        + meta.mtime_nsec().unsigned_abs();
    format!("\"{:x}-{:x}\"", meta.len(), nanos)
}

impl Root {
    /// The identity and version of `relative` now (following symlinks), for revalidation.
    pub fn stat(&self, relative: &[u8]) -> std::io::Result<FileId> {
        let st = sys::stat_at(self.fd(), relative)?;
        Ok(FileId { dev: st.dev, ino: st.ino, size: st.size, mtime_ns: st.mtime_ns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_entries: usize) -> Limits {
        Limits {
            max_entries,
            memory_budget: 100,
            memory_max_file: 10,
            revalidate: Duration::from_millis(0),
        }
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ringcast-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn file(lookup: Lookup) -> Rc<CachedFile> {
        match lookup {
            Lookup::File(f) => f,
            Lookup::Directory => panic!("directory"),
        }
    }

    #[test]
    fn hits_invalidation_and_eviction() {
        let d = dir("basic");
        for name in ["a", "b", "c"] {
            std::fs::write(d.join(name), name.repeat(5)).unwrap();
        }
        std::fs::write(d.join("big"), "x".repeat(50)).unwrap();
        let root = Root::open(&d).unwrap();
        let mut cache = FileCache::new(limits(2));
        let now = Instant::now();

        let a = file(cache.lookup(&root, b"a", false, "index.html", now).unwrap());
        assert_eq!(a.content.as_deref(), Some(&b"aaaaa"[..]), "small file kept in memory");
        let _ = cache.lookup(&root, b"a", false, "index.html", now).unwrap();
        assert_eq!(cache.stats().hits, 1);

        // A changed file is noticed on revalidation.
        std::fs::write(d.join("a"), "changed!").unwrap();
        let a2 = file(cache.lookup(&root, b"a", false, "index.html", now).unwrap());
        assert_eq!(a2.len, 8);
        assert_eq!(cache.stats().invalidations, 1);

        // A replaced file (new inode, same size) is noticed too.
        std::fs::write(d.join("tmp"), "CHANGED!").unwrap();
        std::fs::rename(d.join("tmp"), d.join("a")).unwrap();
        let a3 = file(cache.lookup(&root, b"a", false, "index.html", now).unwrap());
        assert_eq!(a3.content.as_deref(), Some(&b"CHANGED!"[..]));

        // Over the content limits: served from the descriptor only.
        let big = file(cache.lookup(&root, b"big", false, "index.html", now).unwrap());
        assert!(big.content.is_none());
        assert!(cache.len() <= 2);
        let _ = cache.lookup(&root, b"b", false, "index.html", now).unwrap();
        let _ = cache.lookup(&root, b"c", false, "index.html", now).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.stats().evictions >= 2);
        assert!(cache.memory_used() <= 100);

        // A deleted file is a miss and a 404.
        std::fs::remove_file(d.join("c")).unwrap();
        let err = cache.lookup(&root, b"c", false, "index.html", now).unwrap_err();
        assert_eq!(err.status(), crate::http::response::Status::NotFound);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn clock_gives_a_second_chance() {
        let d = dir("clock");
        for name in ["a", "b", "c"] {
            std::fs::write(d.join(name), name).unwrap();
        }
        let root = Root::open(&d).unwrap();
        let mut cache = FileCache::new(Limits { revalidate: Duration::from_secs(60), ..limits(2) });
        let now = Instant::now();
        let _ = cache.lookup(&root, b"a", false, "i", now).unwrap();
        let _ = cache.lookup(&root, b"b", false, "i", now).unwrap();
        let _ = cache.lookup(&root, b"a", false, "i", now).unwrap(); // a referenced
        let _ = cache.lookup(&root, b"c", false, "i", now).unwrap(); // evicts b, not a
        let hits = cache.stats().hits;
        let _ = cache.lookup(&root, b"a", false, "i", now).unwrap();
        assert_eq!(cache.stats().hits, hits + 1, "a survived");
        let _ = std::fs::remove_dir_all(&d);
    }
}
