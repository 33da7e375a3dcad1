//! HTTP dates (RFC 9110 §5.6.7): a per-worker cached `Date` value and `Last-Modified` formatting.
//!
//! Formatting a date costs more than the rest of a small response head; the cache rebuilds the
//! 29-byte IMF-fixdate only when the wall-clock second changes. Each worker owns one.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as an IMF-fixdate, refreshed at most once a second.
#[derive(Debug)]
pub struct DateCache {
    second: u64,
    value: String,
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

impl DateCache {
    /// A cache holding the current time.
    pub fn new() -> Self {
        let now = SystemTime::now();
        Self { second: unix_seconds(now), value: httpdate::fmt_http_date(now) }
    }

    /// The `Date` value for now.
    pub fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let second = unix_seconds(now);
        if second != self.second {
            self.second = second;
            self.value = httpdate::fmt_http_date(now);
        }
        &self.value
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Formats `t` as an IMF-fixdate, truncated to whole seconds (`Last-Modified`).
pub fn format(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Truncates `t` to whole seconds: the resolution of HTTP dates, so comparisons of
/// `If-Modified-Since` against `Last-Modified` agree with what was sent.
pub fn truncate_to_second(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_imf_fixdate() {
        // RFC 9110 §5.6.7 example.
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(format(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(truncate_to_second(t + Duration::from_millis(999)), t);
    }

    #[test]
    fn cache_is_a_valid_date() {
        let mut cache = DateCache::new();
        let value = cache.now().to_owned();
        assert_eq!(value.len(), 29);
        assert!(httpdate::parse_http_date(&value).is_ok());
    }
}
