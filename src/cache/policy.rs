//! May a response be stored (RFC 9111 §3), and under which variant (§4.1 `Vary`)?
//!
//! [`storability`] is a decision, not an error: a response that may not be stored is still
//! forwarded to the client, and the reason becomes the `detail` of its `Cache-Status`.
//! Beyond RFC 9111 two rules are stricter, as nginx's `proxy_cache` is by default:
//! - a response carrying `Set-Cookie` is not stored (one client's session must never be
//!   handed to another; §7.3 leaves this to the cache);
//! - `Vary` is honoured only for `Accept-Encoding` (a secondary key); any other field, or `*`,
//!   means not stored (§4.1 permits not storing what the cache cannot match).
#![forbid(unsafe_code)]

use crate::cache::control::CacheControl;
use crate::cache::fields::{list_members, Fields};
use crate::cache::freshness::{heuristically_cacheable, Freshness};

/// The request facts storability depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts {
    /// Whether the method is GET (the only method whose responses are stored; §3 asks for a
    /// method the cache understands, and a HEAD response has no content to store).
    pub(crate) is_get: bool,
    /// Whether the request carried `Authorization` (§3.5).
    pub(crate) has_authorization: bool,
}

/// Which variant a stored response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// No `Vary`: one response serves every request for the key.
    Single,
    /// `Vary: Accept-Encoding`: the secondary key is the request's normalised
    /// `Accept-Encoding` ([`crate::cache::key::normalize_accept_encoding`]).
    AcceptEncoding,
}

/// The storage decision for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storability {
    /// Store it as `variant`.
    Store(Variant),
    /// Forward it without storing.
    NotStorable(NotStored),
}

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    /// Not a GET (§3).
    Method,
    /// A status the cache does not store: 1xx, 304, or one without explicit freshness that is
    /// not heuristically cacheable (§3, RFC 9110 §15.1).
    Status,
    /// `no-store` (§5.2.2.5).
    NoStore,
    /// `private` (§5.2.2.7).
    Private,
    /// The request had `Authorization` and the response did not allow sharing (§3.5).
    Authorization,
    /// `Vary: *` (§4.1) or `Vary` on a field other than `Accept-Encoding`.
    Vary,
    /// `Set-Cookie` present.
    SetCookie,
    /// A lifetime of 0 and no validator: it could never be used (§4.3.1).
    NeverUsable,
}

impl NotStored {
    /// The token for `Cache-Status`'s `detail` (RFC 9211 §2.8).
    pub(crate) fn detail(self) -> &'static str {
        match self {
            NotStored::Method => "method",
            NotStored::Status => "status",
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::Authorization => "authorization",
            NotStored::Vary => "vary",
            NotStored::SetCookie => "set-cookie",
            NotStored::NeverUsable => "no-freshness",
        }
    }
}

/// Decides whether a response may be stored by a shared cache (RFC 9111 §3). `freshness` is
/// the response's computed freshness ([`Freshness::compute`]).
pub(crate) fn storability(
    req: RequestFacts,
    status: u16,
    fields: &Fields,
    freshness: &Freshness,
) -> Storability {
    use Storability::NotStorable as No;
    if !req.is_get {
        return No(NotStored::Method);
    }
    let cc = CacheControl::from_fields(fields);
    // §3: a final status the cache understands; 304 updates, it is never stored itself.
    if status < 200 || status == 304 || status > 599 {
        return No(NotStored::Status);
    }
    if cc.no_store {
        return No(NotStored::NoStore);
    }
    if cc.private {
        return No(NotStored::Private);
    }
    // §3.5: only must-revalidate, public or s-maxage allow sharing an authorised answer.
    if req.has_authorization && !(cc.must_revalidate || cc.public || cc.s_maxage.is_some()) {
        return No(NotStored::Authorization);
    }
    // §3: explicit freshness, `public`, or a heuristically cacheable status.
    let explicit = cc.max_age.is_some() || cc.s_maxage.is_some() || fields.contains("expires");
    if !(explicit || cc.public || heuristically_cacheable(status)) {
        return No(NotStored::Status);
    }
    let variant = match vary(fields) {
        Some(v) => v,
        None => return No(NotStored::Vary),
    };
    if fields.contains("set-cookie") {
        return No(NotStored::SetCookie);
    }
    let has_validator = fields.contains("etag") || fields.contains("last-modified");
    let usable_stale = freshness.stale_if_error > 0 || freshness.stale_while_revalidate > 0;
    if freshness.lifetime == 0 && !has_validator && !usable_stale {
        return No(NotStored::NeverUsable);
    }
    Storability::Store(variant)
}

/// The variant `Vary` asks for; `None` when it cannot be matched (§4.1).
fn vary(fields: &Fields) -> Option<Variant> {
    let mut variant = Variant::Single;
    for member in fields.get_all("vary").flat_map(list_members) {
        if member.eq_ignore_ascii_case(b"accept-encoding") {
            variant = Variant::AcceptEncoding;
        } else {
            // `*` and every other field.
            return None;
        }
    }
    Some(variant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::freshness::Policy;

    /// Header field lines of a table case.
    type Lines = &'static [(&'static str, &'static str)];

    const GET: RequestFacts = RequestFacts { is_get: true, has_authorization: false };
    const AUTH: RequestFacts = RequestFacts { is_get: true, has_authorization: true };
    const HEAD: RequestFacts = RequestFacts { is_get: false, has_authorization: false };

    #[test]
    fn storability_table() {
        use NotStored as N;
        use Storability::{NotStorable as No, Store};
        const ETAG: (&str, &str) = ("ETag", "\"v1\"");
        const MA: (&str, &str) = ("Cache-Control", "max-age=60");
        let cases: &[(RequestFacts, u16, Lines, Storability)] = &[
            (GET, 200, &[MA], Store(Variant::Single)),
            (HEAD, 200, &[MA], No(N::Method)),
            // §3: 1xx and 304 are never stored.
            (GET, 100, &[MA], No(N::Status)),
            (GET, 304, &[MA], No(N::Status)),
            // §3: explicit freshness makes any final status storable...
            (GET, 302, &[MA], Store(Variant::Single)),
            (
                GET,
                500,
                &[("Expires", "Sun, 06 Nov 1994 08:49:37 GMT"), ETAG],
                Store(Variant::Single),
            ),
            // ...without it, only heuristically cacheable ones (RFC 9110 §15.1) or `public`.
            (GET, 302, &[ETAG], No(N::Status)),
            (GET, 302, &[ETAG, ("Cache-Control", "public")], Store(Variant::Single)),
            (GET, 404, &[ETAG], Store(Variant::Single)),
            // §5.2.2.5, §5.2.2.7.
            (GET, 200, &[("Cache-Control", "max-age=60, no-store")], No(N::NoStore)),
            (GET, 200, &[("Cache-Control", "private, max-age=60")], No(N::Private)),
            // §3.5.
            (AUTH, 200, &[MA], No(N::Authorization)),
            (AUTH, 200, &[("Cache-Control", "max-age=60, public")], Store(Variant::Single)),
            (AUTH, 200, &[("Cache-Control", "s-maxage=60")], Store(Variant::Single)),
            (
                AUTH,
                200,
                &[("Cache-Control", "max-age=60, must-revalidate")],
                Store(Variant::Single),
            ),
            // §4.1.
            (GET, 200, &[MA, ("Vary", "Accept-Encoding")], Store(Variant::AcceptEncoding)),
            (
                GET,
                200,
                &[MA, ("Vary", "accept-encoding"), ("Vary", " ,ACCEPT-ENCODING")],
                Store(Variant::AcceptEncoding),
            ),
            (GET, 200, &[MA, ("Vary", "")], Store(Variant::Single)),
            (GET, 200, &[MA, ("Vary", "*")], No(N::Vary)),
            (GET, 200, &[MA, ("Vary", "Accept-Encoding, User-Agent")], No(N::Vary)),
            (GET, 200, &[MA, ("Set-Cookie", "s=1")], No(N::SetCookie)),
            // A lifetime of 0 with nothing to revalidate with is useless.
            (GET, 200, &[], No(N::NeverUsable)),
            (GET, 200, &[ETAG], Store(Variant::Single)),
            (
                GET,
                200,
                &[("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")],
                Store(Variant::Single),
            ),
            (
                GET,
                200,
                &[("Cache-Control", "max-age=0, stale-if-error=60")],
                Store(Variant::Single),
            ),
        ];
        for (req, status, lines, want) in cases {
            let f = Fields::from_lines(lines);
            let fr = Freshness::compute(*status, &f, 0, 0, &Policy::default());
            assert_eq!(storability(*req, *status, &f, &fr), *want, "{status} {lines:?}");
        }
    }

    #[test]
    fn every_reason_has_a_detail_token() {
        use NotStored::*;
        let all = [Method, Status, NoStore, Private, Authorization, Vary, SetCookie, NeverUsable];
        let details: Vec<&str> = all.iter().map(|r| r.detail()).collect();
        for d in &details {
            assert!(!d.is_empty() && d.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{d}");
        }
        let mut unique = details.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), details.len());
    }
}
