//! A TCP connection with a read buffer that knows about message heads.
//!
//! The classic student proxy calls `recv(1024)` once and hopes the whole
//! request is in it. TCP promises no such thing: a head can arrive one byte at
//! a time, and the bytes after the head (a body, or the next pipelined
//! request) can arrive in the same read. [`Conn`] keeps every byte it has read
//! until someone consumes it, so:
//!
//! - [`Conn::read_request_head`] reads until the parser says the head is
//!   complete, however the packets fell;
//! - whatever followed the head stays in the buffer and is served first by
//!   `Read`/`BufRead`, so bodies and pipelined requests are never lost.
//!
//! Writes go straight to the socket: callers assemble a whole head before
//! writing it, so small writes do not turn into many packets.

use std::fmt;
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::HttpError;
use crate::message::{self, Parsed, RequestHead, ResponseHead};

const INITIAL_BUFFER: usize = 8 * 1024;
/// Reads of at least this size bypass the buffer when it is empty, so large
/// bodies are copied once, not twice.
const BUFFER_READ_SIZE: usize = 64 * 1024;

/// Why no request head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The peer closed the connection cleanly before sending anything.
    Closed,
    /// Nothing arrived before the read timeout: an idle connection.
    Idle,
    /// Something is wrong and the client should be told.
    Http(HttpError),
    /// The connection failed under us; there is nobody left to tell.
    Io(io::Error),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Closed => f.write_str("the peer closed the connection"),
            HeadError::Idle => f.write_str("nothing arrived before the timeout"),
            HeadError::Http(e) => e.fmt(f),
            HeadError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for HeadError {}

/// A TCP stream with a read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The read timeout last set through [`Conn::set_read_timeout`] (or
    /// found on the socket at the start), so reading a head need not ask
    /// the kernel for it.
    read_timeout: Option<Duration>,
    /// While set, reads must keep up with a minimum rate (a request body).
    /// Boxed: a Conn travels by value, and this is rarely set.
    min_rate: Option<Box<RateWatch>>,
}

// ANCHOR: min_rate
/// A minimum read rate, in the manner of Apache's `mod_reqtimeout`: after
/// `grace`, each further second must have brought `bytes_per_sec` bytes.
/// A read timeout alone cannot stop a client that sends one byte just
/// before each timeout; this can.
#[derive(Clone, Copy, Debug)]
pub struct MinRate {
    pub bytes_per_sec: u64,
    pub grace: Duration,
}

#[derive(Clone, Copy, Debug)]
struct RateWatch {
    rate: MinRate,
    since: Instant,
    bytes: u64,
}

impl RateWatch {
    /// Counts `n` more bytes; an error once the reads fell behind.
    fn count(&mut self, n: usize) -> io::Result<()> {
        self.bytes += n as u64;
        let earned = Duration::from_secs_f64(self.bytes as f64 / self.rate.bytes_per_sec as f64);
        if self.since.elapsed() > self.rate.grace + earned {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the body arrives slower than {} bytes a second",
                    self.rate.bytes_per_sec
                ),
            ));
        }
        Ok(())
    }
}
// ANCHOR_END: min_rate

pub fn is_timeout(e: &io::Error) -> bool {
    // SO_RCVTIMEO shows up as WouldBlock on Unix and TimedOut on Windows.
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        let read_timeout = stream.read_timeout().ok().flatten();
        Conn {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            read_timeout,
            min_rate: None,
        }
    }

    /// From now on, reads must keep up with `rate`; `None` lifts the rule.
    /// A zero rate means no rule.
    pub fn set_min_rate(&mut self, rate: Option<MinRate>) {
        self.min_rate = rate.filter(|r| r.bytes_per_sec > 0).map(|rate| {
            Box::new(RateWatch {
                rate,
                since: Instant::now(),
                bytes: 0,
            })
        });
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        // A system call per request adds up; most requests keep the value.
        if self.read_timeout == Some(timeout) {
            return Ok(());
        }
        self.stream.set_read_timeout(Some(timeout))?;
        self.read_timeout = Some(timeout);
        Ok(())
    }

    pub fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.set_write_timeout(Some(timeout))
    }

    /// Bytes read from the socket but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    // ANCHOR: into_parts
    /// Gives back the socket and any bytes already read past what was
    /// consumed. A CONNECT tunnel needs both: bytes the client sent right
    /// after its CONNECT head must not be lost.
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        let pending = self.buffered().to_vec();
        (self.stream, pending)
    }
    // ANCHOR_END: into_parts

    /// Reads more bytes into the buffer; returns how many (0 at end of
    /// stream). Grows the buffer up to `limit` bytes of unconsumed data.
    fn fill_more(&mut self, limit: usize) -> io::Result<usize> {
        if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(limit + 1).max(self.buf.len() + 1);
            self.buf.resize(grown, 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        if let Some(watch) = self.min_rate.as_mut() {
            watch.count(n)?;
        }
        Ok(n)
    }

    /// Waits until at least one byte is buffered. `Ok(false)` means the peer
    /// closed the connection. A timeout comes back as an error for which
    /// [`is_timeout`] is true, and loses nothing.
    pub fn wait_readable(&mut self) -> io::Result<bool> {
        if self.start < self.end {
            return Ok(true);
        }
        self.start = 0;
        self.end = 0;
        Ok(self.fill_more(message::MAX_HEAD_BYTES)? > 0)
    }

    // ANCHOR: read_head
    /// Reads until `parse` finds a complete head, then consumes it.
    ///
    /// The socket's read timeout bounds the whole head, not each read: a
    /// client that sends one byte just before every timeout (a "slowloris")
    /// would otherwise hold this thread for as long as it liked.
    fn read_head<T>(
        &mut self,
        parse: impl Fn(&[u8]) -> Result<Parsed<T>, HttpError>,
    ) -> Result<T, HeadError> {
        let budget = self.read_timeout;
        let deadline = budget.map(|b| Instant::now() + b);
        let mut reads = 0;
        loop {
            if self.start < self.end {
                match parse(self.buffered()).map_err(HeadError::Http)? {
                    Parsed::Complete(head, used) => {
                        self.start += used;
                        if reads > 1 {
                            // Put back the full timeout for what follows.
                            let _ = self.stream.set_read_timeout(budget);
                        }
                        return Ok(head);
                    }
                    Parsed::Partial => {}
                }
            }
            let had_bytes = self.start < self.end;
            // Most heads arrive in one read; only a head in pieces pays for
            // shrinking the timeout to what is left of the budget.
            if reads > 0
                && let Some(deadline) = deadline
            {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                    return Err(HeadError::Http(HttpError::new(
                        408,
                        "timed out waiting for the rest of the request head",
                    )));
                }
            }
            reads += 1;
            match self.fill_more(message::MAX_HEAD_BYTES) {
                Ok(0) if had_bytes => {
                    return Err(HeadError::Http(HttpError::bad_request(
                        "connection closed in the middle of the request head",
                    )));
                }
                Ok(0) => return Err(HeadError::Closed),
                Ok(_) => {}
                Err(e) if is_timeout(&e) && had_bytes => {
                    return Err(HeadError::Http(HttpError::new(
                        408,
                        "timed out waiting for the rest of the request head",
                    )));
                }
                Err(e) if is_timeout(&e) => return Err(HeadError::Idle),
                Err(e) => return Err(HeadError::Io(e)),
            }
        }
    }
    // ANCHOR_END: read_head

    // ANCHOR: step
    /// Takes a complete request head from what is buffered, if there is one;
    /// `Ok(None)` when more bytes are needed.
    pub fn take_request_head(&mut self) -> Result<Option<RequestHead>, HttpError> {
        if self.start == self.end {
            return Ok(None);
        }
        match message::parse_request(self.buffered())? {
            Parsed::Complete(head, used) => {
                self.start += used;
                Ok(Some(head))
            }
            Parsed::Partial => Ok(None),
        }
    }

    /// One read into the buffer, waiting at most the read timeout: `Ok(0)`
    /// when the peer closed. For callers that read a head in steps and do
    /// something else between them.
    pub fn read_some(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end - self.start > message::MAX_HEAD_BYTES {
            // The parser has seen this much and still wants more: it will
            // say so with the right status on the next look.
            return Ok(1);
        }
        self.fill_more(message::MAX_HEAD_BYTES)
    }
    // ANCHOR_END: step

    /// Reads one request head, however many reads it takes.
    pub fn read_request_head(&mut self) -> Result<RequestHead, HeadError> {
        self.read_head(message::parse_request)
    }

    /// Reads one response head. Errors are described for the log; the
    /// caller turns them into a 502 or, for a timeout, a 504.
    pub fn read_response_head(&mut self) -> Result<ResponseHead, HeadError> {
        self.read_head(|buf| message::parse_response(buf).map_err(HttpError::bad_gateway))
    }

    /// Closes politely: stop sending, then discard whatever the peer had
    /// already sent. Closing a socket with unread data makes the kernel send
    /// a reset, which can destroy the end of a response the client has not
    /// read yet.
    pub fn close(mut self) {
        let _ = self.stream.flush();
        let _ = self.stream.shutdown(Shutdown::Write);
        if self.stream.set_nonblocking(true).is_ok() {
            let mut scratch = [0u8; 4096];
            for _ in 0..16 {
                match self.stream.read(&mut scratch) {
                    Ok(n) if n > 0 => continue,
                    _ => break,
                }
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end && out.len() >= BUFFER_READ_SIZE {
            let n = self.stream.read(out)?;
            if let Some(watch) = self.min_rate.as_mut() {
                watch.count(n)?;
            }
            return Ok(n);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Conn {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // Refill with a read as large as the buffer, so body copies
            // take few system calls.
            if self.buf.len() < BUFFER_READ_SIZE {
                self.buf.resize(BUFFER_READ_SIZE, 0);
            }
            let n = self.stream.read(&mut self.buf)?;
            self.end = n;
        }
        Ok(self.buffered())
    }

    fn consume(&mut self, amount: usize) {
        self.start = (self.start + amount).min(self.end);
    }
}

impl Write for Conn {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.stream.write(data)
    }

    fn write_vectored(&mut self, pieces: &[IoSlice<'_>]) -> io::Result<usize> {
        self.stream.write_vectored(pieces)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Writes every byte of `pieces` in order, adding to `sent` as they go, so
/// that a caller whose client went away still knows how much it got.
///
/// A response head and a body already in memory (a cache hit) go out in
/// one `writev` system call, not one per piece. The sockets have Nagle's
/// algorithm off, so each write is a packet of its own, and every packet
/// wakes the client: on the cache-hit benchmark, that waking took a tenth
/// of the proxy's time when a hit was two writes.
pub fn write_pieces<'a>(
    out: &mut impl Write,
    pieces: impl IntoIterator<Item = &'a [u8]>,
    sent: &mut u64,
) -> io::Result<()> {
    // Empty pieces are left out: a write of nothing but them would return
    // 0, which means the peer took nothing.
    let mut slices: Vec<IoSlice<'_>> = pieces
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(IoSlice::new)
        .collect();
    let mut left = &mut slices[..];
    while !left.is_empty() {
        match out.write_vectored(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *sent += n as u64;
                IoSlice::advance_slices(&mut left, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A connected pair on loopback, with timeouts so a bug fails fast.
    fn pair() -> (TcpStream, Conn) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (client, Conn::new(server))
    }

    #[test]
    fn head_split_across_writes_and_body_kept() {
        let (mut client, mut conn) = pair();
        let writer = thread::spawn(move || {
            for piece in [
                &b"GET http://a.test/ HT"[..],
                b"TP/1.1\r\nHost: a",
                b".test\r\n\r\nbody",
            ] {
                client.write_all(piece).unwrap();
                client.flush().unwrap();
                thread::sleep(Duration::from_millis(20));
            }
            client
        });
        let head = conn.read_request_head().unwrap();
        assert_eq!(head.target, "http://a.test/");
        let _client = writer.join().unwrap();
        let mut body = [0u8; 4];
        conn.read_exact(&mut body).unwrap();
        assert_eq!(&body, b"body");
    }

    #[test]
    fn clean_close_and_truncated_head() {
        let (client, mut conn) = pair();
        drop(client);
        assert!(matches!(conn.read_request_head(), Err(HeadError::Closed)));

        let (mut client, mut conn) = pair();
        client
            .write_all(b"GET http://a.test/ HTTP/1.1\r\n")
            .unwrap();
        drop(client);
        match conn.read_request_head() {
            Err(HeadError::Http(e)) => assert_eq!(e.status, 400),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slow_head_is_408_and_silence_is_idle() {
        let (mut client, mut conn) = pair();
        conn.set_read_timeout(Duration::from_millis(100)).unwrap();
        assert!(matches!(conn.read_request_head(), Err(HeadError::Idle)));
        client
            .write_all(b"GET http://a.test/ HTTP/1.1\r\n")
            .unwrap();
        match conn.read_request_head() {
            Err(HeadError::Http(e)) => assert_eq!(e.status, 408),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_head_dripping_in_slower_than_its_budget_is_408() {
        let (mut client, mut conn) = pair();
        conn.set_read_timeout(Duration::from_millis(300)).unwrap();
        // Each byte comes well within the per-read timeout, but the whole
        // head would take far longer than the budget.
        let writer = thread::spawn(move || {
            for b in b"GET http://a.test/ HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
                if client.write_all(&[*b]).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        match conn.read_request_head() {
            Err(HeadError::Http(e)) => assert_eq!(e.status, 408),
            other => panic!("{other:?}"),
        }
        drop(conn);
        let _ = writer.join();
    }

    #[test]
    fn pipelined_requests_are_both_read() {
        let (mut client, mut conn) = pair();
        client
            .write_all(b"GET http://a.test/1 HTTP/1.1\r\n\r\nGET http://a.test/2 HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(conn.read_request_head().unwrap().target, "http://a.test/1");
        assert_eq!(conn.read_request_head().unwrap().target, "http://a.test/2");
    }

    /// Takes at most `room` bytes per call, then fails once it has taken
    /// `fail_after`, as a socket whose peer went away does.
    struct Trickle {
        taken: Vec<u8>,
        room: usize,
        fail_after: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.taken.len() >= self.fail_after {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = data.len().min(self.room);
            self.taken.extend_from_slice(&data[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_pieces_writes_every_byte_in_order_across_short_writes() {
        let mut out = Trickle {
            taken: Vec::new(),
            room: 3,
            fail_after: usize::MAX,
        };
        let mut sent = 0;
        let pieces: [&[u8]; 4] = [b"HTTP/1.1 200 OK\r\n\r\n", b"", b"hello", b" world"];
        write_pieces(&mut out, pieces, &mut sent).unwrap();
        assert_eq!(out.taken, b"HTTP/1.1 200 OK\r\n\r\nhello world");
        assert_eq!(sent, out.taken.len() as u64);
    }

    #[test]
    fn write_pieces_counts_what_went_out_before_an_error() {
        let mut out = Trickle {
            taken: Vec::new(),
            room: 4,
            fail_after: 8,
        };
        let mut sent = 0;
        let pieces: [&[u8]; 2] = [b"head", b"a longer body"];
        assert!(write_pieces(&mut out, pieces, &mut sent).is_err());
        assert_eq!(sent, 8);
        assert_eq!(out.taken, b"heada lo");
    }

    #[test]
    fn write_pieces_reaches_the_socket_through_a_conn() {
        let (mut client, mut conn) = pair();
        let mut sent = 0;
        let pieces: [&[u8]; 2] = [b"head|", b"body"];
        write_pieces(&mut conn, pieces, &mut sent).unwrap();
        drop(conn);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!((got.as_slice(), sent), (&b"head|body"[..], 9));
    }
}
