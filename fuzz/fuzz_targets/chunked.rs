//! Fuzz target: the chunked decoder (`origin::chunked`).
//!
//! Input: 2 bytes choosing two split points, then the body bytes. Checks that nothing panics,
//! no call consumes more than it was given, and the content and outcome are the same whole
//! or split.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ringcast::fuzzing::chunked(data));
