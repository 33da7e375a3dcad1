//! The rooms together, as the edge's wiring will call them: concurrent requests on several
//! worker threads (each its own runtime, both drivers) fill a sliced object through the fill
//! table, the origin client and the store, against the counting origin fixture. The origin
//! must see exactly one request per slice, every requester must get the object byte for byte,
//! and the store must end with every slice and one consistent metadata file.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::fields::Fields;
use crate::cache::fill::{FillKey, FillTable, Join, Progress};
use crate::cache::freshness::{Freshness, Policy};
use crate::cache::key::{CacheKey, KeyRules, ObjectId};
use crate::cache::meta::{Meta, SliceMap};
use crate::cache::slice::{Identity, SliceAnswer, SliceCheck, Slicing};
use crate::cache::store::{Part, Store};
use crate::origin::conn::tests::{block_on, content, runtimes, Fixture};
use crate::origin::conn::{request, Deadlines, Exchange, Pool};
use crate::origin::head::HeadLimits;
use crate::origin::request::{write_head, EdgeIdentity, OriginRequest};

const SLICE: u64 = 256 * 1024;
const DEADLINES: Deadlines = Deadlines {
    connect: Duration::from_secs(5),
    first_byte: Duration::from_secs(10),
    idle: Duration::from_secs(10),
};

/// What every requester shares.
struct Edge {
    store: Store,
    fills: Arc<FillTable>,
    origin: std::net::SocketAddr,
    slicing: Slicing,
}

/// Fetches slice `k` from the origin as the fill's writer: stores it and publishes progress.
/// A slice from another representation than the stored ones drops the object (every slice)
/// and fails the fill, so its waiters start over: never two versions stitched together.
async fn fill_slice(
    edge: &Edge,
    pool: &Pool,
    key: &CacheKey,
    id: ObjectId,
    k: u64,
    w: crate::cache::fill::WriterGuard,
) -> Result<(), SliceCheck> {
    let ident = EdgeIdentity { via_name: "ringcast".into(), cdn_id: "edge-test".into() };
    let client = Fields::new();
    let range = edge.slicing.origin_range(k);
    let mut head = Vec::new();
    write_head(
        &OriginRequest {
            method: "GET",
            target: "/big.bin",
            host: "origin.test",
            client_fields: &client,
            client_minor_version: 1,
            range: Some(&range),
            conditional: None,
        },
        &ident,
        &mut head,
    );
    let ex = Exchange { addr: edge.origin, head: &head, is_head: false, idempotent: true };
    let limits = HeadLimits { max_head_bytes: 32 * 1024 };
    let resp = request(pool, &ex, &limits, &DEADLINES).await.unwrap();
    let SliceAnswer::Slice { total } =
        edge.slicing.classify(k, resp.head.status, &resp.head.fields)
    else {
        panic!("slice {k}: not a slice answer: {}", resp.head.status);
    };
    let mut fields = resp.head.fields.clone();
    fields.strip_hop_by_hop();
    let identity = Identity::of(&fields, total);
    assert!(identity.verifiable());
    if let Some(stored) = edge.store.lookup(&id).unwrap() {
        let first = Identity::of(&stored.fields, stored.total);
        if first.check(&identity) == SliceCheck::DropAndRefetch {
            edge.store.remove(&id).unwrap();
            w.fail();
            return Err(SliceCheck::DropAndRefetch);
        }
    }
    let (_, len) = edge.slicing.bounds(k, total).unwrap();
    let mut body = edge.store.begin_body(&id, Part::Slice(k)).unwrap();
    w.started(body.reader().unwrap(), Some(len));
    resp.body(pool, &DEADLINES, &mut |bytes| {
        body.write(bytes).map_err(|e| e.to_string())?;
        w.progress(body.written());
        Ok(())
    })
    .await
    .unwrap();
    let path = body.finish(len).unwrap();
    let first = Meta {
        key: key.clone(),
        secondary: None,
        status: 200,
        freshness: Freshness::compute(200, &fields, 0, 0, &Policy::default()),
        fields,
        total,
        slicing: Some(edge.slicing),
        slices: SliceMap::new(edge.slicing.count(total)),
    };
    edge.store.commit_slice(&id, k, &first).unwrap();
    w.complete(path, len);
    Ok(())
}

/// One client request for the whole object: every slice from the store, a fill, or a wait.
async fn get_object(edge: &Edge, total: u64) -> (Vec<u8>, u64) {
    let key = CacheKey::new("http", "origin.test", "/big.bin", &KeyRules::default());
    let id = key.id(None);
    let pool = Pool::new(2, Duration::from_secs(30));
    let mut out = Vec::new();
    let mut written = 0;
    for k in 0..edge.slicing.count(total) {
        let (start, len) = edge.slicing.bounds(k, total).unwrap();
        assert_eq!(u64::try_from(out.len()).unwrap(), start);
        let mut buf = vec![0u8; usize::try_from(len).unwrap()];
        loop {
            if edge.store.lookup(&id).unwrap().is_some_and(|m| m.slices.has(k)) {
                let f = std::fs::File::open(edge.store.body_path(&id, Part::Slice(k))).unwrap();
                f.read_exact_at(&mut buf, 0).unwrap();
                break;
            }
            match edge.fills.join(FillKey { id, part: Part::Slice(k) }, 0) {
                Join::Writer(w) => {
                    // The previous fill may have ended between the lookup and the join.
                    if edge.store.lookup(&id).unwrap().is_some_and(|m| m.slices.has(k)) {
                        w.release();
                        continue;
                    }
                    fill_slice(edge, &pool, &key, id, k, w).await.unwrap();
                    written += 1;
                }
                Join::Waiter(wt) => {
                    let mut seen = 0;
                    loop {
                        match wt.wait(seen).await {
                            Progress::Growing { committed, .. } => seen = committed,
                            Progress::Complete { .. } | Progress::Retry => break,
                            other => panic!("{other:?}"),
                        }
                    }
                }
                Join::HitForMiss => panic!("nothing here is uncacheable"),
            }
        }
        out.extend_from_slice(&buf);
    }
    (out, written)
}

#[test]
fn concurrent_requests_fetch_each_slice_once_and_get_every_byte() {
    let fx = Fixture::start("slice-fill");
    let total = 5 * SLICE + 123;
    let data = content(usize::try_from(total).unwrap());
    std::fs::write(fx.root.join("big.bin"), &data).unwrap();
    let dir = std::env::temp_dir().join(format!("ringcast-slice-fill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = Store::open(&dir, 1 << 30).unwrap();
    let edge = Arc::new(Edge {
        store,
        fills: FillTable::new(5),
        origin: fx.addr,
        slicing: Slicing::new(SLICE).unwrap(),
    });
    let drivers = runtimes();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let edge = Arc::clone(&edge);
            let uring = drivers[i % drivers.len()];
            std::thread::spawn(move || block_on(uring, get_object(&edge, total)))
        })
        .collect();
    let mut fills = 0;
    for t in threads {
        let (got, written) = t.join().unwrap();
        assert!(got == data, "a requester's bytes differ");
        fills += written;
    }
    let slices = edge.slicing.count(total);
    assert_eq!(fills, slices);
    // The origin saw each slice's range exactly once, nothing else.
    let mut ranges: Vec<String> = fx
        .log()
        .into_iter()
        .map(|(p, r, _)| {
            assert_eq!(p, "/big.bin");
            r.unwrap()
        })
        .collect();
    ranges.sort();
    let mut want: Vec<String> = (0..slices).map(|k| edge.slicing.origin_range(k)).collect();
    want.sort();
    assert_eq!(ranges, want);
    // The store holds the whole object, and keeps it across a restart.
    let id = CacheKey::new("http", "origin.test", "/big.bin", &KeyRules::default()).id(None);
    assert!(edge.store.lookup(&id).unwrap().unwrap().complete());
    assert_eq!(edge.store.bytes(), total);
    drop(edge);
    let (store, report) = Store::open(&dir, 1 << 30).unwrap();
    assert_eq!((report.objects, report.bytes, report.damaged_deleted), (1, total, 0));
    assert!(store.lookup(&id).unwrap().unwrap().complete());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_slice_from_another_version_drops_the_object() {
    let fx = Fixture::start("slice-version");
    let total = 3 * SLICE;
    let data = content(usize::try_from(total).unwrap());
    std::fs::write(fx.root.join("big.bin"), &data).unwrap();
    let dir = std::env::temp_dir().join(format!("ringcast-slice-version-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = Store::open(&dir, 1 << 30).unwrap();
    let edge = Edge {
        store,
        fills: FillTable::new(5),
        origin: fx.addr,
        slicing: Slicing::new(SLICE).unwrap(),
    };
    let key = CacheKey::new("http", "origin.test", "/big.bin", &KeyRules::default());
    let id = key.id(None);
    let pool = Pool::new(2, Duration::from_secs(30));
    let writer = |k| match edge.fills.join(FillKey { id, part: Part::Slice(k) }, 0) {
        Join::Writer(w) => w,
        other => panic!("{other:?}"),
    };
    block_on(false, async {
        fill_slice(&edge, &pool, &key, id, 0, writer(0)).await.unwrap();
        // The origin's object changes (same length, new content, so a new ETag).
        let mut changed = data.clone();
        changed[usize::try_from(SLICE).unwrap() + 5] ^= 0xff;
        std::fs::write(fx.root.join("big.bin"), &changed).unwrap();
        let r = fill_slice(&edge, &pool, &key, id, 1, writer(1)).await;
        assert_eq!(r, Err(SliceCheck::DropAndRefetch));
    });
    // Nothing of either version is left to be served; the fill is gone.
    assert_eq!(edge.store.lookup(&id).unwrap(), None);
    assert!(!edge.store.body_path(&id, Part::Slice(0)).exists());
    assert_eq!(edge.store.bytes(), 0);
    assert_eq!(edge.fills.len(), 0);
    assert_eq!(fx.log().len(), 2);
    drop(edge);
    std::fs::remove_dir_all(&dir).unwrap();
}
