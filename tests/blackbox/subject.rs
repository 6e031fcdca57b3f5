//! The proxy under test: which binaries a check runs against, and starting
//! one as a child process on a free port.
//!
//! A binary written from scratch, in any language, knows nothing of this
//! crate, so the suite asks little of it: it must take `--port N` (and, for
//! the stage 5 checks, `--block FILE`) and listen on 127.0.0.1. It announces
//! nothing, so the suite picks the port itself (it binds 127.0.0.1:0 and
//! lets the port go) and then waits, in short steps up to a bound, until the
//! port accepts a connection: the one wait in the suite that polls, since
//! nothing else says when such a binary is ready.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::wire;
use crate::common::{Client, Req, Response};

/// How long a client waits for the proxy before it gives up (and the check
/// fails). Shorter than the test origin's idle timeout (10 s), so that a
/// proxy stuck on an origin's open connection fails instead of passing
/// late.
pub const PATIENCE: Duration = Duration::from_secs(5);
/// How long a binary may take to accept its first connection.
const STARTUP: Duration = Duration::from_secs(20);
/// The lines of the proxy's output kept for failure messages.
const OUTPUT_LINES: usize = 8;

/// A proxy binary to run the checks against.
pub struct Target {
    /// The stage the binary claims (WEBPROXY_STAGE), or ours is.
    pub stage: u8,
    /// The program and the arguments that come before ours.
    command: Vec<String>,
    /// One of our stage binaries, which needs flags a foreign one does not
    /// take (`--connect-ports`).
    ours: bool,
}

/// What a check needs the proxy to allow or refuse.
#[derive(Default)]
pub struct Setup {
    /// Ports CONNECT must reach. Our binaries get `--connect-ports`; a
    /// foreign binary must allow them itself (see [`Target::is_ours`]).
    pub connect_ports: Vec<u16>,
    /// A rules file for `--block FILE` (stage 5).
    pub block_file: Option<PathBuf>,
}

impl Target {
    pub fn is_ours(&self) -> bool {
        self.ours
    }

    /// Starts the binary on a free port and waits until it accepts.
    pub fn start(&self, setup: &Setup) -> Proxy {
        let port = free_port();
        let mut args: Vec<String> = self.command[1..].to_vec();
        args.extend(["--port".to_string(), port.to_string()]);
        if self.ours && self.stage >= 4 && !setup.connect_ports.is_empty() {
            let ports: Vec<String> = setup.connect_ports.iter().map(u16::to_string).collect();
            args.extend(["--connect-ports".to_string(), ports.join(",")]);
        }
        if let Some(file) = &setup.block_file {
            args.extend(["--block".to_string(), file.display().to_string()]);
        }
        let shown = format!("{} {}", self.command[0], args.join(" "));
        let child = Command::new(&self.command[0])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the proxy `{shown}`: {e}"));
        let mut proxy = Proxy {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            output: Arc::new(Mutex::new(VecDeque::new())),
        };
        let pipes_ended = proxy.collect_output();
        let (output, command) = (Arc::clone(&proxy.output), shown.clone());
        wire::clear_context();
        wire::add_context(move || describe(&command, &output));
        proxy.wait_until_ready(&shown, &pipes_ended);
        proxy
    }
}

/// The stage the proxy under test claims: WEBPROXY_STAGE, 5 by default.
pub fn declared_stage() -> u8 {
    match std::env::var("WEBPROXY_STAGE") {
        Err(_) => 5,
        Ok(text) => match text.trim().parse() {
            Ok(n @ 1..=5) => n,
            _ => panic!("WEBPROXY_STAGE={text:?}: expected a stage from 1 to 5"),
        },
    }
}

/// The proxies a check of `stage` runs against: WEBPROXY_BIN if set (split
/// on whitespace, so `python3 proxy.py` works), else each of our stage
/// binaries from `stage` up to the declared one.
pub fn targets(stage: u8) -> Vec<Target> {
    let declared = declared_stage();
    if let Ok(bin) = std::env::var("WEBPROXY_BIN") {
        let command: Vec<String> = bin.split_whitespace().map(str::to_string).collect();
        assert!(!command.is_empty(), "WEBPROXY_BIN is empty");
        return if stage <= declared {
            vec![Target {
                stage: declared,
                command,
                ours: false,
            }]
        } else {
            Vec::new()
        };
    }
    let ours = [
        env!("CARGO_BIN_EXE_stage1"),
        env!("CARGO_BIN_EXE_stage2"),
        env!("CARGO_BIN_EXE_stage3"),
        env!("CARGO_BIN_EXE_stage4"),
        env!("CARGO_BIN_EXE_stage5"),
    ];
    (stage..=declared)
        .map(|n| Target {
            stage: n,
            command: vec![ours[usize::from(n) - 1].to_string()],
            ours: true,
        })
        .collect()
}

/// Runs `check` against every target for a check of `stage`; says so when
/// the declared stage is lower and nothing runs.
pub fn run(stage: u8, check: impl Fn(&Target)) {
    let targets = targets(stage);
    if targets.is_empty() {
        note(&format!(
            "{}: not checked, a stage {stage} check (WEBPROXY_STAGE={})",
            thread::current().name().unwrap_or("?"),
            declared_stage()
        ));
    }
    for target in &targets {
        check(target);
    }
}

/// Writes straight to the terminal: the test harness captures what tests
/// print, and a note about a check that did not run must not be hidden.
pub fn note(text: &str) {
    let _ = writeln!(io::stderr(), "note: {text}");
}

/// A running proxy; killed when dropped.
pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl Proxy {
    /// A new connection to the proxy, with [`PATIENCE`] as its read timeout.
    #[track_caller]
    pub fn connect(&self) -> Client {
        let client = Client::connect(self.addr);
        client.set_read_timeout(PATIENCE);
        client
    }

    /// `req` on a new connection.
    #[track_caller]
    pub fn request(&self, req: &Req) -> Response {
        self.connect().request(req)
    }

    /// GET `url` on a new connection.
    #[track_caller]
    pub fn get(&self, url: &str) -> Response {
        self.request(&Req::get(url))
    }

    /// Keeps the last lines of the binary's stdout and stderr; returns a
    /// channel that hears once from each pipe when it ends.
    fn collect_output(&mut self) -> mpsc::Receiver<()> {
        let stdout = self
            .child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = self
            .child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let (ended, pipes_ended) = mpsc::channel();
        for pipe in [stdout, stderr].into_iter().flatten() {
            let output = Arc::clone(&self.output);
            let ended = ended.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut lines = output.lock().unwrap_or_else(|e| e.into_inner());
                    if lines.len() == OUTPUT_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(line);
                }
                let _ = ended.send(());
            });
        }
        pipes_ended
    }

    /// Polls the port every 10 ms until it accepts, the binary exits, or
    /// [`STARTUP`] passes.
    fn wait_until_ready(&mut self, shown: &str, pipes_ended: &mpsc::Receiver<()>) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Its last words are in the pipes until both have ended.
                for _ in 0..2 {
                    let _ = pipes_ended.recv_timeout(Duration::from_secs(1));
                }
                panic!(
                    "the proxy `{shown}` exited ({status}) before it accepted a connection\n{}",
                    last_lines(&self.output)
                );
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy `{shown}` did not accept connections on {} within {} s\n{}",
                self.addr,
                STARTUP.as_secs(),
                last_lines(&self.output)
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

fn describe(command: &str, output: &Mutex<VecDeque<String>>) -> String {
    format!("proxy under test: {command}\n{}", last_lines(output))
}

fn last_lines(output: &Mutex<VecDeque<String>>) -> String {
    let lines = output.lock().unwrap_or_else(|e| e.into_inner());
    if lines.is_empty() {
        return "  (it printed nothing)\n".into();
    }
    let mut text = String::from("  its last lines of output:\n");
    for line in lines.iter() {
        text.push_str(&format!("    {line}\n"));
    }
    text
}
