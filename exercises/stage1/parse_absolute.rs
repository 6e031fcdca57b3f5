//! Stage 1, exercise 1: where does the client want to go?
//!
//! With `--features ex-1-1`, the function in this file replaces the
//! reference `parse_absolute` in `src/uri.rs`, and everything around it is
//! the reference code: this file is a child module of `uri`, so
//! `use super::*` reaches `parse_authority`, `AbsoluteUri` and the rest,
//! private items included. Hints: `exercises/stage1/HINTS.md`; grade it with
//! `cargo run --bin grade -- 1`.

// Until you write it, its argument and the import go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: parse_absolute
/// Parses an absolute-form target such as `http://a.test:8080/x?y`.
pub fn parse_absolute(target: &str) -> Result<AbsoluteUri, HttpError> {
    // TODO(exercise 1): split `target` into scheme, authority and path
    // (RFC 9112 §3.2.2, RFC 3986 §3), and refuse what a proxy cannot serve:
    //
    // - No `://` at all: the client did not send a URL. Answer
    //   `HttpError::bad_request(NOT_A_PROXY_REQUEST)`.
    // - The scheme must be `http`, in any case (`HTTP://` is fine). For any
    //   other scheme, a 400 whose text mentions CONNECT: browsers reach
    //   `https://` sites through a tunnel (stage 4), never like this.
    // - The authority runs up to the first `/`, `?` or `#`.
    //   `parse_authority` (in `src/uri.rs`) turns it into an `Authority`;
    //   the default port is 80.
    // - A `#fragment` is for the client only and is never sent (RFC 9110
    //   §4.2.5). Drop it.
    // - Keep the path and query byte for byte: no decoding, no tidying
    //   (RFC 9110 §7.7). An empty path is sent as `/` (RFC 9112 §3.2.1),
    //   also when a query follows: `http://a.test?q` asks for `/?q`.
    //
    // The unit tests at the end of `src/uri.rs` list the cases
    // (`cargo test --features ex-1-1 --lib uri::`).
    todo!("stage 1, exercise 1: parse_absolute")
}
// ANCHOR_END: parse_absolute
