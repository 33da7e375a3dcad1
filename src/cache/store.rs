//! The disk store: bodies as plain files, metadata beside them, an index rebuilt at start-up,
//! LRU eviction by bytes.
//!
//! Layout under the cache directory: `objects/<hh>/<id>.meta` (the [`Meta`]),
//! `objects/<hh>/<id>.body` (a body stored whole) or `objects/<hh>/<id>.<k>.slice` (slice `k`),
//! where `<id>` is the 64-hex [`ObjectId`] and `<hh>` its first two characters.
//!
//! Invariants:
//! - A body file under its final name is complete: bytes are written to a temporary name
//!   (`….tmp.<pid>.<n>`) and renamed only after the expected length arrived
//!   ([`BodyWriter::finish`]). A writer dropped before that deletes its temporary file; one
//!   killed with the process leaves it, and [`Store::open`] deletes every temporary file.
//! - Metadata is written the same way, after the body it describes, so a metadata file never
//!   points at a body that is not there; at start-up a body whose length disagrees with its
//!   metadata (or has none) is deleted, and the slice is marked missing.
//! - The index holds each object's body bytes and its recency; eviction removes the least
//!   recently used objects until the total is within the budget.
//!
//! Concurrency: one `Store` serves every worker; the index is behind one mutex, held only for
//! map updates and for the small metadata read-modify-write of [`Store::commit_slice`]
//! (never while a body is written). Calls block on the file system: they are made from
//! contexts that may block (start-up, the fill's writer), not on a hit's path.
//! Bodies are not fsynced (as nginx's cache): after a power loss a file may be renamed yet
//! short, which start-up's length check catches.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::cache::key::ObjectId;
use crate::cache::meta::Meta;

/// A store error with the operation and path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("cache store: {op} {}: {source}", path.display())]
pub(crate) struct StoreError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> StoreError + 'p {
    move |source| StoreError { op, path: path.to_path_buf(), source }
}

/// Which body file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Part {
    /// The whole body.
    Whole,
    /// Slice `k`.
    Slice(u64),
}

/// What start-up found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OpenReport {
    /// Objects indexed.
    pub(crate) objects: u64,
    /// Body bytes indexed.
    pub(crate) bytes: u64,
    /// Temporary files deleted (fills cut short by a crash or restart).
    pub(crate) temporary_deleted: u64,
    /// Metadata or body files deleted as unreadable, orphaned or of the wrong length.
    pub(crate) damaged_deleted: u64,
    /// Objects evicted to fit the budget.
    pub(crate) evicted: u64,
}

#[derive(Debug, Default)]
struct Index {
    /// id → (body bytes, recency tick).
    entries: HashMap<ObjectId, (u64, u64)>,
    /// recency tick → id, oldest first.
    lru: BTreeMap<u64, ObjectId>,
    bytes: u64,
    tick: u64,
}

impl Index {
    fn upsert(&mut self, id: ObjectId, bytes: u64) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((old_bytes, old_tick)) = self.entries.insert(id, (bytes, tick)) {
            self.lru.remove(&old_tick);
            self.bytes -= old_bytes;
        }
        self.lru.insert(tick, id);
        self.bytes += bytes;
    }

    fn touch(&mut self, id: &ObjectId) -> bool {
        let Some(entry) = self.entries.get_mut(id) else { return false };
        self.tick += 1;
        self.lru.remove(&entry.1);
        entry.1 = self.tick;
        self.lru.insert(self.tick, *id);
        true
    }

    fn remove(&mut self, id: &ObjectId) {
        if let Some((bytes, tick)) = self.entries.remove(id) {
            self.lru.remove(&tick);
            self.bytes -= bytes;
        }
    }
}

/// The disk store.
#[derive(Debug)]
pub(crate) struct Store {
    objects: PathBuf,
    budget_bytes: u64,
    index: Mutex<Index>,
    temp_seq: AtomicU64,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, deletes temporary and damaged files,
    /// rebuilds the index, and evicts down to `budget_bytes`.
    pub(crate) fn open(dir: &Path, budget_bytes: u64) -> Result<(Store, OpenReport), StoreError> {
        let objects = dir.join("objects");
        fs::create_dir_all(&objects).map_err(err("create", &objects))?;
        let store = Store {
            objects,
            budget_bytes,
            index: Mutex::new(Index::default()),
            temp_seq: AtomicU64::new(0),
        };
        let mut report = OpenReport::default();
        // (modified time, id, bytes): indexed oldest first, so recency survives a restart.
        let mut found = Vec::new();
        let shards = fs::read_dir(&store.objects).map_err(err("read", &store.objects))?;
        for shard in shards {
            let shard = shard.map_err(err("read", &store.objects))?.path();
            if shard.is_dir() {
                store.scan_shard(&shard, &mut report, &mut found)?;
            }
        }
        found.sort();
        {
            let mut index = store.lock();
            for (_, id, bytes) in found {
                index.upsert(id, bytes);
                report.objects += 1;
                report.bytes += bytes;
            }
        }
        report.evicted = u64::try_from(store.evict()?.len()).unwrap_or(u64::MAX);
        Ok((store, report))
    }

    fn scan_shard(
        &self,
        shard: &Path,
        report: &mut OpenReport,
        found: &mut Vec<(std::time::SystemTime, ObjectId, u64)>,
    ) -> Result<(), StoreError> {
        let mut metas = Vec::new();
        let mut bodies: Vec<(PathBuf, ObjectId, Part)> = Vec::new();
        for entry in fs::read_dir(shard).map_err(err("read", shard))? {
            let path = entry.map_err(err("read", shard))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if name.contains(".tmp.") {
                remove_file(&path)?;
                report.temporary_deleted += 1;
                continue;
            }
            match parse_file_name(&name) {
                Some((id, FileKind::Meta)) => metas.push((path, id)),
                Some((id, FileKind::Body(part))) => bodies.push((path, id, part)),
                None => {
                    remove_file(&path)?;
                    report.damaged_deleted += 1;
                }
            }
        }
        let mut valid: HashMap<ObjectId, Meta> = HashMap::new();
        let mut mtimes = HashMap::new();
        for (path, id) in metas {
            let meta = fs::read(&path).ok().and_then(|b| Meta::decode(&b));
            match meta {
                Some(m) => {
                    let mtime = fs::metadata(&path).and_then(|m| m.modified()).ok();
                    mtimes.insert(id, mtime.unwrap_or(std::time::UNIX_EPOCH));
                    valid.insert(id, m);
                }
                None => {
                    remove_file(&path)?;
                    report.damaged_deleted += 1;
                }
            }
        }
        let mut bytes: HashMap<ObjectId, u64> = HashMap::new();
        let mut changed: HashSet<ObjectId> = HashSet::new();
        for (path, id, part) in bodies {
            let len = fs::metadata(&path).map(|m| m.len()).ok();
            let Some(meta) = valid.get_mut(&id) else {
                remove_file(&path)?;
                report.damaged_deleted += 1;
                continue;
            };
            let expected = match (part, meta.slicing) {
                (Part::Whole, None) => Some(meta.total),
                (Part::Slice(k), Some(s)) if meta.slices.has(k) => {
                    s.bounds(k, meta.total).map(|b| b.1)
                }
                _ => None,
            };
            if expected.is_some() && expected == len {
                *bytes.entry(id).or_default() += len.unwrap_or(0);
            } else {
                remove_file(&path)?;
                report.damaged_deleted += 1;
                if let Part::Slice(k) = part {
                    meta.slices.set(k, false);
                    changed.insert(id);
                }
            }
        }
        for (id, mut meta) in valid {
            // A slice marked present whose file is missing.
            if let Some(s) = meta.slicing {
                for k in 0..s.count(meta.total) {
                    if meta.slices.has(k) && !self.body_path(&id, Part::Slice(k)).exists() {
                        meta.slices.set(k, false);
                        changed.insert(id);
                    }
                }
            } else if !self.body_path(&id, Part::Whole).is_file() {
                // A whole object without its body cannot be served.
                self.remove_files(&id)?;
                report.damaged_deleted += 1;
                continue;
            }
            if changed.contains(&id) {
                self.write_meta(&id, &meta)?;
            }
            let mtime = mtimes.get(&id).copied().unwrap_or(std::time::UNIX_EPOCH);
            found.push((mtime, id, bytes.get(&id).copied().unwrap_or(0)));
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock leaves the index consistent (every update is a few
        // map operations), so a poisoned lock is still usable.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shard(&self, id: &ObjectId) -> PathBuf {
        self.objects.join(&id.hex()[..2])
    }

    /// The final path of a body file.
    pub(crate) fn body_path(&self, id: &ObjectId, part: Part) -> PathBuf {
        let hex = id.hex();
        let name = match part {
            Part::Whole => format!("{hex}.body"),
            Part::Slice(k) => format!("{hex}.{k}.slice"),
        };
        self.shard(id).join(name)
    }

    fn meta_path(&self, id: &ObjectId) -> PathBuf {
        self.shard(id).join(format!("{}.meta", id.hex()))
    }

    fn temp_path(&self, final_path: &Path) -> PathBuf {
        let n = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let mut name = final_path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".tmp.{}.{n}", std::process::id()));
        final_path.with_file_name(name)
    }

    /// Reads an indexed object's metadata and marks it recently used; `None` when the object
    /// is not in the store.
    pub(crate) fn lookup(&self, id: &ObjectId) -> Result<Option<Meta>, StoreError> {
        if !self.lock().touch(id) {
            return Ok(None);
        }
        let path = self.meta_path(id);
        match fs::read(&path) {
            Ok(b) => match Meta::decode(&b) {
                Some(m) => Ok(Some(m)),
                None => {
                    // Damaged since start-up: the object stops being one.
                    tracing::warn!(
                        "cache store: unreadable metadata {}, object dropped",
                        path.display()
                    );
                    self.remove(id)?;
                    Ok(None)
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err("read", &path)(e)),
        }
    }

    /// Starts writing a body file under a temporary name.
    pub(crate) fn begin_body(&self, id: &ObjectId, part: Part) -> Result<BodyWriter, StoreError> {
        let shard = self.shard(id);
        fs::create_dir_all(&shard).map_err(err("create", &shard))?;
        let final_path = self.body_path(id, part);
        let temp_path = self.temp_path(&final_path);
        let file = File::create(&temp_path).map_err(err("create", &temp_path))?;
        Ok(BodyWriter { file, temp_path, final_path, written: 0, finished: false })
    }

    /// Records a whole object (its body already finished) or replaces its metadata (after a
    /// `304`), then evicts to the budget. Returns the evicted ids.
    pub(crate) fn commit(&self, id: &ObjectId, meta: &Meta) -> Result<Vec<ObjectId>, StoreError> {
        self.write_meta(id, meta)?;
        let bytes = self.body_bytes(meta);
        self.lock().upsert(*id, bytes);
        self.evict()
    }

    /// Records slice `k` of a sliced object (its body already finished): `first` is the
    /// metadata to start from when none is stored (built from the first slice answered).
    /// The read-modify-write of the slice map runs under the index lock, so slices finished
    /// at once by different workers all land. Returns the updated metadata and evicted ids.
    pub(crate) fn commit_slice(
        &self,
        id: &ObjectId,
        k: u64,
        first: &Meta,
    ) -> Result<(Meta, Vec<ObjectId>), StoreError> {
        let meta = {
            let mut index = self.lock();
            let path = self.meta_path(id);
            let stored = fs::read(&path).ok().and_then(|b| Meta::decode(&b));
            let mut meta = stored
                .filter(|m| m.total == first.total && m.slicing == first.slicing)
                .unwrap_or_else(|| first.clone());
            meta.slices.set(k, true);
            self.write_meta(id, &meta)?;
            index.upsert(*id, self.body_bytes(&meta));
            meta
        };
        Ok((meta, self.evict()?))
    }

    /// Deletes an object (purge, or a version mismatch between slices).
    pub(crate) fn remove(&self, id: &ObjectId) -> Result<(), StoreError> {
        self.lock().remove(id);
        self.remove_files(id)
    }

    /// The ids of every indexed object (a snapshot, for purges by prefix).
    pub(crate) fn ids(&self) -> Vec<ObjectId> {
        self.lock().entries.keys().copied().collect()
    }

    /// Body bytes indexed in all.
    pub(crate) fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn body_bytes(&self, meta: &Meta) -> u64 {
        match meta.slicing {
            None => meta.total,
            Some(s) => (0..s.count(meta.total))
                .filter(|&k| meta.slices.has(k))
                .filter_map(|k| s.bounds(k, meta.total).map(|b| b.1))
                .sum(),
        }
    }

    fn write_meta(&self, id: &ObjectId, meta: &Meta) -> Result<(), StoreError> {
        let final_path = self.meta_path(id);
        let temp = self.temp_path(&final_path);
        fs::write(&temp, meta.encode()).map_err(err("write", &temp))?;
        fs::rename(&temp, &final_path).map_err(|e| {
            let _ = fs::remove_file(&temp);
            err("rename", &final_path)(e)
        })
    }

    /// Removes least recently used objects until the indexed bytes fit the budget.
    fn evict(&self) -> Result<Vec<ObjectId>, StoreError> {
        let mut evicted = Vec::new();
        loop {
            let victim = {
                let mut index = self.lock();
                if index.bytes <= self.budget_bytes {
                    break;
                }
                let Some((_, id)) = index.lru.first_key_value().map(|(t, id)| (*t, *id)) else {
                    break;
                };
                index.remove(&id);
                id
            };
            self.remove_files(&victim)?;
            evicted.push(victim);
        }
        Ok(evicted)
    }

    /// Deletes the metadata first (so the object stops being one), then every body file.
    fn remove_files(&self, id: &ObjectId) -> Result<(), StoreError> {
        remove_file(&self.meta_path(id))?;
        let shard = self.shard(id);
        let prefix = id.hex();
        let entries = match fs::read_dir(&shard) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(err("read", &shard)(e)),
        };
        for entry in entries {
            let path = entry.map_err(err("read", &shard))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            // Temporary files belong to fills in progress: their writers delete them.
            if name.starts_with(&prefix) && !name.contains(".tmp.") {
                remove_file(&path)?;
            }
        }
        Ok(())
    }
}

/// Deletes a file; one already gone is fine.
fn remove_file(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err("remove", path)(e)),
        _ => Ok(()),
    }
}

enum FileKind {
    Meta,
    Body(Part),
}

fn parse_file_name(name: &str) -> Option<(ObjectId, FileKind)> {
    let (hex, rest) = name.split_at_checked(64)?;
    let id = ObjectId::from_hex(hex)?;
    let kind = match rest {
        ".meta" => FileKind::Meta,
        ".body" => FileKind::Body(Part::Whole),
        _ => {
            let k = rest.strip_prefix('.')?.strip_suffix(".slice")?;
            if k.is_empty()
                || !k.bytes().all(|b| b.is_ascii_digit())
                || (k.len() > 1 && k.starts_with('0'))
            {
                return None;
            }
            FileKind::Body(Part::Slice(k.parse().ok()?))
        }
    };
    Some((id, kind))
}

/// A body being written under a temporary name.
#[derive(Debug)]
pub(crate) struct BodyWriter {
    file: File,
    temp_path: PathBuf,
    final_path: PathBuf,
    written: u64,
    finished: bool,
}

impl BodyWriter {
    /// Appends bytes.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file.write_all(bytes).map_err(err("write", &self.temp_path))?;
        self.written += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Bytes written so far (what readers of the temporary file may read).
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The temporary file, for readers that stream while it is written.
    pub(crate) fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// A read handle on the file being written, for readers that stream it while it grows; it
    /// stays valid across the rename (and after an eviction deletes the name).
    pub(crate) fn reader(&self) -> Result<File, StoreError> {
        File::open(&self.temp_path).map_err(err("open", &self.temp_path))
    }

    /// Renames the file to its final name if exactly `expected` bytes were written; otherwise
    /// deletes it and fails (a short or long body is never stored).
    pub(crate) fn finish(mut self, expected: u64) -> Result<PathBuf, StoreError> {
        if self.written != expected {
            return Err(StoreError {
                op: "finish",
                path: self.final_path.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} bytes written, {expected} expected", self.written),
                ),
            });
        }
        fs::rename(&self.temp_path, &self.final_path).map_err(err("rename", &self.final_path))?;
        self.finished = true;
        Ok(self.final_path.clone())
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::{CacheKey, KeyRules};
    use crate::cache::meta::tests::sample;
    use crate::cache::slice::Slicing;

    /// A fresh directory per test.
    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ringcast-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn id(path: &str) -> ObjectId {
        CacheKey::new("http", "h", path, &KeyRules::default()).id(None)
    }

    fn whole(store: &Store, path: &str, len: usize) -> (ObjectId, Meta) {
        let id = id(path);
        let mut w = store.begin_body(&id, Part::Whole).unwrap();
        w.write(&vec![7u8; len]).unwrap();
        assert_eq!(w.written(), u64::try_from(len).unwrap());
        w.finish(u64::try_from(len).unwrap()).unwrap();
        let meta = Meta {
            key: CacheKey::new("http", "h", path, &KeyRules::default()),
            ..sample(u64::try_from(len).unwrap(), None)
        };
        store.commit(&id, &meta).unwrap();
        (id, meta)
    }

    fn shard_files(store: &Store, id: &ObjectId) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(store.shard(id))
            .map(|rd| rd.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
            .unwrap_or_default();
        v.retain(|n| n.starts_with(&id.hex()));
        v.sort();
        v
    }

    #[test]
    fn bodies_appear_only_when_complete() {
        let d = dir("complete");
        let (store, report) = Store::open(&d, 1 << 20).unwrap();
        assert_eq!(report, OpenReport::default());
        let (a, meta) = whole(&store, "/a", 100);
        assert_eq!(store.lookup(&a).unwrap(), Some(meta));
        assert_eq!(fs::read(store.body_path(&a, Part::Whole)).unwrap(), vec![7u8; 100]);
        assert_eq!(store.bytes(), 100);

        // A short body is refused and leaves nothing behind; so does a dropped writer.
        let b = id("/b");
        let mut w = store.begin_body(&b, Part::Whole).unwrap();
        w.write(b"abc").unwrap();
        let temp = w.temp_path().to_path_buf();
        assert!(temp.exists());
        assert!(w.finish(4).is_err());
        assert!(!temp.exists() && !store.body_path(&b, Part::Whole).exists());
        let w = store.begin_body(&b, Part::Slice(0)).unwrap();
        let temp = w.temp_path().to_path_buf();
        drop(w);
        assert!(!temp.exists());
        assert_eq!(store.lookup(&b).unwrap(), None);

        // Metadata damaged after start-up: the object is dropped, not served.
        let (c, _) = whole(&store, "/c", 10);
        fs::write(store.meta_path(&c), b"RCM1 damaged").unwrap();
        assert_eq!(store.lookup(&c).unwrap(), None);
        assert!(shard_files(&store, &c).is_empty());

        store.remove(&a).unwrap();
        assert_eq!(store.lookup(&a).unwrap(), None);
        assert!(shard_files(&store, &a).is_empty());
        assert_eq!(store.bytes(), 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn eviction_is_least_recently_used_by_bytes() {
        let d = dir("lru");
        let (store, _) = Store::open(&d, 250).unwrap();
        let (a, _) = whole(&store, "/a", 100);
        let (b, _) = whole(&store, "/b", 100);
        // Use a, so b is the oldest.
        assert!(store.lookup(&a).unwrap().is_some());
        let (c, _) = whole(&store, "/c", 100);
        assert_eq!(store.lookup(&b).unwrap(), None);
        assert!(shard_files(&store, &b).is_empty());
        assert!(store.lookup(&a).unwrap().is_some() && store.lookup(&c).unwrap().is_some());
        assert_eq!(store.bytes(), 200);
        // An object larger than the budget does not stay.
        let id_big = id("/big");
        let mut w = store.begin_body(&id_big, Part::Whole).unwrap();
        w.write(&[1u8; 300]).unwrap();
        w.finish(300).unwrap();
        let evicted = store.commit(&id_big, &sample(300, None)).unwrap();
        assert!(evicted.contains(&id_big));
        assert_eq!(store.bytes(), 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn slices_accumulate_in_the_metadata() {
        let d = dir("slices");
        let (store, _) = Store::open(&d, 1 << 20).unwrap();
        let s = Slicing::new(10).unwrap();
        let o = id("/sliced");
        let mut first = sample(25, Some(s));
        first.slices = crate::cache::meta::SliceMap::new(3);
        for (k, len) in [(2u64, 5u64), (0, 10)] {
            let mut w = store.begin_body(&o, Part::Slice(k)).unwrap();
            w.write(&vec![1u8; usize::try_from(len).unwrap()]).unwrap();
            w.finish(len).unwrap();
            let (meta, evicted) = store.commit_slice(&o, k, &first).unwrap();
            assert!(evicted.is_empty() && meta.slices.has(k));
        }
        let meta = store.lookup(&o).unwrap().unwrap();
        assert!(
            meta.slices.has(0) && !meta.slices.has(1) && meta.slices.has(2) && !meta.complete()
        );
        assert_eq!(store.bytes(), 15);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn restart_rebuilds_the_index_and_drops_what_cannot_be_served() {
        let d = dir("restart");
        let s = Slicing::new(10).unwrap();
        let (a, b, o, junk) = {
            let (store, _) = Store::open(&d, 1 << 20).unwrap();
            let (a, _) = whole(&store, "/a", 40);
            let (b, _) = whole(&store, "/b", 30);
            let o = id("/sliced");
            let mut first = sample(25, Some(s));
            first.slices = crate::cache::meta::SliceMap::new(3);
            for k in 0..3u64 {
                let len = s.bounds(k, 25).unwrap().1;
                let mut w = store.begin_body(&o, Part::Slice(k)).unwrap();
                w.write(&vec![2u8; usize::try_from(len).unwrap()]).unwrap();
                w.finish(len).unwrap();
                store.commit_slice(&o, k, &first).unwrap();
            }
            // A fill cut short by a crash: its temporary file stays (the writer is leaked,
            // as a killed process would leave it).
            let c = id("/c");
            let mut w = store.begin_body(&c, Part::Whole).unwrap();
            w.write(b"half").unwrap();
            let temp = w.temp_path().to_path_buf();
            std::mem::forget(w);
            assert!(temp.exists());
            // Damage: b's body truncated, slice 1 deleted, a foreign file, a garbage meta.
            fs::write(store.body_path(&b, Part::Whole), b"short").unwrap();
            fs::remove_file(store.body_path(&o, Part::Slice(1))).unwrap();
            let junk = id("/junk");
            fs::create_dir_all(store.shard(&junk)).unwrap();
            fs::write(store.meta_path(&junk), b"RCM1 garbage").unwrap();
            fs::write(store.shard(&a).join("notes.txt"), b"x").unwrap();
            (a, b, o, junk)
        };
        let (store, report) = Store::open(&d, 1 << 20).unwrap();
        assert_eq!(report.temporary_deleted, 1);
        // b's body, b's now body-less meta, the junk meta, notes.txt.
        assert_eq!(report.damaged_deleted, 4, "{report:?}");
        assert_eq!((report.objects, report.bytes), (2, 40 + 15));
        assert!(store.lookup(&a).unwrap().is_some());
        assert_eq!(store.lookup(&b).unwrap(), None);
        assert_eq!(store.lookup(&junk).unwrap(), None);
        let meta = store.lookup(&o).unwrap().unwrap();
        assert!(meta.slices.has(0) && !meta.slices.has(1) && meta.slices.has(2));
        assert_eq!(store.bytes(), 55);
        // Nothing temporary is left anywhere.
        for shard in fs::read_dir(d.join("objects")).unwrap() {
            for f in fs::read_dir(shard.unwrap().path()).unwrap() {
                let name = f.unwrap().file_name().into_string().unwrap();
                assert!(!name.contains(".tmp."), "{name}");
            }
        }
        // A smaller budget at start-up evicts the oldest.
        drop(store);
        let (store, report) = Store::open(&d, 30).unwrap();
        assert_eq!(report.evicted, 1);
        assert!(store.bytes() <= 30);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_names_parse_strictly() {
        let hex = id("/x").hex();
        assert!(matches!(parse_file_name(&format!("{hex}.meta")), Some((_, FileKind::Meta))));
        assert!(matches!(
            parse_file_name(&format!("{hex}.body")),
            Some((_, FileKind::Body(Part::Whole)))
        ));
        assert!(matches!(
            parse_file_name(&format!("{hex}.12.slice")),
            Some((_, FileKind::Body(Part::Slice(12))))
        ));
        for bad in [
            format!("{hex}.012.slice"),
            format!("{hex}..slice"),
            format!("{hex}.-1.slice"),
            format!("{hex}.meta2"),
            hex[..63].to_string(),
            "é".repeat(40),
            String::new(),
        ] {
            assert!(parse_file_name(&bad).is_none(), "{bad}");
        }
    }
}
