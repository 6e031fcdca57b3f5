//! Absolute-form request targets (`http://host:port/path?query`). Beyond
//! "never panics": a parsed URI's Display (the cache key form) parses back
//! to the same URI, so two spellings that share a key are the same target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webproxy::uri::parse_absolute;

fuzz_target!(|data: &[u8]| {
    // Targets reach the parser as &str (httparse checks the request line).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = parse_absolute(text) else {
        return;
    };
    assert_ne!(uri.authority.port, 0);
    assert!(uri.path_and_query.starts_with('/'));
    assert!(!uri.path_and_query.contains('#'), "fragments are not sent");
    assert!(uri.path_and_query.starts_with(uri.path()));
    let shown = uri.to_string();
    match parse_absolute(&shown) {
        Ok(again) => assert_eq!(again, uri, "{text:?} -> {shown:?}"),
        Err(e) => panic!("{text:?} -> {shown:?} does not re-parse: {e}"),
    }
    // The Host header we send must name the same authority.
    let host = format!("http://{}/", uri.authority.host_header());
    let again = parse_absolute(&host).expect("Host header value re-parses");
    assert_eq!(again.authority, uri.authority);
});
