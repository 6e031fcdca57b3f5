//! A fixed-size thread pool with a bounded queue.
//!
//! The seed proxies start one thread per connection, without limit: a few
//! thousand clients (or one hostile one) and the process runs out of memory
//! or threads. Here a fixed number of workers take jobs from a queue whose
//! length is capped, so the proxy's cost has a ceiling. When the queue is
//! full, [`ThreadPool::try_execute`] says so at once and the caller refuses
//! the work (with a 503) instead of piling it up.
//!
//! The shape follows the Rust Book's web-server chapter, with two changes:
//! the queue is a `Mutex<VecDeque>` with a `Condvar`, so it can be bounded and
//! asked how many jobs wait (the server uses that to be fair between
//! persistent connections), and a [`PoolHandle`] lets a job schedule more work
//! without keeping the pool alive. Dropping the [`ThreadPool`] shuts it down
//! gracefully: queued jobs still run, then every worker is joined.

// While this exercise's starter stands in for the reference code, what only
// the reference used goes unused.
#![cfg_attr(feature = "ex-2-2", allow(dead_code, unused_imports))]

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Queue {
    jobs: VecDeque<Job>,
    shutting_down: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A job that panics runs outside the lock, so the lock can only be
        // poisoned by a panic in this module; the queue is still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ANCHOR: bounded_queue
    /// Queues `job`, or gives it back when the queue is full or the pool is
    /// shutting down.
    #[cfg(not(feature = "ex-2-2"))]
    fn push(&self, job: Job) -> Result<(), Job> {
        let mut queue = self.lock();
        if queue.shutting_down || queue.jobs.len() >= self.capacity {
            return Err(job);
        }
        queue.jobs.push_back(job);
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }
    // ANCHOR_END: bounded_queue
}

/// The pool. Dropping it waits for every queued job to finish.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// A weak handle for submitting jobs from inside jobs.
#[derive(Clone)]
pub struct PoolHandle {
    shared: Weak<Shared>,
}

/// The job was refused: the queue is full or the pool is shutting down.
/// The job comes back so the caller can clean up what it owns.
pub struct Rejected(pub Box<dyn FnOnce() + Send + 'static>);

impl ThreadPool {
    /// Starts `threads` workers (at least one) and a queue of at most
    /// `queue_capacity` waiting jobs.
    pub fn new(threads: usize, queue_capacity: usize) -> std::io::Result<ThreadPool> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                shutting_down: false,
            }),
            ready: Condvar::new(),
            capacity: queue_capacity.max(1),
        });
        let mut workers = Vec::new();
        for id in 0..threads.max(1) {
            let shared = Arc::clone(&shared);
            let worker = thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || worker_loop(&shared))?;
            workers.push(worker);
        }
        Ok(ThreadPool { shared, workers })
    }

    /// Queues `job`, or gives it back at once if the queue is full.
    pub fn try_execute<F>(&self, job: F) -> Result<(), Rejected>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared.push(Box::new(job)).map_err(Rejected)
    }

    pub fn handle(&self) -> PoolHandle {
        PoolHandle {
            shared: Arc::downgrade(&self.shared),
        }
    }

    pub fn threads(&self) -> usize {
        self.workers.len()
    }
}

impl PoolHandle {
    /// Like [`ThreadPool::try_execute`]; also refused once the pool is gone.
    pub fn try_execute<F>(&self, job: F) -> Result<(), Rejected>
    where
        F: FnOnce() + Send + 'static,
    {
        match self.shared.upgrade() {
            Some(shared) => shared.push(Box::new(job)).map_err(Rejected),
            None => Err(Rejected(Box::new(job))),
        }
    }

    /// How many jobs are waiting for a worker right now.
    pub fn waiting(&self) -> usize {
        self.shared.upgrade().map_or(0, |s| s.lock().jobs.len())
    }
}

// ANCHOR: worker_loop
/// What every worker thread runs: take a job, run it, until the pool shuts
/// down and its queue is empty.
#[cfg(not(feature = "ex-2-2"))]
fn worker_loop(shared: &Shared) {
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.shutting_down {
                    return;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        // The lock is released before the job runs: workers never wait for
        // each other's jobs. A panicking job must not take the worker down
        // with it, or the pool would shrink a little with every bug.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            log::error!("a job panicked; the worker carries on");
        }
    }
}
// ANCHOR_END: worker_loop

// ANCHOR: end_turn
/// How long a worker may run jobs back to back before it offers its core
/// to the others: about a dozen cache hits.
const TURN: Duration = Duration::from_micros(250);

thread_local! {
    /// When this thread's turn began: its last yield, or its first job.
    static TURN_BEGAN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Called by a job that ends while other jobs wait. When there is always
/// another job, a worker never blocks, and the scheduler shares the cores
/// among all the workers by taking one off in the middle of whatever it
/// does: a request, half-served, then waits for every other worker's time
/// slice. With 16 workers on one core, one cache hit in a hundred took
/// over 50 ms that way. A worker that yields between jobs, once its turn
/// is over, is rarely taken off in the middle of one; yielding after
/// every job would cost a context switch per request.
pub fn end_turn() {
    TURN_BEGAN.with(|began| {
        let now = Instant::now();
        if turn_is_over(began.get(), now) {
            thread::yield_now();
            began.set(Some(Instant::now()));
        } else if began.get().is_none() {
            began.set(Some(now));
        }
    });
}

fn turn_is_over(began: Option<Instant>, now: Instant) -> bool {
    began.is_some_and(|began| now.duration_since(began) >= TURN)
}
// ANCHOR_END: end_turn

// Exercise 2.2: with its feature, the student's `Shared::push` and
// `worker_loop` replace the ones above.
#[cfg(feature = "ex-2-2")]
#[path = "../exercises/stage2/pool.rs"]
mod ex_2_2;
#[cfg(feature = "ex-2-2")]
use ex_2_2::worker_loop;

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.lock().shutting_down = true;
        self.shared.ready.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_turn_ends_after_its_time() {
        let began = Instant::now();
        assert!(!turn_is_over(None, began));
        assert!(!turn_is_over(Some(began), began + TURN / 2));
        assert!(turn_is_over(Some(began), began + TURN));
        assert!(turn_is_over(Some(began), began + TURN * 4));
    }

    #[test]
    fn runs_jobs_and_drains_on_drop() {
        let done = Arc::new(AtomicUsize::new(0));
        let pool = ThreadPool::new(4, 100).unwrap();
        for _ in 0..50 {
            let done = Arc::clone(&done);
            assert!(
                pool.try_execute(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .is_ok()
            );
        }
        drop(pool);
        assert_eq!(done.load(Ordering::SeqCst), 50);
    }

    #[test]
    fn full_queue_rejects_at_once() {
        let pool = ThreadPool::new(1, 1).unwrap();
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        pool.try_execute(move || {
            started_tx.send(()).unwrap();
            let _ = wait.recv_timeout(Duration::from_secs(10));
        })
        .ok()
        .unwrap();
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(pool.try_execute(|| {}).is_ok(), "one job fits in the queue");
        assert_eq!(pool.handle().waiting(), 1);
        assert!(pool.try_execute(|| {}).is_err(), "the second does not");
        release.send(()).unwrap();
    }

    #[test]
    fn a_panicking_job_keeps_the_worker() {
        let pool = ThreadPool::new(1, 10).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.try_execute(|| panic!("boom")).ok().unwrap();
        pool.try_execute(move || tx.send(7).unwrap()).ok().unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
    }

    #[test]
    fn handle_fails_after_drop() {
        let pool = ThreadPool::new(1, 10).unwrap();
        let handle = pool.handle();
        drop(pool);
        assert!(handle.try_execute(|| {}).is_err());
    }
}
