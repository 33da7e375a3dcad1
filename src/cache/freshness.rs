//! Freshness of a stored response (RFC 9111 §4.2) and the decision to use it (§4.2.4, §4.3,
//! RFC 5861).
//!
//! [`Freshness::compute`] runs once when a response is stored (and again after a `304`
//! refreshed it, §4.3.4); the result is kept in the object's metadata. [`Freshness::evaluate`]
//! runs on every request with the current time and says how the stored response may be used;
//! [`Freshness::on_origin_error`] says whether it may stand in for a failed origin.
//!
//! `--cache-default-ttl` (here [`Policy::default_ttl`]): a response with no explicit freshness
//! (no `s-maxage`, `max-age` or `Expires`) whose status is heuristically cacheable (RFC 9110
//! §15.1) or that is marked `public` is fresh for that many seconds — a heuristic in the sense
//! of §4.2.2, so it never overrides explicit information. Without it (the default, and with
//! Last-Modified heuristics off) such a response has a lifetime of 0: stored only when it has a
//! validator, then revalidated on every use.
//!
//! Request `Cache-Control` directives are not honoured (a client's `no-cache` does not force
//! an origin round trip), as nginx's `proxy_cache` and most CDNs do: the edge protects the
//! origin; freshness is the origin's to set.
#![forbid(unsafe_code)]

use crate::cache::control::{delta_seconds, CacheControl};
use crate::cache::fields::{trim_ows, Fields};
use crate::http::conditional::parse_date;

/// Freshness configuration.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Policy {
    /// Lifetime in seconds of responses without explicit freshness; `None`: 0.
    pub(crate) default_ttl: Option<u64>,
    /// Last-Modified heuristic (§4.2.2): this percentage of the time since `Last-Modified`.
    /// 0 turns it off (the default).
    pub(crate) heuristic_percent: u8,
}

/// What a stored response's freshness depends on, fixed when it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Freshness {
    /// When the response was received (`response_time`, §4.2.3).
    pub(crate) response_time: u64,
    /// `corrected_initial_age` (§4.2.3).
    pub(crate) corrected_initial_age: u64,
    /// `freshness_lifetime` (§4.2.1).
    pub(crate) lifetime: u64,
    /// Seconds past the lifetime it may be served while revalidated in the background
    /// (RFC 5861 §3).
    pub(crate) stale_while_revalidate: u64,
    /// Seconds past the lifetime it may be served when the origin fails (RFC 5861 §4).
    pub(crate) stale_if_error: u64,
    /// Never served stale: `must-revalidate` (§5.2.2.2), `proxy-revalidate` (§5.2.2.8) or
    /// `s-maxage`, which implies `proxy-revalidate` (§5.2.2.10); §4.2.4.
    pub(crate) no_stale: bool,
    /// `no-cache` (§5.2.2.4): every use needs a successful revalidation.
    pub(crate) always_revalidate: bool,
}

/// How a stored response may be used at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Serve it (§4.2: fresh). `ttl` is the remaining lifetime.
    Fresh { age: u64, ttl: u64 },
    /// Serve it stale and revalidate once in the background (RFC 5861 §3).
    StaleWhileRevalidate { age: u64 },
    /// Revalidate with the origin before use (§4.3); on an origin error see
    /// [`Freshness::on_origin_error`].
    Revalidate { age: u64 },
}

/// What to do with a stored response when the origin cannot be reached or answers 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Serve it stale (RFC 5861 §4).
    ServeStale { age: u64 },
    /// Answer the error (502/504).
    Fail,
}

/// Status codes heuristically cacheable (RFC 9110 §15.1).
pub(crate) fn heuristically_cacheable(status: u16) -> bool {
    matches!(status, 200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501)
}

impl Freshness {
    /// Computes freshness for a response with `status` and `fields`, requested at
    /// `request_time` and received at `response_time`.
    pub(crate) fn compute(
        status: u16,
        fields: &Fields,
        request_time: u64,
        response_time: u64,
        policy: &Policy,
    ) -> Self {
        let cc = CacheControl::from_fields(fields);
        // RFC 9110 §6.6.1: a message without Date is dated when it was received.
        let date_value = fields.get("date").and_then(http_secs).unwrap_or(response_time);
        // §4.2.3. An invalid Age is ignored.
        let age_value =
            fields.get("age").and_then(|v| delta_seconds(Some(trim_ows(v)))).unwrap_or(0);
        let apparent_age = response_time.saturating_sub(date_value);
        let response_delay = response_time.saturating_sub(request_time);
        let corrected_age_value = age_value.saturating_add(response_delay);
        let corrected_initial_age = apparent_age.max(corrected_age_value);

        // §4.2.1, in order: s-maxage (shared caches), max-age, Expires − Date, heuristics.
        let lifetime = if let Some(s) = cc.s_maxage {
            s
        } else if let Some(m) = cc.max_age {
            m
        } else if let Some(expires) = fields.get("expires") {
            // §5.3: an invalid date (e.g. "0") means already expired.
            http_secs(expires).map_or(0, |e| e.saturating_sub(date_value))
        } else if heuristically_cacheable(status) || cc.public {
            heuristic_lifetime(fields, date_value, policy)
        } else {
            0
        };
        Freshness {
            response_time,
            corrected_initial_age,
            lifetime,
            stale_while_revalidate: cc.stale_while_revalidate.unwrap_or(0),
            stale_if_error: cc.stale_if_error.unwrap_or(0),
            no_stale: cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some(),
            always_revalidate: cc.no_cache,
        }
    }

    /// `current_age` at `now` (§4.2.3): corrected initial age plus resident time.
    pub(crate) fn current_age(&self, now: u64) -> u64 {
        self.corrected_initial_age.saturating_add(now.saturating_sub(self.response_time))
    }

    /// Remaining lifetime at `now`, negative once stale (RFC 9211 §2.5 `ttl`).
    pub(crate) fn ttl(&self, now: u64) -> i64 {
        let age = i64::try_from(self.current_age(now)).unwrap_or(i64::MAX);
        i64::try_from(self.lifetime).unwrap_or(i64::MAX).saturating_sub(age)
    }

    /// How the stored response may be used at `now`.
    pub(crate) fn evaluate(&self, now: u64) -> Use {
        let age = self.current_age(now);
        if self.always_revalidate {
            return Use::Revalidate { age };
        }
        if age < self.lifetime {
            return Use::Fresh { age, ttl: self.lifetime - age };
        }
        // §4.2.4: no stale use where a directive forbids it.
        if !self.no_stale && age < self.lifetime.saturating_add(self.stale_while_revalidate) {
            return Use::StaleWhileRevalidate { age };
        }
        Use::Revalidate { age }
    }

    /// Whether the stored response may answer for an origin that failed at `now`
    /// (RFC 5861 §4, bounded by §4.2.4's prohibitions).
    pub(crate) fn on_origin_error(&self, now: u64) -> OnError {
        let age = self.current_age(now);
        if self.always_revalidate || self.no_stale {
            return OnError::Fail;
        }
        if age < self.lifetime.saturating_add(self.stale_if_error) {
            OnError::ServeStale { age }
        } else {
            OnError::Fail
        }
    }
}

/// §4.2.2: the Last-Modified fraction when enabled and applicable, else the configured default.
fn heuristic_lifetime(fields: &Fields, date_value: u64, policy: &Policy) -> u64 {
    if policy.heuristic_percent > 0 {
        if let Some(lm) = fields.get("last-modified").and_then(http_secs) {
            if lm < date_value {
                return (date_value - lm) / 100 * u64::from(policy.heuristic_percent);
            }
        }
    }
    policy.default_ttl.unwrap_or(0)
}

/// An HTTP-date as seconds since the epoch (dates before 1970 become 0).
pub(crate) fn http_secs(value: &[u8]) -> Option<u64> {
    let t = parse_date(value)?;
    Some(t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT.
    const T0: u64 = 784_111_777;
    const D0: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const D0_PLUS_100: &str = "Sun, 06 Nov 1994 08:51:17 GMT";
    const D0_MINUS_1000: &str = "Sun, 06 Nov 1994 08:32:57 GMT";

    /// Header field lines of a table case.
    type Lines = &'static [(&'static str, &'static str)];

    fn f(lines: &[(&str, &str)]) -> Fields {
        Fields::from_lines(lines)
    }

    #[test]
    fn lifetime_table() {
        // §4.2.1 precedence; §4.2.2 heuristics.
        let off = Policy::default();
        let ttl = Policy { default_ttl: Some(60), heuristic_percent: 0 };
        let lm10 = Policy { default_ttl: Some(60), heuristic_percent: 10 };
        let cases: &[(u16, Lines, Policy, u64)] = &[
            (200, &[("Cache-Control", "s-maxage=5, max-age=50"), ("Expires", D0_PLUS_100)], off, 5),
            (200, &[("Cache-Control", "max-age=50"), ("Expires", D0_PLUS_100)], off, 50),
            (200, &[("Date", D0), ("Expires", D0_PLUS_100)], off, 100),
            // Expires in the past or invalid: stale at once (§5.3).
            (200, &[("Date", D0_PLUS_100), ("Expires", D0)], off, 0),
            (200, &[("Date", D0), ("Expires", "0")], ttl, 0),
            // No explicit freshness: heuristics only where allowed.
            (200, &[("Date", D0)], off, 0),
            (200, &[("Date", D0)], ttl, 60),
            (404, &[("Date", D0)], ttl, 60),
            (302, &[("Date", D0)], ttl, 0),
            (302, &[("Date", D0), ("Cache-Control", "public")], ttl, 60),
            (500, &[("Date", D0)], ttl, 0),
            (200, &[("Date", D0), ("Last-Modified", D0_MINUS_1000)], lm10, 100),
            (200, &[("Date", D0), ("Last-Modified", D0_PLUS_100)], lm10, 60),
            (200, &[("Date", D0), ("Last-Modified", D0_MINUS_1000)], ttl, 60),
        ];
        for (status, lines, policy, want) in cases {
            let got = Freshness::compute(*status, &f(lines), T0, T0, policy).lifetime;
            assert_eq!(got, *want, "{status} {lines:?}");
        }
    }

    #[test]
    fn age_calculation_follows_section_4_2_3() {
        // (Date, Age, request_time, response_time, corrected_initial_age)
        let cases: &[(&str, Option<&str>, u64, u64, u64)] = &[
            // Fresh from the origin, no delay.
            (D0, None, T0, T0, 0),
            // apparent_age: received 100 s after its Date.
            (D0, None, T0 + 100, T0 + 100, 100),
            // Date ahead of our clock: apparent_age is 0, not negative.
            (D0_PLUS_100, None, T0, T0, 0),
            // corrected_age_value = Age + response_delay beats apparent_age.
            (D0, Some("30"), T0, T0 + 5, 35),
            // apparent_age beats a smaller corrected_age_value.
            (D0, Some("3"), T0 + 50, T0 + 52, 52),
            // An invalid Age is ignored.
            (D0, Some("-4"), T0, T0, 0),
        ];
        for (date, age, req, resp, want) in cases {
            let mut lines = vec![("Date", *date), ("Cache-Control", "max-age=100")];
            if let Some(a) = age {
                lines.push(("Age", a));
            }
            let fr = Freshness::compute(200, &f(&lines), *req, *resp, &Policy::default());
            assert_eq!(fr.corrected_initial_age, *want, "{date} {age:?}");
            // resident time adds on.
            assert_eq!(fr.current_age(resp + 7), want + 7);
        }
    }

    #[test]
    fn use_decision_table() {
        let base = Freshness { response_time: 1000, lifetime: 60, ..Freshness::default() };
        let swr = Freshness { stale_while_revalidate: 30, ..base };
        let cases: &[(Freshness, u64, Use)] = &[
            (base, 1000, Use::Fresh { age: 0, ttl: 60 }),
            (base, 1059, Use::Fresh { age: 59, ttl: 1 }),
            // §4.2: fresh while lifetime > current_age.
            (base, 1060, Use::Revalidate { age: 60 }),
            (Freshness { corrected_initial_age: 10, ..base }, 1050, Use::Revalidate { age: 60 }),
            // RFC 5861 §3.
            (swr, 1060, Use::StaleWhileRevalidate { age: 60 }),
            (swr, 1089, Use::StaleWhileRevalidate { age: 89 }),
            (swr, 1090, Use::Revalidate { age: 90 }),
            // §4.2.4: must-revalidate / proxy-revalidate / s-maxage forbid stale use.
            (Freshness { no_stale: true, ..swr }, 1060, Use::Revalidate { age: 60 }),
            (Freshness { no_stale: true, ..swr }, 1010, Use::Fresh { age: 10, ttl: 50 }),
            // §5.2.2.4: no-cache revalidates even when fresh.
            (Freshness { always_revalidate: true, ..swr }, 1000, Use::Revalidate { age: 0 }),
        ];
        for (fr, now, want) in cases {
            assert_eq!(fr.evaluate(*now), *want, "{fr:?} at {now}");
        }
    }

    #[test]
    fn stale_if_error_table() {
        let base = Freshness {
            response_time: 1000,
            lifetime: 60,
            stale_if_error: 100,
            ..Freshness::default()
        };
        let cases: &[(Freshness, u64, OnError)] = &[
            (base, 1100, OnError::ServeStale { age: 100 }),
            (base, 1159, OnError::ServeStale { age: 159 }),
            (base, 1160, OnError::Fail),
            (Freshness { stale_if_error: 0, ..base }, 1060, OnError::Fail),
            (Freshness { no_stale: true, ..base }, 1100, OnError::Fail),
            (Freshness { always_revalidate: true, ..base }, 1010, OnError::Fail),
        ];
        for (fr, now, want) in cases {
            assert_eq!(fr.on_origin_error(*now), *want, "{fr:?} at {now}");
        }
    }

    #[test]
    fn directives_reach_the_decision() {
        let parsed = |cc: &str| {
            Freshness::compute(
                200,
                &f(&[("Date", D0), ("Cache-Control", cc)]),
                T0,
                T0,
                &Policy::default(),
            )
        };
        let a = parsed("max-age=10, stale-while-revalidate=5, stale-if-error=7");
        assert_eq!((a.stale_while_revalidate, a.stale_if_error, a.no_stale), (5, 7, false));
        assert!(parsed("s-maxage=10").no_stale);
        assert!(parsed("max-age=10, must-revalidate").no_stale);
        assert!(parsed("max-age=10, proxy-revalidate").no_stale);
        assert!(parsed("max-age=10, no-cache").always_revalidate);
        // ttl goes negative once stale (RFC 9211 §2.5).
        assert_eq!(a.ttl(T0 + 15), -5);
        assert_eq!(a.ttl(T0), 10);
    }
}
