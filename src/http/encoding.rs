//! Content codings: `Accept-Encoding` (RFC 9110 §12.5.3) and precompressed variants.
//!
//! ringcast never compresses on the fly. For text such as playlists, manifests, HTML, scripts
//! and subtitles it serves a precompressed sibling `FILE.br` or `FILE.gz` when one exists and
//! the client accepts that coding; the caller then sends `Content-Encoding` (in each part of a
//! `multipart/byteranges` body instead, which as a whole is not encoded), `Vary:
//! Accept-Encoding`, an ETag of the variant actually sent (a different representation needs a
//! different entity-tag, §8.8.3) and applies ranges to that variant (§14.1: ranges address the
//! selected representation, here the compressed bytes). A variant older than the file (by
//! modification time, to the second) is stale and ignored: a live playlist rewritten without
//! its `.gz` is served as it is rather than as an old version compressed.
//!
//! Only `br` and `gzip` are considered; `identity` is always acceptable unless refused, and a
//! refusal of identity is ignored, because sending the file as it is remains the only other
//! answer (§12.5.3 allows a server to send a response without content coding then).
#![forbid(unsafe_code)]

use crate::http::mime::{extension_lowercase, MAX_EXTENSION_BYTES};

/// Which codings the client accepts (weight above zero), and which it prefers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Brotli (RFC 7932).
    pub br: bool,
    /// gzip (RFC 9110 §8.4.1.3), `x-gzip` included.
    pub gzip: bool,
    /// Both are accepted and gzip has the higher weight (§12.4.2: weights rank preferences),
    /// as in `br;q=0.5, gzip`. On equal weights Brotli, the smaller for text, goes first.
    pub gzip_preferred: bool,
}

/// A content coding ringcast can serve precompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// Brotli, file suffix `.br`.
    Br,
    /// gzip, file suffix `.gz`.
    Gzip,
}

impl Coding {
    /// The suffix of the precompressed file: `.br` or `.gz`.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Gzip => ".gz",
        }
    }

    /// The `Content-Encoding` token: `br` or `gzip`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }
}

/// Parses a qvalue (§12.4.2: `( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`) into
/// thousandths; `None` when malformed.
fn parse_qvalue(s: &[u8]) -> Option<u16> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// §5.6.3: OWS is spaces and horizontal tabs.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses an `Accept-Encoding` value (§12.5.3): codings are case-insensitive, `q=0` refuses a
/// coding, `*` stands for every coding not listed, an explicit entry beats `*`. A member with a
/// malformed weight is ignored. When a coding is listed twice the higher weight counts.
///
/// An empty value accepts no coding (§12.5.3: "the user agent does not want any content
/// coding"). The caller treats an absent field as accepting none too: §12.5.3 would allow any
/// coding, but an unannounced preference is safest answered with the file as it is.
pub fn parse_accept_encoding(value: &[u8]) -> Accepted {
    let (mut br, mut gzip, mut star): (Option<u16>, Option<u16>, Option<u16>) = (None, None, None);
    for member in value.split(|&b| b == b',') {
        let mut parts = member.split(|&b| b == b';');
        let coding = trim_ows(parts.next().unwrap_or_default());
        if coding.is_empty() {
            continue;
        }
        // §12.4.2 weight = OWS ";" OWS "q=" qvalue; other parameters are not defined for
        // Accept-Encoding and are skipped.
        let mut q = Some(1000);
        for param in parts {
            let param = trim_ows(param);
            if let Some(v) = param.strip_prefix(b"q=").or_else(|| param.strip_prefix(b"Q=")) {
                q = parse_qvalue(v);
            }
        }
        let Some(q) = q else { continue };
        let slot = if coding.eq_ignore_ascii_case(b"br") {
            &mut br
        } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            // §8.4.1.3: "A recipient SHOULD consider "x-gzip" to be equivalent to "gzip"."
            &mut gzip
        } else if coding == b"*" {
            &mut star
        } else {
            continue;
        };
        *slot = Some(slot.map_or(q, |old| old.max(q)));
    }
    let weight = |explicit: Option<u16>| explicit.or(star).unwrap_or(0);
    let (br, gzip) = (weight(br), weight(gzip));
    Accepted { br: br > 0, gzip: gzip > 0, gzip_preferred: br > 0 && gzip > br }
}

/// True for paths whose content is text worth serving precompressed: playlists, manifests,
/// HTML, scripts, style sheets, subtitles, JSON, SVG, plain text, XML and the like. Media
/// segments and images are already compressed and are not.
pub fn precompressible(path: &str) -> bool {
    let mut buf = [0u8; MAX_EXTENSION_BYTES];
    precompressible_extension(extension_lowercase(path, &mut buf))
}

/// The same by an extension [`extension_lowercase`] gave.
pub fn precompressible_extension(ext: Option<&str>) -> bool {
    ext.is_some_and(|ext| {
        matches!(
            ext,
            "m3u8"
                | "m3u"
                | "mpd"
                | "html"
                | "htm"
                | "xhtml"
                | "js"
                | "mjs"
                | "css"
                | "vtt"
                | "srt"
                | "ttml"
                | "dfxp"
                | "json"
                | "map"
                | "jsonld"
                | "webmanifest"
                | "svg"
                | "txt"
                | "text"
                | "md"
                | "csv"
                | "tsv"
                | "xml"
                | "xsl"
                | "rss"
                | "atom"
                | "ics"
                | "yaml"
                | "yml"
                | "wasm"
        )
    })
}

/// The acceptable codings, most preferred first: by weight, Brotli first on a tie.
pub fn preference(accepted: &Accepted) -> impl Iterator<Item = Coding> {
    let order = if accepted.gzip_preferred {
        [Coding::Gzip, Coding::Br]
    } else {
        [Coding::Br, Coding::Gzip]
    };
    let accepted = *accepted;
    order.into_iter().filter(move |c| match c {
        Coding::Br => accepted.br,
        Coding::Gzip => accepted.gzip,
    })
}

/// Picks the coding to serve: the most preferred of the accepted codings that is available
/// (see [`preference`]), else `None` (the file as it is).
pub fn choose(accepted: &Accepted, available_br: bool, available_gzip: bool) -> Option<Coding> {
    preference(accepted).find(|c| match c {
        Coding::Br => available_br,
        Coding::Gzip => available_gzip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acc(br: bool, gzip: bool) -> Accepted {
        Accepted { br, gzip, gzip_preferred: false }
    }

    /// Both accepted, gzip with the higher weight.
    const GZIP_FIRST: Accepted = Accepted { br: true, gzip: true, gzip_preferred: true };

    /// §12.5.3 Accept-Encoding cases: (value, accepted).
    #[test]
    fn accept_encoding() {
        let cases: &[(&str, Accepted)] = &[
            ("", acc(false, false)),
            ("identity", acc(false, false)),
            ("gzip", acc(false, true)),
            ("br", acc(true, false)),
            ("gzip, deflate, br", acc(true, true)),
            ("gzip, deflate, br, zstd", acc(true, true)),
            ("GZIP, BR", acc(true, true)),
            ("x-gzip", acc(false, true)),
            // q=0 refuses
            ("br;q=0, gzip", acc(false, true)),
            ("br; q=0.000, gzip;q=0.5", acc(false, true)),
            ("br;Q=0", acc(false, false)),
            ("br;q=0.001", acc(true, false)),
            ("br;q=1.000", acc(true, false)),
            ("br ; q=1", acc(true, false)),
            // "*" covers what is not listed; explicit entries win
            ("*", acc(true, true)),
            ("*;q=0", acc(false, false)),
            ("*, br;q=0", acc(false, true)),
            ("gzip;q=0, *", acc(true, false)),
            ("identity;q=0, *;q=0", acc(false, false)),
            // malformed weights drop the member
            ("br;q=2", acc(false, false)),
            ("br;q=1.5", acc(false, false)),
            ("br;q=0.0001", acc(false, false)),
            ("br;q=", acc(false, false)),
            ("br;q=abc, gzip", acc(false, true)),
            // repeated members: the higher weight counts
            ("br;q=0, br;q=0.5", acc(true, false)),
            // §12.4.2 weights rank the accepted codings; a tie leaves Brotli first
            ("br;q=0.5, gzip", GZIP_FIRST),
            ("gzip;q=0.9, br;q=0.8", GZIP_FIRST),
            ("*;q=0.1, gzip", GZIP_FIRST),
            ("gzip;q=0.5, br;q=0.5", acc(true, true)),
            ("gzip, br;q=1", acc(true, true)),
            ("br;q=0.8, gzip;q=0.9, br;q=1", acc(true, true)),
            // empty members and OWS
            (" , ,br ,, gzip ", acc(true, true)),
            ("deflate, compress", acc(false, false)),
            ("brotli, gz", acc(false, false)),
        ];
        for (value, want) in cases {
            assert_eq!(parse_accept_encoding(value.as_bytes()), *want, "{value:?}");
        }
    }

    #[test]
    fn precompressible_paths() {
        for yes in [
            "/a.m3u8", "/a.MPD", "/i.html", "/a.js", "/s.css", "/s.vtt", "/d.json", "/l.svg",
            "/t.txt", "/x.xml",
        ] {
            assert!(precompressible(yes), "{yes}");
        }
        for no in ["/s.ts", "/s.m4s", "/m.mp4", "/p.png", "/a.gz", "/a.br", "/README", "/.html"] {
            assert!(!precompressible(no), "{no}");
        }
    }

    #[test]
    fn choosing() {
        let all = acc(true, true);
        assert_eq!(choose(&all, true, true), Some(Coding::Br));
        assert_eq!(choose(&all, false, true), Some(Coding::Gzip));
        assert_eq!(choose(&all, false, false), None);
        assert_eq!(choose(&acc(false, true), true, true), Some(Coding::Gzip));
        assert_eq!(choose(&acc(true, false), false, true), None);
        assert_eq!(choose(&acc(false, false), true, true), None);
        assert_eq!(choose(&GZIP_FIRST, true, true), Some(Coding::Gzip));
        assert_eq!(choose(&GZIP_FIRST, true, false), Some(Coding::Br));
        assert_eq!(preference(&GZIP_FIRST).collect::<Vec<_>>(), [Coding::Gzip, Coding::Br]);
        assert_eq!(preference(&all).collect::<Vec<_>>(), [Coding::Br, Coding::Gzip]);
        assert_eq!(preference(&acc(false, true)).collect::<Vec<_>>(), [Coding::Gzip]);
        assert_eq!((Coding::Br.suffix(), Coding::Br.token()), (".br", "br"));
        assert_eq!((Coding::Gzip.suffix(), Coding::Gzip.token()), (".gz", "gzip"));
    }

    proptest! {
        #[test]
        fn never_panics(value in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_accept_encoding(&value);
        }
    }
}
