//! Stage 2, exercise 3: slow and idle clients give their worker back.
//!
//! With `--features ex-2-3`, the function in this file replaces the
//! reference `next_request` in `src/server.rs`, and everything around it is
//! the reference code: this file is a child module of `server`, so
//! `use super::*` reaches `Shared`, `Client`, `Next` and `LINGER`. Read
//! `serve`, just below the reference `next_request`, which acts on its
//! answer. Hints: `exercises/stage2/HINTS.md`; grade it with
//! `cargo run --bin grade -- 2`.

// Until you write it, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: next_request
/// Looks for the next request on `client`: takes it from what is buffered,
/// else reads once. A worker waits for bytes only briefly (`LINGER`), only
/// for a client that has sent nothing of its next head yet, and only when
/// no other connection is queued for a worker; anything slower is parked.
pub(super) fn next_request(shared: &Shared, client: &mut Client) -> Next {
    // TODO(exercise 3): find the client's next request without holding a
    // worker for a client that is slow or idle.
    //
    // - `client.conn.take_request_head()` gives a whole head from what is
    //   buffered (`Ok(Some(head))` -> `Next::Request`), says more bytes are
    //   needed (`Ok(None)`), or finds an error (`Err(e)` -> `Next::Error`).
    // - Otherwise read once more: `client.conn.read_some()` returns how many
    //   bytes came (0: the client closed) or an error, for which `is_timeout`
    //   is true when the read timeout (`client.conn.set_read_timeout`)
    //   passed. Then look at the buffer again.
    // - How long may that read wait? `LINGER` only when the client has sent
    //   nothing of its next head (`client.conn.buffered()` is empty) and no
    //   other connection waits for a worker (`shared.pool.waiting() == 0`);
    //   otherwise a hundred microseconds, just enough to take what is there.
    // - A timeout: `Next::Park`, the waiting room wakes the connection when
    //   bytes arrive. Record when a head started (`client.head_since`) the
    //   first time you see part of one: its deadline counts from there.
    // - The client closed: `Next::Close`, or, in the middle of a head, a
    //   400 (`Next::Error`). Any other error: `Next::Close`.
    todo!("stage 2, exercise 3: next_request")
}
// ANCHOR_END: next_request
