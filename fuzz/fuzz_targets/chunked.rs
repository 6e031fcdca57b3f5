//! The chunked decoder, fed from a buffered reader as the connection does.
//! The first input byte picks the reader's buffer size, so lines and CRLFs
//! are split across reads the way TCP splits them. Properties:
//! - decoding never panics or hangs, whatever the buffer size;
//! - the buffer size never changes the decoded bytes or whether they decode;
//! - `copy_body` re-encodes exactly what it read, and the re-encoded body
//!   decodes back to it; a body that fails to decode never gets its last
//!   chunk written, so it cannot look complete downstream.
#![no_main]

use std::io::{BufReader, Cursor, Read};

use libfuzzer_sys::fuzz_target;
use webproxy::body::{BodyReader, BodyWriter, CopyError, Framing, copy_body};

fn decode(input: &mut impl std::io::BufRead) -> std::io::Result<Vec<u8>> {
    let mut reader = BodyReader::new(input, Framing::Chunked);
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    assert!(reader.is_done());
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&capacity, wire)) = data.split_first() else {
        return;
    };
    let capacity = usize::from(capacity % 32) + 1;
    let split = decode(&mut BufReader::with_capacity(capacity, wire));
    let whole = decode(&mut Cursor::new(wire));
    match (&split, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("buffer size {capacity} changed the outcome: {split:?} vs {whole:?}"),
    }

    let mut input = BufReader::with_capacity(capacity, wire);
    let mut reader = BodyReader::new(&mut input, Framing::Chunked);
    let mut encoded = Vec::new();
    let mut writer = BodyWriter::new(&mut encoded, Framing::Chunked);
    let mut tapped = Vec::new();
    let copied = copy_body(&mut reader, &mut writer, |d| tapped.extend_from_slice(d));
    let written = writer.written;
    assert_eq!(written, encoded.len() as u64);
    match copied {
        Ok(n) => {
            let whole = whole.expect("copy_body succeeded where decoding failed");
            assert_eq!(n, tapped.len() as u64);
            assert_eq!(tapped, whole);
            assert_eq!(decode(&mut Cursor::new(&encoded)).ok(), Some(whole));
        }
        Err(CopyError::Read(_)) => {
            assert!(whole.is_err(), "copy_body failed where decoding succeeded");
            // What was relayed so far is well-formed chunks but unfinished.
            assert!(decode(&mut Cursor::new(&encoded)).is_err());
        }
        Err(CopyError::Write(e)) => panic!("writing to a Vec failed: {e}"),
    }
});
