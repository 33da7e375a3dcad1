//! Fuzz target: the cache metadata format (`cache::meta`).
//!
//! Checks that decoding arbitrary bytes never panics and that whatever decodes re-encodes to
//! the same bytes; the input is also tried with a valid checksum appended, so the structural
//! checks behind the checksum are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringcast::fuzzing::cache_meta(data));
