//! A scriptable origin server that records every request it receives.
//!
//! The origin binds 127.0.0.1:0 before anything connects to it, serves each
//! connection on its own thread, parses each request completely (head, then a
//! body framed by Content-Length or chunked), records it, and answers with the
//! [`Reply`] its handler returns for that request. Handlers are closures, so a
//! test can answer by path, by header (a 304 when If-None-Match matches), or
//! by counting.
//!
//! Replies cover the shapes a proxy must relay or refuse: a body with
//! Content-Length, chunked (any chunk sizes, trailers), close-delimited, slow
//! (pauses between pieces), truncated (promises more than it sends), raw bytes
//! (for malformed responses), and silence (reads the request and never
//! answers, until the origin is dropped or a cap runs out, so no thread is
//! stuck forever).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::wire;

/// How long an origin connection waits for the proxy to send something.
const ORIGIN_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a silent reply holds its connection when nobody drops the
/// origin first.
const SILENCE_CAP: Duration = Duration::from_secs(30);

/// One request as the origin received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target as sent, e.g. `/path?q`.
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Header fields in wire order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Whether the body came chunked.
    pub chunked: bool,
    /// Trailer fields after a chunked body.
    pub trailers: Vec<(String, String)>,
    /// Which origin connection it came on (0, 1, ... in accept order).
    pub connection: usize,
}

impl RecordedRequest {
    pub fn request_line(&self) -> String {
        format!("{} {} {}", self.method, self.target, self.version)
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of `name`, in order.
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

    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The request as it would look on the wire (a chunked body as one
    /// chunk), for transcripts.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.request_line()).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if self.chunked {
            if !self.body.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
                out.extend_from_slice(&self.body);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// Does the request ask to close the connection after the response?
    fn wants_close(&self) -> bool {
        let close = self
            .header_all("Connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"));
        close || self.version == "HTTP/1.0"
    }
}

pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[derive(Clone, Debug)]
enum Body {
    /// Framed by Content-Length (added unless the headers set one).
    Length(Vec<u8>),
    /// Chunked: these chunks (empty ones are skipped), then the last chunk
    /// and the trailers.
    Chunked {
        chunks: Vec<Vec<u8>>,
        trailers: Vec<(String, String)>,
    },
    /// No framing header; the origin closes after the body.
    UntilClose(Vec<u8>),
    /// `Content-Length: promised`, but only `sent` is sent before closing.
    Truncated { promised: usize, sent: Vec<u8> },
    /// These bytes exactly, no head added; then close.
    Raw(Vec<Vec<u8>>),
    /// Read the request, never answer.
    Silent,
}

/// A gate a reply can stop at in the middle of its writes, until the test
/// opens it: how a test proves that bytes reached the client before the
/// origin had finished, without a sleep. A gate left shut opens by itself
/// after the origin's I/O timeout, so no origin thread waits for ever.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every reply waiting at this gate go on.
    pub fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }

    fn wait(&self) {
        let (open, changed) = &*self.0;
        let deadline = Instant::now() + ORIGIN_IO_TIMEOUT;
        let mut is_open = open.lock().unwrap_or_else(|e| e.into_inner());
        while !*is_open {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            is_open = changed
                .wait_timeout(is_open, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// What the origin answers. Build one with a constructor, then adjust it:
/// `Reply::ok("hi").header("Cache-Control", "max-age=60")`.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    reason: Option<String>,
    headers: Vec<(String, String)>,
    body: Body,
    split: Option<usize>,
    pace: Duration,
    close: bool,
    /// Stop after this many writes (the head is the first) until the gate opens.
    gate: Option<(usize, Gate)>,
}

impl Reply {
    fn new(status: u16, body: Body) -> Reply {
        Reply {
            status,
            reason: None,
            headers: Vec::new(),
            body,
            split: None,
            pace: Duration::ZERO,
            close: false,
            gate: None,
        }
    }

    /// 200 with this body and a Content-Length.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(200, Body::Length(body.into()))
    }

    /// `status` with this body and a Content-Length.
    pub fn with_status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(status, Body::Length(body.into()))
    }

    /// 200, chunked, one chunk per element (their sizes are the chunk sizes).
    pub fn chunked(chunks: Vec<Vec<u8>>) -> Reply {
        Reply::new(
            200,
            Body::Chunked {
                chunks,
                trailers: Vec::new(),
            },
        )
    }

    /// 200 without Content-Length or Transfer-Encoding: the body ends when
    /// the origin closes the connection.
    pub fn close_delimited(body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(200, Body::UntilClose(body.into()))
    }

    /// 200 promising `promised` bytes, sending `sent`, then closing.
    pub fn truncated(promised: usize, sent: impl Into<Vec<u8>>) -> Reply {
        Reply::new(
            200,
            Body::Truncated {
                promised,
                sent: sent.into(),
            },
        )
    }

    /// Exactly these bytes, then close: for malformed responses.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::new(0, Body::Raw(vec![bytes.into()]))
    }

    /// These pieces in separate writes (see [`Reply::pace`]), then close.
    pub fn raw_pieces(pieces: Vec<Vec<u8>>) -> Reply {
        Reply::new(0, Body::Raw(pieces))
    }

    /// Reads the request and never answers; the connection is held until
    /// the origin is dropped (or 30 s pass).
    pub fn silent() -> Reply {
        Reply::new(0, Body::Silent)
    }

    pub fn status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    pub fn reason(mut self, reason: &str) -> Reply {
        self.reason = Some(reason.to_string());
        self
    }

    /// Adds a header field. A Content-Length or Transfer-Encoding set here
    /// replaces the one the reply would add itself (for bad-framing tests).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds a trailer field to a chunked reply.
    pub fn trailer(mut self, name: &str, value: &str) -> Reply {
        if let Body::Chunked { trailers, .. } = &mut self.body {
            trailers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Writes the body in pieces of at most `len` bytes.
    pub fn split(mut self, len: usize) -> Reply {
        self.split = Some(len.max(1));
        self
    }

    /// Pauses this long between writes (head, pieces, chunks).
    pub fn pace(mut self, pause: Duration) -> Reply {
        self.pace = pause;
        self
    }

    /// Waits at `gate` after the first `writes` writes (the head is one,
    /// then each piece: see [`Reply::split`]) until the test opens it.
    pub fn hold_after(mut self, writes: usize, gate: &Gate) -> Reply {
        self.gate = Some((writes, gate.clone()));
        self
    }

    /// Closes the connection after this reply even if it could stay open.
    pub fn close(mut self) -> Reply {
        self.close = true;
        self
    }

    fn has_header(&self, name: &str) -> bool {
        find_header(&self.headers, name).is_some()
    }

    /// The writes that make up this reply to `request`, and whether the
    /// connection can carry another request afterwards.
    fn render(&self, request: &RecordedRequest) -> (Vec<Vec<u8>>, bool) {
        let no_body = request.method == "HEAD"
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304;
        let has_length_semantics =
            !(100..200).contains(&self.status) && self.status != 204 && self.status != 304;
        let framing_set = self.has_header("Content-Length") || self.has_header("Transfer-Encoding");
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status,
            self.reason.as_deref().unwrap_or(reason(self.status))
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut body: Vec<Vec<u8>> = Vec::new();
        let persistent;
        match &self.body {
            Body::Length(data) => {
                if !framing_set && has_length_semantics {
                    head.push_str(&format!("Content-Length: {}\r\n", data.len()));
                }
                body = self.pieces(data);
                persistent = true;
            }
            Body::Chunked { chunks, trailers } => {
                if !framing_set {
                    head.push_str("Transfer-Encoding: chunked\r\n");
                }
                for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                    let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
                    piece.extend_from_slice(chunk);
                    piece.extend_from_slice(b"\r\n");
                    body.push(piece);
                }
                let mut last = b"0\r\n".to_vec();
                for (name, value) in trailers {
                    last.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                last.extend_from_slice(b"\r\n");
                body.push(last);
                persistent = true;
            }
            Body::UntilClose(data) => {
                body = self.pieces(data);
                persistent = false;
            }
            Body::Truncated { promised, sent } => {
                if !framing_set {
                    head.push_str(&format!("Content-Length: {promised}\r\n"));
                }
                body = self.pieces(sent);
                persistent = false;
            }
            Body::Raw(pieces) => return (pieces.clone(), false),
            Body::Silent => return (Vec::new(), false),
        }
        head.push_str("\r\n");
        let mut writes = vec![head.into_bytes()];
        if !no_body {
            writes.extend(body);
        }
        let keep_open = persistent && !self.close && !request.wants_close();
        (writes, keep_open)
    }

    fn pieces(&self, data: &[u8]) -> Vec<Vec<u8>> {
        match self.split {
            Some(len) => data.chunks(len).map(<[u8]>::to_vec).collect(),
            None if data.is_empty() => Vec::new(),
            None => vec![data.to_vec()],
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

type Handler = dyn Fn(&RecordedRequest) -> Reply + Send + Sync + 'static;

struct State {
    requests: Vec<RecordedRequest>,
    connections: usize,
    shutdown: bool,
    /// A handle on every accepted connection, so that dropping the origin
    /// closes them all, as a server that went down would.
    open: Vec<TcpStream>,
}

struct Shared {
    addr: SocketAddr,
    state: Mutex<State>,
    changed: Condvar,
    handler: Box<Handler>,
}

impl wire::OriginRecord for Shared {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn received(&self) -> (usize, usize, Option<Vec<u8>>) {
        let state = self.lock();
        let last = state.requests.last().map(RecordedRequest::to_wire);
        (state.requests.len(), state.connections, last)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not hide what was recorded before it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running origin server. Dropping it stops accepting and releases every
/// connection held by a silent reply.
pub struct Origin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Origin {
    /// Starts an origin that answers every request with `handler(request)`.
    pub fn start(handler: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the origin");
        let addr = listener.local_addr().expect("origin address");
        let shared = Arc::new(Shared {
            addr,
            state: Mutex::new(State {
                requests: Vec::new(),
                connections: 0,
                shutdown: false,
                open: Vec::new(),
            }),
            changed: Condvar::new(),
            handler: Box::new(handler),
        });
        // Transcripts of this test's failures say what the origin received.
        let record: Weak<dyn wire::OriginRecord> = Arc::downgrade(&shared) as Weak<Shared>;
        wire::register_origin(record);
        let accept_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("origin-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn the origin");
        Origin {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Starts an origin that answers every request with a copy of `reply`.
    pub fn fixed(reply: Reply) -> Origin {
        Origin::start(move |_| reply.clone())
    }

    /// Starts an origin that answers by path (the target without its
    /// query); other paths get a 404.
    pub fn routes<'a>(routes: impl IntoIterator<Item = (&'a str, Reply)>) -> Origin {
        let table: HashMap<String, Reply> = routes
            .into_iter()
            .map(|(path, reply)| (path.to_string(), reply))
            .collect();
        Origin::start(move |request| {
            table
                .get(request.path())
                .cloned()
                .unwrap_or_else(|| Reply::with_status(404, "no such route\n"))
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, as in a Host field.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// The absolute URL of `path_and_query` on this origin.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The most recent request; panics when there was none.
    pub fn last_request(&self) -> RecordedRequest {
        self.shared
            .lock()
            .requests
            .last()
            .cloned()
            .expect("the origin received no request")
    }

    /// How many complete requests arrived.
    pub fn hits(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// How many requests arrived for `path`: compared with the target
    /// without its query, or with the whole target when `path` has a `?`.
    pub fn hits_for(&self, path: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| {
                if path.contains('?') {
                    r.target == path
                } else {
                    r.path() == path
                }
            })
            .count()
    }

    /// How many TCP connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Waits until at least `n` requests have arrived; false on timeout.
    pub fn wait_for_hits(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.requests.len() < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.shutdown = true;
            // A proxy may keep connections to us open between requests; a
            // server that is gone must not keep answering on them.
            for stream in state.open.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.changed.notify_all();
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// An address on which nothing listens: bind a port, then let it go.
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        let id = {
            let mut state = shared.lock();
            if state.shutdown {
                return;
            }
            state.connections += 1;
            state.connections - 1
        };
        let Ok(stream) = stream else { continue };
        if let Ok(handle) = stream.try_clone() {
            shared.lock().open.push(handle);
        }
        let conn_shared = Arc::clone(&shared);
        let _ = thread::Builder::new()
            .name(format!("origin-conn-{id}"))
            .spawn(move || serve_connection(stream, id, &conn_shared));
    }
}

fn serve_connection(stream: TcpStream, id: usize, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(ORIGIN_IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(ORIGIN_IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    // The loop ends when the proxy closes, times out or sends something we
    // cannot parse: there is nothing to record then.
    while let Ok(Some(request)) = read_request(&mut reader, id) {
        {
            let mut state = shared.lock();
            state.requests.push(request.clone());
        }
        shared.changed.notify_all();

        let reply = (shared.handler)(&request);
        if matches!(reply.body, Body::Silent) {
            hold_silently(shared);
            break;
        }
        let (writes, keep_open) = reply.render(&request);
        if write_pieces(&mut writer, &writes, &reply).is_err() || !keep_open {
            break;
        }
    }
    let _ = writer.flush();
    let _ = writer.shutdown(Shutdown::Write);
}

fn write_pieces(out: &mut TcpStream, pieces: &[Vec<u8>], reply: &Reply) -> io::Result<()> {
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 && !reply.pace.is_zero() {
            thread::sleep(reply.pace);
        }
        if let Some((after, gate)) = &reply.gate
            && i == *after
        {
            gate.wait();
        }
        out.write_all(piece)?;
        out.flush()?;
    }
    Ok(())
}

/// Keeps the connection (owned by the caller) open until the origin is
/// dropped, but never longer than the cap.
fn hold_silently(shared: &Shared) {
    let deadline = Instant::now() + SILENCE_CAP;
    let mut state = shared.lock();
    while !state.shutdown {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        state = shared
            .changed
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// One line without its line ending; None at a clean end of stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(bad("stream ended inside a line"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn read_fields(reader: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| bad("stream ended inside a head"))?;
        if line.is_empty() {
            return Ok(fields);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("field without colon"))?;
        fields.push((name.to_string(), value.trim().to_string()));
    }
}

/// Reads one whole request; None when the peer closed before sending one.
fn read_request(
    reader: &mut impl BufRead,
    connection: usize,
) -> io::Result<Option<RecordedRequest>> {
    let Some(line) = read_line(reader)? else {
        return Ok(None);
    };
    let mut parts = line.splitn(3, ' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("bad request line"));
    };
    let headers = read_fields(reader)?;
    let chunked = find_header(&headers, "Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().trim().ends_with("chunked"));
    let mut body = Vec::new();
    let mut trailers = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(reader)?.ok_or_else(|| bad("stream ended in a chunk"))?;
            let digits = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(digits, 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                trailers = read_fields(reader)?;
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            if read_line(reader)?.as_deref() != Some("") {
                return Err(bad("chunk longer than its size"));
            }
        }
    } else if let Some(length) = find_header(&headers, "Content-Length") {
        let length: usize = length.parse().map_err(|_| bad("bad Content-Length"))?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Some(RecordedRequest {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        body,
        chunked,
        trailers,
        connection,
    }))
}
