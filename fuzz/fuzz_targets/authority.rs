//! CONNECT targets in authority-form (`host:port`). Never panics, never
//! accepts port 0, and Display (what we connect to and log) parses back to
//! the same authority.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webproxy::uri::parse_authority_form;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(authority) = parse_authority_form(text) else {
        return;
    };
    assert_ne!(authority.port, 0);
    let shown = authority.to_string();
    match parse_authority_form(&shown) {
        Ok(again) => assert_eq!(again, authority, "{text:?} -> {shown:?}"),
        Err(e) => panic!("{text:?} -> {shown:?} does not re-parse: {e}"),
    }
});
