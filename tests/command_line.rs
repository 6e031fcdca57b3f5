//! The stage binaries' command lines, run for real: what a user sees when
//! asking for help or the version, or when mistyping a flag.
//!
//! The flag groups are unit-tested in `src/cli/`; what only the binaries can
//! show is how each stage composes them, and the exit statuses.

mod common;

use std::time::Duration;

use common::{Finished, RunningBinary, TempDir, get, run_to_exit};

const STAGES: [&str; 5] = [
    env!("CARGO_BIN_EXE_stage1"),
    env!("CARGO_BIN_EXE_stage2"),
    env!("CARGO_BIN_EXE_stage3"),
    env!("CARGO_BIN_EXE_stage4"),
    env!("CARGO_BIN_EXE_stage5"),
];

/// The first flag of each stage's own group.
const FIRST_FLAG: [&str; 5] = [
    "--port",
    "--threads",
    "--cache-size",
    "--connect-ports",
    "--block",
];

fn run(program: &str, args: &[&str]) -> Finished {
    run_to_exit(program, args, Duration::from_secs(10))
}

fn exit_code(run: &Finished) -> Option<i32> {
    run.status.and_then(|s| s.code())
}

#[test]
fn every_stage_has_a_version() {
    for (n, program) in STAGES.iter().enumerate() {
        let run = run(program, &["--version"]);
        assert!(run.success(), "{run:?}");
        let expected = format!("stage{} {}\n", n + 1, env!("CARGO_PKG_VERSION"));
        assert_eq!(run.stdout, expected);
    }
}

#[test]
fn help_lists_the_flags_of_the_stage_and_no_later_one() {
    for (n, program) in STAGES.iter().enumerate() {
        let help = run(program, &["--help"]);
        assert!(help.success(), "{help:?}");
        for flag in &FIRST_FLAG[..=n] {
            assert!(
                help.stdout.contains(flag),
                "stage{}: {}",
                n + 1,
                help.stdout
            );
        }
        for flag in &FIRST_FLAG[n + 1..] {
            assert!(
                !help.stdout.contains(flag),
                "stage{}: {}",
                n + 1,
                help.stdout
            );
        }
        assert!(help.stdout.contains("RUST_LOG"), "{}", help.stdout);
    }
    let help = run(STAGES[4], &["--help"]).stdout;
    assert!(
        help.contains("  block ") && help.contains("  unblock "),
        "{help}"
    );
}

#[test]
fn a_flag_of_a_later_stage_is_a_usage_error() {
    for (n, program) in STAGES[..4].iter().enumerate() {
        let flag = FIRST_FLAG[n + 1];
        let run = run(program, &[flag, "1"]);
        assert_eq!(exit_code(&run), Some(2), "stage{}: {run:?}", n + 1);
        assert!(run.stderr.contains(flag), "{}", run.stderr);
        assert!(!run.stdout.contains("listening on"));
    }
}

#[test]
fn a_bad_value_names_the_flag_and_the_reason() {
    for (program, args, reason) in [
        (STAGES[0], &["--port", "x"][..], "not a port number"),
        (STAGES[2], &["--cache-size", "64Q"], "unknown size suffix"),
        (STAGES[3], &["--connect-ports", "0"], "port 0"),
        (STAGES[4], &["--allow-clients", "10.1.2.3/8"], "bits set"),
    ] {
        let run = run(program, args);
        assert_eq!(exit_code(&run), Some(2), "{run:?}");
        assert!(run.stderr.contains(args[0]), "{}", run.stderr);
        assert!(run.stderr.contains(reason), "{}", run.stderr);
    }
}

#[test]
fn stages_1_to_4_refuse_to_be_an_open_proxy() {
    for program in &STAGES[..4] {
        let run = run(program, &["--port", "0", "--bind", "0.0.0.0"]);
        assert_eq!(exit_code(&run), Some(1), "{program}: {run:?}");
        assert!(
            !run.stdout.contains("listening on"),
            "{program}: {}",
            run.stdout
        );
        assert!(
            run.stderr.contains("open proxy"),
            "{program}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("--allow-clients"),
            "{program}: {}",
            run.stderr
        );
    }
}

#[test]
fn sighup_is_not_fatal_and_sigterm_stops_with_status_0() {
    for program in STAGES {
        let (mut running, log) = RunningBinary::start_logged(program, &["--port", "0"]);
        running.signal("HUP");
        assert!(
            log.wait_for(&["SIGHUP"], Duration::from_secs(5)).is_some(),
            "{program} did not log the SIGHUP: {:?}",
            log.lines()
        );
        // SIGUSR1 reopens the access log; without one it is only logged.
        running.signal("USR1");
        assert!(
            log.wait_for(&["SIGUSR1"], Duration::from_secs(5)).is_some(),
            "{program} did not log the SIGUSR1: {:?}",
            log.lines()
        );
        // Still serving: the proxy answers its own address's mistakes.
        let response = get(running.addr, "http://127.0.0.1:9/");
        assert!(response.status >= 400, "{program}: {}", response.status);
        running.signal("TERM");
        let status = running.wait_exit(Duration::from_secs(5));
        assert!(
            status.is_some_and(|s| s.success()),
            "{program} did not exit 0 after SIGTERM: {status:?}"
        );
    }
}

#[test]
fn cache_directory_errors_name_the_directory_and_stop_the_start() {
    let dir = TempDir::new("cli-cache-dir");
    let file = dir.write("a-file", "not a directory");
    let below = file.join("cache");
    let below = below.to_str().expect("UTF-8");
    for program in &STAGES[2..] {
        let run = run(program, &["--port", "0", "--cache-dir", below]);
        assert_eq!(exit_code(&run), Some(1), "{run:?}");
        assert!(!run.stdout.contains("listening on"));
        assert!(
            run.stderr.contains(&format!("cannot create {below}")),
            "{}",
            run.stderr
        );
    }
    // A directory nobody may write, root included: refused at start, rather
    // than a warning on every store.
    let sysfs = std::path::Path::new("/sys/kernel");
    if sysfs.is_dir() {
        let run = run(STAGES[2], &["--port", "0", "--cache-dir", "/sys/kernel"]);
        assert_eq!(exit_code(&run), Some(1), "{run:?}");
        assert!(
            run.stderr.contains("cannot write in /sys/kernel"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn an_object_limit_over_the_cache_size_is_refused() {
    let run = run(
        STAGES[2],
        &[
            "--port",
            "0",
            "--cache-size",
            "1M",
            "--max-object-size",
            "2M",
        ],
    );
    assert_eq!(exit_code(&run), Some(1), "{run:?}");
    assert!(!run.stdout.contains("listening on"));
    assert!(
        run.stderr
            .contains("--max-object-size 2.0 MiB is larger than --cache-size 1.0 MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_access_log_that_cannot_be_opened_is_named() {
    for program in STAGES {
        let run = run(
            program,
            &["--port", "0", "--access-log", "/nonexistent/access.log"],
        );
        assert_eq!(exit_code(&run), Some(1), "{program}: {run:?}");
        assert!(!run.stdout.contains("listening on"));
        assert!(
            run.stderr
                .contains("cannot open the access log /nonexistent/access.log"),
            "{}",
            run.stderr
        );
    }
}

/// `contrib/webproxy.service` starts the proxy with flags that exist and
/// fit together: its ExecStart, with the directories systemd would make and
/// a free port, starts stage 5; ExecReload sends the signal that reloads.
#[test]
fn the_sample_systemd_unit_starts_stage5() {
    let unit = include_str!("../contrib/webproxy.service");
    // Continuation lines end in a backslash.
    let unit = unit.replace("\\\n", " ");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "{unit}"
    );
    assert!(unit.contains("DynamicUser=yes"), "{unit}");

    let dir = TempDir::new("systemd-unit");
    let config = dir.path().join("etc");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("blocked.txt"), "ads.test\n").expect("rules");
    let expanded = exec
        .replace(
            "${CACHE_DIRECTORY}",
            &dir.path().join("cache").display().to_string(),
        )
        .replace("${LOGS_DIRECTORY}", &dir.path().display().to_string())
        .replace("${CONFIGURATION_DIRECTORY}", &config.display().to_string());
    let mut words: Vec<&str> = expanded.split_whitespace().skip(1).collect();
    let port = words.iter().position(|w| *w == "--port").expect("--port");
    words[port + 1] = "0";
    let running = RunningBinary::start(STAGES[4], &words);
    let response = get(running.addr, "http://ads.test/");
    assert_eq!(response.status, 403);
    let log = dir.path().join("access.log");
    let written = common::eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains(" TCP_DENIED/403 "))
    });
    assert!(written, "no squid line in {}", log.display());
}
