//! The threads tunnels run on, kept for reuse.
//!
//! Tunnels do not run on the HTTP worker pool (see [`super::capacity`]), so
//! each one needs threads of its own: one for the tunnel and one for its
//! second direction. Starting a thread is not free: a fresh stack and a few
//! dozen system calls, about as much work as relaying a whole short tunnel.
//! Browsers open many short tunnels, so a thread that finishes a tunnel waits
//! a little while for the next one instead of exiting. Both the relay (for
//! its second direction) and the tunnel slot (for the tunnel itself) take
//! their threads from here, which is why this sits below both. No RFC has a
//! say in this; it is a cost of blocking sockets.

use std::io;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::Duration;

// ANCHOR: thread_cache
type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long a tunnel thread waits for its next tunnel before it exits.
const THREAD_KEEP: Duration = Duration::from_secs(30);

/// Tunnel threads that, once done, wait for another job instead of exiting.
/// Unlike the HTTP worker pool it has no fixed size: the tunnel limit
/// already caps how many jobs run at once, and idle threads leave after
/// `THREAD_KEEP`.
pub struct ThreadCache {
    /// One channel per idle thread; sending a job wakes that thread.
    idle: Mutex<Vec<mpsc::Sender<Job>>>,
}

impl ThreadCache {
    /// Runs `job` on an idle thread, or on a new one if none is idle.
    pub(super) fn run(self: &Arc<Self>, mut job: Job) -> io::Result<()> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(thread) = idle else { break };
            // A thread that timed out a moment ago is gone: its channel
            // hands the job back, and we try the next one.
            match thread.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(back)) => job = back,
            }
        }
        let cache = Arc::clone(self);
        thread::Builder::new()
            .name("tunnel".to_string())
            .spawn(move || cache.work(job))
            .map(|_| ())
    }

    fn work(&self, mut job: Job) {
        loop {
            job();
            let (wake, next) = mpsc::channel();
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(wake);
            match next.recv_timeout(THREAD_KEEP) {
                Ok(next) => job = next,
                Err(_) => return,
            }
        }
    }
}

/// The process's tunnel threads, shared by every tunnel.
pub(super) fn threads() -> &'static Arc<ThreadCache> {
    static THREADS: OnceLock<Arc<ThreadCache>> = OnceLock::new();
    THREADS.get_or_init(|| {
        Arc::new(ThreadCache {
            idle: Mutex::new(Vec::new()),
        })
    })
}
// ANCHOR_END: thread_cache
