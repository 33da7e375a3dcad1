//! The chunked transfer coding (RFC 9112 §7.1) decoded as a state machine over byte slices.
//!
//! [`ChunkedDecoder::decode`] takes whatever bytes have arrived and returns how many it
//! consumed and what they held: a run of content ([`Decoded::Data`], borrowed from the input,
//! never copied), "need more bytes", or the end of the body. Control bytes (sizes, extensions,
//! CRLFs, trailers) are consumed as they come, so the caller never keeps a partial line: any
//! split of the same input gives the same content and the same outcome (property-tested).
//!
//! Strict where leniency has let bodies be misread (request smuggling's classic ground):
//! every line ends in CRLF (a bare LF or CR is an error), a chunk's data must be followed by
//! CRLF, sizes are hexadecimal without sign and checked for overflow, a size line (with its
//! extensions) is at most [`MAX_LINE_BYTES`] and the trailer section at most
//! [`MAX_TRAILER_BYTES`]. Extensions and trailer fields are consumed and dropped (§7.1.1,
//! §7.1.2: a recipient may discard trailers it does not merge). Whitespace is accepted
//! between the size and `;` (BWS, §7.1.1).
//!
//! After [`Decoded::Done`] the bytes that follow belong to the next response.
#![forbid(unsafe_code)]

/// Longest size line, extensions included.
pub(crate) const MAX_LINE_BYTES: usize = 4096;
/// Largest trailer section.
pub(crate) const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why a chunked body is malformed; the response is an error and nothing is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkError {
    /// A size that is not hexadecimal, or a malformed line.
    #[error("malformed chunk framing")]
    Syntax,
    /// A size above `u64::MAX`.
    #[error("chunk size overflows")]
    SizeOverflow,
    /// A size line or the trailer section past its bound.
    #[error("chunk line or trailer section too long")]
    TooLong,
}

/// What [`ChunkedDecoder::decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// Content bytes, in order.
    Data(&'a [u8]),
    /// Every byte given was consumed; more are needed.
    NeedMore,
    /// The last chunk and the trailer section ended; the body is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a size.
    Size { value: u64, digits: usize },
    /// Whitespace after the size, before `;` or CR.
    SizeSpace { value: u64 },
    /// In the extensions, up to CR.
    Extension { value: u64 },
    /// The size line's CR was seen; LF expected.
    SizeLf { value: u64 },
    /// Inside a chunk's data.
    Data { remaining: u64 },
    /// After the data: CR expected.
    DataCr,
    /// After the data's CR: LF expected.
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerLineStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// A trailer line's CR was seen; LF expected.
    TrailerLf,
    /// The final CR was seen; LF expected.
    EndLf,
    /// Complete.
    Done,
}

/// The decoder; one per chunked body.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    line_bytes: usize,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub(crate) fn new() -> Self {
        ChunkedDecoder {
            state: State::Size { value: 0, digits: 0 },
            line_bytes: 0,
            trailer_bytes: 0,
        }
    }

    /// Whether the body is complete.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`; returns the bytes consumed and what they held. Call again with the
    /// rest of the input after `Data`; `NeedMore` means all of `input` was consumed.
    pub(crate) fn decode<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<(usize, Decoded<'a>), ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Data { remaining } => {
                    let avail = u64::try_from(input.len() - i).unwrap_or(u64::MAX);
                    let take64 = remaining.min(avail);
                    let left = remaining - take64;
                    // take64 <= avail, which came from a usize.
                    let take = usize::try_from(take64).unwrap_or(input.len() - i);
                    self.state =
                        if left == 0 { State::DataCr } else { State::Data { remaining: left } };
                    return Ok((i + take, Decoded::Data(&input[i..i + take])));
                }
                State::Done => return Ok((i, Decoded::Done)),
                _ => {}
            }
            self.step(b)?;
            i += 1;
            if self.state == State::Done {
                return Ok((i, Decoded::Done));
            }
        }
        if self.state == State::Done {
            return Ok((i, Decoded::Done));
        }
        Ok((i, Decoded::NeedMore))
    }

    /// Advances over one control byte.
    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::Size { value, digits } => {
                self.count_line()?;
                match hex(b) {
                    Some(d) => {
                        let value = value
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(u64::from(d)))
                            .ok_or(ChunkError::SizeOverflow)?;
                        State::Size { value, digits: digits + 1 }
                    }
                    None if digits == 0 => return Err(ChunkError::Syntax),
                    None => match b {
                        b'\r' => State::SizeLf { value },
                        b' ' | b'\t' => State::SizeSpace { value },
                        b';' => State::Extension { value },
                        _ => return Err(ChunkError::Syntax),
                    },
                }
            }
            State::SizeSpace { value } => {
                self.count_line()?;
                match b {
                    b' ' | b'\t' => State::SizeSpace { value },
                    b';' => State::Extension { value },
                    _ => return Err(ChunkError::Syntax),
                }
            }
            State::Extension { value } => {
                self.count_line()?;
                match b {
                    b'\r' => State::SizeLf { value },
                    b'\n' => return Err(ChunkError::Syntax),
                    // Control characters other than HTAB are not in the grammar.
                    0..=8 | 0x0a..=0x1f | 0x7f => return Err(ChunkError::Syntax),
                    _ => State::Extension { value },
                }
            }
            State::SizeLf { value } => {
                if b != b'\n' {
                    return Err(ChunkError::Syntax);
                }
                self.line_bytes = 0;
                if value == 0 {
                    State::TrailerLineStart
                } else {
                    State::Data { remaining: value }
                }
            }
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(ChunkError::Syntax),
            },
            State::DataLf => match b {
                b'\n' => State::Size { value: 0, digits: 0 },
                _ => return Err(ChunkError::Syntax),
            },
            State::TrailerLineStart => {
                self.count_trailer()?;
                match b {
                    b'\r' => State::EndLf,
                    b'\n' | b' ' | b'\t' => return Err(ChunkError::Syntax),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLine => {
                self.count_trailer()?;
                match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err(ChunkError::Syntax),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLf => {
                self.count_trailer()?;
                match b {
                    b'\n' => State::TrailerLineStart,
                    _ => return Err(ChunkError::Syntax),
                }
            }
            State::EndLf => match b {
                b'\n' => State::Done,
                _ => return Err(ChunkError::Syntax),
            },
            State::Data { .. } | State::Done => unreachable!("handled by decode"),
        };
        Ok(())
    }

    fn count_line(&mut self) -> Result<(), ChunkError> {
        self.line_bytes += 1;
        if self.line_bytes > MAX_LINE_BYTES {
            return Err(ChunkError::TooLong);
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err(ChunkError::TooLong);
        }
        Ok(())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a whole body fed as `pieces`, in order: the content, whether the body completed,
/// and the bytes consumed, or the error. The reference driver of the decoder, shared by the
/// property tests and the fuzz target; it checks the decoder's contract as it goes (no call
/// consumes more than given, data runs are never empty, `NeedMore` consumed everything).
pub(crate) fn decode_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(Vec<u8>, bool, usize), ChunkError> {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        let mut at = 0;
        while at < piece.len() {
            let (n, what) = d.decode(&piece[at..])?;
            assert!(n <= piece.len() - at, "consumed more than given");
            at += n;
            consumed += n;
            match what {
                Decoded::Data(b) => {
                    assert!(!b.is_empty(), "an empty data run");
                    out.extend_from_slice(b);
                }
                Decoded::NeedMore => assert_eq!(at, piece.len(), "NeedMore left bytes"),
                Decoded::Done => {
                    assert!(d.is_done());
                    return Ok((out, true, consumed));
                }
            }
        }
    }
    Ok((out, d.is_done(), consumed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Content, completion and bytes consumed, or the error.
    type Outcome = Result<(Vec<u8>, bool, usize), ChunkError>;

    fn run<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
        decode_pieces(pieces)
    }

    fn whole(input: &[u8]) -> Result<(Vec<u8>, bool, usize), ChunkError> {
        run([input])
    }

    #[test]
    fn decoding_table() {
        use ChunkError::*;
        let ok = |data: &str, n: usize| Ok((data.as_bytes().to_vec(), true, n));
        let cases: &[(&str, Outcome)] = &[
            ("0\r\n\r\n", ok("", 5)),
            ("5\r\nhello\r\n0\r\n\r\n", ok("hello", 15)),
            ("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nHTTP/1.1", ok("hello world", 26)),
            // §7.1: hex sizes, either case, leading zeros.
            ("A\r\n0123456789\r\n000\r\n\r\n", ok("0123456789", 22)),
            ("a\r\n0123456789\r\n0\r\n\r\n", ok("0123456789", 20)),
            // §7.1.1: extensions (with BWS before `;`) are skipped.
            ("3 ; name=\"v;x\"\r\nabc\r\n0;last\r\n\r\n", ok("abc", 31)),
            // §7.1.2: trailer fields are skipped.
            ("1\r\nx\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", ok("x", 27)),
            // Incomplete: not done, content so far.
            ("5\r\nhel", Ok((b"hel".to_vec(), false, 6))),
            ("5\r\nhello\r\n0\r\n", Ok((b"hello".to_vec(), false, 13))),
            // Strict framing.
            ("\r\n", Err(Syntax)),
            ("x\r\n", Err(Syntax)),
            ("-1\r\n", Err(Syntax)),
            ("+1\r\n", Err(Syntax)),
            ("0x5\r\n", Err(Syntax)),
            ("5\nhello\r\n", Err(Syntax)),
            ("5\r\nhelloX\r\n", Err(Syntax)),
            ("5\r\nhello\n0\r\n\r\n", Err(Syntax)),
            ("5\r\nhello\r\n0\r\n\n", Err(Syntax)),
            ("1;a\nb\r\n", Err(Syntax)),
            ("1;a\x00\r\n", Err(Syntax)),
            ("1 \r\nx\r\n", Err(Syntax)),
            ("0\r\nX: 1\n\r\n", Err(Syntax)),
            ("0\r\n folded\r\n\r\n", Err(Syntax)),
            // Size overflow: 17 hex digits past u64.
            ("10000000000000000\r\n", Err(SizeOverflow)),
        ];
        for (input, want) in cases {
            assert_eq!(whole(input.as_bytes()), *want, "{input:?}");
        }
        // The largest size is accepted (the body is then bounded by its caller).
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b"ffffffffffffffff\r\nab").unwrap(), (20, Decoded::Data(b"ab")));
        assert_eq!(d.decode(b"").unwrap(), (0, Decoded::NeedMore));
    }

    #[test]
    fn lines_and_trailers_are_bounded() {
        let long_ext = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE_BYTES));
        assert_eq!(whole(long_ext.as_bytes()), Err(ChunkError::TooLong));
        let fits = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE_BYTES - 3));
        assert_eq!(whole(fits.as_bytes()).unwrap().0, b"x");
        let zeros = format!("{}1\r\nx\r\n0\r\n\r\n", "0".repeat(MAX_LINE_BYTES));
        assert_eq!(whole(zeros.as_bytes()), Err(ChunkError::TooLong));
        let trailer = format!("0\r\nX: {}\r\n\r\n", "t".repeat(MAX_TRAILER_BYTES));
        assert_eq!(whole(trailer.as_bytes()), Err(ChunkError::TooLong));
        // After Done nothing more is consumed.
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b"0\r\n\r\nrest").unwrap(), (5, Decoded::Done));
        assert_eq!(d.decode(b"rest").unwrap(), (0, Decoded::Done));
    }

    /// A chunked encoding of `chunks` with optional extensions and trailers.
    fn encode(chunks: &[Vec<u8>], ext: bool, trailer: bool, upper: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            let size = if upper { format!("{:X}", c.len()) } else { format!("{:x}", c.len()) };
            out.extend_from_slice(size.as_bytes());
            if ext {
                out.extend_from_slice(b" ;n=\"v\"");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        if trailer {
            out.extend_from_slice(b"X-Checksum: abc\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Splits `input` at the given (sorted, deduplicated) cut points.
    fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces = Vec::new();
        let mut at = 0;
        for c in cuts {
            pieces.push(&input[at..c]);
            at = c;
        }
        pieces.push(&input[at..]);
        pieces
    }

    proptest! {
        #[test]
        fn encoded_bodies_decode_to_their_content_however_split(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            ext in any::<bool>(), trailer in any::<bool>(), upper in any::<bool>(),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let encoded = encode(&chunks, ext, trailer, upper);
            let content: Vec<u8> = chunks.concat();
            prop_assert_eq!(whole(&encoded), Ok((content.clone(), true, encoded.len())));
            prop_assert_eq!(run(split(&encoded, &cuts)), Ok((content, true, encoded.len())));
        }

        #[test]
        fn any_input_gives_the_same_result_however_split(
            input in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'3'), Just(b'f'), Just(b';'), Just(b' '), any::<u8>()],
                0..200),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            prop_assert_eq!(run(split(&input, &cuts)), whole(&input));
        }
    }
}
