//! Request target → path beneath the root, without touching the file system.
//!
//! This normaliser decides what a target *means* (percent-decoding, dot segments, `//`, hidden
//! names); it is not what keeps requests inside the root: the kernel does that with `openat2`
//! `RESOLVE_BENEATH` (see [`super::Root`]). Rules follow RFC 3986 §5.2.4 (remove_dot_segments)
//! and what nginx does: a target that climbs above the root is a 400, a decoded NUL is a 400,
//! `%2F` decodes to a separator, a backslash is an ordinary byte of a file name (Linux), bytes
//! that are not UTF-8 are allowed (Linux names are bytes).

/// Why a target cannot name a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form or absolute-form, or a malformed percent-escape (400).
    #[error("malformed request target")]
    Malformed,
    /// A decoded NUL byte (400).
    #[error("NUL byte in path")]
    Nul,
    /// Dot segments climb above the root (400).
    #[error("path climbs above the root")]
    AboveRoot,
}

/// A normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Segments joined by `/`, no leading or trailing slash; empty for the root itself.
    pub relative: Vec<u8>,
    /// The decoded path ended in `/` (a directory was asked for).
    pub trailing_slash: bool,
    /// Some segment starts with a dot.
    pub hidden: bool,
    /// The query, without `?`, as sent.
    pub query: Option<Vec<u8>>,
}

impl Normalized {
    /// The canonical absolute path, percent-encoded for a `Location` field, with `/` appended
    /// and the query kept (the directory redirect, RFC 9110 §15.4.2).
    pub fn directory_location(&self) -> String {
        let mut out = String::with_capacity(self.relative.len() + 8);
        out.push('/');
        for &b in &self.relative {
            if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        if !self.relative.is_empty() {
            out.push('/');
        }
        if let Some(q) = &self.query {
            out.push('?');
            // The query was accepted by the request parser: visible ASCII only.
            out.push_str(&String::from_utf8_lossy(q));
        }
        out
    }
}

/// Normalises a request target (RFC 9112 §3.2: origin-form, or absolute-form whose path is
/// used).
pub fn normalize(target: &[u8]) -> Result<Normalized, PathError> {
    let path_and_query = if target.first() == Some(&b'/') {
        target
    } else {
        absolute_form_path(target).ok_or(PathError::Malformed)?
    };
    let (raw_path, query) = match path_and_query.iter().position(|&b| b == b'?') {
        Some(q) => (&path_and_query[..q], Some(path_and_query[q + 1..].to_vec())),
        None => (path_and_query, None),
    };
    if let Some(relative) = plain_path(raw_path) {
        return Ok(Normalized {
            trailing_slash: relative.is_empty() || raw_path.ends_with(b"/"),
            relative: relative.to_vec(),
            hidden: false,
            query,
        });
    }
    general(raw_path, query)
}

/// Full normalisation of a path: percent-decoding, then RFC 3986 dot-segment removal.
fn general(raw_path: &[u8], query: Option<Vec<u8>>) -> Result<Normalized, PathError> {
    let decoded = percent_decode(raw_path)?;
    if decoded.contains(&0) {
        return Err(PathError::Nul);
    }
    let trailing_slash = decoded.ends_with(b"/");
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut hidden = false;
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            _ => segments.push(seg),
        }
    }
    // A trailing "." or ".." names a directory too: "/a/b/.." is "/a/".
    let ends_in_dot = matches!(decoded.rsplit(|&b| b == b'/').next(), Some(b".") | Some(b".."));
    for seg in &segments {
        hidden |= seg.first() == Some(&b'.');
    }
    Ok(Normalized {
        relative: segments.join(&b'/'),
        trailing_slash: trailing_slash || ends_in_dot || segments.is_empty(),
        hidden,
        query,
    })
}

/// The common case, decided in one pass without decoding: a path with no escape, no NUL, no
/// empty segment (`//`) and no segment starting with a dot (so none is `.`, `..` or hidden)
/// normalises to itself without the leading and trailing slash. `None` for anything else, which
/// takes the general path.
fn plain_path(raw: &[u8]) -> Option<&[u8]> {
    let mut prev = 0u8;
    for &b in raw {
        match b {
            b'%' | 0 => return None,
            b'/' | b'.' if prev == b'/' => return None,
            _ => {}
        }
        prev = b;
    }
    let inner = raw.strip_prefix(b"/")?;
    Some(inner.strip_suffix(b"/").unwrap_or(inner))
}

/// The path of an absolute-form target `http://authority/path?query` (`/` when it has none).
fn absolute_form_path(target: &[u8]) -> Option<&[u8]> {
    let scheme_end = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..scheme_end];
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return None;
    }
    let rest = &target[scheme_end + 3..];
    match rest.iter().position(|&b| b == b'/' || b == b'?') {
        Some(i) if rest[i] == b'/' => Some(&rest[i..]),
        Some(_) | None => Some(b"/"),
    }
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hi = raw.get(i + 1).and_then(|&c| hex(c)).ok_or(PathError::Malformed)?;
            let lo = raw.get(i + 2).and_then(|&c| hex(c)).ok_or(PathError::Malformed)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(target: &str) -> (String, bool, bool) {
        let n = normalize(target.as_bytes()).unwrap_or_else(|e| panic!("{target}: {e}"));
        (String::from_utf8(n.relative).unwrap(), n.trailing_slash, n.hidden)
    }

    #[test]
    fn normalisation_table() {
        let cases: &[(&str, &str, bool, bool)] = &[
            ("/", "", true, false),
            ("/a.txt", "a.txt", false, false),
            ("/a.txt?x=1&y=/../", "a.txt", false, false),
            ("/dir/", "dir", true, false),
            ("//a///b", "a/b", false, false),
            ("/a/./b/../c", "a/c", false, false),
            ("/a/b/..", "a", true, false),
            ("/a/%2e%2e/b", "b", false, false),
            ("/a%2Fb", "a/b", false, false),
            ("/caf%C3%A9.txt", "café.txt", false, false),
            ("/a\\..\\b", "a\\..\\b", false, false),
            ("/.hidden", ".hidden", false, true),
            ("/d/.git/config", "d/.git/config", false, true),
            ("http://example.com/x/y?q", "x/y", false, false),
            ("http://example.com", "", true, false),
        ];
        for &(target, rel, slash, hidden) in cases {
            assert_eq!(ok(target), (rel.to_owned(), slash, hidden), "{target}");
        }
    }

    #[test]
    fn rejected_targets() {
        let cases: &[(&str, PathError)] = &[
            ("/../etc/passwd", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
            ("/%2e%2e/etc/passwd", PathError::AboveRoot),
            ("/..%2fetc", PathError::AboveRoot),
            ("/a%00b", PathError::Nul),
            ("/a%zz", PathError::Malformed),
            ("/a%4", PathError::Malformed),
            ("*", PathError::Malformed),
            ("ftp://x/y", PathError::Malformed),
            ("a/b", PathError::Malformed),
        ];
        for &(target, want) in cases {
            assert_eq!(normalize(target.as_bytes()), Err(want), "{target}");
        }
        // Overlong UTF-8 for '.' decodes to bytes that are not a dot segment.
        let n = normalize(b"/%c0%ae%c0%ae/etc/passwd").unwrap();
        assert_eq!(n.relative, b"\xc0\xae\xc0\xae/etc/passwd");
    }

    #[test]
    fn directory_location_is_encoded() {
        let n = normalize(b"/a%20b/c?x=1").unwrap();
        assert_eq!(n.directory_location(), "/a%20b/c/?x=1");
        assert_eq!(normalize(b"/").unwrap().directory_location(), "/");
    }

    proptest! {
        /// The one-pass shortcut for plain paths gives what full normalisation gives.
        #[test]
        fn plain_paths_take_a_shortcut_to_the_same_place(
            parts in proptest::collection::vec(prop::sample::select(vec!["a", "b.c", "", ".", "..", ".d", "e.", "%61", "\\", "f g"]), 0..8),
            trailing in any::<bool>(),
        ) {
            let mut t = format!("/{}", parts.join("/"));
            if trailing {
                t.push('/');
            }
            prop_assert_eq!(normalize(t.as_bytes()), general(t.as_bytes(), None), "{}", t);
        }

        /// No input panics, and no output can name anything above the root.
        #[test]
        fn never_escapes(target in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut t = vec![b'/'];
            t.extend_from_slice(&target);
            if let Ok(n) = normalize(&t) {
                prop_assert!(!n.relative.starts_with(b"/"));
                prop_assert!(!n.relative.contains(&0));
                for seg in n.relative.split(|&b| b == b'/') {
                    prop_assert!(seg != b".." && seg != b"." && !seg.is_empty() || n.relative.is_empty());
                }
            }
        }

        /// Dot-segment soup over a small alphabet never escapes either.
        #[test]
        fn dot_soup(parts in proptest::collection::vec(prop::sample::select(vec!["..", ".", "a", "", "%2e%2e", "%2F", "b"]), 0..12)) {
            let t = format!("/{}", parts.join("/"));
            if let Ok(n) = normalize(t.as_bytes()) {
                for seg in n.relative.split(|&b| b == b'/') {
                    prop_assert!(seg != b"..");
                }
            }
        }
    }
}
