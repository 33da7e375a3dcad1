//! Master and media playlist parsing (RFC 8216 §4).
//!
//! Only what a player needs to fetch segments is read: variant streams
//! (`#EXT-X-STREAM-INF` + URI line, §4.3.4.2) with their `BANDWIDTH`, and
//! media segments (`#EXTINF:<duration>,` + URI line, §4.3.2.1), plus
//! `#EXT-X-TARGETDURATION`, `#EXT-X-MEDIA-SEQUENCE` and `#EXT-X-ENDLIST`.
//! Other tags and comments are skipped. URIs are returned as written; the
//! caller resolves them against the playlist's URL.

#![forbid(unsafe_code)]

/// Why a playlist was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    /// The first line is not `#EXTM3U` (§4.3.1.1).
    #[error("not an M3U8 playlist (missing #EXTM3U)")]
    NotM3u8,
    /// A tag value could not be parsed.
    #[error("line {0}: malformed tag")]
    Tag(usize),
    /// A tag that must be followed by a URI line was not.
    #[error("line {0}: tag without a URI line")]
    MissingUri(usize),
    /// Neither variants nor segments.
    #[error("playlist has no variants and no segments")]
    Empty,
}

/// A variant stream of a master playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Media playlist URI.
    pub uri: String,
    /// Peak bits per second (`BANDWIDTH`), 0 if absent.
    pub bandwidth: u64,
}

/// A media segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Segment URI.
    pub uri: String,
    /// Playback duration from `#EXTINF`, ns.
    pub duration_ns: u64,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaPlaylist {
    /// `#EXT-X-TARGETDURATION`, ns (0 if absent).
    pub target_duration_ns: u64,
    /// `#EXT-X-MEDIA-SEQUENCE` (0 if absent).
    pub media_sequence: u64,
    /// Segments in order.
    pub segments: Vec<Segment>,
    /// `#EXT-X-ENDLIST` seen: the playlist will not change (VOD).
    pub ended: bool,
}

/// Either kind of playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playlist {
    /// Variant streams to choose from.
    Master(Vec<Variant>),
    /// Segments to play.
    Media(MediaPlaylist),
}

/// Seconds with a fractional part (`decimal-floating-point`, §4.2) to ns.
fn seconds_ns(s: &str) -> Option<u64> {
    let v: f64 = s.trim().parse().ok()?;
    // Bounded to [0, 1e18) ns, which fits u64, so the saturating `as` never truncates.
    #[allow(clippy::cast_possible_truncation)]
    (v.is_finite() && (0.0..1e9).contains(&v)).then(|| (v * 1e9).round() as u64)
}

/// `BANDWIDTH=<n>` from an attribute list (§4.2); quoted values may contain commas.
fn bandwidth(attrs: &str) -> Option<u64> {
    let mut in_quotes = false;
    let mut start = 0;
    let bytes = attrs.as_bytes();
    for i in 0..=bytes.len() {
        let at_end = i == bytes.len();
        if !at_end && bytes[i] == b'"' {
            in_quotes = !in_quotes;
        }
        if at_end || (!in_quotes && bytes[i] == b',') {
            if let Some(v) = attrs[start..i].trim().strip_prefix("BANDWIDTH=") {
                return v.parse().ok();
            }
            start = i + 1;
        }
    }
    None
}

/// Parses a playlist.
pub fn parse(text: &str) -> Result<Playlist, PlaylistError> {
    let mut lines =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, first)) if first.trim_start_matches('\u{feff}') == "#EXTM3U" => {}
        _ => return Err(PlaylistError::NotM3u8),
    }
    let mut variants = Vec::new();
    let mut media = MediaPlaylist::default();
    // A tag waiting for its URI line: (line number, Some(bandwidth) for a variant / duration for a segment).
    enum Pending {
        Variant(u64),
        Segment(u64),
    }
    let mut pending: Option<(usize, Pending)> = None;
    for (n, line) in lines {
        if let Some(tag) = line.strip_prefix('#') {
            if let Some(v) = tag.strip_prefix("EXTINF:") {
                let dur = v.split(',').next().unwrap_or("");
                let dur = seconds_ns(dur).ok_or(PlaylistError::Tag(n))?;
                if let Some((at, _)) = pending {
                    return Err(PlaylistError::MissingUri(at));
                }
                pending = Some((n, Pending::Segment(dur)));
            } else if let Some(attrs) = tag.strip_prefix("EXT-X-STREAM-INF:") {
                if let Some((at, _)) = pending {
                    return Err(PlaylistError::MissingUri(at));
                }
                pending = Some((n, Pending::Variant(bandwidth(attrs).unwrap_or(0))));
            } else if let Some(v) = tag.strip_prefix("EXT-X-TARGETDURATION:") {
                media.target_duration_ns = seconds_ns(v).ok_or(PlaylistError::Tag(n))?;
            } else if let Some(v) = tag.strip_prefix("EXT-X-MEDIA-SEQUENCE:") {
                media.media_sequence = v.trim().parse().map_err(|_| PlaylistError::Tag(n))?;
            } else if tag == "EXT-X-ENDLIST" {
                media.ended = true;
            }
            // Other tags (and plain comments) do not change what is fetched.
            continue;
        }
        match pending.take() {
            Some((_, Pending::Variant(bandwidth))) => {
                variants.push(Variant { uri: line.to_owned(), bandwidth })
            }
            Some((_, Pending::Segment(duration_ns))) => {
                media.segments.push(Segment { uri: line.to_owned(), duration_ns })
            }
            // §4.3.2: a URI line without #EXTINF is invalid; skip it rather than guess its duration.
            None => {}
        }
    }
    if let Some((at, _)) = pending {
        return Err(PlaylistError::MissingUri(at));
    }
    if !variants.is_empty() {
        Ok(Playlist::Master(variants))
    } else if !media.segments.is_empty() {
        Ok(Playlist::Media(media))
    } else {
        Err(PlaylistError::Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_playlist() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=640x360\n\
            low/index.m3u8\n\
            #EXT-X-STREAM-INF:CODECS=\"a,b\",BANDWIDTH=2560000\n\
            http://h/high/index.m3u8\n";
        assert_eq!(
            parse(text),
            Ok(Playlist::Master(vec![
                Variant { uri: "low/index.m3u8".into(), bandwidth: 1_280_000 },
                Variant { uri: "http://h/high/index.m3u8".into(), bandwidth: 2_560_000 },
            ]))
        );
    }

    #[test]
    fn media_playlist() {
        let text = "#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-MEDIA-SEQUENCE:7\r\n\
            #EXTINF:4.000,\r\nseg7.ts\r\n# a comment\r\n#EXTINF:3.5,title\r\nseg8.ts\r\n#EXT-X-ENDLIST\r\n";
        let Ok(Playlist::Media(m)) = parse(text) else { panic!("expected a media playlist") };
        assert_eq!(m.target_duration_ns, 4_000_000_000);
        assert_eq!(m.media_sequence, 7);
        assert!(m.ended);
        assert_eq!(
            m.segments,
            vec![
                Segment { uri: "seg7.ts".into(), duration_ns: 4_000_000_000 },
                Segment { uri: "seg8.ts".into(), duration_ns: 3_500_000_000 },
            ]
        );
    }

    #[test]
    fn malformed_playlists() {
        let cases: &[(&str, PlaylistError)] = &[
            ("", PlaylistError::NotM3u8),
            ("<html>", PlaylistError::NotM3u8),
            ("#EXTM3U\n", PlaylistError::Empty),
            ("#EXTM3U\n#EXTINF:abc,\na.ts\n", PlaylistError::Tag(2)),
            ("#EXTM3U\n#EXTINF:-1,\na.ts\n", PlaylistError::Tag(2)),
            ("#EXTM3U\n#EXTINF:4,\n", PlaylistError::MissingUri(2)),
            ("#EXTM3U\n#EXTINF:4,\n#EXTINF:4,\na.ts\n", PlaylistError::MissingUri(2)),
            ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", PlaylistError::MissingUri(2)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Err(want), "{text:?}");
        }
    }
}
