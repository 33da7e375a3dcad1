//! Fuzz target: origin response heads (`origin::head::parse_head`), then the parsed fields
//! through freshness, storability, slice classification and 304 updates.
//!
//! Input: 1 byte of flags (bit 0: the request was HEAD; bit 1: it carried Authorization;
//! bits 1..: Last-Modified heuristic percent), then the response bytes. Checks that nothing
//! panics and that a complete head keeps its length and value when more bytes follow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringcast::fuzzing::origin_response_head(data));
