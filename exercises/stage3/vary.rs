//! Stage 3, exercise 2: Vary, one URI and several answers.
//!
//! With `--features ex-3-2`, the functions in this file replace the
//! reference `normalized_field` and `vary_matches` in
//! `src/cache/variant.rs`, and everything around them is the reference
//! code: this file is a child module of `cache::variant`, so
//! `use super::*` reaches `StoredResponse` and `Headers`. Hints:
//! `exercises/stage3/HINTS.md`; grade it with `cargo run --bin grade -- 3`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: vary
/// The request's value of `name`, normalised for Vary matching (§4.1): each
/// line trimmed, several lines joined with ", " (RFC 9110 §5.3 says that is
/// the same field). `None` when the request has no such field: an absent
/// field only matches an absent field.
pub fn normalized_field(headers: &Headers, name: &str) -> Option<Vec<u8>> {
    // TODO(exercise 2a): every line of `name` in `headers`
    // (`headers.get_all(name)`), each trimmed of surrounding whitespace
    // (`trim_ascii`), joined with ", ". `None` when there is no such line at
    // all; a field that is present but empty is `Some(vec![])`, which is not
    // the same thing.
    todo!("stage 3, exercise 2a: normalized_field")
}

/// Whether `stored` may answer a request with `request_headers` as far as
/// Vary is concerned (§4.1). `Vary: *` stands for things outside the request
/// headers (the client's address, the time of day...), so it never matches.
pub fn vary_matches(stored: &StoredResponse, request_headers: &Headers) -> bool {
    // TODO(exercise 2b): RFC 9111 §4.1. `Vary: *` (anywhere in the stored
    // response's Vary) never matches. Otherwise every (name, value) the
    // stored response recorded in `stored.vary` must equal the new
    // request's `normalized_field` for that name: absent matches absent
    // only.
    todo!("stage 3, exercise 2b: vary_matches")
}
// ANCHOR_END: vary
