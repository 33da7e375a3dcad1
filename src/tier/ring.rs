//! The parent ring: which shield owns a cache key, and who comes next when it fails.
//!
//! The ring is nginx's `upstream { hash $key consistent; }` (ketama), as built by
//! `ngx_http_upstream_init_chash` in nginx's `src/http/modules/ngx_http_upstream_hash_module.c`:
//! - each parent contributes `160 × weight` points; point `i` is
//!   `crc32(HOST "\0" PORT prev_hash_le)` where `prev_hash` is point `i-1` (0 for the first)
//!   and HOST, PORT are the text of nginx's `server` line split at its last `:`;
//! - points are sorted by hash; of equal hashes the first survives;
//! - a key goes to the first point whose hash is `>= crc32(key)`, wrapping to the first point;
//! - on failure nginx walks on point by point, skipping servers already tried
//!   (`ngx_http_upstream_get_chash_peer`); [`Ring::candidates`] returns that order.
//!
//! The `pingora-ketama` crate ports the same algorithm but names a point by the bare address
//! (`::1`), where nginx hashes the text of its `server` line (`[::1]`): the two agree for IPv4
//! and differ for every IPv6 parent (checked against a running nginx, which matched the
//! bracketed form for 500 of 500 keys and the bare one for 178). So the ring is built here, on
//! nginx's naming (a parent's `SocketAddr` as written, `[v6]:port`); a unit test checks it
//! against `pingora-ketama` for IPv4 parents and `nginx_parity.rs` against nginx itself, IPv4,
//! IPv6 and weighted.
//!
//! Pure: no I/O, no clock. A ring is immutable; a reload builds a new one ([`Ring::reload`]).

use std::fmt;
use std::net::SocketAddr;

use smallvec::SmallVec;

/// Points per unit of weight, as in nginx (`npoints = peer->weight * 160`).
pub(crate) const POINTS_PER_WEIGHT: u32 = 160;

/// The most weight one parent may carry: nginx's `server ... weight=N` has no documented
/// ceiling, but the ring holds `160 × weight` points per parent, so a bound keeps a typo
/// (`weight=10000`) from building a ring of millions of points.
pub(crate) const MAX_WEIGHT: u32 = 100;

/// The most parents in one ring (a shield tier is a handful of machines; the bound keeps the
/// ring, at most `MAX_PARENTS × MAX_WEIGHT × 160` points, within a few megabytes).
pub(crate) const MAX_PARENTS: usize = 1024;

/// One shield: where it listens and its share of the keys (`weight` like nginx's
/// `server ADDR weight=N`, default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Parent {
    pub(crate) addr: SocketAddr,
    pub(crate) weight: u32,
}

impl Parent {
    pub(crate) fn new(addr: SocketAddr, weight: u32) -> Parent {
        Parent { addr, weight }
    }
}

/// Why a parent list cannot make a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RingError {
    #[error("no parents given")]
    Empty,
    #[error("{count} parents given; at most {MAX_PARENTS}")]
    TooMany { count: usize },
    #[error("parent {addr}: weight {weight} outside 1..={MAX_WEIGHT}")]
    Weight { addr: SocketAddr, weight: u32 },
    #[error("parent {addr} listed twice")]
    Duplicate { addr: SocketAddr },
}

/// One point of the continuum: its hash and the parent (index) it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    hash: u32,
    parent: u32,
}

/// The parents in a fixed order (as configured; the order is what the health table indexes)
/// and the ketama continuum over them, sorted by hash.
pub(crate) struct Ring {
    parents: Vec<Parent>,
    points: Vec<Point>,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring").field("parents", &self.parents).finish_non_exhaustive()
    }
}

/// The parents a key should try, best first: at most one entry per parent, as indexes into
/// [`Ring::parents`]. Inline for up to 8 parents, the usual size of a shield tier.
pub(crate) type Candidates = SmallVec<[usize; 8]>;

impl Ring {
    /// Builds the ring. Parents keep their given order; duplicates and weights outside
    /// `1..=MAX_WEIGHT` are refused (nginx refuses `weight=0` too).
    pub(crate) fn new(parents: Vec<Parent>) -> Result<Ring, RingError> {
        if parents.is_empty() {
            return Err(RingError::Empty);
        }
        if parents.len() > MAX_PARENTS {
            return Err(RingError::TooMany { count: parents.len() });
        }
        for (i, p) in parents.iter().enumerate() {
            if p.weight == 0 || p.weight > MAX_WEIGHT {
                return Err(RingError::Weight { addr: p.addr, weight: p.weight });
            }
            if parents[..i].iter().any(|q| q.addr == p.addr) {
                return Err(RingError::Duplicate { addr: p.addr });
            }
        }
        let mut points = Vec::with_capacity(
            parents.iter().map(|p| p.weight as usize).sum::<usize>() * POINTS_PER_WEIGHT as usize,
        );
        for (index, parent) in (0u32..).zip(&parents) {
            // nginx's `server` text: `a.b.c.d:port` or `[v6]:port`, split at the last ':'.
            let name = parent.addr.to_string();
            let (host, port) = name.rsplit_once(':').expect("a SocketAddr has a port");
            let mut base = crc32fast::Hasher::new();
            base.update(host.as_bytes());
            base.update(b"\0");
            base.update(port.as_bytes());
            let mut prev_hash: u32 = 0;
            for _ in 0..parent.weight * POINTS_PER_WEIGHT {
                let mut h = base.clone();
                h.update(&prev_hash.to_le_bytes());
                prev_hash = h.finalize();
                points.push(Point { hash: prev_hash, parent: index });
            }
        }
        // Stable, so of equal hashes the earlier-listed parent's point survives. nginx sorts
        // with qsort, which glibc up to 2.36 (Debian 12) implements as a merge sort, stable
        // too; a tie needs two points with the same CRC-32, rare at these ring sizes.
        points.sort_by_key(|p| p.hash);
        points.dedup_by_key(|p| p.hash);
        Ok(Ring { parents, points })
    }

    pub(crate) fn parents(&self) -> &[Parent] {
        &self.parents
    }

    /// The index of the first point at or after `key`'s hash, wrapping past the last.
    fn first_point(&self, key: &[u8]) -> usize {
        let hash = crc32fast::hash(key);
        let i = self.points.partition_point(|p| p.hash < hash);
        if i == self.points.len() {
            0
        } else {
            i
        }
    }

    /// The parent that owns `key` (nginx's first choice for `hash KEY consistent`).
    pub(crate) fn owner(&self, key: &[u8]) -> usize {
        self.points[self.first_point(key)].parent as usize
    }

    /// Every parent in the order nginx would try them for `key`: the owner, then each next
    /// distinct parent met walking the ring clockwise.
    pub(crate) fn candidates(&self, key: &[u8]) -> Candidates {
        let mut out = Candidates::new();
        let start = self.first_point(key);
        // One turn of the ring meets every parent that kept a point.
        for p in self.points[start..].iter().chain(&self.points[..start]) {
            let i = p.parent as usize;
            if !out.contains(&i) {
                out.push(i);
                if out.len() == self.parents.len() {
                    break;
                }
            }
        }
        out
    }

    /// Builds the ring for a new parent list and measures what moves: the share of the hash
    /// space (so, for keys whose CRC-32 spreads evenly, of keys) that now belongs to another
    /// parent, computed exactly from the two rings' points. Consistent hashing promises that
    /// only keys of removed parents, and keys taken over by added ones, move.
    pub(crate) fn reload(&self, parents: Vec<Parent>) -> Result<Reload, RingError> {
        let ring = Ring::new(parents)?;
        let moved_share = self.moved_share(&ring);
        Ok(Reload { ring, moved_share })
    }

    /// The owner of hash `h`: the parent of the first point `>= h`, wrapping.
    fn owner_of_hash(&self, h: u32) -> SocketAddr {
        let i = self.points.partition_point(|p| p.hash < h);
        let point = self.points.get(i).unwrap_or(&self.points[0]);
        self.parents[point.parent as usize].addr
    }

    /// The share of the 2^32 hashes whose owner differs between `self` and `other`. Between
    /// two consecutive points of either ring both owners are constant, so each arc
    /// `(previous boundary, boundary]` is owned as its end is.
    fn moved_share(&self, other: &Ring) -> f64 {
        let mut bounds: Vec<u32> =
            self.points.iter().chain(&other.points).map(|p| p.hash).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let last = *bounds.last().expect("rings are never empty");
        let mut moved: u64 = 0;
        // The arc that wraps: (last, 2^32) and [0, first]: owned as `first` is.
        if self.owner_of_hash(bounds[0]) != other.owner_of_hash(bounds[0]) {
            moved += (1u64 << 32) - u64::from(last) + u64::from(bounds[0]);
        }
        for pair in bounds.windows(2) {
            if self.owner_of_hash(pair[1]) != other.owner_of_hash(pair[1]) {
                moved += u64::from(pair[1] - pair[0]);
            }
        }
        moved as f64 / (1u64 << 32) as f64
    }
}

/// A rebuilt ring and the share of keys that changed owner.
#[derive(Debug)]
pub(crate) struct Reload {
    pub(crate) ring: Ring,
    /// 0.0..=1.0.
    pub(crate) moved_share: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sampled keys for the tests' key-by-key checks.
    const SAMPLE_KEYS: usize = 1 << 16;

    /// A synthetic cache key, shaped like a request target.
    fn sample_key(i: usize) -> Vec<u8> {
        format!("/ringcast-sample/{i}").into_bytes()
    }

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], port))
    }

    fn five() -> Vec<Parent> {
        (2..=6).map(|i| Parent::new(addr(i, 8080), 1)).collect()
    }

    #[test]
    fn refuses_bad_lists() {
        let p = |w| Parent::new(addr(2, 80), w);
        let cases: Vec<(Vec<Parent>, RingError)> = vec![
            (vec![], RingError::Empty),
            (vec![p(0)], RingError::Weight { addr: addr(2, 80), weight: 0 }),
            (
                vec![p(MAX_WEIGHT + 1)],
                RingError::Weight { addr: addr(2, 80), weight: MAX_WEIGHT + 1 },
            ),
            (vec![p(1), p(2)], RingError::Duplicate { addr: addr(2, 80) }),
        ];
        for (list, want) in cases {
            assert_eq!(Ring::new(list).unwrap_err(), want);
        }
    }

    /// The nginx sample pingora-ketama ships (`hash $request_uri consistent` over
    /// `server 127.0.0.1:7777; server 127.0.0.1:7778;`).
    #[test]
    fn nginx_sample() {
        let ring =
            Ring::new(vec![Parent::new(addr(1, 7777), 1), Parent::new(addr(1, 7778), 1)]).unwrap();
        let cases: &[(&str, u16)] = &[
            ("/some/path", 7778),
            ("/some/longer/path", 7777),
            ("/sad/zaidoon", 7778),
            ("/g", 7777),
            ("/pingora/team/is/cool/and/this/is/a/long/uri", 7778),
            ("/i/am/not/confident/in/this/code", 7777),
        ];
        for (key, port) in cases {
            let owner = ring.owner(key.as_bytes());
            assert_eq!(ring.parents()[owner].addr.port(), *port, "{key}");
        }
    }

    #[test]
    fn candidates_list_every_parent_once_owner_first() {
        let ring = Ring::new(five()).unwrap();
        for i in 0..2000 {
            let key = format!("/obj/{i}");
            let c = ring.candidates(key.as_bytes());
            assert_eq!(c[0], ring.owner(key.as_bytes()));
            let mut sorted = c.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4], "{key}");
        }
    }

    /// Failover order is stable under removal: once the owner is gone, a key goes to its
    /// old second choice (nginx's walk to the next point of another server).
    #[test]
    fn removing_the_owner_promotes_the_second_candidate() {
        let ring = Ring::new(five()).unwrap();
        let removed = ring.parents()[2].addr;
        let smaller =
            Ring::new(five().into_iter().filter(|p| p.addr != removed).collect()).unwrap();
        for i in 0..5000 {
            let key = format!("/obj/{i}");
            let before = ring.candidates(key.as_bytes());
            let after = smaller.owner(key.as_bytes());
            let want =
                before.iter().map(|&j| ring.parents()[j].addr).find(|a| *a != removed).unwrap();
            assert_eq!(smaller.parents()[after].addr, want, "{key}");
        }
    }

    /// Removing 1 of 5 parents moves only the keys that lived on it: about a fifth.
    #[test]
    fn removing_one_of_five_moves_only_its_keys() {
        let ring = Ring::new(five()).unwrap();
        for removed in 0..5 {
            let gone = ring.parents()[removed].addr;
            let kept: Vec<Parent> = five().into_iter().filter(|p| p.addr != gone).collect();
            let reload = ring.reload(kept).unwrap();
            let mut lived_there = 0;
            for i in 0..SAMPLE_KEYS {
                let key = sample_key(i);
                let before = ring.parents()[ring.owner(&key)].addr;
                let after = reload.ring.parents()[reload.ring.owner(&key)].addr;
                if before == gone {
                    lived_there += 1;
                    assert_ne!(after, gone);
                } else {
                    assert_eq!(before, after, "a key of a kept parent moved");
                }
            }
            // The exact share agrees with the sample, and is about a fifth.
            let sampled = lived_there as f64 / SAMPLE_KEYS as f64;
            let f = reload.moved_share;
            assert!((f - sampled).abs() < 0.01, "parent {removed}: {f} vs {sampled}");
            assert!((0.10..=0.30).contains(&f), "parent {removed}: {f}");
        }
    }

    #[test]
    fn adding_a_sixth_moves_keys_only_onto_it() {
        let ring = Ring::new(five()).unwrap();
        let mut six = five();
        six.push(Parent::new(addr(7, 8080), 1));
        let reload = ring.reload(six).unwrap();
        for i in 0..SAMPLE_KEYS {
            let key = sample_key(i);
            let before = ring.parents()[ring.owner(&key)].addr;
            let after = reload.ring.parents()[reload.ring.owner(&key)].addr;
            assert!(before == after || after == addr(7, 8080), "{i}");
        }
        let f = reload.moved_share;
        assert!((0.08..=0.26).contains(&f), "{f}");
        let sampled = (0..SAMPLE_KEYS)
            .filter(|i| {
                reload.ring.parents()[reload.ring.owner(&sample_key(*i))].addr == addr(7, 8080)
            })
            .count() as f64
            / SAMPLE_KEYS as f64;
        assert!((f - sampled).abs() < 0.01, "{f} vs {sampled}");
    }

    #[test]
    fn unchanged_list_moves_nothing() {
        let ring = Ring::new(five()).unwrap();
        let mut shuffled = five();
        shuffled.reverse();
        assert_eq!(ring.reload(shuffled).unwrap().moved_share, 0.0);
        // And a list with nothing in common moves everything.
        let other = vec![Parent::new(addr(9, 9), 1)];
        assert_eq!(ring.reload(other).unwrap().moved_share, 1.0);
    }

    /// Weights give each parent a share of keys near its share of the total weight.
    #[test]
    fn weights_are_respected() {
        let weights = [1u32, 2, 3, 4];
        let parents: Vec<Parent> =
            weights.iter().zip(2u8..).map(|(w, last)| Parent::new(addr(last, 80), *w)).collect();
        let ring = Ring::new(parents).unwrap();
        let mut counts = [0usize; 4];
        let n = SAMPLE_KEYS;
        for i in 0..n {
            counts[ring.owner(&sample_key(i))] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let want = f64::from(*w) / f64::from(total);
            let got = counts[i] as f64 / n as f64;
            assert!((got - want).abs() < 0.05, "weight {w}: {got} vs {want}");
        }
        // Strictly ordered by weight, not merely close.
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
    }

    /// For IPv4 parents the ring is pingora-ketama's, point for point: the same owner and the
    /// same failover walk for every key, with weights.
    #[test]
    fn ipv4_rings_equal_pingora_ketama() {
        use pingora_ketama::{Bucket, Continuum};
        let sets: Vec<Vec<Parent>> = vec![
            five(),
            (2..=10).map(|i| Parent::new(addr(i, 443), u32::from(i % 4) + 1)).collect(),
            vec![Parent::new(SocketAddr::from(([10, 1, 2, 3], 8080)), 7)],
        ];
        for parents in sets {
            let ring = Ring::new(parents.clone()).unwrap();
            let buckets: Vec<Bucket> =
                parents.iter().map(|p| Bucket::new(p.addr, p.weight)).collect();
            let theirs = Continuum::new(&buckets);
            for i in 0..20_000 {
                let key = sample_key(i);
                let ours: Vec<SocketAddr> =
                    ring.candidates(&key).iter().map(|j| ring.parents()[*j].addr).collect();
                let mut walk: Vec<SocketAddr> = Vec::new();
                for a in theirs.node_iter(&key) {
                    if !walk.contains(a) {
                        walk.push(*a);
                    }
                    if walk.len() == parents.len() {
                        break;
                    }
                }
                assert_eq!(ours, walk, "{i}");
            }
        }
    }
}
