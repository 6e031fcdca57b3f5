//! The test binaries' panic hook: transcripts for failures, one line for
//! the proxy's own panics.
//!
//! A panic in test code (the test files and this harness) is printed as
//! usual, followed by the wire transcripts of the connections its thread
//! used last (see [`super::wire`]), unless its message carries one already.
//!
//! A panic in the proxy's code (the library or a student's starter) is
//! folded into one line, whatever thread it happens on and whatever
//! `RUST_BACKTRACE` says. A stage 2 starter's pool has eight workers that
//! each meet the same `todo!()`, and each printed a message and a backtrace
//! for every test; those panics are symptoms, and the test's own failure
//! says what they caused. `WEBPROXY_FULL_PANICS=1` leaves every panic to
//! the standard hook.

use std::panic::{self, PanicHookInfo};
use std::sync::Once;
use std::thread;

use super::wire::{MARK, transcripts_here};

/// Sets the panic hook described in the module documentation, once per
/// test binary.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("WEBPROXY_FULL_PANICS").is_some_and(|v| v != "0") {
            return;
        }
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if in_test_code(info) {
                previous(info);
                let message = info.payload_as_str().unwrap_or("");
                if !message.contains(MARK)
                    && let Some(transcripts) = transcripts_here()
                {
                    eprint!("{transcripts}");
                }
            } else {
                eprintln!("{}", one_line(info));
            }
        }));
    });
}

/// Test code is the test files and this harness; everything else is the
/// proxy's code (the library, or a student's starter).
fn in_test_code(info: &PanicHookInfo<'_>) -> bool {
    info.location()
        .is_none_or(|l| l.file().starts_with("tests/") || l.file().starts_with("tests\\"))
}

/// `thread 'worker-3' panicked at exercises/stage2/pool.rs:159:5: not yet
/// implemented: ...`, on one line.
fn one_line(info: &PanicHookInfo<'_>) -> String {
    let current = thread::current();
    let name = current.name().unwrap_or("<unnamed>");
    let place = info.location().map_or(String::from("?"), |l| {
        let file = l.file().strip_prefix("src/../").unwrap_or(l.file());
        format!("{file}:{}:{}", l.line(), l.column())
    });
    let message = info
        .payload_as_str()
        .unwrap_or("(a panic without a message)");
    let mut first = message.lines().next().unwrap_or("").to_string();
    if message.lines().nth(1).is_some() {
        first.push_str(" ...");
    }
    format!("thread '{name}' panicked at {place}: {first}")
}
