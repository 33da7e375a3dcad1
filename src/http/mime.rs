//! Media types by file extension, for the `Content-Type` field (RFC 9110 §8.3).
//!
//! A built-in table covers the web and streaming media with IANA-registered types where one
//! exists (HLS `application/vnd.apple.mpegurl`, MPEG-TS `video/mp2t`, CMAF/fMP4 segments
//! `video/iso.segment`, DASH `application/dash+xml`, Matroska `video/matroska` per RFC 9559,
//! JavaScript `text/javascript` per RFC 9239, ...). `--mime EXT=TYPE` overrides or extends it.
//!
//! Text types get `; charset=utf-8` (§8.3.2): every `text/*`, JSON, XML and `+xml`/`+json`
//! types, JavaScript, SVG and HLS playlists. A type given on the command line that already
//! carries parameters is used exactly as given.
//!
//! Lookup is by the last extension of the final path segment, ASCII case-insensitive, and does
//! not allocate: the full field values are built once in [`MimeTable::new`]. A name with no
//! extension, a dotfile (`.profile`) or an unknown extension maps to [`DEFAULT_TYPE`].
#![forbid(unsafe_code)]

use rustc_hash::FxHashMap;

/// The type of anything not in the table (RFC 9110 §8.3: a sender that does not know the type
/// may send `application/octet-stream`, which invites no sniffing of meaning).
pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// Longest extension looked up, in bytes; longer ones map to [`DEFAULT_TYPE`].
pub const MAX_EXTENSION_BYTES: usize = 32;

/// The built-in table: lowercase extension, media type without parameters.
const BUILT_IN: &[(&str, &str)] = &[
    // Streaming: HLS (RFC 8216), DASH (ISO/IEC 23009-1), CMAF (ISO/IEC 23000-19).
    ("m3u8", "application/vnd.apple.mpegurl"),
    ("m3u", "audio/mpegurl"),
    ("mpd", "application/dash+xml"),
    ("ts", "video/mp2t"),
    ("m2ts", "video/mp2t"),
    ("mts", "video/mp2t"),
    ("m4s", "video/iso.segment"),
    ("cmfv", "video/mp4"),
    ("cmfa", "audio/mp4"),
    ("cmft", "application/mp4"),
    ("cmfm", "application/mp4"),
    ("key", DEFAULT_TYPE),
    // Video.
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("mov", "video/quicktime"),
    ("webm", "video/webm"),
    ("mkv", "video/matroska"),
    ("mk3d", "video/matroska-3d"),
    ("ogv", "video/ogg"),
    ("mpg", "video/mpeg"),
    ("mpeg", "video/mpeg"),
    ("avi", "video/x-msvideo"),
    ("3gp", "video/3gpp"),
    ("3g2", "video/3gpp2"),
    ("flv", "video/x-flv"),
    // Audio.
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("m4b", "audio/mp4"),
    ("aac", "audio/aac"),
    ("adts", "audio/aac"),
    ("flac", "audio/flac"),
    ("ogg", "audio/ogg"),
    ("oga", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("mka", "audio/matroska"),
    ("weba", "audio/webm"),
    ("wav", "audio/wav"),
    ("aif", "audio/aiff"),
    ("aiff", "audio/aiff"),
    ("mid", "audio/midi"),
    ("midi", "audio/midi"),
    // Subtitles and captions.
    ("vtt", "text/vtt"),
    ("srt", "application/x-subrip"),
    ("ttml", "application/ttml+xml"),
    ("dfxp", "application/ttml+xml"),
    // Web documents and code.
    ("html", "text/html"),
    ("htm", "text/html"),
    ("xhtml", "application/xhtml+xml"),
    ("css", "text/css"),
    ("js", "text/javascript"),
    ("mjs", "text/javascript"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("jsonld", "application/ld+json"),
    ("webmanifest", "application/manifest+json"),
    ("xml", "application/xml"),
    ("xsl", "application/xslt+xml"),
    ("rss", "application/rss+xml"),
    ("atom", "application/atom+xml"),
    ("txt", "text/plain"),
    ("text", "text/plain"),
    ("md", "text/markdown"),
    ("csv", "text/csv"),
    ("tsv", "text/tab-separated-values"),
    ("ics", "text/calendar"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("wasm", "application/wasm"),
    // Images.
    ("png", "image/png"),
    ("apng", "image/apng"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("jxl", "image/jxl"),
    ("heic", "image/heic"),
    ("heif", "image/heif"),
    ("svg", "image/svg+xml"),
    ("ico", "image/vnd.microsoft.icon"),
    ("bmp", "image/bmp"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    // Fonts (RFC 8081).
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("eot", "application/vnd.ms-fontobject"),
    // Archives and documents.
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tgz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("zst", "application/zstd"),
    ("xz", "application/x-xz"),
    ("bz2", "application/x-bzip2"),
    ("7z", "application/x-7z-compressed"),
    ("bin", DEFAULT_TYPE),
    ("iso", "application/x-iso9660-image"),
];

/// True for media types that are text and so get `; charset=utf-8` (§8.3.2).
pub fn is_text(media_type: &str) -> bool {
    let t = media_type.to_ascii_lowercase();
    t.starts_with("text/")
        || t.ends_with("+xml")
        || t.ends_with("+json")
        || matches!(
            t.as_str(),
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/vnd.apple.mpegurl"
                | "audio/mpegurl"
                | "audio/x-mpegurl"
                | "application/x-subrip"
                | "application/yaml"
        )
}

/// The full `Content-Type` value for a media type: with `; charset=utf-8` on text types, or as
/// given when it already carries parameters.
fn field_value(media_type: &str) -> String {
    if !media_type.contains(';') && is_text(media_type) {
        format!("{media_type}; charset=utf-8")
    } else {
        media_type.to_string()
    }
}

/// Extension → `Content-Type` field value, built once per worker. Hashed with FxHash: the keys
/// come from the configuration; a request only looks one up.
#[derive(Debug, Clone)]
pub struct MimeTable {
    by_extension: FxHashMap<Box<str>, Box<str>>,
}

impl MimeTable {
    /// The built-in table with `overrides` (lowercase extension, media type — as returned by
    /// [`parse_override`]) applied on top, later ones winning.
    pub fn new(overrides: &[(String, String)]) -> Self {
        let mut by_extension: FxHashMap<Box<str>, Box<str>> =
            BUILT_IN.iter().map(|&(ext, t)| (ext.into(), field_value(t).into())).collect();
        for (ext, t) in overrides {
            by_extension.insert(ext.to_ascii_lowercase().into(), field_value(t.trim()).into());
        }
        MimeTable { by_extension }
    }

    /// The full `Content-Type` value for a path, by its last extension (case-insensitive),
    /// [`DEFAULT_TYPE`] when unknown.
    pub fn lookup(&self, path: &str) -> &str {
        let mut buf = [0u8; MAX_EXTENSION_BYTES];
        self.by_extension_of(extension_lowercase(path, &mut buf))
    }

    /// The same by an extension [`extension_lowercase`] gave.
    pub fn by_extension_of(&self, ext: Option<&str>) -> &str {
        ext.and_then(|ext| self.by_extension.get(ext)).map_or(DEFAULT_TYPE, |t| t)
    }
}

impl Default for MimeTable {
    fn default() -> Self {
        MimeTable::new(&[])
    }
}

/// The last extension of the final segment of `path`, lowercased into `buf`; `None` for no
/// extension, a dotfile name, an empty extension or one longer than `buf`.
///
/// Shared with the cache and encoding rules so every module agrees on what "extension" means.
pub fn extension_lowercase<'b>(path: &str, buf: &'b mut [u8]) -> Option<&'b str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let dot = name.rfind('.')?;
    // A leading dot marks a hidden file, not an extension (as `Path::extension` has it).
    if dot == 0 {
        return None;
    }
    let ext = &name.as_bytes()[dot + 1..];
    if ext.is_empty() || ext.len() > buf.len() {
        return None;
    }
    let out = &mut buf[..ext.len()];
    out.copy_from_slice(ext);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// [`extension_lowercase`] of `path`, owned (kept with a cached file, so the lookups by
/// extension need not find it again for every response).
pub fn extension_of(path: &str) -> Option<Box<str>> {
    let mut buf = [0u8; MAX_EXTENSION_BYTES];
    extension_lowercase(path, &mut buf).map(Box::from)
}

/// Checks an extension given on the command line and returns it lowercased, without a leading
/// dot.
pub(crate) fn parse_extension(ext: &str) -> Result<String, String> {
    let ext = ext.trim();
    let ext = ext.strip_prefix('.').unwrap_or(ext);
    if ext.is_empty() {
        return Err("empty extension".to_string());
    }
    if ext.len() > MAX_EXTENSION_BYTES {
        return Err(format!("extension {ext:?} is longer than {MAX_EXTENSION_BYTES} bytes"));
    }
    if !ext.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'~')) {
        return Err(format!("extension {ext:?} may hold only letters, digits and - _ + ~"));
    }
    Ok(ext.to_ascii_lowercase())
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses `EXT=TYPE` from `--mime` (usable as a clap `value_parser`): `TYPE` must be a
/// `type/subtype` of tokens (§8.3.1), optionally followed by `;` parameters of visible
/// characters. Returns the lowercase extension (leading dot removed) and the type.
pub fn parse_override(arg: &str) -> Result<(String, String), String> {
    let (ext, media_type) =
        arg.split_once('=').ok_or_else(|| format!("expected EXT=TYPE, got {arg:?}"))?;
    let ext = parse_extension(ext)?;
    let media_type = media_type.trim();
    let (essence, params) = media_type.split_once(';').unwrap_or((media_type, ""));
    let valid_essence = essence.trim_end().split_once('/').is_some_and(|(t, s)| {
        !t.is_empty() && !s.is_empty() && t.bytes().all(is_tchar) && s.bytes().all(is_tchar)
    });
    if !valid_essence {
        return Err(format!("media type {media_type:?} is not of the form type/subtype"));
    }
    // Parameters end up in a header field: forbid control characters (CR, LF, NUL, ...).
    if !params.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic()) {
        return Err(format!("media type {media_type:?} contains control or non-ASCII characters"));
    }
    Ok((ext, media_type.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let t = MimeTable::default();
        let cases: &[(&str, &str)] = &[
            ("/live/index.m3u8", "application/vnd.apple.mpegurl; charset=utf-8"),
            ("seg00001.ts", "video/mp2t"),
            ("chunk-1.m4s", "video/iso.segment"),
            ("movie.mp4", "video/mp4"),
            ("movie.M4V", "video/mp4"),
            ("song.m4a", "audio/mp4"),
            ("manifest.mpd", "application/dash+xml; charset=utf-8"),
            ("clip.webm", "video/webm"),
            ("film.mkv", "video/matroska"),
            ("track.mp3", "audio/mpeg"),
            ("track.aac", "audio/aac"),
            ("subs.vtt", "text/vtt; charset=utf-8"),
            ("v.cmfv", "video/mp4"),
            ("a.cmfa", "audio/mp4"),
            ("t.cmft", "application/mp4"),
            ("index.html", "text/html; charset=utf-8"),
            ("INDEX.HTML", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("logo.svg", "image/svg+xml; charset=utf-8"),
            ("photo.jpeg", "image/jpeg"),
            ("font.woff2", "font/woff2"),
            ("archive.tar.gz", "application/gzip"),
            // no extension, dotfiles, empty extension, directories with dots
            ("README", DEFAULT_TYPE),
            (".profile", DEFAULT_TYPE),
            ("/a/.hidden", DEFAULT_TYPE),
            ("file.", DEFAULT_TYPE),
            ("/dir.mp4/file", DEFAULT_TYPE),
            ("", DEFAULT_TYPE),
            ("x.unknownextension", DEFAULT_TYPE),
            ("x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", DEFAULT_TYPE),
            ("x.é", DEFAULT_TYPE),
            (".x.mp4", "video/mp4"),
        ];
        for (path, want) in cases {
            assert_eq!(t.lookup(path), *want, "{path}");
        }
    }

    #[test]
    fn overrides() {
        let o = [
            parse_override("ts=video/MP2T").unwrap(),
            parse_override(".foo=text/x-foo").unwrap(),
            parse_override("BAR=application/x-bar; charset=latin1").unwrap(),
        ];
        let t = MimeTable::new(&o);
        assert_eq!(t.lookup("a.ts"), "video/MP2T");
        assert_eq!(t.lookup("a.FOO"), "text/x-foo; charset=utf-8");
        assert_eq!(t.lookup("a.bar"), "application/x-bar; charset=latin1");
        assert_eq!(t.lookup("a.mp4"), "video/mp4");
    }

    #[test]
    fn override_parsing() {
        let ok: &[(&str, (&str, &str))] = &[
            ("ts=video/mp2t", ("ts", "video/mp2t")),
            (".M3U8=application/x-mpegURL", ("m3u8", "application/x-mpegURL")),
            ("x= text/plain ", ("x", "text/plain")),
            ("x=text/plain; charset=us-ascii", ("x", "text/plain; charset=us-ascii")),
        ];
        for (arg, (e, t)) in ok {
            assert_eq!(parse_override(arg), Ok((e.to_string(), t.to_string())), "{arg}");
        }
        let bad = [
            "ts",
            "=video/mp2t",
            "ts=",
            "ts=video",
            "ts=/mp2t",
            "ts=video/",
            "ts=vi deo/mp2t",
            "ts=video/mp2t; a=\r\nX-Injected: 1",
            "a/b=text/plain",
            "a.b=text/plain",
            ".=text/plain",
        ];
        for arg in bad {
            assert!(parse_override(arg).is_err(), "{arg:?} accepted");
        }
    }

    #[test]
    fn every_built_in_extension_is_lowercase_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (ext, t) in BUILT_IN {
            assert_eq!(*ext, ext.to_ascii_lowercase());
            assert!(seen.insert(*ext), "duplicate {ext}");
            assert!(parse_override(&format!("{ext}={t}")).is_ok(), "{ext}={t}");
        }
    }
}
