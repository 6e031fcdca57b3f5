//! Reading what `cargo test` printed: which tests passed, why the others
//! failed, which `todo!()` was reached first, and whether it built at all.
//!
//! The output is libtest's plain text (`test NAME ... ok`, `---- NAME stdout
//! ----` sections, `thread 'T' panicked at FILE:LINE:COL:` and the message on
//! the next line), with cargo's compiler messages in `--message-format
//! short`. A proxy test that fails often comes with panics on other threads:
//! the proxy's workers, an origin, a tunnel. Each of those folds into one
//! line, counted, so eight workers hitting the same `todo!()` are one line,
//! not eighty.

use std::collections::BTreeMap;

/// What one `cargo test` run says about the tests it was asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// False when the crate or a test binary did not compile.
    pub built: bool,
    /// The compiler's errors, one line each.
    pub build_errors: Vec<String>,
    /// Test name -> passed.
    pub results: BTreeMap<String, bool>,
    /// Failed test -> the first line of its own panic message.
    pub reasons: BTreeMap<String, String>,
    /// Failed tests whose output shows a `todo!()` reached (on any thread).
    pub blocked: Vec<String>,
    /// Panics on threads other than the tests' own, folded: one line per
    /// distinct (thread kind, place, message), with how many there were.
    pub other_panics: Vec<(String, usize)>,
    /// The first `todo!()` reached, as `3c lookup`.
    pub blocked_by: Option<String>,
}

impl Outcome {
    pub fn passed(&self, name: &str) -> bool {
        self.results.get(name).copied().unwrap_or(false)
    }
}

/// One panic message: the thread, where, and the first line of what.
#[derive(Debug, PartialEq, Eq)]
struct Panic {
    thread: String,
    place: String,
    message: String,
}

/// Reads the output of `cargo test --message-format short`.
pub fn parse(output: &str) -> Outcome {
    let mut outcome = Outcome::default();
    let lines: Vec<&str> = output.lines().collect();
    let mut ran_tests = false;
    let mut panics = Vec::new();
    // The test whose captured output (`---- NAME stdout ----`) we are in.
    let mut section: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            section = Some(name.to_string());
        } else if *line == "failures:" || line.starts_with("test result:") {
            section = None;
        }
        if line.contains("not yet implemented: stage ")
            && let Some(name) = &section
            && !outcome.blocked.contains(name)
        {
            outcome.blocked.push(name.clone());
        }
        if line.starts_with("running ") && line.ends_with(" tests") || *line == "running 1 test" {
            ran_tests = true;
        }
        if let Some((name, passed)) = test_result(line) {
            outcome.results.insert(name.to_string(), passed);
        }
        if let Some(panic) = panic_at(&lines, i) {
            panics.push(panic);
        }
        if outcome.blocked_by.is_none() {
            outcome.blocked_by = todo_reached(line);
        }
        if is_compile_error(line) {
            outcome.build_errors.push(line.trim().to_string());
        }
    }
    outcome.built = ran_tests && outcome.build_errors.is_empty();
    let mut folded: Vec<(String, usize)> = Vec::new();
    for panic in panics {
        if outcome.results.contains_key(&panic.thread) {
            outcome.reasons.entry(panic.thread).or_insert(panic.message);
            continue;
        }
        let line = format!(
            "thread '{}' panicked at {}: {}",
            thread_kind(&panic.thread),
            panic.place,
            panic.message
        );
        match folded.iter_mut().find(|(l, _)| *l == line) {
            Some((_, count)) => *count += 1,
            None => folded.push((line, 1)),
        }
    }
    outcome.other_panics = folded;
    outcome
}

/// `test NAME ... ok` or `... FAILED`, perhaps after other text: a thread
/// writing to stderr outside libtest's capture can land mid-line.
fn test_result(line: &str) -> Option<(&str, bool)> {
    let at = line.rfind("test ")?;
    let rest = &line[at + "test ".len()..];
    if let Some(name) = rest.strip_suffix(" ... ok") {
        Some((name, true))
    } else {
        rest.strip_suffix(" ... FAILED").map(|name| (name, false))
    }
}

/// The panic that starts at line `i`, if one does:
/// `thread 'NAME' (ID) panicked at PLACE:` and the message on the next line
/// (older versions of Rust print no `(ID)`).
fn panic_at(lines: &[&str], i: usize) -> Option<Panic> {
    let rest = lines[i].strip_prefix("thread '")?;
    let (thread, rest) = rest.split_once('\'')?;
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('(') {
        Some(id) => id.split_once(") ")?.1,
        None => rest,
    };
    let rest = rest.strip_prefix("panicked at ")?;
    let place = rest.strip_suffix(':')?;
    let message = lines.get(i + 1).map_or("", |m| m.trim());
    Some(Panic {
        thread: thread.to_string(),
        place: short_place(place),
        message: message.to_string(),
    })
}

/// `src/../exercises/stage1/x.rs:3:5` reads better as `exercises/stage1/x.rs:3`.
fn short_place(place: &str) -> String {
    let path = match place.rfind("exercises/") {
        Some(i) => &place[i..],
        None => place,
    };
    // Drop the column: the line is what a reader looks for.
    match path.rsplit_once(':') {
        Some((rest, col)) if col.bytes().all(|b| b.is_ascii_digit()) && rest.contains(':') => {
            rest.to_string()
        }
        _ => path.to_string(),
    }
}

/// `worker-3` and `worker-7` are the same kind of thread: `worker-N`.
fn thread_kind(thread: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in thread.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// `not yet implemented: stage 3, exercise 3c: lookup` -> `3c lookup`; an
/// exercise without parts gives the name alone.
fn todo_reached(line: &str) -> Option<String> {
    let at = line.find("not yet implemented: stage ")?;
    let rest = &line[at + "not yet implemented: stage ".len()..];
    let (_, rest) = rest.split_once(", exercise ")?;
    let (part, name) = rest.split_once(": ")?;
    let (part, name) = (part.trim(), name.trim());
    if part.ends_with(|c: char| c.is_ascii_alphabetic()) {
        Some(format!("{part} {name}"))
    } else {
        Some(name.to_string())
    }
}

/// A compiler error in `--message-format short`: `FILE:L:C: error[E..]: ...`,
/// or cargo's own `error: ...` lines other than its closing summary.
fn is_compile_error(line: &str) -> bool {
    if line.starts_with("error: could not compile") || line.starts_with("error: test failed") {
        return false;
    }
    if line.starts_with("error: ") || line.starts_with("error[") {
        // `error: 1 target failed` and the like sum up, they add nothing.
        return !line.contains("target failed") && !line.contains("targets failed");
    }
    line.contains(": error[") || line.contains(": error: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "\
   Compiling webproxy v0.1.0
warning: unused variable: `x`
    Finished `test` profile
     Running unittests src/lib.rs (target/debug/deps/webproxy-1)

running 2 tests
test uri::tests::absolute_forms ... FAILED
test uri::tests::rejects_bad_targets ... ok

failures:

---- uri::tests::absolute_forms stdout ----

thread 'uri::tests::absolute_forms' (1234) panicked at src/../exercises/stage1/parse_absolute.rs:37:5:
not yet implemented: stage 1, exercise 1: parse_absolute
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

failures:
    uri::tests::absolute_forms

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 193 filtered out

     Running tests/stage1.rs (target/debug/deps/stage1-2)

running 1 test
test a_fragment_is_not_sent_to_the_origin ... FAILED

failures:

---- a_fragment_is_not_sent_to_the_origin stdout ----

thread 'worker-3' (77) panicked at src/../exercises/stage2/pool.rs:40:5:
not yet implemented: stage 2, exercise 2b: worker_loop
thread 'worker-7' panicked at src/../exercises/stage2/pool.rs:40:5:
not yet implemented: stage 2, exercise 2b: worker_loop

thread 'a_fragment_is_not_sent_to_the_origin' panicked at tests/common/client.rs:253:23:
no response: Closed

failures:
    a_fragment_is_not_sent_to_the_origin

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 40 filtered out
";

    #[test]
    fn reads_results_reasons_and_the_first_todo() {
        let outcome = parse(RUN);
        assert!(outcome.built);
        assert!(outcome.passed("uri::tests::rejects_bad_targets"));
        assert!(!outcome.passed("uri::tests::absolute_forms"));
        assert!(!outcome.passed("a_fragment_is_not_sent_to_the_origin"));
        assert!(!outcome.passed("never_ran"));
        assert_eq!(outcome.blocked_by.as_deref(), Some("parse_absolute"));
        assert_eq!(
            outcome.blocked,
            [
                "uri::tests::absolute_forms",
                "a_fragment_is_not_sent_to_the_origin"
            ]
        );
        assert_eq!(
            outcome.reasons["a_fragment_is_not_sent_to_the_origin"],
            "no response: Closed"
        );
        assert_eq!(
            outcome.reasons["uri::tests::absolute_forms"],
            "not yet implemented: stage 1, exercise 1: parse_absolute"
        );
    }

    #[test]
    fn worker_panics_fold_into_one_line_each() {
        let outcome = parse(RUN);
        assert_eq!(
            outcome.other_panics,
            [(
                "thread 'worker-N' panicked at exercises/stage2/pool.rs:40: \
                 not yet implemented: stage 2, exercise 2b: worker_loop"
                    .to_string(),
                2
            )]
        );
    }

    #[test]
    fn a_compile_error_means_not_built() {
        let output = "\
   Compiling webproxy v0.1.0
src/../exercises/stage1/parse_absolute.rs:17:5: error[E0308]: mismatched types
warning: unused import
error: could not compile `webproxy` (lib test) due to 1 previous error
";
        let outcome = parse(output);
        assert!(!outcome.built);
        assert_eq!(
            outcome.build_errors,
            ["src/../exercises/stage1/parse_absolute.rs:17:5: error[E0308]: mismatched types"]
        );
        assert!(outcome.results.is_empty());
    }

    #[test]
    fn parts_and_thread_kinds() {
        assert_eq!(
            todo_reached("x not yet implemented: stage 3, exercise 3c: lookup"),
            Some("3c lookup".into())
        );
        assert_eq!(
            todo_reached("not yet implemented: stage 1, exercise 1: parse_absolute"),
            Some("parse_absolute".into())
        );
        assert_eq!(todo_reached("not yet implemented"), None);
        assert_eq!(thread_kind("proxy-43911"), "proxy-N");
        assert_eq!(thread_kind("origin-conn-0"), "origin-conn-N");
        assert_eq!(
            short_place("tests/common/client.rs:253:23"),
            "tests/common/client.rs:253"
        );
    }
}
