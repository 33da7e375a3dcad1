//! The process-wide fill table: one origin fetch per (object, slice), shared by every request
//! on every worker.
//!
//! With `SO_REUSEPORT` the requests for one object land on different workers, so the table is
//! shared by all of them: [`FILL_SHARDS`] mutex-guarded maps, a shard chosen by the object id,
//! each lock held for a map lookup or insert only. This is the one lock the edge adds to the
//! request path of a miss; a hit never takes it.
//!
//! [`FillTable::join`] makes the first requester the writer ([`Join::Writer`]) and every later
//! one a waiter ([`Join::Waiter`]). The writer publishes progress — a read handle on the
//! temporary file and the bytes committed to it — and waiters stream from that handle as it
//! grows (read-while-write; a handle, not a path, since the file is renamed when complete):
//! each [`Waiter::wait`] returns as soon as more bytes are committed, woken through the
//! waker of the waiting task (monoio's `sync` wakers carry a wake-up to the waiter's own
//! worker thread), with no polling interval.
//!
//! Ends of a fill, as pingora-cache's lock states:
//! - [`WriterGuard::complete`]: waiters get [`Progress::Complete`] with the final file;
//! - [`WriterGuard::uncacheable`]: the answer may not be stored; waiters get
//!   [`Progress::Uncacheable`] and go to the origin themselves, and for `hit_for_miss_secs`
//!   every new request does so at once ([`Join::HitForMiss`]) instead of queueing behind a
//!   writer whose answer cannot be shared;
//! - [`WriterGuard::fail`] (an origin error) or a guard dropped without an end (a dead
//!   writer: its task was cancelled or panicked): the fill leaves the table and waiters get
//!   [`Progress::Retry`]; each joins again, so exactly one becomes the new writer and the rest
//!   wait on it. A stuck origin is bounded by the writer's origin deadlines, after which it
//!   fails and hands over the same way.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs::File;
use std::future::poll_fn;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use crate::cache::key::ObjectId;
use crate::cache::store::Part;

/// Number of shards of the table.
pub(crate) const FILL_SHARDS: usize = 16;

/// What one fill fetches: one object's whole body or one of its slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FillKey {
    /// The object.
    pub(crate) id: ObjectId,
    /// Whole body or slice.
    pub(crate) part: Part,
}

#[derive(Debug)]
enum Slot {
    Filling(Arc<Fill>),
    /// Answers for this key were not storable until this time.
    Uncacheable {
        until: u64,
    },
}

/// The table.
#[derive(Debug)]
pub(crate) struct FillTable {
    shards: [Mutex<HashMap<FillKey, Slot>>; FILL_SHARDS],
    hit_for_miss_secs: u64,
}

/// The outcome of [`FillTable::join`].
#[derive(Debug)]
pub(crate) enum Join {
    /// Fetch from the origin and publish progress.
    Writer(WriterGuard),
    /// Another request fetches: wait on it.
    Waiter(Waiter),
    /// Recently uncacheable: fetch from the origin without storing and without a fill.
    HitForMiss,
}

#[derive(Debug, Clone)]
enum Phase {
    /// The writer has not yet started a file.
    Starting,
    /// Bytes are being committed to `file`.
    Writing { file: Arc<File>, total: Option<u64> },
    /// Complete under its final name.
    Complete { path: PathBuf, len: u64 },
    /// Not storable.
    Uncacheable,
    /// The writer failed or died.
    Abandoned,
}

#[derive(Debug)]
struct Fill {
    committed: AtomicU64,
    state: Mutex<FillState>,
}

#[derive(Debug)]
struct FillState {
    phase: Phase,
    wakers: Vec<Waker>,
}

impl Fill {
    fn lock(&self) -> MutexGuard<'_, FillState> {
        // Every critical section only assigns fields, so a poisoned state is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the phase (when given) and wakes every waiter.
    fn publish(&self, phase: Option<Phase>) {
        let wakers = {
            let mut st = self.lock();
            if let Some(p) = phase {
                st.phase = p;
            }
            std::mem::take(&mut st.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// What a waiter sees.
#[derive(Debug, Clone)]
pub(crate) enum Progress {
    /// The first `committed` bytes of `file` may be read (positioned reads or sendfile with
    /// an offset: the handle is shared); `total` is the body length when known.
    Growing { file: Arc<File>, committed: u64, total: Option<u64> },
    /// The body is complete: `len` bytes, under `path` and in any handle seen before.
    Complete { path: PathBuf, len: u64 },
    /// The answer is not stored: fetch from the origin without the cache.
    Uncacheable,
    /// The writer is gone: join again.
    Retry,
}

impl FillTable {
    /// An empty table; an uncacheable answer is remembered for `hit_for_miss_secs`.
    pub(crate) fn new(hit_for_miss_secs: u64) -> Arc<Self> {
        Arc::new(FillTable {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hit_for_miss_secs,
        })
    }

    fn shard(&self, key: &FillKey) -> MutexGuard<'_, HashMap<FillKey, Slot>> {
        let i = usize::from(key.id.0[0]) % FILL_SHARDS;
        // Map operations only; a poisoned shard is still consistent.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the fill for `key` at time `now` (seconds).
    pub(crate) fn join(self: &Arc<Self>, key: FillKey, now: u64) -> Join {
        let mut shard = self.shard(&key);
        match shard.get(&key) {
            Some(Slot::Filling(fill)) => {
                return Join::Waiter(Waiter { fill: Arc::clone(fill) });
            }
            Some(Slot::Uncacheable { until }) if now < *until => return Join::HitForMiss,
            _ => {}
        }
        let fill = Arc::new(Fill {
            committed: AtomicU64::new(0),
            state: Mutex::new(FillState { phase: Phase::Starting, wakers: Vec::new() }),
        });
        shard.insert(key, Slot::Filling(Arc::clone(&fill)));
        Join::Writer(WriterGuard { table: Arc::clone(self), key, fill, ended: false })
    }

    /// Removes `fill`'s slot (if still its own) and puts `replacement` there. A hit-for-miss
    /// entry also sweeps the shard's expired ones (at `now`), so their number stays bounded by
    /// the rate of uncacheable answers times `hit_for_miss_secs`.
    fn end(&self, key: &FillKey, fill: &Arc<Fill>, replacement: Option<(Slot, u64)>) {
        let mut shard = self.shard(key);
        if matches!(shard.get(key), Some(Slot::Filling(f)) if Arc::ptr_eq(f, fill)) {
            shard.remove(key);
        }
        if let Some((r, now)) = replacement {
            shard.retain(|_, s| !matches!(s, Slot::Uncacheable { until } if *until <= now));
            shard.insert(*key, r);
        }
    }

    /// Number of fills and hit-for-miss entries held.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len()).sum()
    }
}

/// The writer's side of a fill. Dropping it without [`complete`](WriterGuard::complete),
/// [`uncacheable`](WriterGuard::uncacheable) or [`fail`](WriterGuard::fail) hands the fill on.
#[derive(Debug)]
pub(crate) struct WriterGuard {
    table: Arc<FillTable>,
    key: FillKey,
    fill: Arc<Fill>,
    ended: bool,
}

impl WriterGuard {
    /// The body is being written to the file `file` reads (the store's temporary file,
    /// [`crate::cache::store::BodyWriter::reader`]); `total` is its length when known.
    pub(crate) fn started(&self, file: File, total: Option<u64>) {
        self.fill.publish(Some(Phase::Writing { file: Arc::new(file), total }));
    }

    /// `committed` bytes of the file are written and may be read.
    pub(crate) fn progress(&self, committed: u64) {
        self.fill.committed.store(committed, Ordering::Release);
        self.fill.publish(None);
    }

    /// The body is complete under `path` with `len` bytes.
    pub(crate) fn complete(mut self, path: PathBuf, len: u64) {
        self.fill.committed.store(len, Ordering::Release);
        self.finish(Phase::Complete { path, len }, None);
    }

    /// The origin's answer may not be stored; remembered until `now + hit_for_miss_secs`.
    pub(crate) fn uncacheable(mut self, now: u64) {
        let until = now.saturating_add(self.table.hit_for_miss_secs);
        self.finish(Phase::Uncacheable, Some((Slot::Uncacheable { until }, now)));
    }

    /// The fetch failed: a waiter takes over.
    pub(crate) fn fail(mut self) {
        self.finish(Phase::Abandoned, None);
    }

    /// Nothing to fetch: the store already has the body (a previous fill completed between
    /// the requester's store lookup and its join, so a new writer must look again before it
    /// fetches). Waiters join again and find it stored.
    pub(crate) fn release(mut self) {
        self.finish(Phase::Abandoned, None);
    }

    fn finish(&mut self, phase: Phase, replacement: Option<(Slot, u64)>) {
        self.ended = true;
        // Out of the table first, so a waiter that retries finds no stale fill.
        self.table.end(&self.key, &self.fill, replacement);
        self.fill.publish(Some(phase));
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.finish(Phase::Abandoned, None);
        }
    }
}

/// A waiter's side of a fill.
#[derive(Debug)]
pub(crate) struct Waiter {
    fill: Arc<Fill>,
}

impl Waiter {
    /// Waits until more than `seen` bytes are committed or the fill ends.
    pub(crate) async fn wait(&self, seen: u64) -> Progress {
        poll_fn(|cx| {
            let mut st = self.fill.lock();
            let committed = self.fill.committed.load(Ordering::Acquire);
            let ready =
                match &st.phase {
                    Phase::Starting => None,
                    Phase::Writing { file, total } => (committed > seen).then(|| {
                        Progress::Growing { file: Arc::clone(file), committed, total: *total }
                    }),
                    Phase::Complete { path, len } => {
                        Some(Progress::Complete { path: path.clone(), len: *len })
                    }
                    Phase::Uncacheable => Some(Progress::Uncacheable),
                    Phase::Abandoned => Some(Progress::Retry),
                };
            match ready {
                Some(p) => Poll::Ready(p),
                None => {
                    if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        st.wakers.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::{CacheKey, KeyRules};
    use crate::cache::store::Store;
    use crate::origin::conn::tests::{block_on, runtimes as drivers};
    use std::future::Future;
    use std::os::unix::fs::FileExt;
    use std::sync::Barrier;

    fn key(path: &str, part: Part) -> FillKey {
        FillKey { id: CacheKey::new("http", "h", path, &KeyRules::default()).id(None), part }
    }

    fn writer(j: Join) -> WriterGuard {
        match j {
            Join::Writer(w) => w,
            other => panic!("expected the writer, got {other:?}"),
        }
    }

    fn waiter(j: Join) -> Waiter {
        match j {
            Join::Waiter(w) => w,
            other => panic!("expected a waiter, got {other:?}"),
        }
    }

    #[test]
    fn one_writer_per_object_and_slice() {
        let t = FillTable::new(5);
        let w = writer(t.join(key("/a", Part::Slice(0)), 0));
        let _w0 = waiter(t.join(key("/a", Part::Slice(0)), 0));
        // Another slice, another object: fills of their own.
        let w1 = writer(t.join(key("/a", Part::Slice(1)), 0));
        let w2 = writer(t.join(key("/b", Part::Whole), 0));
        assert_eq!(t.len(), 3);
        w.complete(PathBuf::from("/x"), 1);
        w1.fail();
        let w3 = writer(t.join(key("/c", Part::Whole), 0));
        let wt3 = waiter(t.join(key("/c", Part::Whole), 0));
        w3.release();
        assert!(matches!(block_on(false, wt3.wait(0)), Progress::Retry));
        drop(w2);
        assert_eq!(t.len(), 0);
    }

    /// Reads `from..to` of `f` into `got`.
    fn read_range(f: &File, from: u64, to: u64, got: &mut Vec<u8>) {
        let mut buf = vec![0u8; usize::try_from(to - from).unwrap()];
        f.read_exact_at(&mut buf, from).unwrap();
        got.extend_from_slice(&buf);
    }

    /// Streams a fill to its end as a waiter would: every committed byte from the shared
    /// handle, the rest (if it never saw one) from the final file.
    async fn stream(wt: Waiter, total: u64) -> Vec<u8> {
        let mut got = Vec::new();
        let mut seen = 0u64;
        let mut handle: Option<Arc<File>> = None;
        loop {
            match wt.wait(seen).await {
                Progress::Growing { file, committed, total: t } => {
                    assert_eq!(t, Some(total));
                    assert!(committed > seen);
                    read_range(&file, seen, committed, &mut got);
                    seen = committed;
                    handle = Some(file);
                }
                Progress::Complete { path, len } => {
                    assert_eq!(len, total);
                    let file = handle.unwrap_or_else(|| Arc::new(File::open(path).unwrap()));
                    read_range(&file, seen, len, &mut got);
                    return got;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Waiters on other threads (each its own runtime) stream the writer's file as it grows
    /// and end with every byte, without polling.
    #[test]
    fn waiters_on_other_threads_read_while_the_writer_writes() {
        for uring in drivers() {
            let dir = std::env::temp_dir()
                .join(format!("ringcast-fill-rww-{}-{uring}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let (store, _) = Store::open(&dir, 1 << 30).unwrap();
            let t = FillTable::new(5);
            let k = key("/big", Part::Slice(3));
            let w = writer(t.join(k, 0));
            let body: Vec<u8> = (0..200_000u32).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let readers: Vec<_> = (0..4)
                .map(|_| {
                    let wt = waiter(t.join(k, 0));
                    std::thread::spawn(move || block_on(uring, stream(wt, 200_000)))
                })
                .collect();
            let mut bw = store.begin_body(&k.id, k.part).unwrap();
            w.started(bw.reader().unwrap(), Some(200_000));
            for piece in body.chunks(16_384) {
                bw.write(piece).unwrap();
                w.progress(bw.written());
            }
            let path = bw.finish(200_000).unwrap();
            w.complete(path, 200_000);
            for r in readers {
                let got = r.join().unwrap();
                assert!(got == body, "a waiter's bytes differ (uring={uring})");
            }
            assert_eq!(t.len(), 0);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// A writer that dies hands the fill to exactly one of its waiters.
    #[test]
    fn a_dead_writer_hands_the_fill_to_one_waiter() {
        for uring in drivers() {
            let t = FillTable::new(5);
            let k = key("/dead", Part::Whole);
            let w = writer(t.join(k, 0));
            let n = 5;
            let barrier = Arc::new(Barrier::new(n));
            let threads: Vec<_> = (0..n)
                .map(|_| {
                    let wt = waiter(t.join(k, 0));
                    let (t, barrier) = (Arc::clone(&t), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        block_on(uring, async move {
                            assert!(matches!(wt.wait(0).await, Progress::Retry));
                            match t.join(k, 0) {
                                Join::Writer(w) => {
                                    // Every other waiter joins before the new writer ends.
                                    barrier.wait();
                                    w.complete(PathBuf::from("/done"), 7);
                                    true
                                }
                                Join::Waiter(wt) => {
                                    barrier.wait();
                                    let p = wt.wait(0).await;
                                    assert!(
                                        matches!(&p, Progress::Complete { path, len: 7 } if path.as_os_str() == "/done"),
                                        "{p:?}"
                                    );
                                    false
                                }
                                Join::HitForMiss => panic!("no hit-for-miss here"),
                            }
                        })
                    })
                })
                .collect();
            // The writer's task ends without an outcome (cancelled, panicked): its guard drops.
            std::thread::spawn(move || drop(w)).join().unwrap();
            let writers = threads.into_iter().map(|h| h.join().unwrap()).filter(|&w| w).count();
            assert_eq!(writers, 1, "uring={uring}");
            assert_eq!(t.len(), 0);
        }
    }

    #[test]
    fn uncacheable_answers_release_waiters_and_are_remembered() {
        let t = FillTable::new(10);
        let k = key("/private", Part::Whole);
        let w = writer(t.join(k, 100));
        let wt = waiter(t.join(k, 100));
        w.uncacheable(100);
        assert!(matches!(block_on(false, wt.wait(0)), Progress::Uncacheable));
        // Hit-for-miss while remembered, then a fill again.
        assert!(matches!(t.join(k, 109), Join::HitForMiss));
        let w = writer(t.join(k, 110));
        // A failed fetch releases waiters to retry.
        let wt = waiter(t.join(k, 110));
        w.fail();
        assert!(matches!(block_on(false, wt.wait(0)), Progress::Retry));
        assert_eq!(t.len(), 0);

        // Expired hit-for-miss entries are swept when another lands in their shard.
        let same_shard = |n: u8| FillKey { id: ObjectId([n; 32]), part: Part::Whole };
        writer(t.join(same_shard(1), 0)).uncacheable(0);
        writer(t.join(same_shard(1 + 16), 5)).uncacheable(5);
        assert_eq!(t.len(), 2);
        writer(t.join(same_shard(1 + 32), 20)).uncacheable(20);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_waiter_sees_nothing_before_bytes_are_committed() {
        let t = FillTable::new(5);
        let k = key("/slow", Part::Whole);
        let w = writer(t.join(k, 0));
        let wt = waiter(t.join(k, 0));
        let mut cx = std::task::Context::from_waker(Waker::noop());
        let mut fut = std::pin::pin!(wt.wait(0));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        w.started(File::open("/dev/null").unwrap(), None);
        // Started, but nothing committed yet.
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        w.progress(10);
        assert!(matches!(
            fut.as_mut().poll(&mut cx),
            Poll::Ready(Progress::Growing { committed: 10, total: None, .. })
        ));
        // Waiting past what was seen is pending again; a dead writer ends it.
        let mut again = std::pin::pin!(wt.wait(10));
        assert!(again.as_mut().poll(&mut cx).is_pending());
        drop(w);
        assert!(matches!(again.as_mut().poll(&mut cx), Poll::Ready(Progress::Retry)));
    }
}
