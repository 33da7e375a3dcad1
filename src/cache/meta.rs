//! The metadata file stored beside an object's body: key, variant, status, header fields,
//! freshness, length and slice map, in a small versioned binary format.
//!
//! Layout (integers little-endian):
//! ```text
//! "RCM1"                                  magic and version
//! u32 len, key bytes (UTF-8)
//! u32 len, secondary key bytes            (empty: no Vary variant) ; u8 has_secondary
//! u16 status
//! u64 response_time, corrected_initial_age, lifetime, stale_while_revalidate, stale_if_error
//! u8  flags                                bit 0 no_stale, bit 1 always_revalidate
//! u64 total length, u64 slice size (0: stored whole)
//! u32 len, slice bitmap                    bit k set: slice k is on disk (len = ceil(count/8))
//! u16 count, then per field: u16 len, name (token), u32 len, value
//! 8 bytes: the first 8 bytes of SHA-256 over everything before
//! ```
//! [`Meta::decode`] rejects anything else — wrong magic or version, a length past its bound or
//! past the end, trailing bytes, a name that is not a token, a value with CR/LF/NUL, a bitmap
//! not matching the length, a bad checksum — so a torn or foreign file is never taken for
//! an object (fuzzed: `fuzz/fuzz_targets/cache_meta.rs`).
#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};

use crate::cache::fields::Fields;
use crate::cache::freshness::Freshness;
use crate::cache::key::CacheKey;
use crate::cache::slice::Slicing;

const MAGIC: &[u8; 4] = b"RCM1";
const MAX_KEY_BYTES: usize = 16 * 1024;
const MAX_SECONDARY_BYTES: usize = 4096;
const MAX_FIELDS: usize = 256;
const MAX_NAME_BYTES: usize = 256;
const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_BITMAP_BYTES: usize = 1 << 20;

/// An object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The primary key.
    pub(crate) key: CacheKey,
    /// The `Vary` secondary key (normalised `Accept-Encoding`), when the object is a variant.
    pub(crate) secondary: Option<Vec<u8>>,
    /// The status to answer with on a full hit (200, or a stored 404, 301, ...).
    pub(crate) status: u16,
    /// End-to-end header fields as stored.
    pub(crate) fields: Fields,
    /// Freshness as computed when stored or last revalidated.
    pub(crate) freshness: Freshness,
    /// The representation's complete length.
    pub(crate) total: u64,
    /// Slice size; `None` when the body is stored whole.
    pub(crate) slicing: Option<Slicing>,
    /// For a sliced object, which slices are on disk.
    pub(crate) slices: SliceMap,
}

/// Which slices of an object are on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SliceMap {
    bits: Vec<u8>,
}

impl SliceMap {
    /// An empty map for `count` slices.
    pub(crate) fn new(count: u64) -> Self {
        let bytes = usize::try_from(count.div_ceil(8)).unwrap_or(usize::MAX);
        SliceMap { bits: vec![0; bytes] }
    }

    /// Whether slice `k` is present.
    pub(crate) fn has(&self, k: u64) -> bool {
        let Ok(i) = usize::try_from(k / 8) else { return false };
        self.bits.get(i).is_some_and(|b| b & (1 << (k % 8)) != 0)
    }

    /// Marks slice `k` present or absent; ignored past the map.
    pub(crate) fn set(&mut self, k: u64, present: bool) {
        let Ok(i) = usize::try_from(k / 8) else { return };
        if let Some(b) = self.bits.get_mut(i) {
            if present {
                *b |= 1 << (k % 8);
            } else {
                *b &= !(1 << (k % 8));
            }
        }
    }

    /// Number of slices present.
    pub(crate) fn present(&self) -> u64 {
        self.bits.iter().map(|b| u64::from(b.count_ones())).sum()
    }
}

impl Meta {
    /// Whether every byte of the body is on disk.
    pub(crate) fn complete(&self) -> bool {
        match self.slicing {
            None => true,
            Some(s) => self.slices.present() == s.count(self.total),
        }
    }

    /// The binary form.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(MAGIC);
        put_bytes32(&mut out, self.key.as_str().as_bytes());
        put_bytes32(&mut out, self.secondary.as_deref().unwrap_or_default());
        out.push(u8::from(self.secondary.is_some()));
        out.extend_from_slice(&self.status.to_le_bytes());
        let f = &self.freshness;
        for v in [
            f.response_time,
            f.corrected_initial_age,
            f.lifetime,
            f.stale_while_revalidate,
            f.stale_if_error,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(f.no_stale) | (u8::from(f.always_revalidate) << 1));
        out.extend_from_slice(&self.total.to_le_bytes());
        out.extend_from_slice(&self.slicing.map_or(0, Slicing::size).to_le_bytes());
        put_bytes32(&mut out, &self.slices.bits);
        let count = u16::try_from(self.fields.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (name, value) in self.fields.iter().take(usize::from(count)) {
            let name = &name.as_bytes()[..name.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
            out.extend_from_slice(name);
            put_bytes32(&mut out, value);
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Parses [`Meta::encode`]'s form; `None` for anything else.
    pub(crate) fn decode(data: &[u8]) -> Option<Meta> {
        let (body, sum) = data.split_last_chunk::<8>()?;
        if checksum(body) != *sum {
            return None;
        }
        let mut r = Reader(body);
        if r.take(4)? != MAGIC {
            return None;
        }
        let key = std::str::from_utf8(r.bytes32(MAX_KEY_BYTES)?).ok()?.to_owned();
        let secondary = r.bytes32(MAX_SECONDARY_BYTES)?.to_vec();
        let secondary = match r.u8()? {
            0 if secondary.is_empty() => None,
            1 => Some(secondary),
            _ => return None,
        };
        let status = r.u16()?;
        if !(200..=599).contains(&status) {
            return None;
        }
        let mut times = [0u64; 5];
        for t in &mut times {
            *t = r.u64()?;
        }
        let flags = r.u8()?;
        if flags & !3 != 0 {
            return None;
        }
        let freshness = Freshness {
            response_time: times[0],
            corrected_initial_age: times[1],
            lifetime: times[2],
            stale_while_revalidate: times[3],
            stale_if_error: times[4],
            no_stale: flags & 1 != 0,
            always_revalidate: flags & 2 != 0,
        };
        let total = r.u64()?;
        let slice_size = r.u64()?;
        let slicing = if slice_size == 0 { None } else { Some(Slicing::new(slice_size)?) };
        let bits = r.bytes32(MAX_BITMAP_BYTES)?.to_vec();
        let want_bits = slicing.map_or(0, |s| s.count(total).div_ceil(8));
        if u64::try_from(bits.len()).ok()? != want_bits {
            return None;
        }
        let slices = SliceMap { bits };
        // No bit past the last slice.
        if let Some(s) = slicing {
            let count = s.count(total);
            if (count..want_bits * 8).any(|k| slices.has(k)) {
                return None;
            }
        }
        let count = usize::from(r.u16()?);
        if count > MAX_FIELDS {
            return None;
        }
        let mut fields = Fields::new();
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            if len == 0 || len > MAX_NAME_BYTES {
                return None;
            }
            let name = r.take(len)?;
            if !name.iter().all(|&b| is_tchar(b)) {
                return None;
            }
            let value = r.bytes32(MAX_VALUE_BYTES)?;
            if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
                return None;
            }
            fields.push(std::str::from_utf8(name).ok()?, value);
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(Meta {
            key: CacheKey::from_stored(key),
            secondary,
            status,
            fields,
            freshness,
            total,
            slicing,
            slices,
        })
    }
}

/// RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn checksum(data: &[u8]) -> [u8; 8] {
    let d: [u8; 32] = Sha256::digest(data).into();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

fn put_bytes32(out: &mut Vec<u8>, b: &[u8]) {
    // Every caller's bytes are bounded far below 4 GiB by what decode accepts.
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes32(&mut self, max: usize) -> Option<&'a [u8]> {
        let len = usize::try_from(u32::from_le_bytes(self.take(4)?.try_into().ok()?)).ok()?;
        if len > max {
            return None;
        }
        self.take(len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cache::key::KeyRules;

    /// A sample with every part set.
    pub(crate) fn sample(total: u64, slicing: Option<Slicing>) -> Meta {
        let mut fields = Fields::new();
        fields.push("Content-Type", b"video/mp4");
        fields.push("ETag", b"\"v1\"");
        fields.push("X-Bytes", b"\x80\xff obs-text");
        let mut slices = SliceMap::new(slicing.map_or(0, |s| s.count(total)));
        slices.set(0, true);
        Meta {
            key: CacheKey::new("http", "h", "/a.mp4", &KeyRules::default()),
            secondary: Some(b"gzip".to_vec()),
            status: 200,
            fields,
            freshness: Freshness {
                response_time: 1_700_000_000,
                corrected_initial_age: 3,
                lifetime: 60,
                stale_while_revalidate: 5,
                stale_if_error: 600,
                no_stale: true,
                always_revalidate: false,
            },
            total,
            slicing,
            slices,
        }
    }

    #[test]
    fn round_trips() {
        for m in [
            sample(10, None),
            sample(5 * 1024 + 1, Slicing::new(1024)),
            Meta { secondary: None, fields: Fields::new(), ..sample(0, None) },
        ] {
            let bytes = m.encode();
            assert_eq!(Meta::decode(&bytes), Some(m.clone()));
        }
    }

    #[test]
    fn garbage_and_damage_are_rejected() {
        let good = sample(5 * 1024 + 1, Slicing::new(1024)).encode();
        assert!(Meta::decode(&[]).is_none());
        assert!(Meta::decode(b"RCM1").is_none());
        // Every truncation, every single-bit flip, and an extra byte are all rejected.
        for cut in 0..good.len() {
            assert!(Meta::decode(&good[..cut]).is_none(), "cut {cut}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(Meta::decode(&bad).is_none(), "flip at {i}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(Meta::decode(&longer).is_none());
        // Structurally wrong content with a valid checksum is rejected too.
        let resum = |mut body: Vec<u8>| {
            let s = checksum(&body);
            body.extend_from_slice(&s);
            body
        };
        let body = good[..good.len() - 8].to_vec();
        let mut wrong_magic = body.clone();
        wrong_magic[3] = b'2';
        assert!(Meta::decode(&resum(wrong_magic)).is_none());
        let mut trailing = body.clone();
        trailing.push(1);
        assert!(Meta::decode(&resum(trailing)).is_none());
        let mut bad_field = sample(1, None);
        bad_field.fields.push("X", b"a\r\nInjected: 1");
        assert!(Meta::decode(&bad_field.encode()).is_none());
        let mut bad_name = sample(1, None);
        bad_name.fields.push("X Y", b"1");
        assert!(Meta::decode(&bad_name.encode()).is_none());
        let mut bad_status = sample(1, None);
        bad_status.status = 100;
        assert!(Meta::decode(&bad_status.encode()).is_none());
        let mut bad_map = sample(2048, Slicing::new(1024));
        bad_map.slices = SliceMap::new(9);
        assert!(Meta::decode(&bad_map.encode()).is_none());
        let mut stray_bit = sample(2048, Slicing::new(1024));
        stray_bit.slices.bits[0] |= 0x80;
        assert!(Meta::decode(&stray_bit.encode()).is_none());
    }

    #[test]
    fn slice_map_and_completeness() {
        let mut m = sample(3 * 1024, Slicing::new(1024));
        assert!(!m.complete());
        m.slices.set(1, true);
        m.slices.set(2, true);
        m.slices.set(99, true);
        assert!(m.complete() && m.slices.present() == 3);
        m.slices.set(1, false);
        assert!(!m.slices.has(1) && m.slices.has(2) && !m.slices.has(u64::MAX));
        assert!(sample(7, None).complete());
    }
}
