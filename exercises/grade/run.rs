//! Running one exercise's graded tests: `cargo test` with that exercise's
//! feature only, so everything else is the reference code, and only the
//! test binaries that hold its tests.

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::course::Exercise;

/// A run that takes longer than this is stopped: a starter that leaves a
/// client waiting costs a socket timeout per test, never minutes.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The `cargo test` arguments that run `exercise`'s graded tests, and only
/// them, against its starter.
pub fn cargo_args(exercise: &Exercise) -> Vec<String> {
    let mut args: Vec<String> = ["test", "--message-format", "short", "--no-fail-fast"]
        .map(String::from)
        .into();
    args.push("--features".into());
    args.push(exercise.feature());
    if !exercise.unit_tests.is_empty() {
        args.push("--lib".into());
    }
    if !exercise.wire_tests.is_empty() {
        args.push("--test".into());
        args.push(format!("stage{}", exercise.stage));
    }
    args.push("--".into());
    args.push("--exact".into());
    args.extend(exercise.graded_tests().cloned());
    args
}

/// What one run printed: cargo and the tests, stdout and stderr interleaved
/// as they came.
pub struct Run {
    pub output: String,
    /// The run was stopped after `RUN_TIMEOUT`.
    pub timed_out: bool,
}

/// Runs the graded tests of `exercise` from the repository at `root`.
pub fn run_tests(root: &Path, exercise: &Exercise) -> io::Result<Run> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let (mut reader, writer) = io::pipe()?;
    let mut child = Command::new(cargo)
        .args(cargo_args(exercise))
        .current_dir(root)
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("RUST_LOG")
        // One line per panic is what the report folds; backtraces are noise.
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        // Its own process group, so that a timeout stops the test binary too.
        .process_group(0)
        .spawn()?;
    let collector = thread::spawn(move || {
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    let mut timed_out = false;
    while child.try_wait()?.is_none() {
        if started.elapsed() > RUN_TIMEOUT {
            timed_out = true;
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let out = collector.join().unwrap_or_default();
    Ok(Run {
        output: String::from_utf8_lossy(&out).into_owned(),
        timed_out,
    })
}

/// How long a run may take.
pub fn timeout_secs() -> u64 {
    RUN_TIMEOUT.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_only_the_binaries_that_hold_graded_tests() {
        let mut exercise = Exercise {
            stage: 3,
            number: 2,
            title: "Vary".into(),
            file: "exercises/stage3/vary.rs".into(),
            points: 5,
            unit_tests: vec!["cache::variant::tests::vary_joins_several_lines".into()],
            wire_tests: vec!["vary_keeps_one_variant_per_header_value".into()],
            hints: vec!["one".into()],
        };
        let args = cargo_args(&exercise).join(" ");
        assert!(args.contains("--features ex-3-2 --lib --test stage3 -- --exact"));
        assert!(args.ends_with("vary_joins_several_lines vary_keeps_one_variant_per_header_value"));
        exercise.unit_tests.clear();
        assert!(!cargo_args(&exercise).contains(&"--lib".to_string()));
    }
}
