//! Stage 4, exercise 3: one direction of the tunnel.
//!
//! With `--features ex-4-3`, the functions in this file replace the
//! reference `pump` and `send_all` in `src/tunnel/relay.rs`, and everything
//! around them is the reference code: this file is a child module of
//! `tunnel::relay`, so `use super::*` reaches `Activity`, `End`,
//! `is_timeout`, `grown` and `BUF_SIZE`. `pump` is `pub(super)` so that
//! `relay` (written) can call it. Hints: `exercises/stage4/HINTS.md`;
//! grade it with `cargo run --bin grade -- 4`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use super::*;

// ANCHOR: pump
/// One direction of the tunnel: sends `pending`, then copies `from` to `to`
/// until end of file, idleness or an error. Returns the bytes written to `to`.
pub(super) fn pump(from: &TcpStream, to: &TcpStream, pending: &[u8], activity: &Activity) -> u64 {
    // TODO(exercise 3a): one direction of the tunnel.
    //
    // 1. Send `pending` first (`send_all`): bytes the client sent right
    //    behind its CONNECT head must reach the upstream before anything
    //    else.
    // 2. Then loop: read from `from` into a buffer of `BUF_SIZE` bytes and
    //    send what came all to `to`. Every read that brings bytes is
    //    progress (`activity.progressed()`). A read that fills the buffer
    //    means a bulk transfer: `buf.resize(grown(buf.len(), n), 0)` lets
    //    the buffer grow (`grown`, written, doubles it up to a limit).
    // ANCHOR: half_close
    // 3. End of file: `from` has finished sending. Pass that on with
    //    `to.shutdown(Shutdown::Write)` and return, leaving the other
    //    direction running: the peer may still be waiting for its answer
    //    (half-close, RFC 9110 §9.3.6).
    // ANCHOR_END: half_close
    // ANCHOR: idle_check
    // 4. A read timeout (`is_timeout`) is not an error: the sockets have
    //    short timeouts so that this loop can look around. If the other
    //    direction has cut the tunnel (`activity.is_cut()`), stop. If
    //    nothing has moved either way for the idle timeout
    //    (`activity.idle_expired()`), cut it with `End::IdleTimeout`.
    //    Otherwise read again. `Interrupted` means just read again.
    // ANCHOR_END: idle_check
    // 5. Any other error, here or in `send_all`, ends the whole tunnel:
    //    `activity.cut(reason, from, to)` shuts both sockets down, which
    //    also wakes the other direction.
    //
    // Return how many bytes were written to `to`, pending ones included.
    todo!("stage 4, exercise 3a: pump")
}

/// Writes all of `data`, counting progress into `moved`. Unlike
/// `write_all`, it survives write timeouts: a slow reader is fine as long as
/// something moves within the idle timeout.
fn send_all(
    to: &TcpStream,
    mut data: &[u8],
    activity: &Activity,
    moved: &mut u64,
) -> Result<(), End> {
    // TODO(exercise 3b): `write` until `data` is empty, adding what each
    // write took to `moved` and reporting progress. A write that takes 0
    // bytes is an error (`ErrorKind::WriteZero`); `Interrupted` means try
    // again. A write timeout is not an error by itself: try again, unless
    // the tunnel was cut meanwhile or has been idle for the idle timeout
    // (then `Err(End::IdleTimeout)`). Any other error is `Err(End::Error(kind))`.
    //
    // `&TcpStream` implements `Write`, so `let mut writer = to;` lets you
    // call `writer.write(...)` on a shared socket.
    todo!("stage 4, exercise 3b: send_all")
}
// ANCHOR_END: pump
