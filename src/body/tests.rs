//! Unit tests of `body`: framing rules, the chunked decoder and the relay
//! loop, without a network. Several feed the decoder through readers that
//! hand out a few bytes at a time, the way a socket does.

use super::*;
use crate::message::{Parsed, parse_request, parse_response};

fn request(raw: &str) -> RequestHead {
    match parse_request(raw.as_bytes()) {
        Ok(Parsed::Complete(h, _)) => h,
        other => panic!("{other:?}"),
    }
}

fn response(raw: &str) -> ResponseHead {
    match parse_response(raw.as_bytes()) {
        Ok(Parsed::Complete(h, _)) => h,
        other => panic!("{other:?}"),
    }
}

fn decode(framing: Framing, wire: &[u8]) -> io::Result<Vec<u8>> {
    let mut input = io::Cursor::new(wire.to_vec());
    let mut reader = BodyReader::new(&mut input, framing);
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn request_framing_rules() {
    let r = |s: &str| request_framing(&request(s));
    assert_eq!(r("POST / HTTP/1.1\r\n\r\n").unwrap(), Framing::Empty);
    assert_eq!(
        r("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap(),
        Framing::Length(0)
    );
    assert_eq!(
        r("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").unwrap(),
        Framing::Length(5)
    );
    assert_eq!(
        r("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").unwrap(),
        Framing::Length(5)
    );
    assert_eq!(
        r("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap(),
        Framing::Chunked
    );
    for bad in [
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    ] {
        assert_eq!(r(bad).unwrap_err().status, 400, "{bad}");
    }
    assert_eq!(
        r("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap_err()
            .status,
        501
    );
}

#[test]
fn response_framing_rules() {
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        response_framing(false, &response(ok)),
        Ok(Framing::Length(3))
    );
    assert_eq!(response_framing(true, &response(ok)), Ok(Framing::Empty));
    let not_modified = "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        response_framing(false, &response(not_modified)),
        Ok(Framing::Empty)
    );
    let both = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        response_framing(false, &response(both)),
        Ok(Framing::Chunked)
    );
    let close = "HTTP/1.1 200 OK\r\n\r\n";
    assert_eq!(
        response_framing(false, &response(close)),
        Ok(Framing::UntilClose)
    );
    let bad = "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n";
    assert!(response_framing(false, &response(bad)).is_err());
}

#[test]
fn chunked_decoding() {
    let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
    assert_eq!(
        decode(Framing::Chunked, wire).unwrap(),
        b"Wikipedia in\r\n\r\nchunks."
    );
    // Bare LF line endings are tolerated (RFC 9112 §2.2).
    assert_eq!(decode(Framing::Chunked, b"3\nabc\n0\n\n").unwrap(), b"abc");
}

#[test]
fn broken_chunked_is_an_error() {
    for wire in [
        &b"zz\r\nabc\r\n0\r\n\r\n"[..],
        b"3\r\nabcdef\r\n0\r\n\r\n",
        b"fffffffffffffffffff\r\n",
        b"3\r\nab",
        b"3\r\nabc\r\n",
    ] {
        assert!(decode(Framing::Chunked, wire).is_err(), "{wire:?}");
    }
}

#[test]
fn short_bodies_are_truncation_errors() {
    let err = decode(Framing::Length(10), b"12345").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(decode(Framing::UntilClose, b"12345").unwrap(), b"12345");
    assert_eq!(decode(Framing::Length(3), b"12345").unwrap(), b"123");
}

#[test]
fn copy_reencodes_as_chunked() {
    let mut input = io::Cursor::new(b"hello world".to_vec());
    let mut reader = BodyReader::new(&mut input, Framing::Length(11));
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut writer = BodyWriter::new(&mut out, Framing::Chunked);
    let n = copy_body(&mut reader, &mut writer, |d| seen.extend_from_slice(d)).unwrap();
    assert_eq!(n, 11);
    assert_eq!(seen, b"hello world");
    assert_eq!(out, b"b\r\nhello world\r\n0\r\n\r\n");
}

/// A reader that hands out at most `step` bytes per call, as a socket
/// does, and can fail once with `Interrupted` before its first byte.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
    interrupt: bool,
}

impl Trickle {
    fn new(data: &[u8], step: usize) -> Trickle {
        Trickle {
            data: data.to_vec(),
            pos: 0,
            step,
            interrupt: false,
        }
    }

    fn rest(&self) -> &[u8] {
        &self.data[self.pos..]
    }
}

impl Read for Trickle {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Trickle {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if std::mem::take(&mut self.interrupt) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let end = (self.pos + self.step).min(self.data.len());
        Ok(&self.data[self.pos..end])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

/// Decodes `wire` as a chunked body, `step` bytes per read; returns the
/// body and what is left unread behind it.
fn decode_trickled(wire: &[u8], step: usize) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut input = Trickle::new(wire, step);
    let mut out = Vec::new();
    BodyReader::new(&mut input, Framing::Chunked).read_to_end(&mut out)?;
    Ok((out, input.rest().to_vec()))
}

#[test]
fn chunk_lines_may_arrive_in_pieces() {
    let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
    for step in [1, 2, 3, 7] {
        let (body, rest) = decode_trickled(wire, step).unwrap();
        assert_eq!(body, b"Wikipedia", "{step} bytes per read");
        assert!(rest.is_empty());
    }
}

#[test]
fn chunk_size_lines_are_strict() {
    let size = |line: &str| {
        let wire = format!("{line}\r\n");
        let mut input = io::Cursor::new(wire.into_bytes());
        BodyReader::new(&mut input, Framing::Chunked).read_chunk_size()
    };
    for (line, expected) in [
        ("5", 5),
        ("A", 10),
        ("aF", 0xaf),
        ("5;ext=1", 5),
        ("5 ;ext", 5),
        ("5\t;ext", 5),
        ("5 ", 5),
        ("0000000000000000000000005", 5),
        ("ffffffffffffffff", u64::MAX),
    ] {
        assert_eq!(size(line).unwrap(), expected, "{line:?}");
    }
    // A sign, a prefix, junk after the digits, no digits, or a size that
    // does not fit: two parsers that disagree here are how smuggling starts.
    for bad in [
        "",
        " 5",
        "5z",
        "0x10",
        "-1",
        "+5",
        "zz",
        ";ext",
        "10000000000000000",
    ] {
        let err = size(bad).expect_err(bad);
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad:?}");
    }
}

#[test]
fn chunked_lines_have_a_limit() {
    // A size line of exactly the limit is fine, also when its CR and LF
    // arrive in different reads; one byte more is not.
    let longest = format!("5;{}", "x".repeat(MAX_CHUNK_LINE - 2));
    let wire = format!("{longest}\r\nhello\r\n0\r\n\r\n");
    assert_eq!(
        decode_trickled(wire.as_bytes(), wire.len()).unwrap().0,
        b"hello"
    );
    assert_eq!(
        decode_trickled(wire.as_bytes(), longest.len() + 1)
            .unwrap()
            .0,
        b"hello"
    );
    let too_long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE - 1));
    let err = decode_trickled(too_long.as_bytes(), 4096).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);

    // An endless line is refused as it grows, not read to its end.
    let endless = vec![b'a'; 1024 * 1024];
    let mut input = Trickle::new(&endless, 512);
    let mut sink = Vec::new();
    let err = BodyReader::new(&mut input, Framing::Chunked)
        .read_to_end(&mut sink)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        input.pos <= MAX_CHUNK_LINE + 1024,
        "read {} bytes",
        input.pos
    );

    // A line cut off by the end of the stream is a truncation.
    let err = decode_trickled(b"5\r\nhel", 2).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let err = decode_trickled(b"5", 1).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn trailers_are_skipped_up_to_a_limit() {
    // Trailers are read to their empty line and no further.
    let (body, rest) = decode_trickled(b"3\r\nabc\r\n0\r\nA: 1\r\nB: 2\r\n\r\nNEXT", 5).unwrap();
    assert_eq!(body, b"abc");
    assert_eq!(rest, b"NEXT");
    let (_, rest) = decode_trickled(b"0\r\n\r\nNEXT", 64).unwrap();
    assert_eq!(rest, b"NEXT");

    // 64 lines of 1 KiB is exactly the limit; one byte more is too much.
    let line = format!("X: {}\r\n", "t".repeat(1024 - 3));
    let at_limit = format!("0\r\n{}\r\n", line.repeat(64));
    assert!(decode_trickled(at_limit.as_bytes(), 4096).is_ok());
    let over = format!("0\r\n{}Y\r\n\r\n", line.repeat(64));
    let err = decode_trickled(over.as_bytes(), 4096).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // Trailers that never end are a truncated body.
    let err = decode_trickled(b"0\r\nA: 1\r\n", 64).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn a_body_cut_short_is_not_finished() {
    // Ten bytes promised, five sent: what came is passed on, and the last
    // chunk is not, so the client cannot take the body for complete.
    let mut input = io::Cursor::new(b"hello".to_vec());
    let mut reader = BodyReader::new(&mut input, Framing::Length(10));
    let mut out = Vec::new();
    let mut writer = BodyWriter::new(&mut out, Framing::Chunked);
    let mut seen = Vec::new();
    let result = copy_body(&mut reader, &mut writer, |d| seen.extend_from_slice(d));
    match result {
        Err(CopyError::Read(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("expected a read error, got {other:?}"),
    }
    assert_eq!(seen, b"hello");
    assert_eq!(out, b"5\r\nhello\r\n");
}

#[test]
fn copy_tries_again_after_an_interruption() {
    let data = binary_data(200 * 1024);
    let mut input = Trickle::new(&data, 10_000);
    input.interrupt = true;
    let mut reader = BodyReader::new(&mut input, Framing::Length(data.len() as u64));
    let mut out = Vec::new();
    let mut writer = BodyWriter::new(&mut out, Framing::Length(data.len() as u64));
    let n = copy_body(&mut reader, &mut writer, |_| {}).unwrap();
    assert_eq!(n, data.len() as u64);
    assert!(out == data, "the body changed on its way");
}

#[test]
fn a_failed_write_is_a_write_error() {
    struct Gone;
    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut input = io::Cursor::new(b"hello".to_vec());
    let mut reader = BodyReader::new(&mut input, Framing::Length(5));
    let mut gone = Gone;
    let mut writer = BodyWriter::new(&mut gone, Framing::Length(5));
    match copy_body(&mut reader, &mut writer, |_| {}) {
        Err(CopyError::Write(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
        other => panic!("expected a write error, got {other:?}"),
    }
}

/// `len` bytes that are not all alike, so a reordering would show.
fn binary_data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}
