//! `Transfer-Encoding: chunked` decoding as a resumable state machine (RFC 9112 §7.1).
//!
//! The decoder is fed whatever bytes arrived; it reports how many it consumed,
//! hands the chunk data to a callback (for counting and checksums) and says when
//! the last chunk and trailer section are complete. Bytes after the end belong
//! to the next response and are left unconsumed.

use super::response::ParseError;

/// Longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_LINE_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading `chunk-size [ chunk-ext ] CRLF`.
    Size,
    /// Inside chunk data; this many bytes remain.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines after the last chunk, until an empty line.
    Trailer,
    /// The body is complete.
    Done,
}

/// Progress of one [`ChunkedDecoder::decode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedProgress {
    /// Input bytes consumed.
    pub consumed: usize,
    /// Whether the body (including trailers) is complete.
    pub done: bool,
}

/// A chunked-body decoder; create one per response.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Partial line carried over between calls (size and trailer lines).
    line: Vec<u8>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder positioned at the first chunk-size line.
    pub fn new() -> Self {
        Self { state: State::Size, line: Vec::new() }
    }

    /// Consumes bytes from `input`, passing chunk data to `on_data`.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<ChunkedProgress, ParseError> {
        let mut pos = 0;
        while pos < input.len() && self.state != State::Done {
            match self.state {
                State::Size | State::Trailer | State::DataEnd => {
                    let Some(line) = self.take_line(input, &mut pos)? else {
                        break;
                    };
                    self.state = match self.state {
                        State::Size => match parse_chunk_size(&line)? {
                            0 => State::Trailer,
                            n => State::Data(n),
                        },
                        // RFC 9112 §7.1: chunk-data is followed by exactly CRLF.
                        State::DataEnd if line.is_empty() => State::Size,
                        State::DataEnd => return Err(ParseError::Chunked),
                        // RFC 9112 §7.1.2: trailer fields end with an empty line.
                        State::Trailer if line.is_empty() => State::Done,
                        other => other,
                    };
                }
                State::Data(remaining) => {
                    let available = input.len() - pos;
                    let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
                    on_data(&input[pos..pos + take]);
                    pos += take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 { State::DataEnd } else { State::Data(left) };
                }
                State::Done => break,
            }
        }
        Ok(ChunkedProgress { consumed: pos, done: self.state == State::Done })
    }

    /// Takes one LF-terminated line (CR stripped), buffering partial lines across calls.
    fn take_line(&mut self, input: &[u8], pos: &mut usize) -> Result<Option<Vec<u8>>, ParseError> {
        let rest = &input[*pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                self.line.extend_from_slice(&rest[..nl]);
                *pos += nl + 1;
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(Some(line))
            }
            None => {
                self.line.extend_from_slice(rest);
                *pos = input.len();
                if self.line.len() > MAX_LINE_BYTES {
                    return Err(ParseError::Chunked);
                }
                Ok(None)
            }
        }
    }
}

/// `chunk-size = 1*HEXDIG`, optionally followed by `;ext` (RFC 9112 §7.1, §7.1.1).
fn parse_chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let end = line.iter().position(|&b| b == b';' || b == b' ' || b == b'\t').unwrap_or(line.len());
    let digits = &line[..end];
    if digits.is_empty() || digits.len() > 16 {
        return Err(ParseError::Chunked);
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = char::from(d).to_digit(16).ok_or(ParseError::Chunked)?;
        Ok(acc << 4 | u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns (data, consumed, done).
    fn decode_in_steps(input: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), ParseError> {
        let mut dec = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut consumed = 0;
        while consumed < input.len() {
            let end = (consumed + step).min(input.len());
            let p = dec.decode(&input[consumed..end], |d| data.extend_from_slice(d))?;
            consumed += p.consumed;
            if p.done {
                return Ok((data, consumed, true));
            }
            if p.consumed == 0 {
                break;
            }
        }
        Ok((data, consumed, false))
    }

    #[test]
    fn decodes_in_any_split() {
        // RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section CRLF
        let cases: &[(&[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"A;name=value\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n", b"abc"),
            (b"3\nabc\n0\n\n", b"abc"),
            (b"0\r\n\r\n", b""),
        ];
        for (input, want) in cases {
            for step in [1, 2, 3, 7, input.len()] {
                let (data, consumed, done) = decode_in_steps(input, step).unwrap();
                assert!(done, "{input:?} step {step}");
                assert_eq!(consumed, input.len(), "{input:?} step {step}");
                assert_eq!(&data, want, "{input:?} step {step}");
            }
        }
    }

    #[test]
    fn leaves_the_next_response_unconsumed() {
        let input = b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
        let mut dec = ChunkedDecoder::new();
        let p = dec.decode(input, |_| {}).unwrap();
        assert!(p.done);
        assert_eq!(&input[p.consumed..], b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn malformed_bodies() {
        let cases: &[&[u8]] =
            &[b"zz\r\n", b"\r\n", b"5\r\nhelloXX0\r\n\r\n", b"11111111111111111\r\n"];
        for input in cases {
            assert_eq!(decode_in_steps(input, input.len()), Err(ParseError::Chunked), "{input:?}");
        }
    }

    #[test]
    fn overlong_size_line_is_rejected() {
        let mut input = b"5;".to_vec();
        input.resize(MAX_LINE_BYTES + 10, b'x');
        assert_eq!(decode_in_steps(&input, 100), Err(ParseError::Chunked));
    }
}
