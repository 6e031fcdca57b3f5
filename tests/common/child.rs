//! Running a real stage binary, for smoke tests of the command line.
//!
//! The binary is started with `--port 0`; it prints `listening on
//! http://ADDR:PORT` once it is bound, and we read the address from that
//! line. The child is killed when the guard is dropped, so a failing
//! assertion never leaves a proxy running.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A running binary; killed on drop.
pub struct RunningBinary {
    child: Child,
    pub addr: SocketAddr,
}

impl RunningBinary {
    /// Starts `program` with `args` and waits (10 s at most) for its
    /// `listening on http://...` line.
    pub fn start(program: &str, args: &[&str]) -> RunningBinary {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
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
        running
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
