//! `Cache-Control` response values by file extension (RFC 9111 §5.2.2).
//!
//! The defaults are tuned for streaming:
//! - live playlists and manifests (`.m3u8`, `.mpd`) change every segment duration, so they are
//!   fresh for one second only — long enough to absorb a burst of viewers behind a CDN, short
//!   enough that players see new segments at once (RFC 8216 §6.2.2 asks servers to let clients
//!   reload at least every target duration);
//! - media segments (`.ts`, `.m4s`, `.cmfv`, `.cmfa`, `.cmft`) are written once under a new name
//!   and never change, so they are fresh for a year and `immutable` (RFC 8246), which also stops
//!   browsers revalidating them on reload;
//! - whole media files (`.mp4`, `.webm`, ...) and static web assets get an hour, after which
//!   clients revalidate cheaply with `If-None-Match` / `If-Modified-Since`;
//! - HTML gets `no-cache` (always revalidate), so a new page version is seen immediately;
//! - anything else gets no `Cache-Control`, leaving freshness to the validators.
//!
//! `--cache-control EXT=VALUE` replaces or adds a rule; an empty VALUE removes the rule for
//! that extension; `*` as EXT sets the value for every extension without a rule.
#![forbid(unsafe_code)]

use rustc_hash::FxHashMap;

use crate::http::mime::{extension_lowercase, parse_extension, MAX_EXTENSION_BYTES};

/// Live playlists and manifests: fresh for one second.
pub const PLAYLIST: &str = "public, max-age=1";
/// Media segments: written once, never changed.
pub const SEGMENT: &str = "public, max-age=31536000, immutable";
/// Whole media files and static assets: an hour, then revalidate.
pub const STATIC: &str = "public, max-age=3600";
/// Documents: always revalidate.
pub const DOCUMENT: &str = "no-cache";

const BUILT_IN: &[(&str, &str)] = &[
    ("m3u8", PLAYLIST),
    ("m3u", PLAYLIST),
    ("mpd", PLAYLIST),
    ("ts", SEGMENT),
    ("m4s", SEGMENT),
    ("cmfv", SEGMENT),
    ("cmfa", SEGMENT),
    ("cmft", SEGMENT),
    ("mp4", STATIC),
    ("m4v", STATIC),
    ("m4a", STATIC),
    ("mov", STATIC),
    ("webm", STATIC),
    ("mkv", STATIC),
    ("mp3", STATIC),
    ("aac", STATIC),
    ("flac", STATIC),
    ("ogg", STATIC),
    ("opus", STATIC),
    ("vtt", STATIC),
    ("css", STATIC),
    ("js", STATIC),
    ("mjs", STATIC),
    ("png", STATIC),
    ("jpg", STATIC),
    ("jpeg", STATIC),
    ("gif", STATIC),
    ("webp", STATIC),
    ("avif", STATIC),
    ("svg", STATIC),
    ("ico", STATIC),
    ("woff", STATIC),
    ("woff2", STATIC),
    ("html", DOCUMENT),
    ("htm", DOCUMENT),
];

/// Extension → `Cache-Control` value, built once per worker (FxHash, as the media types).
#[derive(Debug, Clone)]
pub struct CacheRules {
    /// `None` values are rules removed by an override.
    by_extension: FxHashMap<Box<str>, Option<Box<str>>>,
    /// The value for extensions without a rule (`*=VALUE`).
    fallback: Option<Box<str>>,
}

impl CacheRules {
    /// The built-in rules with `overrides` (as returned by [`parse_override`]) applied on top,
    /// later ones winning.
    pub fn new(overrides: &[(String, String)]) -> Self {
        let mut by_extension: FxHashMap<Box<str>, Option<Box<str>>> =
            BUILT_IN.iter().map(|&(e, v)| (e.into(), Some(v.into()))).collect();
        let mut fallback = None;
        for (ext, value) in overrides {
            let value = (!value.is_empty()).then(|| Box::<str>::from(value.as_str()));
            if ext == "*" {
                fallback = value;
            } else {
                by_extension.insert(ext.to_ascii_lowercase().into(), value);
            }
        }
        CacheRules { by_extension, fallback }
    }

    /// The `Cache-Control` value for a path, by its last extension (case-insensitive), or
    /// `None` when no rule applies.
    pub fn lookup(&self, path: &str) -> Option<&str> {
        let mut buf = [0u8; MAX_EXTENSION_BYTES];
        self.by_extension_of(extension_lowercase(path, &mut buf))
    }

    /// The same by an extension [`extension_lowercase`] gave.
    pub fn by_extension_of(&self, ext: Option<&str>) -> Option<&str> {
        match ext.and_then(|e| self.by_extension.get(e)) {
            Some(rule) => rule.as_deref(),
            None => self.fallback.as_deref(),
        }
    }
}

impl Default for CacheRules {
    fn default() -> Self {
        CacheRules::new(&[])
    }
}

/// Parses `EXT=VALUE` from `--cache-control` (usable as a clap `value_parser`). `EXT` may be
/// `*` (every extension without a rule); an empty `VALUE` removes the rule. `VALUE` must be
/// visible ASCII and spaces, since it is written into the response head verbatim.
pub fn parse_override(arg: &str) -> Result<(String, String), String> {
    let (ext, value) =
        arg.split_once('=').ok_or_else(|| format!("expected EXT=VALUE, got {arg:?}"))?;
    let ext = if ext.trim() == "*" { "*".to_string() } else { parse_extension(ext)? };
    let value = value.trim();
    if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(format!(
            "Cache-Control value {value:?} contains control or non-ASCII characters"
        ));
    }
    Ok((ext, value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let r = CacheRules::default();
        let cases: &[(&str, Option<&str>)] = &[
            ("/live/index.m3u8", Some(PLAYLIST)),
            ("/live/INDEX.M3U8", Some(PLAYLIST)),
            ("/dash/manifest.mpd", Some(PLAYLIST)),
            ("/live/seg42.ts", Some(SEGMENT)),
            ("/dash/chunk-3.m4s", Some(SEGMENT)),
            ("/cmaf/v.cmfv", Some(SEGMENT)),
            ("/vod/movie.mp4", Some(STATIC)),
            ("/index.html", Some(DOCUMENT)),
            ("/README", None),
            ("/data.bin", None),
            ("/.m3u8", None),
        ];
        for (path, want) in cases {
            assert_eq!(r.lookup(path), *want, "{path}");
        }
        assert!(SEGMENT.contains("immutable"));
    }

    #[test]
    fn overrides() {
        let o = [
            parse_override("m3u8=no-cache").unwrap(),
            parse_override(".TS=").unwrap(),
            parse_override("bin=private, max-age=60").unwrap(),
            parse_override("*=public, max-age=5").unwrap(),
        ];
        let r = CacheRules::new(&o);
        assert_eq!(r.lookup("a.m3u8"), Some("no-cache"));
        assert_eq!(r.lookup("a.ts"), None);
        assert_eq!(r.lookup("a.BIN"), Some("private, max-age=60"));
        assert_eq!(r.lookup("a.unknown"), Some("public, max-age=5"));
        assert_eq!(r.lookup("README"), Some("public, max-age=5"));
        assert_eq!(r.lookup("a.m4s"), Some(SEGMENT));
    }

    #[test]
    fn override_parsing() {
        assert_eq!(
            parse_override(" ts = max-age=10 "),
            Ok(("ts".to_string(), "max-age=10".to_string()))
        );
        for bad in ["ts", "=x", "a/b=x", "ts=max-age=1\r\nX: y", "ts=\u{0}"] {
            assert!(parse_override(bad).is_err(), "{bad:?} accepted");
        }
    }
}
