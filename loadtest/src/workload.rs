//! What each request asks for: weighted URL rotation, random aligned ranges, or an object of
//! a Zipf-popular catalog.
//!
//! The rotation is precomputed once (smooth weighted round robin, as nginx's
//! upstream balancer does), so a connection picks its next URL by index with
//! no shared state: request `j` of connection `k` out of `C` uses slot
//! `(j * C + k) mod len`. Ranges come from a per-connection xorshift generator
//! seeded by the connection index, so runs are reproducible. A [`Catalog`]
//! (`--catalog N`) replaces the rotation: request slot `s` asks for object
//! `zipf.sample(unit(seed, s))` (see [`crate::zipf`]), its target made from the
//! URL template.

#![forbid(unsafe_code)]

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::url::Scheme;
use crate::zipf::{unit, Zipf};

/// One server to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or address literal: the TLS server name for `https`.
    pub host: String,
    /// `Host` header value.
    pub authority: String,
    /// Address resolved at start-up.
    pub addr: SocketAddr,
}

/// One request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Index into [`Workload::origins`].
    pub origin: usize,
    /// Path and query.
    pub path: String,
    /// Complete length of the resource, known when ranges are requested.
    pub size: Option<u64>,
}

/// The fixed request mix of a run.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Distinct servers.
    pub origins: Vec<Origin>,
    /// Distinct targets.
    pub targets: Vec<Target>,
    /// Rotation of indices into `targets`, each repeated by its weight.
    pub rotation: Vec<usize>,
    /// Bytes per range request (`--range-size`), if any.
    pub range_size: Option<u64>,
    /// Objects drawn by popularity instead of the rotation (`--catalog`), if any.
    pub catalog: Option<Catalog>,
}

/// The text in a URL template that stands for the object number.
pub const OBJECT_PLACEHOLDER: &str = "{i}";

/// `--catalog N --zipf ALPHA`: objects `0..N` of one origin, drawn by Zipf popularity.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Index into [`Workload::origins`].
    pub origin: usize,
    /// Request target before the object number.
    pub prefix: String,
    /// Request target after the object number.
    pub suffix: String,
    /// Popularity of the objects (shared by every thread).
    pub popularity: Arc<Zipf>,
    /// `--seed`.
    pub seed: u64,
}

impl Catalog {
    /// Splits request target `target` at [`OBJECT_PLACEHOLDER`]; without one, the object
    /// number becomes a last path segment (`/obj` and `/obj/` both give `/obj/{i}`).
    pub fn template(target: &str) -> (String, String) {
        if let Some((prefix, suffix)) = target.split_once(OBJECT_PLACEHOLDER) {
            return (prefix.to_owned(), suffix.to_owned());
        }
        let (path, query) = match target.find('?') {
            Some(q) => target.split_at(q),
            None => (target, ""),
        };
        let path = path.strip_suffix('/').unwrap_or(path);
        (format!("{path}/"), query.to_owned())
    }

    /// The object request slot `slot` asks for.
    pub fn object(&self, slot: u64) -> u64 {
        self.popularity.sample(unit(self.seed, slot))
    }

    /// Writes object `object`'s request target into `out` (cleared first).
    pub fn write_target(&self, object: u64, out: &mut String) {
        out.clear();
        // Writing to a String cannot fail.
        let _ = write!(out, "{}{object}{}", self.prefix, self.suffix);
    }
}

impl Workload {
    /// Index into `targets` of slot `slot` of the rotation (wraps around).
    pub fn pick(&self, slot: u64) -> usize {
        let len = self.rotation.len() as u64;
        // `slot % len` < len, which came from a usize, so the conversion cannot fail.
        let i = usize::try_from(slot % len).unwrap_or(0);
        self.rotation[i]
    }
}

/// Smooth weighted round robin: spreads each index `weight` times over the cycle.
pub fn weighted_rotation(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::new();
    for _ in 0..total {
        for (c, &w) in current.iter_mut().zip(weights) {
            *c += i64::from(w);
        }
        let Some((best, _)) = current.iter().enumerate().max_by_key(|&(i, c)| (*c, -(i as i64)))
        else {
            break;
        };
        current[best] -= total;
        out.push(best);
    }
    out
}

/// Parses a `--urls` file: one URL a line, an optional positive integer weight after it;
/// blank lines and `#` comments are skipped.
pub fn parse_urls_file(text: &str) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let url = words.next().unwrap_or_default().to_owned();
        let weight = match words.next() {
            None => 1,
            Some(w) => w
                .parse::<u32>()
                .ok()
                .filter(|&w| (1..=10_000).contains(&w))
                .ok_or_else(|| format!("line {}: weight must be 1..=10000, got {w:?}", n + 1))?,
        };
        if words.next().is_some() {
            return Err(format!("line {}: expected `URL [WEIGHT]`", n + 1));
        }
        out.push((url, weight));
    }
    Ok(out)
}

/// A small, fast, deterministic generator (xorshift64*); not for anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value, including 0).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n` > 0); the modulo bias is irrelevant for load spreading.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The inclusive byte range `(first, last)` of a random `size`-aligned block of a `len`-byte file.
///
/// The last block may be short; `None` for an empty file.
pub fn aligned_range(rng: &mut Rng, len: u64, size: u64) -> Option<(u64, u64)> {
    if len == 0 || size == 0 {
        return None;
    }
    let blocks = len.div_ceil(size);
    let first = rng.below(blocks) * size;
    let last = (first + size).min(len) - 1;
    Some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_respects_weights_and_spreads() {
        let cases: &[(&[u32], &[usize])] = &[
            (&[1], &[0]),
            (&[1, 1], &[0, 1]),
            (&[5, 1, 1], &[0, 0, 1, 0, 2, 0, 0]),
            (&[2, 3], &[1, 0, 1, 0, 1]),
        ];
        for (weights, want) in cases {
            assert_eq!(weighted_rotation(weights), *want, "{weights:?}");
        }
    }

    #[test]
    fn urls_file() {
        let text = "# comment\nhttp://h/a 3\n\nhttp://h/b\n";
        assert_eq!(
            parse_urls_file(text).unwrap(),
            vec![("http://h/a".to_owned(), 3), ("http://h/b".to_owned(), 1)]
        );
        for bad in ["http://h/a 0", "http://h/a x", "http://h/a 1 2"] {
            assert!(parse_urls_file(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn catalog_templates() {
        let cases: &[(&str, &str, &str)] = &[
            ("/obj/{i}", "/obj/", ""),
            ("/obj/{i}.bin?v=2", "/obj/", ".bin?v=2"),
            ("/v/{i}/seg.ts", "/v/", "/seg.ts"),
            ("/obj", "/obj/", ""),
            ("/obj/", "/obj/", ""),
            ("/", "/", ""),
            ("/obj?x=1", "/obj/", "?x=1"),
        ];
        for (target, prefix, suffix) in cases {
            let got = Catalog::template(target);
            assert_eq!((got.0.as_str(), got.1.as_str()), (*prefix, *suffix), "{target}");
        }
        let (prefix, suffix) = Catalog::template("/o/{i}.bin");
        let catalog = Catalog {
            origin: 0,
            prefix,
            suffix,
            popularity: Arc::new(Zipf::new(10, 1.0).unwrap()),
            seed: 7,
        };
        let mut out = String::from("stale");
        catalog.write_target(9, &mut out);
        assert_eq!(out, "/o/9.bin");
        assert!((0..1000).all(|slot| catalog.object(slot) < 10));
    }

    #[test]
    fn ranges_are_aligned_and_inside_the_file() {
        let mut rng = Rng::new(7);
        for (len, size) in [(1u64, 1u64), (10, 3), (1 << 20, 4096), (5000, 4096), (4096, 4096)] {
            for _ in 0..1000 {
                let (first, last) = aligned_range(&mut rng, len, size).unwrap();
                assert_eq!(first % size, 0);
                assert!(first <= last && last < len, "{len} {size}: {first}-{last}");
                assert!(last - first < size);
            }
        }
        assert_eq!(aligned_range(&mut rng, 0, 10), None);
    }
}
