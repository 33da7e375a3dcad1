//! Fuzz target: `http::request::parse` on arbitrary bytes, then the parsed fields through the
//! range, conditional and content-coding evaluators as the response planner would use them.
//!
//! Checks that parsing never panics, that a complete head never claims more bytes than it was
//! given, that its minor version is 0 or 1, and that parsing is prefix-consistent: a complete
//! head parses to the same length when more bytes follow it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::http::request::{parse, Limits, Parsed};
use ringcast::http::{conditional, encoding, range};
use std::time::UNIX_EPOCH;

const LIMITS: Limits = Limits { max_head_bytes: 8192, max_target_bytes: 2048 };

fuzz_target!(|data: &[u8]| {
    let Ok(Parsed::Complete(req, head_len)) = parse(data, &LIMITS) else {
        return;
    };
    assert!(head_len <= data.len());
    // A later HTTP/1.x minor is processed as 1.1 (RFC 9112 §2.3); nothing above 1 gets through.
    assert!(req.minor_version <= 1, "minor version {}", req.minor_version);
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
    match parse(&longer, &LIMITS) {
        Ok(Parsed::Complete(_, n)) => assert_eq!(n, head_len),
        other => panic!("a complete head became {other:?} when more bytes followed"),
    }

    let f = &req.fields;
    if let Some(r) = f.range.as_deref() {
        let _ = range::evaluate(r, 1_000_000, range::DEFAULT_MAX_RANGES);
    }
    let pre = conditional::Preconditions {
        if_match: f.if_match.as_deref(),
        if_none_match: f.if_none_match.as_deref(),
        if_modified_since: f.if_modified_since.as_deref(),
        if_unmodified_since: f.if_unmodified_since.as_deref(),
        if_range: f.if_range.as_deref(),
    };
    let v = conditional::Validators { etag: "\"5f3a-1b2c\"", last_modified: UNIX_EPOCH };
    let _ = conditional::evaluate(&pre, &v);
    if let Some(ae) = f.accept_encoding.as_deref() {
        let _ = encoding::parse_accept_encoding(ae);
    }
});
