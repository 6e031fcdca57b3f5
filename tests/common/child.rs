//! Running a real stage binary, for smoke tests of the command line.
//!
//! The binary is started with `--port 0`; it prints `listening on
//! http://ADDR:PORT` once it is bound, and we read the address from that
//! line. The child is killed when the guard is dropped, so a failing
//! assertion never leaves a proxy running.
//!
//! [`run_to_exit`] is for commands that should end by themselves (the
//! `block`/`unblock` subcommands, a proxy that must refuse to start): it
//! waits a bounded time and kills the child if it is still running then.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// A running binary; killed on drop.
pub struct RunningBinary {
    child: Child,
    pub addr: SocketAddr,
}

impl RunningBinary {
    /// Starts `program` with `args` and waits (10 s at most) for its
    /// `listening on http://...` line.
    pub fn start(program: &str, args: &[&str]) -> RunningBinary {
        Self::launch(program, args, &[], false).0
    }

    /// Like [`RunningBinary::start`], and keeps what the binary writes to
    /// stderr (its log, access lines included) for the test to read.
    pub fn start_logged(program: &str, args: &[&str]) -> (RunningBinary, Log) {
        Self::start_logged_with(program, args, &[])
    }

    /// Like [`RunningBinary::start_logged`], with environment variables
    /// such as `RUST_LOG`.
    pub fn start_logged_with(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (RunningBinary, Log) {
        let (running, log) = Self::launch(program, args, env, true);
        (running, log.expect("stderr is captured"))
    }

    fn launch(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        capture_log: bool,
    ) -> (RunningBinary, Option<Log>) {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if capture_log {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let log = child.stderr.take().map(Log::collect);
        // Reading a pipe has no timeout, so a helper thread reads and the
        // test waits on a channel with one.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // The guard exists before any assertion, so the child is killed
        // whatever happens next.
        let mut running = RunningBinary {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the binary printed no address within 10 s");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        running.addr = addr
            .parse()
            .unwrap_or_else(|_| panic!("bad address in {line:?}"));
        (running, log)
    }
}

impl RunningBinary {
    /// Sends `signal` (a name such as `TERM` or `HUP`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `timeout` for the binary to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a command run by [`run_to_exit`] ended.
#[derive(Debug)]
pub struct Finished {
    /// `None` when it was still running at the deadline and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `program` with `args` and waits up to `timeout` for it to exit;
/// a program still running then is killed (and `status` is `None`).
pub fn run_to_exit(program: &str, args: &[&str], timeout: Duration) -> Finished {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    // Pipes are drained on their own threads, so a chatty child can never
    // block on a full pipe while we wait for it.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads a pipe to its end on a helper thread.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// The lines a binary wrote to stderr, collected by a helper thread as they
/// arrive (the thread ends when the binary does).
#[derive(Clone)]
pub struct Log {
    shared: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Log {
    fn collect(stderr: ChildStderr) -> Log {
        let log = Log {
            shared: Arc::new((Mutex::new(Vec::new()), Condvar::new())),
        };
        let shared = Arc::clone(&log.shared);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                shared
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
                shared.1.notify_all();
            }
        });
        log
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until some line contains every one of `parts`; returns it, or
    /// None after `timeout`. (The access line is logged after the response
    /// is sent, so a client can read the response before the line exists.)
    pub fn wait_for(&self, parts: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.shared;
        let mut lines = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(found) = lines.iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return Some(found.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            lines = changed
                .wait_timeout(lines, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
