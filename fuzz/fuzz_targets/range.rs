//! Fuzz target: `http::range::evaluate` on arbitrary field values and lengths.
//!
//! Input layout: 8 bytes of representation length (little-endian), 1 byte of range cap, then
//! the raw `Range` field value. Checks the invariants the sender relies on: every range is
//! non-empty and inside the file, multi-range answers are pairwise disjoint and non-adjacent
//! (in the order the client asked for them, so not necessarily sorted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::http::range::{evaluate, ByteRange, RangeDecision};

fuzz_target!(|data: &[u8]| {
    let Some((len_bytes, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((&cap, header)) = rest.split_first() else {
        return;
    };
    let len = u64::from_le_bytes(*len_bytes);
    let inside = |r: &ByteRange| r.len > 0 && r.start < len && r.len <= len - r.start;
    match evaluate(header, len, usize::from(cap)) {
        RangeDecision::Single(r) => {
            assert!(inside(&r));
            let _ = r.content_range(len);
        }
        RangeDecision::Multi(v) => {
            assert!(v.len() >= 2 && v.len() <= usize::from(cap));
            assert!(v.iter().all(inside));
            let apart = |a: &ByteRange, b: &ByteRange| {
                a.end_exclusive() < b.start || b.end_exclusive() < a.start
            };
            assert!(v.iter().enumerate().all(|(i, a)| v[i + 1..].iter().all(|b| apart(a, b))));
            let plan = ringcast::http::multipart::plan(&v, "video/mp4", len, "b");
            let sum: u128 = plan.pieces.iter().map(|p| u128::from(p.len())).sum();
            assert_eq!(plan.content_length, u64::try_from(sum).unwrap_or(u64::MAX));
        }
        RangeDecision::Full | RangeDecision::NotSatisfiable => {}
    }
});
