//! Strict, sans-IO HTTP/1.1 message body framing.
//!
//! This module decides how a message body is delimited ([`framing`],
//! [`content_length`]) and decodes the chunked transfer coding
//! ([`ChunkedDecoder`]). It performs no I/O: callers hand it bytes and get
//! decoded bytes back, so the same code serves a server reading requests and
//! a client reading responses, and can be tested exhaustively without sockets.
//!
//! The parser is deliberately strict (RFC 9112 §6 and §7.1). Framing is the
//! part of HTTP/1.1 where two implementations that disagree about where a body
//! ends let an attacker smuggle a second request past a proxy, so anything the
//! grammar does not allow is rejected rather than repaired: bare CR or LF line
//! endings, whitespace where the grammar has none, ambiguous or conflicting
//! length fields, and oversized numbers are all errors.
//!
//! The chunked decoder is a byte-at-a-time state machine (chunk data is copied
//! a slice at a time). Because it never looks ahead and never re-reads a byte
//! it has consumed, feeding the same input whole or split at any points gives
//! exactly the same output, the same error and the same leftover bytes, and the
//! work is linear in the input length.

use bytes::{Buf, BytesMut};
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use std::fmt;

/// Resource limits applied while decoding a chunked body.
///
/// Every limit is checked as each byte is consumed, never only when a line
/// completes, so a limit fires at the same point however the input is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Maximum number of decoded body bytes. A chunk whose declared size would
    /// take the body past this is rejected with [`FramingError::TooLarge`]
    /// before any of its data is buffered, so `out` never grows beyond it.
    pub(crate) max_body: u64,
    /// Maximum length of one chunk-size line, counting the hex digits and any
    /// chunk extensions but not the terminating CRLF. Extensions carry no
    /// meaning for us, so this only bounds how much junk a peer can send.
    pub(crate) max_ext_bytes: usize,
    /// Maximum size of the whole trailer section: every field line including
    /// its CRLF, but not the empty line that ends the body. It is a total over
    /// all lines, so many small lines cannot get around it.
    pub(crate) max_trailer_bytes: usize,
    /// Maximum number of trailer field lines.
    pub(crate) max_trailer_fields: usize,
}

impl Default for Limits {
    /// Conservative defaults for a server: 10 MiB of body, 4 KiB per
    /// chunk-size line, 8 KiB and 64 fields of trailers.
    fn default() -> Self {
        Limits {
            max_body: 10 * 1024 * 1024,
            max_ext_bytes: 4096,
            max_trailer_bytes: 8192,
            max_trailer_fields: 64,
        }
    }
}

/// Why a message's framing was rejected.
///
/// Each variant maps to the status a server should answer with (see
/// [`FramingError::status`]); after any of them the connection cannot be
/// reused, because the end of the message is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// The body is larger than [`Limits::max_body`] (413 Content Too Large).
    TooLarge,
    /// The framing violates the grammar; the string is a short, precise
    /// reason suitable for logs (400 Bad Request).
    Malformed(&'static str),
    /// The trailer section exceeds [`Limits::max_trailer_bytes`] or
    /// [`Limits::max_trailer_fields`] (431 Request Header Fields Too Large).
    TrailersTooLarge,
    /// A request uses a transfer coding other than chunked, which is the only
    /// one implemented; RFC 9112 §6.1 asks for 501 Not Implemented.
    UnsupportedCoding,
}

impl FramingError {
    /// The status code a server should send in response to this error, so
    /// that callers do not each re-derive the mapping.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            FramingError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FramingError::Malformed(_) => StatusCode::BAD_REQUEST,
            FramingError::TrailersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            FramingError::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::TooLarge => f.write_str("message body too large"),
            FramingError::Malformed(reason) => write!(f, "malformed message framing: {reason}"),
            FramingError::TrailersTooLarge => f.write_str("trailer section too large"),
            FramingError::UnsupportedCoding => f.write_str("unsupported transfer coding"),
        }
    }
}

impl std::error::Error for FramingError {}

/// Shorthand so that the many error sites below stay on one line.
const fn malformed(reason: &'static str) -> FramingError {
    FramingError::Malformed(reason)
}

/// Returns whether `b` is a `tchar` (RFC 9110 §5.6.2), the alphabet of
/// tokens: field names, extension names, transfer-coding names.
fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Returns whether `b` may appear unescaped inside a quoted-string
/// (`qdtext`, RFC 9110 §5.6.4).
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// Returns whether `b` may follow a backslash in a quoted-pair
/// (HTAB / SP / VCHAR / obs-text).
fn is_quoted_pair_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF)
}

/// Returns whether `b` is optional/bad whitespace (SP or HTAB).
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Returns whether `b` is a control character other than HTAB, the bytes
/// that no part of a chunk-size line may contain.
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7F
}

/// Strips leading and trailing OWS (SP / HTAB).
fn trim_ows(s: &[u8]) -> &[u8] {
    let mut s = trim_ows_start(s);
    while let [rest @ .., last] = s {
        if !is_ws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Value of an ASCII hex digit, or `None` for any other byte.
fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

/// Longest chunk-size accepted, in hex digits. Sixteen digits are exactly a
/// `u64`; anything longer is rejected outright (even with leading zeros) so
/// the size line has a fixed bound independent of the extension limit.
const MAX_SIZE_DIGITS: u8 = 16;

/// Longest Content-Length element accepted, in decimal digits. Eighteen
/// digits always fit in a `u64`, so parsing can never overflow.
const MAX_LENGTH_DIGITS: usize = 18;

/// Where the decoder is within the chunked-body grammar. Each state names
/// what the next byte is allowed to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Start of a chunk-size line: a hex digit must follow.
    SizeStart,
    /// Inside the chunk-size digits.
    Size,
    /// BWS after the size: only more whitespace or `;` may follow.
    SizeWs,
    /// After `;` (and BWS): an extension name must start.
    ExtNameStart,
    /// Inside an extension name.
    ExtName,
    /// BWS after an extension name: `=` or `;` must follow.
    ExtNameWs,
    /// After `=` (and BWS): a token or quoted-string must start.
    ExtValueStart,
    /// Inside a token extension value.
    ExtToken,
    /// Inside a quoted-string extension value.
    ExtQuoted,
    /// After a backslash inside a quoted-string.
    ExtQuotedEscape,
    /// Right after the closing quote of a quoted-string.
    ExtAfterQuote,
    /// BWS after an extension value: only `;` may follow.
    ExtValueWs,
    /// Saw the CR ending a chunk-size line; LF must follow.
    SizeLf,
    /// Copying chunk data.
    Data,
    /// Chunk data is complete; CR must follow.
    DataCr,
    /// Saw CR after chunk data; LF must follow.
    DataLf,
    /// Start of a trailer field line, or the CR of the final empty line.
    TrailerLineStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value (after the colon).
    TrailerValue,
    /// Saw the CR ending a trailer field line; LF must follow.
    TrailerLf,
    /// Saw the CR of the final empty line; LF must follow.
    FinalLf,
    /// The whole chunked body has been consumed.
    Done,
}

impl State {
    /// Whether the state belongs to a chunk-size line, whose length is
    /// bounded by [`Limits::max_ext_bytes`].
    fn in_size_line(self) -> bool {
        matches!(
            self,
            State::SizeStart
                | State::Size
                | State::SizeWs
                | State::ExtNameStart
                | State::ExtName
                | State::ExtNameWs
                | State::ExtValueStart
                | State::ExtToken
                | State::ExtQuoted
                | State::ExtQuotedEscape
                | State::ExtAfterQuote
                | State::ExtValueWs
        )
    }
}

/// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
///
/// Feed it bytes with [`ChunkedDecoder::decode`] as they arrive. It consumes
/// every byte it is given up to the end of the chunked body, so when it asks
/// for more input the buffer is empty, and when it finishes the buffer holds
/// exactly the bytes that follow the body (a pipelined next message).
///
/// Chunk extensions are validated and discarded. Trailer fields are validated
/// and collected into a separate [`HeaderMap`]; the caller must not merge them
/// into the header section blindly (RFC 9110 §6.5.1), which is why they are
/// kept apart.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    limits: Limits,
    state: State,
    /// Size of the chunk being read (while in the size line) or the number
    /// of data bytes of the current chunk still to copy (in `Data`).
    size: u64,
    /// Hex digits seen in the current chunk-size line.
    size_digits: u8,
    /// Bytes of the current chunk-size line seen so far, CR/LF excluded.
    line_len: usize,
    /// Body bytes emitted so far; never exceeds `limits.max_body`.
    decoded: u64,
    /// Bytes of the trailer section seen so far.
    trailer_bytes: usize,
    /// Trailer field lines started so far.
    trailer_fields: usize,
    /// Name of the trailer field line being read.
    name_buf: Vec<u8>,
    /// Value of the trailer field line being read, leading OWS removed.
    value_buf: Vec<u8>,
    trailers: HeaderMap,
    /// First error hit; every later call returns it again so that a caller
    /// who ignores an error cannot resynchronise on attacker-chosen bytes.
    error: Option<FramingError>,
}

impl ChunkedDecoder {
    /// Creates a decoder positioned at the first chunk-size line.
    pub(crate) fn new(limits: Limits) -> Self {
        ChunkedDecoder {
            limits,
            state: State::SizeStart,
            size: 0,
            size_digits: 0,
            line_len: 0,
            decoded: 0,
            trailer_bytes: 0,
            trailer_fields: 0,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
            trailers: HeaderMap::new(),
            error: None,
        }
    }

    /// Consumes as much of `input` as possible (advancing it), appending
    /// decoded chunk data to `out`.
    ///
    /// Returns `Ok(true)` once the whole chunked body, including the trailer
    /// section and its final CRLF, has been consumed; any bytes after it are
    /// left in `input` untouched because they belong to the next pipelined
    /// message. Returns `Ok(false)` when all of `input` was consumed and more
    /// is needed.
    ///
    /// On error, `input` has been advanced up to (not including) the
    /// offending byte and `out` holds the data decoded before it; the decoder
    /// is then poisoned and returns the same error on every later call,
    /// because the message boundary is lost and the connection must close.
    pub(crate) fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<bool, FramingError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let result = self.run(input, out);
        if let Err(err) = result {
            self.error = Some(err);
        }
        result
    }

    /// Whether the end of the chunked body has been reached, so that a
    /// caller can tell "finished" from "waiting" without another call.
    #[cfg(test)]
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Number of body bytes decoded so far.
    #[cfg(test)]
    pub(crate) fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// The trailer fields parsed so far. They are complete only once
    /// [`ChunkedDecoder::decode`] has returned `Ok(true)`.
    #[cfg(test)]
    pub(crate) fn trailers(&self) -> &HeaderMap {
        &self.trailers
    }

    /// Takes the parsed trailer fields, leaving an empty map, so a finished
    /// decoder's trailers can be moved into a request without cloning.
    #[cfg(test)]
    pub(crate) fn take_trailers(&mut self) -> HeaderMap {
        std::mem::take(&mut self.trailers)
    }

    /// The decoding loop: alternates between bulk-copying chunk data and
    /// stepping the state machine one byte at a time.
    fn run(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, FramingError> {
        loop {
            match self.state {
                State::Done => return Ok(true),
                State::Data => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    // `size` is at most `max_body - decoded` (checked when the
                    // size was read), so this never overshoots the budget.
                    let n = usize::try_from(self.size)
                        .map_or(input.len(), |left| left.min(input.len()));
                    out.extend_from_slice(&input[..n]);
                    input.advance(n);
                    // `n` fits in u64 on every supported platform and is at most
                    // `size`, so neither subtraction nor addition can wrap.
                    let n = n as u64;
                    self.size -= n;
                    self.decoded += n;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => {
                    let mut consumed = 0;
                    let result = loop {
                        let Some(&b) = input.get(consumed) else {
                            break Ok(());
                        };
                        if let Err(err) = self.step(b) {
                            break Err(err);
                        }
                        consumed += 1;
                        if matches!(self.state, State::Data | State::Done) {
                            break Ok(());
                        }
                    };
                    input.advance(consumed);
                    result?;
                    if !matches!(self.state, State::Data | State::Done) {
                        // The byte loop only stops early on entering one of
                        // those states, so the input is exhausted.
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Appends one hex digit to the chunk size, enforcing the digit limit and
    /// the body budget immediately so an oversized chunk is refused before
    /// the rest of its line, let alone its data, is read.
    fn push_size_digit(&mut self, digit: u64) -> Result<(), FramingError> {
        if self.size_digits >= MAX_SIZE_DIGITS {
            return Err(malformed("chunk size has more than 16 hex digits"));
        }
        self.size_digits += 1;
        self.size = self
            .size
            .checked_mul(16)
            .and_then(|s| s.checked_add(digit))
            .ok_or(malformed("chunk size overflows"))?;
        let budget = self.limits.max_body.saturating_sub(self.decoded);
        if self.size > budget {
            return Err(FramingError::TooLarge);
        }
        Ok(())
    }

    /// Handles the LF that ends a chunk-size line: a zero size is the
    /// last-chunk, anything else starts chunk data.
    fn finish_size_line(&mut self) {
        self.size_digits = 0;
        self.line_len = 0;
        self.state = if self.size == 0 {
            State::TrailerLineStart
        } else {
            State::Data
        };
    }

    /// Counts one byte of the trailer section against its size limit.
    fn count_trailer_byte(&mut self) -> Result<(), FramingError> {
        self.trailer_bytes = self.trailer_bytes.saturating_add(1);
        if self.trailer_bytes > self.limits.max_trailer_bytes {
            return Err(FramingError::TrailersTooLarge);
        }
        Ok(())
    }

    /// Stores a completed trailer field line. Name and value were validated
    /// byte by byte already; the `http` constructors are a second check.
    fn commit_trailer(&mut self) -> Result<(), FramingError> {
        while self.value_buf.last().is_some_and(|&b| is_ws(b)) {
            self.value_buf.pop();
        }
        let name = HeaderName::from_bytes(&self.name_buf)
            .map_err(|_| malformed("invalid trailer field name"))?;
        let value = HeaderValue::from_bytes(&self.value_buf)
            .map_err(|_| malformed("invalid byte in trailer field value"))?;
        self.trailers.append(name, value);
        self.name_buf.clear();
        self.value_buf.clear();
        Ok(())
    }

    /// Advances the state machine by one byte (any state but `Data`/`Done`).
    ///
    /// This is the single place where the grammar is enforced. It depends
    /// only on the current state and the byte, never on how the input was
    /// split, which is what makes decoding segmentation-invariant.
    fn step(&mut self, b: u8) -> Result<(), FramingError> {
        use State::*;

        if self.state.in_size_line() && b != b'\r' && b != b'\n' {
            self.line_len = self.line_len.saturating_add(1);
            if self.line_len > self.limits.max_ext_bytes {
                return Err(malformed("chunk-size line exceeds the extension limit"));
            }
        }
        if matches!(self.state, TrailerName | TrailerValue | TrailerLf)
            || (self.state == TrailerLineStart && b != b'\r')
        {
            self.count_trailer_byte()?;
        }

        match self.state {
            SizeStart => match hex_value(b) {
                Some(d) => {
                    self.size = 0;
                    self.push_size_digit(d)?;
                    self.state = Size;
                }
                None if b == b'\r' || b == b'\n' || b == b';' || is_ws(b) => {
                    return Err(malformed("missing chunk size"));
                }
                None => return Err(malformed("invalid chunk size")),
            },
            Size => match hex_value(b) {
                Some(d) => self.push_size_digit(d)?,
                None => match b {
                    b'\r' => self.state = SizeLf,
                    b'\n' => return Err(malformed("bare LF in chunk-size line")),
                    b';' => self.state = ExtNameStart,
                    b' ' | b'\t' => self.state = SizeWs,
                    _ => return Err(malformed("invalid byte after chunk size")),
                },
            },
            SizeWs => match b {
                b' ' | b'\t' => {}
                b';' => self.state = ExtNameStart,
                b'\r' => return Err(malformed("whitespace before CRLF in chunk-size line")),
                b'\n' => return Err(malformed("bare LF in chunk-size line")),
                _ => return Err(malformed("invalid byte after chunk size")),
            },
            ExtNameStart => match b {
                b' ' | b'\t' => {}
                b'\r' | b'\n' | b';' | b'=' => {
                    return Err(malformed("missing chunk extension name"));
                }
                _ if is_tchar(b) => self.state = ExtName,
                _ if is_ctl(b) => return Err(malformed("control character in chunk extension")),
                _ => return Err(malformed("chunk extension name is not a token")),
            },
            ExtName => match b {
                _ if is_tchar(b) => {}
                b'\r' => self.state = SizeLf,
                b'\n' => return Err(malformed("bare LF in chunk-size line")),
                b';' => self.state = ExtNameStart,
                b'=' => self.state = ExtValueStart,
                b' ' | b'\t' => self.state = ExtNameWs,
                _ if is_ctl(b) => return Err(malformed("control character in chunk extension")),
                _ => return Err(malformed("chunk extension name is not a token")),
            },
            ExtNameWs => match b {
                b' ' | b'\t' => {}
                b';' => self.state = ExtNameStart,
                b'=' => self.state = ExtValueStart,
                b'\r' => return Err(malformed("whitespace before CRLF in chunk-size line")),
                b'\n' => return Err(malformed("bare LF in chunk-size line")),
                _ if is_ctl(b) => return Err(malformed("control character in chunk extension")),
                _ => return Err(malformed("invalid byte after chunk extension name")),
            },
            ExtValueStart => match b {
                b' ' | b'\t' => {}
                b'"' => self.state = ExtQuoted,
                b'\r' | b'\n' | b';' => return Err(malformed("missing chunk extension value")),
                _ if is_tchar(b) => self.state = ExtToken,
                _ if is_ctl(b) => return Err(malformed("control character in chunk extension")),
                _ => {
                    return Err(malformed(
                        "chunk extension value is not a token or quoted-string",
                    ));
                }
            },
            ExtToken => match b {
                _ if is_tchar(b) => {}
                b'\r' => self.state = SizeLf,
                b'\n' => return Err(malformed("bare LF in chunk-size line")),
                b';' => self.state = ExtNameStart,
                b' ' | b'\t' => self.state = ExtValueWs,
                _ if is_ctl(b) => return Err(malformed("control character in chunk extension")),
                _ => return Err(malformed("chunk extension value is not a token")),
            },
            ExtQuoted => match b {
                b'"' => self.state = ExtAfterQuote,
                b'\\' => self.state = ExtQuotedEscape,
                b'\r' | b'\n' => {
                    return Err(malformed("unterminated quoted-string in chunk extension"));
                }
                _ if is_qdtext(b) => {}
                _ => return Err(malformed("control character in chunk extension")),
            },
            ExtQuotedEscape => match b {
                b'\r' | b'\n' => {
                    return Err(malformed("unterminated quoted-string in chunk extension"));
                }
                _ if is_quoted_pair_char(b) => self.state = ExtQuoted,
                _ => return Err(malformed("control character in chunk extension")),
            },
            ExtAfterQuote => match b {
                b'\r' => self.state = SizeLf,
                b'\n' => return Err(malformed("bare LF in chunk-size line")),
                b';' => self.state = ExtNameStart,
                b' ' | b'\t' => self.state = ExtValueWs,
                _ => {
                    return Err(malformed(
                        "invalid byte after quoted-string in chunk extension",
                    ));
                }
            },
            ExtValueWs => match b {
                b' ' | b'\t' => {}
                b';' => self.state = ExtNameStart,
                b'\r' => return Err(malformed("whitespace before CRLF in chunk-size line")),
                b'\n' => return Err(malformed("bare LF in chunk-size line")),
                _ if is_ctl(b) => return Err(malformed("control character in chunk extension")),
                _ => return Err(malformed("invalid byte after chunk extension value")),
            },
            SizeLf => match b {
                b'\n' => self.finish_size_line(),
                _ => return Err(malformed("bare CR in chunk-size line")),
            },
            DataCr => match b {
                b'\r' => self.state = DataLf,
                b'\n' => return Err(malformed("bare LF after chunk data")),
                _ => return Err(malformed("chunk data not followed by CRLF")),
            },
            DataLf => match b {
                b'\n' => self.state = SizeStart,
                _ => return Err(malformed("bare CR after chunk data")),
            },
            TrailerLineStart => match b {
                b'\r' => self.state = FinalLf,
                b'\n' => return Err(malformed("bare LF in trailer section")),
                b' ' | b'\t' => {
                    return Err(malformed(
                        "obs-fold or leading whitespace in trailer section",
                    ));
                }
                b':' => return Err(malformed("empty trailer field name")),
                _ if is_tchar(b) => {
                    self.trailer_fields = self.trailer_fields.saturating_add(1);
                    if self.trailer_fields > self.limits.max_trailer_fields {
                        return Err(FramingError::TrailersTooLarge);
                    }
                    self.name_buf.push(b);
                    self.state = TrailerName;
                }
                _ => return Err(malformed("invalid trailer field name")),
            },
            TrailerName => match b {
                b':' => self.state = TrailerValue,
                b' ' | b'\t' => return Err(malformed("whitespace before colon in trailer field")),
                b'\r' | b'\n' => return Err(malformed("trailer field line has no colon")),
                _ if is_tchar(b) => self.name_buf.push(b),
                _ => return Err(malformed("invalid trailer field name")),
            },
            TrailerValue => match b {
                b'\r' => self.state = TrailerLf,
                b'\n' => return Err(malformed("bare LF in trailer section")),
                b' ' | b'\t' if self.value_buf.is_empty() => {}
                b' ' | b'\t' | 0x21..=0x7E | 0x80..=0xFF => self.value_buf.push(b),
                _ => return Err(malformed("invalid byte in trailer field value")),
            },
            TrailerLf => match b {
                b'\n' => {
                    self.commit_trailer()?;
                    self.state = TrailerLineStart;
                }
                _ => return Err(malformed("bare CR in trailer section")),
            },
            FinalLf => match b {
                b'\n' => self.state = Done,
                _ => return Err(malformed("bare CR at end of chunked body")),
            },
            Data | Done => unreachable!("step is never called in the Data or Done state"),
        }
        Ok(())
    }
}

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// There is no body; the next message starts right after the header.
    None,
    /// Exactly this many bytes follow.
    Length(u64),
    /// The body uses the chunked transfer coding; use [`ChunkedDecoder`].
    Chunked,
    /// The body extends until the connection closes (responses only).
    UntilClose,
}

/// Which side of the exchange a message is, since requests and responses
/// have different framing rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A request, as read by a server. `http10` is true for HTTP/1.0,
    /// where Transfer-Encoding is not allowed.
    Request {
        /// Whether the request line said HTTP/1.0.
        http10: bool,
    },
    /// A response, as read by a client. Its framing depends on the status
    /// and on whether it answers a HEAD request.
    Response {
        /// The response status code.
        status: u16,
        /// Whether the request was HEAD, whose responses never have a body.
        head_request: bool,
    },
}

/// Determines how a message body is delimited from its header fields,
/// following RFC 9112 §6.1–6.3 strictly.
///
/// Rules, in order:
/// - A response to HEAD, or with status 1xx, 204 or 304, has no body
///   ([`Framing::None`]) whatever its fields say. (A 2xx answer to CONNECT
///   switches to a tunnel; the caller handles that before asking.)
/// - Transfer-Encoding together with Content-Length is an error: the
///   combination is the classic request-smuggling vector.
/// - Transfer-Encoding in an HTTP/1.0 request is an error.
/// - Transfer-Encoding must be visible ASCII and a well-formed, non-empty
///   list of transfer codings; `chunked` may appear at most once and takes
///   no parameters.
///   For a request, `chunked` must be the final coding (else error), and any
///   other coding yields [`FramingError::UnsupportedCoding`] (501).
///   For a response, a final `chunked` gives [`Framing::Chunked`]; otherwise
///   the body runs [`Framing::UntilClose`].
/// - Otherwise Content-Length, checked by [`content_length`], gives
///   [`Framing::Length`].
/// - Otherwise a request has no body and a response runs until close.
pub(crate) fn framing(headers: &HeaderMap, role: Role) -> Result<Framing, FramingError> {
    if let Role::Response {
        status,
        head_request,
    } = role
        && (head_request || (100..200).contains(&status) || status == 204 || status == 304)
    {
        return Ok(Framing::None);
    }

    if headers.contains_key(TRANSFER_ENCODING) {
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(malformed(
                "both Transfer-Encoding and Content-Length: the length is ambiguous",
            ));
        }
        if role == (Role::Request { http10: true }) {
            return Err(malformed("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let codings = transfer_codings(headers)?;
        let chunked_count = codings.iter().filter(|c| c.chunked).count();
        if chunked_count > 1 {
            return Err(malformed("chunked transfer coding applied more than once"));
        }
        if codings.iter().any(|c| c.chunked && c.has_params) {
            return Err(malformed("chunked transfer coding takes no parameters"));
        }
        let chunked_final = codings.last().is_some_and(|c| c.chunked);
        return match role {
            Role::Request { .. } if !chunked_final => {
                Err(malformed("chunked is not the final transfer coding"))
            }
            Role::Request { .. } if codings.len() > 1 => Err(FramingError::UnsupportedCoding),
            Role::Request { .. } => Ok(Framing::Chunked),
            Role::Response { .. } if chunked_final => Ok(Framing::Chunked),
            Role::Response { .. } => Ok(Framing::UntilClose),
        };
    }

    match content_length(headers)? {
        Some(n) => Ok(Framing::Length(n)),
        None => match role {
            Role::Request { .. } => Ok(Framing::None),
            Role::Response { .. } => Ok(Framing::UntilClose),
        },
    }
}

/// Parses the Content-Length fields strictly.
///
/// Returns `Ok(None)` when there is none. Every field line is split on
/// commas and each element, with surrounding OWS trimmed, must be 1 to 18
/// ASCII digits (no sign, no inner whitespace, no empty elements); all
/// elements across all lines must be equal (RFC 9110 §8.6 allows a list of
/// identical values, which some intermediaries produce when merging lines).
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, FramingError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let n = parse_decimal(trim_ows(element))?;
            match found {
                Some(prev) if prev != n => {
                    return Err(malformed("conflicting Content-Length values"));
                }
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// Parses `1*18DIGIT`; the digit cap makes overflow impossible.
fn parse_decimal(digits: &[u8]) -> Result<u64, FramingError> {
    if digits.is_empty() {
        return Err(malformed("empty Content-Length"));
    }
    if digits.len() > MAX_LENGTH_DIGITS {
        return Err(malformed("Content-Length has more than 18 digits"));
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            Ok(acc * 10 + u64::from(b - b'0'))
        } else {
            Err(malformed("Content-Length is not a number"))
        }
    })
}

/// One element of a Transfer-Encoding list, reduced to what framing needs.
struct Coding {
    /// Whether the coding name is `chunked` (case-insensitively).
    chunked: bool,
    /// Whether the element carried `;name=value` parameters.
    has_params: bool,
}

/// Parses all Transfer-Encoding field lines into their list of codings.
///
/// Rejects non-visible-ASCII bytes outright instead of dropping the field,
/// since a field one hop ignores and another honours is a smuggling vector.
/// Empty list elements are skipped, but a list with no codings is an error.
fn transfer_codings(headers: &HeaderMap) -> Result<Vec<Coding>, FramingError> {
    let mut codings = Vec::new();
    for value in headers.get_all(TRANSFER_ENCODING) {
        let bytes = value.as_bytes();
        if !bytes.iter().all(|&b| is_ws(b) || b.is_ascii_graphic()) {
            return Err(malformed("Transfer-Encoding is not visible ASCII"));
        }
        for element in bytes.split(|&b| b == b',') {
            let element = trim_ows(element);
            if element.is_empty() {
                continue;
            }
            codings.push(parse_coding(element)?);
        }
    }
    if codings.is_empty() {
        return Err(malformed("empty Transfer-Encoding"));
    }
    Ok(codings)
}

/// Parses `transfer-coding = token *( OWS ";" OWS transfer-parameter )`,
/// `transfer-parameter = token BWS "=" BWS ( token / quoted-string )`.
///
/// Elements are split on commas before this runs, so a quoted-string
/// containing a comma ends up unterminated and is rejected; no registered
/// coding has such parameters.
fn parse_coding(element: &[u8]) -> Result<Coding, FramingError> {
    let name_len = element
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(element.len());
    if name_len == 0 {
        return Err(malformed("transfer coding is not a token"));
    }
    let (name, mut rest) = element.split_at(name_len);
    let has_params = !rest.is_empty();
    while !rest.is_empty() {
        rest = trim_ows_start(rest);
        rest = rest
            .strip_prefix(b";")
            .ok_or(malformed("invalid byte after transfer coding"))?;
        rest = trim_ows_start(rest);
        let pname_len = rest
            .iter()
            .position(|&b| !is_tchar(b))
            .unwrap_or(rest.len());
        if pname_len == 0 {
            return Err(malformed("transfer coding parameter name is not a token"));
        }
        rest = trim_ows_start(&rest[pname_len..]);
        rest = rest
            .strip_prefix(b"=")
            .ok_or(malformed("transfer coding parameter without value"))?;
        rest = trim_ows_start(rest);
        rest = skip_param_value(rest)?;
        // Trailing OWS is already trimmed from the element, so whatever is
        // left must start another parameter.
    }
    Ok(Coding {
        chunked: name.eq_ignore_ascii_case(b"chunked"),
        has_params,
    })
}

/// Skips a token or quoted-string parameter value, returning the remainder.
fn skip_param_value(s: &[u8]) -> Result<&[u8], FramingError> {
    if let Some(mut quoted) = s.strip_prefix(b"\"") {
        loop {
            match quoted {
                [b'"', rest @ ..] => return Ok(rest),
                [b'\\', c, rest @ ..] if is_quoted_pair_char(*c) => quoted = rest,
                [c, rest @ ..] if *c != b'\\' && is_qdtext(*c) => quoted = rest,
                _ => return Err(malformed("unterminated quoted-string in transfer coding")),
            }
        }
    }
    let len = s.iter().position(|&b| !is_tchar(b)).unwrap_or(s.len());
    if len == 0 {
        return Err(malformed(
            "transfer coding parameter value is not a token or quoted-string",
        ));
    }
    Ok(&s[len..])
}

/// Strips leading OWS only.
fn trim_ows_start(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ws(*first) {
            break;
        }
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::{Index, select};

    /// Generous limits so that tests about syntax are not affected by them.
    fn big() -> Limits {
        Limits {
            max_body: 1 << 30,
            max_ext_bytes: 4096,
            max_trailer_bytes: 8192,
            max_trailer_fields: 64,
        }
    }

    /// Everything observable about one decoding run, so that runs over
    /// differently split input can be compared with a single `==`.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        out: Vec<u8>,
        result: Result<bool, FramingError>,
        leftover: Vec<u8>,
        trailers: Vec<(String, Vec<u8>)>,
    }

    /// Feeds `pieces` one after another, as a connection would deliver them,
    /// stopping at the first error or at the end of the body. The leftover
    /// is what is still buffered plus the pieces never fed.
    fn drive(pieces: &[&[u8]], limits: Limits) -> Outcome {
        let mut dec = ChunkedDecoder::new(limits);
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut result = dec.decode(&mut input, &mut out);
        assert_eq!(result, Ok(false), "empty input must just ask for more");
        let mut fed = 0;
        while fed < pieces.len() && result == Ok(false) {
            assert!(
                input.is_empty(),
                "Ok(false) must mean all input was consumed"
            );
            input.extend_from_slice(pieces[fed]);
            fed += 1;
            result = dec.decode(&mut input, &mut out);
            assert_eq!(dec.decoded_len(), out.len() as u64);
            assert!(out.len() as u64 <= limits.max_body);
        }
        if result == Ok(false) {
            assert!(input.is_empty());
        }
        let mut leftover = input.to_vec();
        for piece in &pieces[fed..] {
            leftover.extend_from_slice(piece);
        }
        let trailers = dec
            .trailers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        Outcome {
            out: out.to_vec(),
            result,
            leftover,
            trailers,
        }
    }

    /// Splits `input` at the given (unsorted, possibly repeated) indices.
    fn split_at_points<'a>(input: &'a [u8], points: &[Index]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = points.iter().map(|p| p.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for cut in cuts {
            pieces.push(&input[start..cut]);
            start = cut;
        }
        pieces.push(&input[start..]);
        pieces
    }

    /// Decodes `input` whole, one byte at a time, and split at every single
    /// point, asserting that all agree; returns the common outcome. Every
    /// example-based test goes through this, so each also checks
    /// segmentation invariance on its own input.
    fn all_ways(input: &[u8], limits: Limits) -> Outcome {
        let whole = drive(&[input], limits);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            drive(&bytes, limits),
            whole,
            "byte-at-a-time differs for {:?}",
            input.escape_ascii().to_string()
        );
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(drive(&[a, b], limits), whole, "split at {cut} differs");
        }
        whole
    }

    /// Asserts that `input` is a complete body; returns (data, leftover).
    fn accept(input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let o = all_ways(input, big());
        assert_eq!(
            o.result,
            Ok(true),
            "expected success for {:?}",
            input.escape_ascii().to_string()
        );
        (o.out, o.leftover)
    }

    /// Asserts that `input` fails with the given limits; returns the error.
    fn reject_with(input: &[u8], limits: Limits) -> FramingError {
        let o = all_ways(input, limits);
        match o.result {
            Err(e) => e,
            other => panic!(
                "expected an error for {:?}, got {other:?}",
                input.escape_ascii().to_string()
            ),
        }
    }

    /// Asserts that `input` is malformed (400) under generous limits.
    fn reject(input: &[u8]) -> FramingError {
        let e = reject_with(input, big());
        assert!(
            matches!(e, FramingError::Malformed(_)),
            "expected Malformed for {:?}, got {e:?}",
            input.escape_ascii().to_string()
        );
        e
    }

    #[test]
    fn accepts_lowercase_and_uppercase_hex() {
        let mut input = b"1a\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 0x1a]);
        input.extend_from_slice(b"\r\n1A\r\n");
        input.extend_from_slice(&[b'y'; 0x1a]);
        input.extend_from_slice(b"\r\nfF\r\n");
        input.extend_from_slice(&[b'z'; 0xff]);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        let (data, rest) = accept(&input);
        assert_eq!(data.len(), 0x1a * 2 + 0xff);
        assert!(rest.is_empty());
    }

    #[test]
    fn accepts_leading_zeros() {
        let (data, _) = accept(b"0005\r\nhello\r\n0000000000000001\r\n!\r\n000\r\n\r\n");
        assert_eq!(data, b"hello!");
    }

    #[test]
    fn accepts_extensions_with_bws_and_quoted_strings() {
        let cases: &[&[u8]] = &[
            b"5;name=value\r\nhello\r\n0\r\n\r\n",
            b"5 ; a=b ; c=\"q \\\" d\"\r\nhello\r\n0\r\n\r\n",
            b"5;a;b;c=d\r\nhello\r\n0;last=\"\"\r\n\r\n",
            b"5\t;\ta\t=\t\"x\ty\"\r\nhello\r\n0\r\n\r\n",
            b"5;a = \"\\\\\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\x80\xff\\\x80\"\r\nhello\r\n0\r\n\r\n",
            b"5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n",
        ];
        for case in cases {
            assert_eq!(accept(case).0, b"hello");
        }
    }

    #[test]
    fn accepts_trailers_after_zero_chunk() {
        let o = all_ways(b"0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", big());
        assert_eq!(o.result, Ok(true));
        assert!(o.out.is_empty());
        assert_eq!(
            o.trailers,
            vec![("x-a".into(), b"1".to_vec()), ("x-b".into(), b"2".to_vec())]
        );
    }

    #[test]
    fn trailer_values_are_trimmed_and_repeated_names_kept() {
        let o = all_ways(b"3\r\nabc\r\n0\r\nEtag:\t \"v  v\" \t\r\nX-E:\r\nx-a: 1\r\nX-A:2\r\nX-O: \x80\xfe\r\n\r\n", big());
        assert_eq!(o.result, Ok(true));
        assert_eq!(
            o.trailers,
            vec![
                ("etag".into(), b"\"v  v\"".to_vec()),
                ("x-e".into(), b"".to_vec()),
                ("x-a".into(), b"1".to_vec()),
                ("x-a".into(), b"2".to_vec()),
                ("x-o".into(), b"\x80\xfe".to_vec()),
            ]
        );
    }

    #[test]
    fn pipelined_bytes_are_left_in_input() {
        let (data, rest) = accept(b"5\r\nhello\r\n0\r\nX: y\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!(data, b"hello");
        assert_eq!(rest, b"GET / HTTP/1.1\r\n\r\n");
        let (_, rest) = accept(b"0\r\n\r\n\r\n");
        assert_eq!(rest, b"\r\n");
    }

    #[test]
    fn finished_decoder_consumes_nothing_more() {
        let mut dec = ChunkedDecoder::new(big());
        let mut input = BytesMut::from(&b"0\r\nX: 1\r\n\r\nnext"[..]);
        let mut out = BytesMut::new();
        assert_eq!(dec.decode(&mut input, &mut out), Ok(true));
        assert!(dec.is_done());
        assert_eq!(dec.decode(&mut input, &mut out), Ok(true));
        assert_eq!(&input[..], b"next");
        assert_eq!(
            dec.take_trailers().get("x").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert!(dec.trailers().is_empty());
    }

    #[test]
    fn errors_are_sticky() {
        let mut dec = ChunkedDecoder::new(big());
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&b"5x\r\n"[..]);
        let err = dec.decode(&mut input, &mut out).unwrap_err();
        assert_eq!(&input[..], b"x\r\n", "input stops at the offending byte");
        let mut valid = BytesMut::from(&b"0\r\n\r\n"[..]);
        assert_eq!(dec.decode(&mut valid, &mut out), Err(err));
        assert_eq!(valid.len(), 5, "a poisoned decoder consumes nothing");
    }

    #[test]
    fn rejects_huge_sizes_without_overflow() {
        assert_eq!(
            reject_with(b"ffffffffffffffff\r\n", big()),
            FramingError::TooLarge
        );
        assert_eq!(
            reject_with(b"FFFFFFFFFFFFFFFF", big()),
            FramingError::TooLarge
        );
        assert_eq!(
            reject(b"00000000000000005\r\nhello\r\n0\r\n\r\n"),
            malformed("chunk size has more than 16 hex digits")
        );
        // Under a normal limit a long size is TooLarge as soon as it exceeds the
        // budget; without a limit the 17th digit is rejected instead.
        assert_eq!(
            reject_with(b"10000000000000000\r\n", big()),
            FramingError::TooLarge
        );
        let unlimited = Limits {
            max_body: u64::MAX,
            ..big()
        };
        assert_eq!(
            reject_with(b"10000000000000000\r\n", unlimited),
            malformed("chunk size has more than 16 hex digits")
        );
        // With no body limit the largest size is representable and simply waits for data.
        let o = all_ways(b"ffffffffffffffff\r\nabc", unlimited);
        assert_eq!((o.result, o.out), (Ok(false), b"abc".to_vec()));
        assert_eq!(
            reject_with(
                b"ffffffffffffffff\r\n",
                Limits {
                    max_body: u64::MAX - 1,
                    ..big()
                }
            ),
            FramingError::TooLarge
        );
    }

    #[test]
    fn rejects_chunk_exceeding_remaining_budget_before_buffering() {
        let limits = Limits {
            max_body: 10,
            ..big()
        };
        let o = all_ways(b"6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", limits);
        assert_eq!(o.result, Err(FramingError::TooLarge));
        assert_eq!(o.out, b"abcdef");
        assert_eq!(
            o.leftover, b"5\r\nghijk\r\n0\r\n\r\n",
            "the oversized size digit is not consumed"
        );
        // Exactly at the limit is fine.
        let o = all_ways(b"6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", limits);
        assert_eq!((o.result, o.out), (Ok(true), b"abcdefghij".to_vec()));
        // The size alone triggers the error: no data needs to arrive.
        assert_eq!(reject_with(b"b", limits), FramingError::TooLarge);
        // A zero body limit still admits the last-chunk.
        let zero = Limits {
            max_body: 0,
            ..big()
        };
        assert_eq!(all_ways(b"0\r\n\r\n", zero).result, Ok(true));
        assert_eq!(
            reject_with(b"1\r\nx\r\n0\r\n\r\n", zero),
            FramingError::TooLarge
        );
    }

    #[test]
    fn rejects_missing_or_blank_size() {
        for case in [
            &b"\r\n"[..],
            b" \r\n",
            b";\r\n",
            b";x\r\n",
            b"\t5\r\n",
            b" 5\r\n",
            b"\n",
            b"\r\n0\r\n\r\n",
        ] {
            assert_eq!(
                reject(case),
                malformed("missing chunk size"),
                "{:?}",
                case.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn rejects_junk_in_size_line() {
        for case in [
            &b"5x\r\n"[..],
            b"0x5\r\n",
            b"+5\r\n",
            b"-5\r\n",
            b"5\0\r\n",
            b"5 x\r\n",
            b"5 \r\nhello\r\n",
            b"5;\r\n",
            b"5;a=\r\n",
            b"5;=b\r\n",
            b"5;a=b \r\n",
            b"5;a \r\n",
            b"5;a b\r\n",
            b"5;a=\"b\"c\r\n",
            b"5;a=\"b\" c\r\n",
            b"g\r\n",
        ] {
            reject(case);
        }
    }

    #[test]
    fn rejects_bare_lf_where_crlf_is_required() {
        let cases: &[(&[u8], &str)] = &[
            (b"5\nhello\r\n0\r\n\r\n", "bare LF in chunk-size line"),
            (b"5;a=b\nhello\r\n", "bare LF in chunk-size line"),
            (b"5;a=\"b\"\n", "bare LF in chunk-size line"),
            (b"5;a\n", "bare LF in chunk-size line"),
            (b"5\r\nhello\n0\r\n\r\n", "bare LF after chunk data"),
            (b"0\r\nX-A: 1\n\r\n", "bare LF in trailer section"),
            (b"0\r\nX-A: 1\r\n\n", "bare LF in trailer section"),
            (b"0\r\n\n", "bare LF in trailer section"),
            (b"0\n\r\n", "bare LF in chunk-size line"),
        ];
        for (case, reason) in cases {
            assert_eq!(
                reject(case),
                malformed(reason),
                "{:?}",
                case.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn rejects_bare_cr() {
        let cases: &[(&[u8], &str)] = &[
            (b"5\rhello\r\n", "bare CR in chunk-size line"),
            (b"5\r\r\n", "bare CR in chunk-size line"),
            (b"5;a=b\rx", "bare CR in chunk-size line"),
            (b"5\r\nhello\rx", "bare CR after chunk data"),
            (b"0\r\nX: 1\rx", "bare CR in trailer section"),
            (b"0\r\n\rx", "bare CR at end of chunked body"),
            (b"0\r\n\r\r\n", "bare CR at end of chunked body"),
        ];
        for (case, reason) in cases {
            assert_eq!(
                reject(case),
                malformed(reason),
                "{:?}",
                case.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn rejects_control_characters_in_extensions() {
        for ctl in (0u8..0x20)
            .chain([0x7f])
            .filter(|&b| b != b'\t' && b != b'\r' && b != b'\n')
        {
            for template in [
                &b"5;a\x01=b\r\n"[..],
                b"5;a=\x01\r\n",
                b"5;a=\"\x01\"\r\n",
                b"5;a=b\x01\r\n",
                b"5;\x01\r\n",
                b"5;a=\"\\\x01\"\r\n",
                b"5;a \x01\r\n",
            ] {
                let case: Vec<u8> = template
                    .iter()
                    .map(|&b| if b == 1 { ctl } else { b })
                    .collect();
                reject(&case);
            }
        }
        assert_eq!(
            reject(b"5;a=\"\x00\"\r\n"),
            malformed("control character in chunk extension")
        );
    }

    #[test]
    fn rejects_extension_names_and_values_that_are_not_tokens() {
        assert_eq!(
            reject(b"5;(a)=b\r\n"),
            malformed("chunk extension name is not a token")
        );
        assert_eq!(
            reject(b"5;a@=b\r\n"),
            malformed("chunk extension name is not a token")
        );
        assert_eq!(
            reject(b"5;\"a\"=b\r\n"),
            malformed("chunk extension name is not a token")
        );
        assert_eq!(
            reject(b"5;a\x80=b\r\n"),
            malformed("chunk extension name is not a token")
        );
        assert_eq!(
            reject(b"5;a=b@c\r\n"),
            malformed("chunk extension value is not a token")
        );
        assert_eq!(
            reject(b"5;a=@\r\n"),
            malformed("chunk extension value is not a token or quoted-string")
        );
    }

    #[test]
    fn rejects_unterminated_quoted_string() {
        let reason = malformed("unterminated quoted-string in chunk extension");
        assert_eq!(reject(b"5;a=\"abc\r\nhello\r\n"), reason);
        assert_eq!(reject(b"5;a=\"abc\\\"\r\nhello\r\n"), reason);
        assert_eq!(reject(b"5;a=\"abc\\\r\n"), reason);
        assert_eq!(reject(b"5;a=\"abc\n"), reason);
    }

    #[test]
    fn size_line_limit_counts_digits_and_extensions() {
        let limits = Limits {
            max_ext_bytes: 10,
            ..big()
        };
        // "5;abcdefgh" is exactly 10 bytes.
        assert_eq!(
            all_ways(b"5;abcdefgh\r\nhello\r\n0\r\n\r\n", limits).result,
            Ok(true)
        );
        let reason = malformed("chunk-size line exceeds the extension limit");
        assert_eq!(
            reject_with(b"5;abcdefghi\r\nhello\r\n0\r\n\r\n", limits),
            reason
        );
        assert_eq!(reject_with(b"5;a=\"bcdefgh\r\n", limits), reason);
        assert_eq!(reject_with(b"5          ;a\r\n", limits), reason);
        // The limit is per line, not cumulative.
        let many = b"1;abcdefgh\r\nx\r\n".repeat(50);
        let o = all_ways(&[&many[..], b"0;abcdefgh\r\n\r\n"].concat(), limits);
        assert_eq!((o.result, o.out.len()), (Ok(true), 50));
    }

    #[test]
    fn rejects_chunk_data_not_followed_by_crlf() {
        assert_eq!(
            reject(b"5\r\nhelloX\r\n0\r\n\r\n"),
            malformed("chunk data not followed by CRLF")
        );
        let o = all_ways(b"5\r\nhello0\r\n\r\n", big());
        assert_eq!(
            (o.result, o.out),
            (
                Err(malformed("chunk data not followed by CRLF")),
                b"hello".to_vec()
            )
        );
    }

    #[test]
    fn rejects_invalid_trailer_lines() {
        let cases: &[(&[u8], &str)] = &[
            (b"0\r\nXA\r\n\r\n", "trailer field line has no colon"),
            (
                b"0\r\nX-A : 1\r\n\r\n",
                "whitespace before colon in trailer field",
            ),
            (
                b"0\r\nX-A\t: 1\r\n\r\n",
                "whitespace before colon in trailer field",
            ),
            (
                b"0\r\nX-A: 1\r\n  folded\r\n\r\n",
                "obs-fold or leading whitespace in trailer section",
            ),
            (
                b"0\r\nX-A: 1\r\n\tfolded\r\n\r\n",
                "obs-fold or leading whitespace in trailer section",
            ),
            (
                b"0\r\n X-A: 1\r\n\r\n",
                "obs-fold or leading whitespace in trailer section",
            ),
            (b"0\r\nX(A: 1\r\n\r\n", "invalid trailer field name"),
            (b"0\r\n(X: 1\r\n\r\n", "invalid trailer field name"),
            (b"0\r\nX\x80: 1\r\n\r\n", "invalid trailer field name"),
            (b"0\r\n: 1\r\n\r\n", "empty trailer field name"),
            (
                b"0\r\nX-A: 1\x00\r\n\r\n",
                "invalid byte in trailer field value",
            ),
            (
                b"0\r\nX-A: \x7f\r\n\r\n",
                "invalid byte in trailer field value",
            ),
            (
                b"0\r\nX-A: a\x0bb\r\n\r\n",
                "invalid byte in trailer field value",
            ),
        ];
        for (case, reason) in cases {
            assert_eq!(
                reject(case),
                malformed(reason),
                "{:?}",
                case.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn trailer_limits_apply_to_the_whole_section() {
        // Each "A: 1\r\n" line is 6 bytes; the final CRLF is not counted.
        let three = b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        let four = b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        let bytes18 = Limits {
            max_trailer_bytes: 18,
            ..big()
        };
        assert_eq!(all_ways(three, bytes18).result, Ok(true));
        assert_eq!(reject_with(four, bytes18), FramingError::TrailersTooLarge);
        let bytes17 = Limits {
            max_trailer_bytes: 17,
            ..big()
        };
        assert_eq!(reject_with(three, bytes17), FramingError::TrailersTooLarge);
        let fields3 = Limits {
            max_trailer_fields: 3,
            ..big()
        };
        assert_eq!(all_ways(three, fields3).result, Ok(true));
        assert_eq!(reject_with(four, fields3), FramingError::TrailersTooLarge);
        let none = Limits {
            max_trailer_fields: 0,
            max_trailer_bytes: 0,
            ..big()
        };
        assert_eq!(all_ways(b"0\r\n\r\n", none).result, Ok(true));
        assert_eq!(
            reject_with(b"0\r\nA: 1\r\n\r\n", none),
            FramingError::TrailersTooLarge
        );
    }

    #[test]
    fn error_status_codes() {
        assert_eq!(
            FramingError::TooLarge.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(malformed("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            FramingError::TrailersTooLarge.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(
            FramingError::UnsupportedCoding.status(),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            malformed("bad").to_string(),
            "malformed message framing: bad"
        );
    }

    /// Chunk-encodes `data` in chunks of the given sizes, cycling through
    /// them, with an extension on every third chunk.
    fn encode_chunked(data: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut encoded = Vec::with_capacity(data.len() + data.len() / 4);
        let mut rest = data;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            let ext: &[u8] = if i % 3 == 0 { b" ; i=\"x\"" } else { b"" };
            encoded.extend_from_slice(format!("{n:X}").as_bytes());
            encoded.extend_from_slice(ext);
            encoded.extend_from_slice(b"\r\n");
            encoded.extend_from_slice(&rest[..n]);
            encoded.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        encoded.extend_from_slice(b"0\r\nX-Sum: 1\r\n\r\n");
        encoded
    }

    #[test]
    fn megabyte_of_chunks_fed_byte_by_byte_is_linear() {
        let data: Vec<u8> = (0..1usize << 20).map(|i| (i * 31 % 251) as u8).collect();
        let encoded = encode_chunked(&data, &[1, 7, 300, 4096, 65536, 2]);
        let started = std::time::Instant::now();
        let mut dec = ChunkedDecoder::new(Limits {
            max_body: 1 << 20,
            ..big()
        });
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut done = false;
        for &b in &encoded {
            assert!(!done);
            input.extend_from_slice(&[b]);
            done = dec.decode(&mut input, &mut out).expect("valid input");
        }
        assert!(done && input.is_empty());
        assert_eq!(&out[..], &data[..]);
        assert_eq!(dec.trailers().len(), 1);
        // Only a guard against accidental quadratic behaviour, which would take minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn long_extension_and_trailer_lines_fed_byte_by_byte() {
        let limits = Limits {
            max_ext_bytes: 64 * 1024,
            max_trailer_bytes: 64 * 1024,
            ..big()
        };
        let mut input = b"1;a=\"".to_vec();
        input.extend(std::iter::repeat_n(b'e', 60 * 1024));
        input.extend_from_slice(b"\"\r\nx\r\n0\r\nX-Long: ");
        input.extend(std::iter::repeat_n(b'v', 60 * 1024));
        input.extend_from_slice(b"\r\n\r\n");
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let o = drive(&bytes, limits);
        assert_eq!((o.result, o.out), (Ok(true), b"x".to_vec()));
        assert_eq!(o.trailers[0].1.len(), 60 * 1024);
    }

    /// Bytes that matter to the grammar, so mutations hit interesting cases.
    fn interesting_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => select(vec![b'\r', b'\n', b';', b'=', b'"', b'\\', b' ', b'\t', b':', b'0', b'1', b'f', b'F', b'a', b'x', 0, 0x7f, 0x80, 0xff]),
            1 => any::<u8>(),
        ]
    }

    fn ext_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(Vec::new()),
            Just(b";a".to_vec()),
            Just(b";name=value".to_vec()),
            Just(b" ; a=b ; c=\"q \\\" d\"".to_vec()),
            Just(b"\t;\tx\t=\t\"\"".to_vec()),
            "[a-z]{1,5}".prop_map(|s| format!(";{s}=\"{s}\\\"\"").into_bytes()),
        ]
    }

    /// A valid chunked body: (encoding, data, trailers, pipelined bytes).
    #[derive(Debug, Clone)]
    struct ValidBody {
        encoded: Vec<u8>,
        data: Vec<u8>,
        trailers: Vec<(String, Vec<u8>)>,
        pipelined: Vec<u8>,
    }

    fn valid_body() -> impl Strategy<Value = ValidBody> {
        (
            vec(
                (
                    vec(any::<u8>(), 1..24),
                    ext_strategy(),
                    any::<bool>(),
                    0usize..3,
                ),
                0..5,
            ),
            ext_strategy(),
            vec(("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,8}", "[ -~]{0,8}"), 0..3),
            vec(any::<u8>(), 0..8),
        )
            .prop_map(|(chunks, last_ext, trailer_lines, pipelined)| {
                let mut encoded = Vec::new();
                let mut data = Vec::new();
                for (chunk, ext, upper, zeros) in chunks {
                    let size = if upper {
                        format!("{:X}", chunk.len())
                    } else {
                        format!("{:x}", chunk.len())
                    };
                    encoded.extend_from_slice("0".repeat(zeros).as_bytes());
                    encoded.extend_from_slice(size.as_bytes());
                    encoded.extend_from_slice(&ext);
                    encoded.extend_from_slice(b"\r\n");
                    encoded.extend_from_slice(&chunk);
                    encoded.extend_from_slice(b"\r\n");
                    data.extend_from_slice(&chunk);
                }
                encoded.push(b'0');
                encoded.extend_from_slice(&last_ext);
                encoded.extend_from_slice(b"\r\n");
                let mut trailers = Vec::new();
                for (name, value) in trailer_lines {
                    encoded.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
                    trailers.push((
                        name.to_ascii_lowercase(),
                        trim_ows(value.as_bytes()).to_vec(),
                    ));
                }
                encoded.extend_from_slice(b"\r\n");
                encoded.extend_from_slice(&pipelined);
                ValidBody {
                    encoded,
                    data,
                    trailers,
                    pipelined,
                }
            })
    }

    /// Applies insert / delete / replace mutations to a valid body.
    fn near_valid() -> impl Strategy<Value = Vec<u8>> {
        (
            valid_body(),
            vec((any::<Index>(), 0u8..3, interesting_byte()), 0..4),
        )
            .prop_map(|(body, mutations)| {
                let mut bytes = body.encoded;
                for (at, op, byte) in mutations {
                    let i = at.index(bytes.len() + 1);
                    match op {
                        0 => bytes.insert(i, byte),
                        1 if i < bytes.len() => {
                            bytes.remove(i);
                        }
                        _ if i < bytes.len() => bytes[i] = byte,
                        _ => bytes.push(byte),
                    }
                }
                bytes
            })
    }

    /// Either generous limits or small ones that are likely to fire.
    fn limits_strategy() -> impl Strategy<Value = Limits> {
        prop_oneof![
            Just(big()),
            (0u64..64, 0usize..24, 0usize..40, 0usize..4).prop_map(|(b, e, t, f)| Limits {
                max_body: b,
                max_ext_bytes: e,
                max_trailer_bytes: t,
                max_trailer_fields: f,
            }),
        ]
    }

    /// The core property: whole, split at random points, and byte at a time
    /// all give the same data, error, leftover and trailers.
    fn assert_segmentation_invariant(
        input: &[u8],
        points: &[Index],
        limits: Limits,
    ) -> Result<(), TestCaseError> {
        let whole = drive(&[input], limits);
        let split = drive(&split_at_points(input, points), limits);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let bytewise = drive(&bytes, limits);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(&whole, &bytewise);
        prop_assert!(whole.out.len() as u64 <= limits.max_body);
        Ok(())
    }

    proptest! {
        #[test]
        fn segmentation_invariance_arbitrary_bytes(
            input in prop_oneof![vec(any::<u8>(), 0..64), vec(interesting_byte(), 0..128)],
            points in vec(any::<Index>(), 0..8),
            limits in limits_strategy(),
        ) {
            assert_segmentation_invariant(&input, &points, limits)?;
        }

        #[test]
        fn segmentation_invariance_near_valid_bodies(
            input in near_valid(),
            points in vec(any::<Index>(), 0..8),
            limits in limits_strategy(),
        ) {
            assert_segmentation_invariant(&input, &points, limits)?;
        }

        #[test]
        fn valid_bodies_round_trip(body in valid_body(), points in vec(any::<Index>(), 0..8)) {
            let o = drive(&split_at_points(&body.encoded, &points), big());
            prop_assert_eq!(o.result, Ok(true));
            prop_assert_eq!(o.out, body.data);
            prop_assert_eq!(o.leftover, body.pipelined);
            prop_assert_eq!(o.trailers, body.trailers);
        }

        /// The trailer parser agrees with httparse, which the server uses for
        /// the header section, on every trailer section it accepts.
        #[test]
        fn accepted_trailers_agree_with_httparse(
            lines in vec(("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,8}", vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..10)), 0..5),
        ) {
            let mut section = Vec::new();
            for (name, value) in &lines {
                section.extend_from_slice(name.as_bytes());
                section.push(b':');
                section.extend_from_slice(value);
                section.extend_from_slice(b"\r\n");
            }
            section.extend_from_slice(b"\r\n");
            let o = drive(&[&[&b"0\r\n"[..], &section].concat()], big());
            prop_assert_eq!(o.result, Ok(true));
            let mut parsed = vec![httparse::EMPTY_HEADER; lines.len()];
            let status = httparse::parse_headers(&section, &mut parsed);
            let Ok(httparse::Status::Complete((used, headers))) = status else {
                return Err(TestCaseError::fail(format!("httparse rejected {section:?}: {status:?}")));
            };
            prop_assert_eq!(used, section.len());
            let mut theirs: Vec<(String, Vec<u8>)> =
                headers.iter().map(|h| (h.name.to_ascii_lowercase(), trim_ows(h.value).to_vec())).collect();
            // A HeaderMap keeps the order of each name's values, not the order between names
            // (`a, b, a` iterates as `a, a, b`): compare grouped by name.
            let mut ours = o.trailers;
            ours.sort_by(|x, y| x.0.cmp(&y.0));
            theirs.sort_by(|x, y| x.0.cmp(&y.0));
            prop_assert_eq!(ours, theirs);
        }
    }

    // ---- framing() and content_length() ----

    /// A list of header field lines, for table-driven tests.
    type Fields<'a> = &'a [(&'a str, &'a [u8])];

    fn headers(fields: Fields<'_>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    const REQ: Role = Role::Request { http10: false };
    const REQ10: Role = Role::Request { http10: true };
    const OK: Role = Role::Response {
        status: 200,
        head_request: false,
    };

    #[test]
    fn request_framing() {
        let te = "transfer-encoding";
        let cl = "content-length";
        let cases: &[(Fields<'_>, Result<Framing, FramingError>)] = &[
            (&[], Ok(Framing::None)),
            (&[("host", b"x")], Ok(Framing::None)),
            (&[(cl, b"0")], Ok(Framing::Length(0))),
            (&[(cl, b"42")], Ok(Framing::Length(42))),
            (&[(te, b"chunked")], Ok(Framing::Chunked)),
            (&[(te, b"CHUNKED")], Ok(Framing::Chunked)),
            (&[(te, b" , chunked ,, ")], Ok(Framing::Chunked)),
            (&[(te, b""), (te, b"Chunked")], Ok(Framing::Chunked)),
            (
                &[(te, b"gzip, chunked")],
                Err(FramingError::UnsupportedCoding),
            ),
            (
                &[(te, b"gzip"), (te, b"chunked")],
                Err(FramingError::UnsupportedCoding),
            ),
            (
                &[(te, b"x;q=\"a b\", chunked")],
                Err(FramingError::UnsupportedCoding),
            ),
            (
                &[(te, b"gzip")],
                Err(malformed("chunked is not the final transfer coding")),
            ),
            (
                &[(te, b"chunked, gzip")],
                Err(malformed("chunked is not the final transfer coding")),
            ),
            (
                &[(te, b"chunked, chunked")],
                Err(malformed("chunked transfer coding applied more than once")),
            ),
            (
                &[(te, b"chunked;a=b")],
                Err(malformed("chunked transfer coding takes no parameters")),
            ),
            (&[(te, b"")], Err(malformed("empty Transfer-Encoding"))),
            (&[(te, b" , ")], Err(malformed("empty Transfer-Encoding"))),
            (
                &[(te, b"chunked"), (cl, b"5")],
                Err(malformed(
                    "both Transfer-Encoding and Content-Length: the length is ambiguous",
                )),
            ),
            (
                &[(te, b"identity"), (cl, b"5")],
                Err(malformed(
                    "both Transfer-Encoding and Content-Length: the length is ambiguous",
                )),
            ),
            (
                &[(te, b"chunked\xff")],
                Err(malformed("Transfer-Encoding is not visible ASCII")),
            ),
            (
                &[(te, b"\x80"), (te, b"chunked")],
                Err(malformed("Transfer-Encoding is not visible ASCII")),
            ),
            (
                &[(te, b"chun ked")],
                Err(malformed("invalid byte after transfer coding")),
            ),
            (
                &[(te, b"\"chunked\"")],
                Err(malformed("transfer coding is not a token")),
            ),
            (
                &[(te, b"x;q=\"a,b\", chunked")],
                Err(malformed("unterminated quoted-string in transfer coding")),
            ),
            (
                &[(te, b"x;q, chunked")],
                Err(malformed("transfer coding parameter without value")),
            ),
            (
                &[(te, b"x;=1, chunked")],
                Err(malformed("transfer coding parameter name is not a token")),
            ),
            (
                &[(te, b"x;q=, chunked")],
                Err(malformed(
                    "transfer coding parameter value is not a token or quoted-string",
                )),
            ),
        ];
        for (fields, expected) in cases {
            assert_eq!(&framing(&headers(fields), REQ), expected, "{fields:?}");
        }
        assert_eq!(
            framing(&headers(&[(te, b"chunked")]), REQ10),
            Err(malformed("Transfer-Encoding in an HTTP/1.0 request"))
        );
        assert_eq!(
            framing(&headers(&[(cl, b"3")]), REQ10),
            Ok(Framing::Length(3))
        );
    }

    #[test]
    fn response_framing() {
        let te = "transfer-encoding";
        let cl = "content-length";
        let resp = |status| Role::Response {
            status,
            head_request: false,
        };
        assert_eq!(framing(&headers(&[]), OK), Ok(Framing::UntilClose));
        assert_eq!(framing(&headers(&[(cl, b"7")]), OK), Ok(Framing::Length(7)));
        assert_eq!(
            framing(&headers(&[(te, b"chunked")]), OK),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(&headers(&[(te, b"gzip, chunked")]), OK),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(&headers(&[(te, b"gzip")]), OK),
            Ok(Framing::UntilClose)
        );
        assert_eq!(
            framing(&headers(&[(te, b"chunked, gzip")]), OK),
            Ok(Framing::UntilClose)
        );
        assert_eq!(
            framing(&headers(&[(te, b"chunked"), (cl, b"7")]), OK),
            Err(malformed(
                "both Transfer-Encoding and Content-Length: the length is ambiguous"
            ))
        );
        assert_eq!(
            framing(&headers(&[(te, b"chunked, chunked")]), OK),
            Err(malformed("chunked transfer coding applied more than once"))
        );
        assert_eq!(
            framing(&headers(&[(cl, b"7, 8")]), OK),
            Err(malformed("conflicting Content-Length values"))
        );
        // Bodiless responses ignore (and do not validate) the framing fields.
        for role in [
            resp(100),
            resp(101),
            resp(199),
            resp(204),
            resp(304),
            Role::Response {
                status: 200,
                head_request: true,
            },
        ] {
            assert_eq!(
                framing(&headers(&[(te, b"chunked"), (cl, b"x")]), role),
                Ok(Framing::None)
            );
        }
        assert_eq!(framing(&headers(&[]), resp(205)), Ok(Framing::UntilClose));
        assert_eq!(
            framing(&headers(&[(cl, b"0")]), resp(404)),
            Ok(Framing::Length(0))
        );
    }

    #[test]
    fn content_length_is_strict() {
        let cl = "content-length";
        let ok: &[(Fields<'_>, Option<u64>)] = &[
            (&[], None),
            (&[(cl, b"0")], Some(0)),
            (&[(cl, b"007")], Some(7)),
            (&[(cl, b"5, 5")], Some(5)),
            (&[(cl, b"5,5"), (cl, b"5")], Some(5)),
            (
                &[(cl, b"999999999999999999")],
                Some(999_999_999_999_999_999),
            ),
        ];
        for (fields, expected) in ok {
            assert_eq!(
                content_length(&headers(fields)),
                Ok(*expected),
                "{fields:?}"
            );
        }
        let bad: &[&[u8]] = &[
            b"",
            b" ",
            b"+5",
            b"-5",
            b"5 5",
            b"5,",
            b",5",
            b"5,,5",
            b"0x5",
            b"5.0",
            b"1e3",
            b"5, 6",
            b"\xd9\xa3",
            b"1000000000000000000",
            b"18446744073709551616",
        ];
        for value in bad {
            assert!(
                matches!(
                    content_length(&headers(&[(cl, value)])),
                    Err(FramingError::Malformed(_))
                ),
                "{value:?}"
            );
        }
        assert_eq!(
            content_length(&headers(&[(cl, b"5"), (cl, b"6")])),
            Err(malformed("conflicting Content-Length values"))
        );
    }

    fn role_strategy() -> impl Strategy<Value = Role> {
        prop_oneof![
            any::<bool>().prop_map(|http10| Role::Request { http10 }),
            (prop_oneof![100u16..600, any::<u16>()], any::<bool>()).prop_map(
                |(status, head_request)| Role::Response {
                    status,
                    head_request
                }
            ),
        ]
    }

    fn field_value_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            vec(any::<u8>(), 0..16),
            "[ \t,;=\"\\\\a-zA-Z0-9+-]{0,20}".prop_map(String::into_bytes),
            select(vec![
                "chunked",
                "Chunked",
                "gzip, chunked",
                " ,chunked, ",
                "chunked, gzip",
                "5",
                "5, 5",
                "+5",
                "00",
                "18446744073709551615"
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
        ]
    }

    proptest! {
        /// framing() never panics, and its answer is consistent with the
        /// presence of the fields and with content_length().
        #[test]
        fn framing_is_total_and_consistent(
            fields in vec((select(vec!["transfer-encoding", "content-length", "x-other"]), field_value_strategy()), 0..4),
            role in role_strategy(),
        ) {
            let mut map = HeaderMap::new();
            for (name, value) in &fields {
                if let Ok(value) = HeaderValue::from_bytes(value) {
                    map.append(*name, value);
                }
            }
            let result = framing(&map, role);
            let has_te = map.contains_key(TRANSFER_ENCODING);
            let has_cl = map.contains_key(CONTENT_LENGTH);
            let bodiless = matches!(role, Role::Response { status, head_request }
                if head_request || (100..200).contains(&status) || status == 204 || status == 304);
            if bodiless {
                prop_assert_eq!(result, Ok(Framing::None));
            } else if has_te && has_cl {
                prop_assert!(result.is_err());
            } else if has_te && role == REQ10 {
                prop_assert!(result.is_err());
            } else if has_te {
                let is_request = matches!(role, Role::Request { .. });
                prop_assert_ne!(result, Ok(Framing::None));
                prop_assert!(!matches!(result, Ok(Framing::Length(_))));
                prop_assert!(!(is_request && result == Ok(Framing::UntilClose)));
            } else {
                match content_length(&map) {
                    Ok(Some(n)) => prop_assert_eq!(result, Ok(Framing::Length(n))),
                    Ok(None) if matches!(role, Role::Request { .. }) => prop_assert_eq!(result, Ok(Framing::None)),
                    Ok(None) => prop_assert_eq!(result, Ok(Framing::UntilClose)),
                    Err(e) => prop_assert_eq!(result, Err(e)),
                }
            }
        }

        /// Coding lists are split, trimmed, case-folded and stripped of empty
        /// elements exactly as a simple model predicts.
        #[test]
        fn transfer_coding_lists_match_model(
            elements in vec((select(vec!["chunked", "CHUNKED", "ChUnKeD", "gzip", "deflate", "identity", ""]), "[ \t]{0,2}", "[ \t]{0,2}"), 1..5),
            split in any::<Index>(),
            request in any::<bool>(),
        ) {
            let rendered: Vec<String> = elements.iter().map(|(c, pre, post)| format!("{pre}{c}{post}")).collect();
            let at = split.index(rendered.len() + 1);
            let mut map = HeaderMap::new();
            for part in [&rendered[..at], &rendered[at..]] {
                if !part.is_empty() {
                    map.append(TRANSFER_ENCODING, HeaderValue::from_str(&part.join(",")).unwrap());
                }
            }
            let codings: Vec<&str> = elements.iter().map(|(c, _, _)| *c).filter(|c| !c.is_empty()).collect();
            let chunked = codings.iter().filter(|c| c.eq_ignore_ascii_case("chunked")).count();
            let last_chunked = codings.last().is_some_and(|c| c.eq_ignore_ascii_case("chunked"));
            let expected = if codings.is_empty() {
                Err(malformed("empty Transfer-Encoding"))
            } else if chunked > 1 {
                Err(malformed("chunked transfer coding applied more than once"))
            } else if request && !last_chunked {
                Err(malformed("chunked is not the final transfer coding"))
            } else if request && codings.len() > 1 {
                Err(FramingError::UnsupportedCoding)
            } else if last_chunked {
                Ok(Framing::Chunked)
            } else {
                Ok(Framing::UntilClose)
            };
            let role = if request { REQ } else { OK };
            prop_assert_eq!(framing(&map, role), expected);
        }

        /// Any value of up to 18 digits round-trips, alone or as a list of
        /// equal elements with OWS around the commas.
        #[test]
        fn content_length_round_trips(n in 0u64..1_000_000_000_000_000_000, copies in 1usize..4, ows in "[ \t]{0,2}") {
            let value = vec![n.to_string(); copies].join(&format!("{ows},{ows}"));
            let map = headers(&[("content-length", value.as_bytes())]);
            prop_assert_eq!(content_length(&map), Ok(Some(n)));
            prop_assert_eq!(framing(&map, REQ), Ok(Framing::Length(n)));
        }
    }
}
