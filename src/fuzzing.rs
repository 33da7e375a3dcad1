//! Entry points for the fuzz targets in `fuzz/`: the edge cache and the origin client are
//! crate-internal, so each target calls one function here, which runs the code under test and
//! asserts its invariants (a violated invariant panics, which the fuzzer reports).
//! Not part of the server's interface.
#![forbid(unsafe_code)]

use crate::cache::freshness::{Freshness, Policy};
use crate::cache::meta::Meta;
use crate::cache::policy::{storability, RequestFacts};
use crate::cache::revalidate::{apply_not_modified, conditional_fields};
use crate::cache::slice::{Identity, Slicing};
use crate::origin::chunked::decode_pieces;
use crate::origin::head::{parse_head, HeadLimits, HeadParse};

/// Origin response heads: parsing never panics; a complete head never claims more bytes
/// than given and keeps its length and value when more bytes follow; a parsed head goes
/// through every cache decision without panicking. The first byte selects HEAD or GET.
pub fn origin_response_head(data: &[u8]) {
    let Some((&flags, data)) = data.split_first() else { return };
    let head_request = flags & 1 == 1;
    let limits = HeadLimits { max_head_bytes: 16 * 1024 };
    let Ok(parsed) = parse_head(data, head_request, &limits) else { return };
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
    match &parsed {
        HeadParse::Partial => return,
        HeadParse::Informational { head_len } => {
            assert!(*head_len <= data.len());
            let again = parse_head(&longer, head_request, &limits);
            assert_eq!(
                again,
                Ok(parsed.clone()),
                "an interim head changed when more bytes followed"
            );
            return;
        }
        HeadParse::Complete { head_len, .. } => {
            assert!(*head_len <= data.len());
            let again = parse_head(&longer, head_request, &limits);
            assert_eq!(
                again,
                Ok(parsed.clone()),
                "a complete head changed when more bytes followed"
            );
        }
    }
    let HeadParse::Complete { head, .. } = parsed else { return };
    let policy = Policy { default_ttl: Some(60), heuristic_percent: flags >> 1 };
    let fr = Freshness::compute(head.status, &head.fields, 1_000, 1_010, &policy);
    assert!(fr.corrected_initial_age >= 10, "response delay is part of the age");
    let req = RequestFacts { is_get: !head_request, has_authorization: flags & 2 == 2 };
    let _ = storability(req, head.status, &head.fields, &fr);
    let _ = fr.evaluate(2_000);
    let _ = fr.on_origin_error(2_000);
    let _ = fr.ttl(u64::MAX);
    let slicing = Slicing::new(1 << 20).unwrap_or_else(|| unreachable!());
    let answer = slicing.classify(u64::from(flags), head.status, &head.fields);
    let id = Identity::of(&head.fields, 1 << 30);
    assert_eq!(id.check(&id), crate::cache::slice::SliceCheck::Consistent);
    let mut stored = head.fields.clone();
    let cond = conditional_fields(&stored);
    let _ = apply_not_modified(&mut stored, &head.fields);
    let _ = (answer, cond);
}

/// The chunked decoder: never panics, never consumes more than given, and gives the same
/// content and outcome whether the input comes whole or split at the points the first two
/// bytes choose.
pub fn chunked(data: &[u8]) {
    let Some((cuts, input)) = data.split_first_chunk::<2>() else { return };
    let whole = decode_pieces([input]);
    let a = usize::from(cuts[0]).min(input.len());
    let b = usize::from(cuts[1]).clamp(a, input.len().max(a));
    let split = decode_pieces([&input[..a], &input[a..b], &input[b..]]);
    assert_eq!(whole, split, "the outcome depends on how the input was split");
}

/// The cache metadata format: decoding never panics, and whatever decodes re-encodes to the
/// same bytes (so nothing is silently dropped or invented).
pub fn cache_meta(data: &[u8]) {
    if let Some(meta) = Meta::decode(data) {
        assert_eq!(meta.encode(), data, "decode then encode changed the bytes");
    }
    // Mutations of a valid encoding are the interesting neighbourhood: re-checksum the input
    // as a body so structural checks (not only the checksum) are exercised.
    let mut resummed = data.to_vec();
    let sum: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(data).into();
    resummed.extend_from_slice(&sum[..8]);
    if let Some(meta) = Meta::decode(&resummed) {
        assert_eq!(meta.encode(), resummed, "decode then encode changed the bytes");
    }
}
