//! Message bodies: where they end, and how to copy them without holding them.
//!
//! HTTP/1.1 has three ways to say where a body ends (RFC 9112 §6.3):
//! a `Content-Length`, the `chunked` transfer coding, or — for responses
//! only — the server closing the connection. Some messages never have a body
//! whatever their fields say: responses to HEAD, and 1xx, 204 and 304
//! responses. Getting this wrong is the classic proxy bug: relay "until the
//! origin goes quiet" and you either hang, or cut a body short, or glue the
//! next response onto this one.
//!
//! The proxy decodes every body it relays ([`BodyReader`]) and encodes it
//! again for the next hop ([`BodyWriter`]), because `Transfer-Encoding` is a
//! property of one connection, not of the message (RFC 9112 §6.1). Bodies are
//! streamed through a fixed buffer: a 1 GiB download costs 64 KiB of memory.

// While this exercise's starter stands in for the reference code, what only
// the reference used goes unused.
#![cfg_attr(feature = "ex-1-3", allow(dead_code, unused_imports))]

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use crate::error::HttpError;
use crate::message::{RequestHead, ResponseHead};

/// How the end of a body is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// A sequence of chunks ending with a zero-size chunk.
    Chunked,
    /// Everything until the sender closes the connection.
    UntilClose,
}

/// The longest chunk-size line (with extensions) we accept.
const MAX_CHUNK_LINE: usize = 4096;
/// The most trailer bytes we read (and discard) after the last chunk.
const MAX_TRAILERS: usize = 64 * 1024;

/// Reads `Content-Length` as RFC 9112 §6.3 rule 5 demands: every value must
/// be the same number, or the message is broken.
fn content_length(headers: &crate::headers::Headers) -> Result<Option<u64>, String> {
    let mut found: Option<u64> = None;
    for value in headers.get_all("Content-Length") {
        let text = std::str::from_utf8(value).map_err(|_| "Content-Length is not text")?;
        // A repeated field may also arrive as one comma-separated line.
        // Spaces and tabs only: `\u{a0}5` is no number (RFC 9110 §5.6.3).
        for item in text.split(',').map(crate::headers::trim_ows) {
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("invalid Content-Length {item:?}"));
            }
            let n: u64 = item
                .parse()
                .map_err(|_| format!("Content-Length {item:?} is too large"))?;
            match found {
                Some(prev) if prev != n => {
                    return Err("conflicting Content-Length values".to_string());
                }
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// True when the last transfer coding listed is `chunked`.
fn chunked_is_last(headers: &crate::headers::Headers) -> bool {
    headers
        .list("Transfer-Encoding")
        .last()
        .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
}

/// The transfer codings of a message other than `chunked` (such as `gzip`).
/// We only ever undo `chunked`; any other coding stays on the body we relay,
/// so it has to stay named in the response (RFC 9112 §6.1).
pub fn other_transfer_codings(headers: &crate::headers::Headers) -> Vec<String> {
    headers
        .list("Transfer-Encoding")
        .filter(|c| !c.eq_ignore_ascii_case("chunked"))
        .map(str::to_string)
        .collect()
}

// ANCHOR: request_framing
/// Where a request body ends (RFC 9112 §6.3 rules 4 to 6).
pub fn request_framing(head: &RequestHead) -> Result<Framing, HttpError> {
    let h = &head.headers;
    if h.contains("Transfer-Encoding") {
        if h.contains("Content-Length") {
            // Request smuggling lives here: two framings, two readers that
            // disagree on where the next request starts.
            return Err(HttpError::bad_request(
                "request has both Content-Length and Transfer-Encoding",
            ));
        }
        if head.minor_version == 0 {
            return Err(HttpError::bad_request(
                "Transfer-Encoding is not allowed in HTTP/1.0",
            ));
        }
        let codings: Vec<&str> = h.list("Transfer-Encoding").collect();
        if !chunked_is_last(h) {
            return Err(HttpError::bad_request(
                "the final transfer coding of a request must be chunked",
            ));
        }
        // Chunked applied twice is no coding we could fail to know: the
        // sender broke a MUST NOT (RFC 9112 §6.1), so the request is bad.
        let chunked = codings.iter().filter(|c| c.eq_ignore_ascii_case("chunked"));
        if chunked.count() > 1 {
            return Err(HttpError::bad_request(
                "the chunked transfer coding is applied more than once",
            ));
        }
        if codings.len() > 1 {
            // We only understand chunked; RFC 9112 §6.1 asks for 501.
            return Err(HttpError::new(
                501,
                format!("unsupported transfer coding {:?}", codings.join(", ")),
            ));
        }
        return Ok(Framing::Chunked);
    }
    match content_length(h).map_err(HttpError::bad_request)? {
        None => Ok(Framing::Empty),
        // An explicit zero stays a length so that it is forwarded: RFC 9110
        // §8.6 has a POST without content say `Content-Length: 0`, and some
        // servers refuse one without it (411 Length Required).
        Some(n) => Ok(Framing::Length(n)),
    }
}
// ANCHOR_END: request_framing

// ANCHOR: response_framing
/// Where a response body ends (RFC 9112 §6.3 rules 1 to 7). `to_head` is
/// true when the request was HEAD.
pub fn response_framing(to_head: bool, head: &ResponseHead) -> Result<Framing, String> {
    let status = head.status;
    if to_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    let h = &head.headers;
    if h.contains("Transfer-Encoding") {
        // Transfer-Encoding wins over Content-Length (rule 3); the caller
        // drops the Content-Length when it re-frames the body.
        return Ok(if chunked_is_last(h) {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    match content_length(h)? {
        Some(0) => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
        None => Ok(Framing::UntilClose),
    }
}
// ANCHOR_END: response_framing

/// Reads a body and hands out its decoded bytes; end of body is `Ok(0)`.
///
/// A body that ends too early (the peer closed before the promised length,
/// or in the middle of a chunk) is an `UnexpectedEof` error, never a quiet
/// end: a truncated response must not look complete to anyone, least of all
/// a cache (RFC 9111 §3.3).
pub struct BodyReader<'a, R: BufRead> {
    inner: &'a mut R,
    state: ReadState,
}

enum ReadState {
    Remaining(u64),
    ChunkStart,
    InChunk(u64),
    ChunkEnd,
    UntilClose,
    Done,
}

fn truncated(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_string())
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl<'a, R: BufRead> BodyReader<'a, R> {
    pub fn new(inner: &'a mut R, framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => ReadState::Done,
            Framing::Length(n) => ReadState::Remaining(n),
            Framing::Chunked => ReadState::ChunkStart,
            Framing::UntilClose => ReadState::UntilClose,
        };
        BodyReader { inner, state }
    }

    /// True once the whole body has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ReadState::Done)
    }

    // ANCHOR: chunked
    /// Reads one line (without its CRLF or bare LF), refusing lines longer
    /// than `max`.
    #[cfg(not(feature = "ex-1-3"))]
    fn read_line(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                return Err(truncated("body ended inside a chunked line"));
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&available[..i]);
                    self.inner.consume(i + 1);
                    break;
                }
                None => {
                    let n = available.len();
                    line.extend_from_slice(available);
                    self.inner.consume(n);
                }
            }
            // +1 leaves room for the CR of a CRLF split across reads.
            if line.len() > max + 1 {
                return Err(invalid("chunked line is too long".into()));
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > max {
            return Err(invalid("chunked line is too long".into()));
        }
        Ok(line)
    }

    // ANCHOR: chunk_size
    /// Parses `1a2b;ext=1` into 0x1a2b. Sizes are hex and unbounded in the
    /// grammar (RFC 9112 §7.1), so we check for overflow rather than trust
    /// the sender.
    #[cfg(not(feature = "ex-1-3"))]
    fn read_chunk_size(&mut self) -> io::Result<u64> {
        let line = self.read_line(MAX_CHUNK_LINE)?;
        let digits_end = line
            .iter()
            .position(|&b| !b.is_ascii_hexdigit())
            .unwrap_or(line.len());
        let rest = &line[digits_end..];
        let rest_ok = rest.is_empty() || rest[0] == b';' || rest[0] == b' ' || rest[0] == b'\t';
        if digits_end == 0 || !rest_ok {
            return Err(invalid(format!(
                "bad chunk size line {:?}",
                String::from_utf8_lossy(&line)
            )));
        }
        let mut size: u64 = 0;
        for &b in &line[..digits_end] {
            let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
            size = size
                .checked_mul(16)
                .and_then(|s| s.checked_add(digit))
                .ok_or_else(|| invalid("chunk size overflows".into()))?;
        }
        Ok(size)
    }
    // ANCHOR_END: chunk_size

    /// Skips the trailer section after the last chunk. We do not forward
    /// trailers: they are optional metadata (RFC 9110 §6.5) and dropping
    /// them is allowed.
    #[cfg(not(feature = "ex-1-3"))]
    fn skip_trailers(&mut self) -> io::Result<()> {
        let mut total = 0;
        loop {
            let line = self.read_line(MAX_TRAILERS)?;
            if line.is_empty() {
                return Ok(());
            }
            total += line.len();
            if total > MAX_TRAILERS {
                return Err(invalid("trailer section is too large".into()));
            }
        }
    }

    /// The `ChunkStart` state of `read`: a chunk begins with its size line.
    #[cfg(not(feature = "ex-1-3"))]
    fn start_chunk(&mut self) -> io::Result<()> {
        let size = self.read_chunk_size()?;
        if size == 0 {
            self.skip_trailers()?;
            self.state = ReadState::Done;
        } else {
            self.state = ReadState::InChunk(size);
        }
        Ok(())
    }

    /// The `ChunkEnd` state of `read`: the CRLF after a chunk's data.
    #[cfg(not(feature = "ex-1-3"))]
    fn end_chunk(&mut self) -> io::Result<()> {
        if !self.read_line(0)?.is_empty() {
            return Err(invalid("chunk data is longer than its size".into()));
        }
        self.state = ReadState::ChunkStart;
        Ok(())
    }
    // ANCHOR_END: chunked
}

// Exercise 1.3: with its feature, the student's chunked decoder (the methods
// above from `read_line` on) replaces the reference one.
#[cfg(feature = "ex-1-3")]
#[path = "../exercises/stage1/chunked.rs"]
mod ex_1_3;

impl<R: BufRead> Read for BodyReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                ReadState::Done => return Ok(0),
                ReadState::Remaining(left) | ReadState::InChunk(left) => {
                    let want = (out.len() as u64).min(left) as usize;
                    let n = self.inner.read(&mut out[..want])?;
                    if n == 0 && want > 0 {
                        return Err(truncated("body is shorter than its framing says"));
                    }
                    let left = left - n as u64;
                    self.state = match (&self.state, left) {
                        (ReadState::Remaining(_), 0) => ReadState::Done,
                        (ReadState::Remaining(_), _) => ReadState::Remaining(left),
                        (_, 0) => ReadState::ChunkEnd,
                        _ => ReadState::InChunk(left),
                    };
                    return Ok(n);
                }
                ReadState::ChunkStart => self.start_chunk()?,
                ReadState::ChunkEnd => self.end_chunk()?,
                ReadState::UntilClose => {
                    let n = self.inner.read(out)?;
                    if n == 0 {
                        self.state = ReadState::Done;
                    }
                    return Ok(n);
                }
            }
        }
    }
}

/// Encodes a body for the next hop.
pub struct BodyWriter<'a, W: Write> {
    inner: &'a mut W,
    chunked: bool,
    scratch: Vec<u8>,
    /// Bytes put on the wire, framing included.
    pub written: u64,
}

// ANCHOR: body_writer
impl<'a, W: Write> BodyWriter<'a, W> {
    /// `framing` is how this hop's body is framed: chunked bodies get chunk
    /// headers; every other kind is written as it is.
    pub fn new(inner: &'a mut W, framing: Framing) -> Self {
        BodyWriter {
            inner,
            chunked: framing == Framing::Chunked,
            scratch: Vec::new(),
            written: 0,
        }
    }

    pub fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.chunked {
            // One write per chunk: header, data and CRLF together.
            self.scratch.clear();
            self.scratch
                .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            self.scratch.extend_from_slice(data);
            self.scratch.extend_from_slice(b"\r\n");
            self.inner.write_all(&self.scratch)?;
            self.written += self.scratch.len() as u64;
        } else {
            self.inner.write_all(data)?;
            self.written += data.len() as u64;
        }
        Ok(())
    }

    /// Ends the body: the last chunk for chunked bodies.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.chunked {
            self.inner.write_all(b"0\r\n\r\n")?;
            self.written += 5;
        }
        self.inner.flush()
    }
}
// ANCHOR_END: body_writer

/// Which side of a copy failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the body failed: the sender closed early, sent bad framing,
    /// or went silent.
    Read(io::Error),
    /// Writing failed: the receiver went away.
    Write(io::Error),
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Read(e) => write!(f, "reading the body failed: {e}"),
            CopyError::Write(e) => write!(f, "writing the body failed: {e}"),
        }
    }
}

impl std::error::Error for CopyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CopyError::Read(e) | CopyError::Write(e) => Some(e),
        }
    }
}

// ANCHOR: copy_body
/// Streams a body from `from` (already decoded) to `to`, calling `tap` with
/// every piece on the way (the cache uses it to keep a copy). Returns the
/// number of body bytes copied. The end of the body is written only when the
/// whole body was read, so a truncated body never looks complete downstream.
#[cfg(not(feature = "ex-1-2"))]
pub fn copy_body<R: BufRead, W: Write>(
    from: &mut BodyReader<'_, R>,
    to: &mut BodyWriter<'_, W>,
    mut tap: impl FnMut(&[u8]),
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        tap(&buf[..n]);
        to.write_data(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
    to.finish().map_err(CopyError::Write)?;
    Ok(total)
}
// ANCHOR_END: copy_body

// Exercise 1.2: with its feature, the student's `copy_body` replaces the one
// above.
#[cfg(feature = "ex-1-2")]
#[path = "../exercises/stage1/copy_body.rs"]
mod ex_1_2;
#[cfg(feature = "ex-1-2")]
pub use ex_1_2::copy_body;

// The tests are long (the chunked decoder has many ways to go wrong), so
// they live in their own file.
#[cfg(test)]
mod tests;
