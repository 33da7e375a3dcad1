//! Fuzz target: `http::conditional::evaluate` on arbitrary precondition fields.
//!
//! Input layout: 4 bytes of Last-Modified seconds (little-endian), 1 byte saying which fields
//! are present, then the field values separated by NUL bytes, in the order If-Match,
//! If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::http::conditional::{evaluate, Outcome, Preconditions, Validators};
use std::time::{Duration, UNIX_EPOCH};

fuzz_target!(|data: &[u8]| {
    let Some((secs, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Some((&present, fields)) = rest.split_first() else {
        return;
    };
    let mut parts = fields.split(|&b| b == 0);
    let mut field = |bit: u8| {
        let value = parts.next();
        if present & (1 << bit) != 0 {
            value
        } else {
            None
        }
    };
    let pre = Preconditions {
        if_match: field(0),
        if_none_match: field(1),
        if_modified_since: field(2),
        if_unmodified_since: field(3),
        if_range: field(4),
    };
    let v = Validators {
        etag: "\"5f3a-1b2c\"",
        last_modified: UNIX_EPOCH + Duration::from_secs(u64::from(u32::from_le_bytes(*secs))),
    };
    let out = evaluate(&pre, &v);
    if pre.if_range.is_none() {
        assert!(out != Outcome::Proceed { range_allowed: false });
    }
    // Our own validators always pass their own preconditions.
    let own_etag = v.etag.as_bytes();
    let own =
        Preconditions { if_match: Some(own_etag), if_range: Some(own_etag), ..Default::default() };
    assert_eq!(evaluate(&own, &v), Outcome::Proceed { range_allowed: true });
});
