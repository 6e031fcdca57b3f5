//! The on-disk cache entry decoder: the files may be torn by a crash or
//! edited by hand, and are read at start-up, so decoding must never panic.
//!
//! A random input almost never carries a correct checksum, which would
//! keep the fuzzer at the door. So each input is decoded twice: as is, and
//! with a correct checksum line appended (the input then plays the file's
//! content). What decodes must re-encode to a file that decodes to the
//! same entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webproxy::cache::disk::{decode, encode};
use webproxy::cache::fnv::fnv1a64;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);

    let mut sealed = data.to_vec();
    let sum = fnv1a64(&sealed);
    sealed.extend_from_slice(format!("checksum {sum:016x}\n").as_bytes());
    let Ok((key, response)) = decode(&sealed) else {
        return;
    };
    let again = encode(&key, &response);
    match decode(&again) {
        Ok((key2, response2)) => {
            assert_eq!(key2, key);
            assert_eq!(response2, response);
        }
        Err(e) => panic!("a re-encoded entry does not decode: {e}"),
    }
    // encode's output is canonical: encoding the decoded copy changes nothing.
    assert_eq!(encode(&key, &response), again);
});
