//! A request head straight off the client socket: every byte is hostile.
//! Parsing must answer Complete, Partial or an error with the status the
//! module promises, never panic, and framing must be decidable for every
//! head that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webproxy::body::{Framing, request_framing};
use webproxy::message::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_TARGET_BYTES, Parsed, parse_request};
use webproxy::uri::proxy_target;

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(Parsed::Complete(head, used)) => {
            // The limits hold for everything we accept.
            assert!(used <= data.len() && used <= MAX_HEAD_BYTES);
            assert!(head.target.len() <= MAX_TARGET_BYTES);
            assert!(head.headers.len() <= MAX_HEADERS);

            // Parsing is incremental: the head alone parses to the same
            // head, and one byte less is not yet a head. Otherwise the
            // connection would split requests differently depending on how
            // TCP happened to cut the bytes.
            match parse_request(&data[..used]) {
                Ok(Parsed::Complete(again, used_again)) => {
                    assert_eq!(again, head);
                    assert_eq!(used_again, used);
                }
                other => panic!("the head alone did not parse: {other:?}"),
            }
            assert!(!matches!(
                parse_request(&data[..used - 1]),
                Ok(Parsed::Complete(..))
            ));

            let _ = head.wants_keep_alive();
            let _ = proxy_target(&head);

            match request_framing(&head) {
                // Two framings at once is how requests get smuggled: a
                // chunked request must carry no Content-Length, and a
                // length-framed one no Transfer-Encoding.
                Ok(Framing::Chunked) => assert!(!head.headers.contains("Content-Length")),
                Ok(Framing::Length(_)) => assert!(!head.headers.contains("Transfer-Encoding")),
                Ok(Framing::Empty) => {}
                Ok(Framing::UntilClose) => panic!("a request body never runs until close"),
                Err(e) => assert!(matches!(e.status, 400 | 501), "{e:?}"),
            }
        }
        // check_partial_request refuses to wait for more once the limit
        // is already passed.
        Ok(Parsed::Partial) => assert!(data.len() <= MAX_HEAD_BYTES),
        Err(e) => assert!(matches!(e.status, 400 | 414 | 431 | 501 | 505), "{e:?}"),
    }
});
