//! Stage 2, exercise 2: the bounded pool.
//!
//! With `--features ex-2-2`, the two functions in this file replace the
//! reference `Shared::push` and `worker_loop` in `src/pool.rs`, and
//! everything around them is the reference code: this file is a child
//! module of `pool`, so `use super::*` reaches the private `Shared`,
//! `Queue` and `Job`. They are `pub(super)` so that `src/pool.rs` can call
//! them. Hints: `exercises/stage2/HINTS.md`; grade it with
//! `cargo run --bin grade -- 2`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: push
impl Shared {
    /// Queues `job`, or gives it back when the queue is full or the pool is
    /// shutting down.
    pub(super) fn push(&self, job: Job) -> Result<(), Job> {
        // TODO(exercise 2a): add `job` at the back of the queue, unless the
        // queue already holds `self.capacity` jobs or the pool is shutting
        // down: then give the job back at once, `Err(job)`, so the caller
        // can refuse the work instead of piling it up.
        //
        // Take the lock with `self.lock()`. After queueing, wake one worker
        // that waits on `self.ready` (`notify_one`). Release the lock before
        // you notify (drop the guard), or the woken worker wakes only to
        // wait for the lock you still hold.
        todo!("stage 2, exercise 2a: push")
    }
}
// ANCHOR_END: push

// ANCHOR: worker_loop
/// What every worker thread runs: take a job, run it, until the pool shuts
/// down and its queue is empty.
pub(super) fn worker_loop(shared: &Shared) {
    // TODO(exercise 2b): what every worker thread runs, until the pool shuts
    // down:
    //
    // 1. Take the lock (`shared.lock()`) and pop the job at the front of the
    //    queue. No job: if the pool is shutting down, return (the thread
    //    ends); otherwise wait on `shared.ready` (`Condvar::wait` gives the
    //    lock back while it sleeps) and look again. A wakeup does not
    //    promise a job, so always look again.
    // 2. Release the lock, then run the job. A job that runs while you hold
    //    the lock keeps every other worker waiting for it: one slow origin
    //    would stop the whole proxy.
    // 3. A job that panics must not kill the worker, or the pool shrinks a
    //    little with every bug: run it under `std::panic::catch_unwind`
    //    (wrap it in `std::panic::AssertUnwindSafe`) and log the panic.
    //
    // Shutting down (see `Drop for ThreadPool`) still runs the jobs that
    // are queued: a worker returns only when the queue is empty.
    todo!("stage 2, exercise 2b: worker_loop")
}
// ANCHOR_END: worker_loop
