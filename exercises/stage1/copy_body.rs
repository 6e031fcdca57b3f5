//! Stage 1, exercise 2: the relay loop.
//!
//! With `--features ex-1-2`, the function in this file replaces the
//! reference `copy_body` in `src/body.rs`, and everything around it is the
//! reference code: this file is a child module of `body`, so
//! `use super::*` reaches `BodyReader`, `BodyWriter` and `CopyError`.
//! Hints: `exercises/stage1/HINTS.md`; grade it with
//! `cargo run --bin grade -- 1`.

// Until you write it, the arguments and the imports go unused.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use super::*;

// ANCHOR: copy_body
/// Streams a body from `from` (already decoded) to `to`, calling `tap` with
/// every piece on the way (the cache uses it to keep a copy). Returns the
/// number of body bytes copied. The end of the body is written only when the
/// whole body was read, so a truncated body never looks complete downstream.
pub fn copy_body<R: BufRead, W: Write>(
    from: &mut BodyReader<'_, R>,
    to: &mut BodyWriter<'_, W>,
    mut tap: impl FnMut(&[u8]),
) -> Result<u64, CopyError> {
    // TODO(exercise 2): the relay loop. Until `from` says the body is over:
    //
    // - read a piece into a fixed buffer (64 KiB is plenty): `from` has
    //   already decoded the framing, so `Ok(0)` means "the body is
    //   complete", and an error means it is not (the origin closed early,
    //   sent broken chunks, or went quiet);
    // - `Interrupted` is not an error, just try again (see `std::io::Read`);
    // - show the piece to `tap`, then hand it to `to.write_data`;
    // - count the bytes.
    //
    // Then `to.finish()`, but only when the whole body was read: for a
    // chunked body, `finish` writes the last chunk, and a client that sees
    // it believes the body is complete (RFC 9112 §7.1). A body cut short
    // upstream must look cut short downstream.
    //
    // A failed read is `CopyError::Read`, a failed write `CopyError::Write`:
    // the caller answers them differently. Never hold the whole body in
    // memory: it may be larger than the machine's memory, and the client
    // should see the first bytes before the origin has sent the last.
    todo!("stage 1, exercise 2: copy_body")
}
// ANCHOR_END: copy_body
