//! A response head from an origin server, which the proxy trusts no more
//! than a client. Parsing and framing must never panic, and no field value
//! that we would forward may carry a line break (response splitting).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webproxy::body::{Framing, response_framing};
use webproxy::message::{MAX_HEAD_BYTES, Parsed, parse_response};

fuzz_target!(|data: &[u8]| {
    let Ok(Parsed::Complete(head, used)) = parse_response(data) else {
        return;
    };
    assert!(used <= data.len() && used <= MAX_HEAD_BYTES);
    assert!((100..=999).contains(&head.status), "{}", head.status);
    for field in &head.headers {
        // Obsolete line folding is replaced by spaces (RFC 9112 §5.2):
        // a CR or LF left in a value would end our header early.
        assert!(
            !field.value.iter().any(|&b| b == b'\r' || b == b'\n'),
            "{field:?}"
        );
    }

    assert_eq!(response_framing(true, &head), Ok(Framing::Empty));
    let framing = response_framing(false, &head);
    if (100..200).contains(&head.status) || head.status == 204 || head.status == 304 {
        assert_eq!(framing, Ok(Framing::Empty));
    }
    if let Ok(Framing::Length(n)) = framing {
        assert!(n > 0, "a zero length is framed as Empty");
    }
});
