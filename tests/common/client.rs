//! A raw HTTP client for talking to the proxy byte by byte.
//!
//! It sends exactly the bytes a test gives it, and reads responses by their
//! framing (RFC 9112 §6.3): Content-Length, chunked (decoded, with the raw
//! bytes kept too), until close, or no body at all for HEAD, 1xx, 204 and 304.
//! Several responses can be read from one connection, so persistent and
//! pipelined connections can be checked. Every socket has a read and a write
//! timeout, so a proxy that hangs fails the test instead of hanging it.
//!
//! Each connection logs what it sent and received (see [`super::wire`]), so
//! that a failure can show the exchange: the client's own panics ("no
//! response", "incomplete response") carry its transcript, and so do the
//! `expect_*` assertions on a [`Response`] (in [`super::expect`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::expect::Wire;
use super::origin::find_header;
pub use super::request::{Req, authority_of};
use super::wire::{self, SharedLog};

/// The read and write timeout of every client socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How the body of a response was delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    NoBody,
    Length(u64),
    Chunked,
    UntilClose,
}

/// One response as the client received it.
#[derive(Clone, Debug)]
pub struct Response {
    /// `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Header fields in wire order.
    pub headers: Vec<(String, String)>,
    /// The body, decoded when it was chunked.
    pub body: Vec<u8>,
    /// The body bytes exactly as they arrived (chunk framing included).
    pub raw_body: Vec<u8>,
    pub framing: Framing,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
    /// False when the connection ended before the framing said the body
    /// was over.
    pub complete: bool,
    /// The connection it came on, for transcripts.
    pub wire: Wire,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Does a `Connection` field carry the `close` token?
    pub fn says_close(&self) -> bool {
        self.header_all("Connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
    }

    /// `200 OK`, say.
    pub fn status_line(&self) -> String {
        format!("{} {}", self.status, self.reason)
    }
}

/// Why no response could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection ended (cleanly or by reset) before any byte of a
    /// response.
    Closed,
    /// The bytes were not an HTTP response.
    Malformed(String),
    /// A timeout or another socket error before any byte of a response.
    Io(io::Error),
    /// A timeout or another socket error after part of a response.
    Cut(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A client connection with a read buffer that keeps bytes past the end of
/// one response for the next.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    log: SharedLog,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: Vec::new(),
            pos: 0,
            log: wire::new_log(addr),
        }
    }

    /// What went over this connection so far, for a failure message.
    pub fn transcript(&self) -> String {
        wire::transcript(&self.log)
    }

    /// Panics with `what` and the transcript of this connection.
    #[track_caller]
    pub fn fail(&self, what: impl fmt::Display) -> ! {
        panic!("{what}\n{}", self.transcript())
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set timeout");
    }

    /// Sends `bytes`; panics if the proxy is gone.
    #[track_caller]
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        if let Err(e) = self.try_send(bytes) {
            self.fail(format_args!("cannot send to the proxy: {e}"));
        }
    }

    /// Sends `bytes`, for tests where the proxy may stop reading early.
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        let bytes = bytes.as_ref();
        wire::sent(&self.log, bytes);
        let result = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush());
        if let Err(e) = &result {
            wire::failed(&self.log, format!("sending failed: {e}"));
        }
        result
    }

    /// Sends `bytes` in writes of `piece` bytes with `pause` between them,
    /// so the proxy receives them in many reads.
    #[track_caller]
    pub fn send_in_pieces(&mut self, bytes: impl AsRef<[u8]>, piece: usize, pause: Duration) {
        for (i, part) in bytes.as_ref().chunks(piece.max(1)).enumerate() {
            if i > 0 && !pause.is_zero() {
                thread::sleep(pause);
            }
            self.send(part);
        }
    }

    /// Sends a request and reads its (final or interim) response.
    #[track_caller]
    pub fn request(&mut self, req: &Req) -> Response {
        self.send(req.to_bytes());
        self.read_response_to(&req.method)
    }

    /// Shuts down our sending side: the proxy reads end of stream.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// Reads more bytes into the buffer: 0 at end of stream or on reset.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut scratch = [0u8; 64 * 1024];
        let result = self.stream.read(&mut scratch);
        self.log_read(&result, &scratch);
        match result {
            Ok(n) => {
                self.buf.extend_from_slice(&scratch[..n]);
                Ok(n)
            }
            Err(e) if is_reset(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Notes the outcome of a read in the connection's log.
    fn log_read(&self, result: &io::Result<usize>, scratch: &[u8]) {
        match result {
            Ok(0) => wire::closed(&self.log),
            Ok(n) => wire::received(&self.log, &scratch[..*n]),
            Err(e) if is_reset(e) => wire::reset(&self.log),
            Err(e) if is_timeout(e) => {
                let waited = self.stream.read_timeout().ok().flatten();
                wire::silence(&self.log, waited.unwrap_or_default());
            }
            Err(e) => wire::failed(&self.log, format!("reading failed: {e}")),
        }
    }

    /// How long a read waits, for messages.
    fn read_timeout_text(&self) -> String {
        match self.stream.read_timeout().ok().flatten() {
            Some(t) if t.subsec_millis() == 0 => format!("{} s", t.as_secs()),
            Some(t) => format!("{:.1} s", t.as_secs_f64()),
            None => "ever".into(),
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads a line including its CRLF into `raw`; returns it without the
    /// line ending, or None if the stream ended first.
    fn line(&mut self, raw: &mut Vec<u8>) -> io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buffered().iter().position(|&b| b == b'\n') {
                let bytes = self.buffered()[..=i].to_vec();
                self.pos += i + 1;
                raw.extend_from_slice(&bytes);
                let text = String::from_utf8_lossy(&bytes);
                return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
            }
            if self.fill()? == 0 {
                let rest = self.buffered().to_vec();
                self.pos = self.buf.len();
                raw.extend_from_slice(&rest);
                return Ok(None);
            }
        }
    }

    /// Appends up to `n` bytes to `out` (and `raw`); false if the stream
    /// ended first.
    fn take(&mut self, n: u64, out: &mut Vec<u8>, raw: &mut Vec<u8>) -> io::Result<bool> {
        let mut left = n;
        while left > 0 {
            if self.buffered().is_empty() && self.fill()? == 0 {
                return Ok(false);
            }
            let have = self.buffered().len().min(left as usize);
            let bytes = &self.buf[self.pos..self.pos + have];
            out.extend_from_slice(bytes);
            raw.extend_from_slice(bytes);
            self.pos += have;
            left -= have as u64;
        }
        Ok(true)
    }

    /// Reads a response to a GET-like request and insists that it is
    /// complete.
    #[track_caller]
    pub fn read_response(&mut self) -> Response {
        self.read_response_to("GET")
    }

    /// Reads a response to a `method` request (HEAD responses have no
    /// body) and insists that it is complete.
    #[track_caller]
    pub fn read_response_to(&mut self, method: &str) -> Response {
        match self.try_read_response(method) {
            Ok(r) if r.complete => r,
            Ok(r) => {
                let framing = match r.framing {
                    Framing::Length(n) => format!("Content-Length: {n}"),
                    Framing::Chunked => "a chunked body".into(),
                    _ => format!("{:?}", r.framing),
                };
                self.fail(format_args!(
                    "incomplete response: {} with {framing}, cut off after {} body bytes",
                    r.status_line(),
                    r.raw_body.len()
                ))
            }
            Err(ReadError::Closed) => {
                self.fail("no response: the connection ended before a response began")
            }
            Err(ReadError::Io(e)) if is_timeout(&e) => self.fail(format_args!(
                "no response within {}",
                self.read_timeout_text()
            )),
            Err(ReadError::Io(e)) => self.fail(format_args!("no response: {e}")),
            Err(ReadError::Cut(e)) if is_timeout(&e) => self.fail(format_args!(
                "the response stopped: nothing more came for {}",
                self.read_timeout_text()
            )),
            Err(ReadError::Cut(e)) => self.fail(format_args!("the response was cut off: {e}")),
            Err(ReadError::Malformed(what)) => {
                self.fail(format_args!("not an HTTP response: {what}"))
            }
        }
    }

    /// Reads whatever response arrives, complete or not.
    pub fn try_read_response(&mut self, method: &str) -> Result<Response, ReadError> {
        // The head: status line and fields up to the empty line.
        let mut head = Vec::new();
        let status_line = match self.line(&mut head) {
            Ok(Some(line)) => line,
            Ok(None) if head.is_empty() => return Err(ReadError::Closed),
            Ok(None) => return Err(ReadError::Malformed("closed inside the status line".into())),
            Err(e) if head.is_empty() => return Err(ReadError::Io(e)),
            Err(e) => return Err(ReadError::Cut(e)),
        };
        self.read_rest(method, &status_line, head)
            .map_err(|e| match e {
                ReadError::Io(e) => ReadError::Cut(e),
                e => e,
            })
    }

    /// The rest of a response after its status line.
    fn read_rest(
        &mut self,
        method: &str,
        status_line: &str,
        mut head: Vec<u8>,
    ) -> Result<Response, ReadError> {
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ReadError::Malformed(format!("bad status line {status_line:?}")))?;
        let reason = parts.next().unwrap_or("").to_string();
        if !version.starts_with("HTTP/1.") {
            return Err(ReadError::Malformed(format!(
                "bad status line {status_line:?}"
            )));
        }
        let headers = self.fields(&mut head)?;

        let te = find_header(&headers, "Transfer-Encoding");
        // A 2xx to CONNECT starts a tunnel: no body (RFC 9110 §9.3.6).
        let tunnel = method == "CONNECT" && (200..300).contains(&status);
        let no_body = tunnel
            || method == "HEAD"
            || (100..200).contains(&status)
            || status == 204
            || status == 304;
        let framing = if no_body {
            Framing::NoBody
        } else if te.is_some_and(|te| te.to_ascii_lowercase().trim().ends_with("chunked")) {
            Framing::Chunked
        } else if let Some(length) = find_header(&headers, "Content-Length") {
            Framing::Length(
                length
                    .trim()
                    .parse()
                    .map_err(|_| ReadError::Malformed(format!("bad Content-Length {length:?}")))?,
            )
        } else {
            Framing::UntilClose
        };

        let mut body = Vec::new();
        let mut raw_body = Vec::new();
        let mut trailers = Vec::new();
        let complete = match framing {
            Framing::NoBody => true,
            Framing::Length(n) => self.take(n, &mut body, &mut raw_body)?,
            Framing::UntilClose => {
                while self.take(u64::MAX, &mut body, &mut raw_body)? {}
                true
            }
            Framing::Chunked => self.chunked(&mut body, &mut raw_body, &mut trailers)?,
        };
        Ok(Response {
            version,
            status,
            reason,
            headers,
            body,
            raw_body,
            framing,
            trailers,
            complete,
            wire: Wire::new(self.log.clone()),
        })
    }

    fn fields(&mut self, raw: &mut Vec<u8>) -> Result<Vec<(String, String)>, ReadError> {
        let mut fields = Vec::new();
        loop {
            let line = self
                .line(raw)?
                .ok_or_else(|| ReadError::Malformed("closed inside the head".into()))?;
            if line.is_empty() {
                return Ok(fields);
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ReadError::Malformed(format!("bad field line {line:?}")))?;
            fields.push((name.to_string(), value.trim().to_string()));
        }
    }

    /// Decodes a chunked body; false if the stream ended before the last
    /// chunk and the trailers.
    fn chunked(
        &mut self,
        body: &mut Vec<u8>,
        raw: &mut Vec<u8>,
        trailers: &mut Vec<(String, String)>,
    ) -> Result<bool, ReadError> {
        loop {
            let Some(line) = self.line(raw)? else {
                return Ok(false);
            };
            let digits = line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(digits, 16)
                .map_err(|_| ReadError::Malformed(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                loop {
                    let Some(line) = self.line(raw)? else {
                        return Ok(false);
                    };
                    if line.is_empty() {
                        return Ok(true);
                    }
                    if let Some((n, v)) = line.split_once(':') {
                        trailers.push((n.to_string(), v.trim().to_string()));
                    }
                }
            }
            if !self.take(size, body, raw)? {
                return Ok(false);
            }
            match self.line(raw)? {
                None => return Ok(false),
                Some(end) if end.is_empty() => {}
                Some(end) => {
                    return Err(ReadError::Malformed(format!(
                        "chunk data longer than its size: {end:?}"
                    )));
                }
            }
        }
    }

    /// Reads exactly `n` raw bytes (bytes already buffered first), for
    /// tunnels and other non-HTTP traffic; panics if the stream ends first.
    #[track_caller]
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let (mut out, mut raw) = (Vec::new(), Vec::new());
        match self.take(n as u64, &mut out, &mut raw) {
            Ok(true) => out,
            Ok(false) => self.fail(format_args!(
                "the stream ended after {} of {n} bytes",
                out.len()
            )),
            Err(e) => self.fail(format_args!(
                "reading {n} bytes failed after {}: {e}",
                out.len()
            )),
        }
    }

    /// Reads everything until the proxy closes; panics on a timeout.
    #[track_caller]
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = self.buffered().to_vec();
        self.pos = self.buf.len();
        let mut raw = Vec::new();
        loop {
            match self.take(u64::MAX, &mut out, &mut raw) {
                Ok(true) => {}
                Ok(false) => return out,
                Err(e) => self.fail(format_args!("reading until the proxy closes: {e}")),
            }
        }
    }

    /// Asserts that the proxy closes the connection (end of stream or
    /// reset) without sending anything more, within the read timeout.
    #[track_caller]
    pub fn assert_closed(&mut self) {
        assert!(
            self.buffered().is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(self.buffered())
        );
        let mut scratch = [0u8; 4096];
        let result = self.stream.read(&mut scratch);
        self.log_read(&result, &scratch);
        match result {
            Ok(0) => {}
            Err(e) if is_reset(&e) => {}
            Ok(n) => self.fail(format_args!(
                "expected a close, got {:?}",
                String::from_utf8_lossy(&scratch[..n])
            )),
            Err(e) if is_timeout(&e) => self.fail("expected a close: the connection is still open"),
            Err(e) => self.fail(format_args!("expected a close, got {e}")),
        }
    }

    /// True when nothing at all arrives (and the connection stays open) for
    /// `wait`. For checking that a request is still pending.
    pub fn nothing_within(&mut self, wait: Duration) -> bool {
        if !self.buffered().is_empty() {
            return false;
        }
        self.set_read_timeout(wait);
        let mut scratch = [0u8; 1];
        let quiet = matches!(self.stream.peek(&mut scratch), Err(ref e) if is_timeout(e));
        self.set_read_timeout(IO_TIMEOUT);
        quiet
    }
}

/// Fetches `url` through the proxy at `proxy` on a new connection.
#[track_caller]
pub fn get(proxy: SocketAddr, url: &str) -> Response {
    Client::connect(proxy).request(&Req::get(url))
}

/// Polls `check` every 10 ms until it is true or `timeout` passes. For
/// waiting on something the proxy does after the client can see it (such as
/// freeing a connection slot after the close); returns the last answer.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}
