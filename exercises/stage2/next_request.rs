//! Stage 2, exercise 3: slow and idle clients give their worker back.
//!
//! With `--features ex-2-3`, the functions in this file replace the
//! reference `read_wait` and `next_request` in `src/server.rs`, and
//! everything around them is the reference code: this file is a child
//! module of `server`, so `use super::*` reaches `Shared`, `Client`, `Next`,
//! `LINGER` and `BRIEF`. Read `serve`, just below the reference
//! `next_request`, which acts on its answer. Hints:
//! `exercises/stage2/HINTS.md`; grade it with `cargo run --bin grade -- 2`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: next_request
/// How long the next read on a connection may wait. `LINGER` only for a
/// client that has sent nothing of its next head (`partial` is false) while
/// no other connection waits for a worker (`waiting` is 0); anything else
/// gets `BRIEF`, just long enough to take what is there.
pub(super) fn read_wait(partial: bool, waiting: usize) -> Duration {
    // TODO(exercise 3a): a worker that waits for an idle client keeps every
    // other client from that worker. Waiting a little (`LINGER`) pays only
    // when the client is likely to send its next request at once and
    // nobody else needs the worker.
    todo!("stage 2, exercise 3a: read_wait")
}

/// Looks for the next request on `client`: takes it from what is buffered,
/// else reads once. A worker waits for bytes only briefly (`LINGER`), only
/// for a client that has sent nothing of its next head yet, and only when
/// no other connection is queued for a worker; anything slower is parked.
pub(super) fn next_request(shared: &Shared, client: &mut Client) -> Next {
    // TODO(exercise 3b): find the client's next request without holding a
    // worker for a client that is slow or idle.
    //
    // - `client.conn.take_request_head()` gives a whole head from what is
    //   buffered (`Ok(Some(head))` -> `Next::Request`), says more bytes are
    //   needed (`Ok(None)`), or finds an error (`Err(e)` -> `Next::Error`).
    // - Otherwise read once more: `client.conn.read_some()` returns how many
    //   bytes came (0: the client closed) or an error, for which `is_timeout`
    //   is true when the read timeout (`client.conn.set_read_timeout`)
    //   passed. Then look at the buffer again.
    // - How long may that read wait? `read_wait(partial, shared.pool.waiting())`,
    //   where `partial` says whether the client has sent part of its next
    //   head (`client.conn.buffered()` is not empty).
    // - A timeout: `Next::Park`, the waiting room wakes the connection when
    //   bytes arrive. Record when a head started (`client.head_since`) the
    //   first time you see part of one: its deadline counts from there.
    // - The client closed: `Next::Close`, or, in the middle of a head, a
    //   400 (`Next::Error`). Any other error: `Next::Close`.
    todo!("stage 2, exercise 3b: next_request")
}
// ANCHOR_END: next_request
