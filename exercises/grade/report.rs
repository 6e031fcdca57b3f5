//! Turning one exercise's test run into points and a few readable lines.

use std::fmt::Write;

use crate::course::Exercise;
use crate::outcome::Outcome;

/// At most this many failing tests are listed by name; the rest are counted.
const LISTED_FAILURES: usize = 5;
/// Messages longer than this are cut: the test itself says the rest.
const MESSAGE_WIDTH: usize = 160;

/// The grade of one exercise.
#[derive(Debug, PartialEq, Eq)]
pub struct Grade {
    pub unit_passed: usize,
    pub wire_passed: usize,
    pub points: u32,
}

impl Grade {
    pub fn of(exercise: &Exercise, outcome: &Outcome) -> Grade {
        let passed = |names: &[String]| names.iter().filter(|n| outcome.passed(n)).count();
        let unit_passed = passed(&exercise.unit_tests);
        let wire_passed = passed(&exercise.wire_tests);
        let total = exercise.unit_tests.len() + exercise.wire_tests.len();
        // Partial credit in proportion, rounded down: full marks only when
        // every graded test passes.
        let points = exercise.points * (unit_passed + wire_passed) as u32 / total as u32;
        Grade {
            unit_passed,
            wire_passed,
            points,
        }
    }

    pub fn all_passed(&self, exercise: &Exercise) -> bool {
        self.unit_passed == exercise.unit_tests.len()
            && self.wire_passed == exercise.wire_tests.len()
    }
}

/// The lines printed for one exercise.
pub fn render(exercise: &Exercise, outcome: &Outcome, grade: &Grade, timed_out: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Exercise {}  {}  ({})",
        exercise.id(),
        exercise.title,
        exercise.file
    );
    let _ = writeln!(
        out,
        "  unit tests {}/{} passed, wire tests {}/{} passed, {}/{} points",
        grade.unit_passed,
        exercise.unit_tests.len(),
        grade.wire_passed,
        exercise.wire_tests.len(),
        grade.points,
        exercise.points
    );
    if !outcome.built {
        render_build_failure(&mut out, exercise, outcome, timed_out);
        return out;
    }
    if grade.all_passed(exercise) {
        let _ = writeln!(
            out,
            "  \u{2713} done. Now compare with the reference solution: {}, exercise {}.",
            exercise.solution_page(),
            exercise.number
        );
        return out;
    }
    let failed: Vec<&String> = exercise
        .graded_tests()
        .filter(|n| !outcome.passed(n))
        .collect();
    if let Some(todo) = &outcome.blocked_by {
        let stopped = failed
            .iter()
            .filter(|n| outcome.blocked.contains(n))
            .count();
        let _ = writeln!(
            out,
            "  blocked by {todo}: the first todo!() the tests reached, in {} \
             ({stopped} of the {} failing tests reached one)",
            exercise.file,
            failed.len()
        );
    }
    for (panic, count) in &outcome.other_panics {
        let _ = writeln!(out, "  {count} \u{d7} {}", cut(panic));
    }
    // Tests that reached a todo!() are summed up above; the others say why.
    let unexplained: Vec<&String> = failed
        .iter()
        .copied()
        .filter(|n| !outcome.blocked.contains(n))
        .collect();
    for name in unexplained.iter().take(LISTED_FAILURES) {
        let why = match outcome.reasons.get(*name) {
            Some(reason) => cut(reason),
            None if outcome.results.contains_key(*name) => "failed".to_string(),
            None if timed_out => "stopped: the run took too long".to_string(),
            None => "did not run".to_string(),
        };
        let _ = writeln!(out, "  \u{2717} {name}: {why}");
    }
    if unexplained.len() > LISTED_FAILURES {
        let _ = writeln!(
            out,
            "  ... and {} more",
            unexplained.len() - LISTED_FAILURES
        );
    }
    if timed_out {
        let _ = writeln!(
            out,
            "  the run was stopped after {} s",
            crate::run::timeout_secs()
        );
    }
    let first = unexplained
        .first()
        .or(failed.first())
        .map_or("NAME", |n| n.as_str());
    let _ = writeln!(
        out,
        "  one test alone: {}",
        one_test_command(exercise, first)
    );
    let _ = writeln!(
        out,
        "  stuck? `cargo run --bin grade -- hint {}` shows the next hint",
        exercise.id()
    );
    out
}

fn render_build_failure(out: &mut String, exercise: &Exercise, outcome: &Outcome, timed_out: bool) {
    if timed_out {
        let _ = writeln!(out, "  \u{2717} stopped before the tests ran");
        return;
    }
    let _ = writeln!(out, "  \u{2717} does not compile:");
    for line in outcome.build_errors.iter().take(8) {
        let _ = writeln!(out, "    {}", cut(line));
    }
    if outcome.build_errors.is_empty() {
        let _ = writeln!(out, "    (no tests ran; see the command below)");
    }
    let _ = writeln!(
        out,
        "  the whole message: cargo build --features {}",
        exercise.feature()
    );
}

/// The command that runs one graded test by hand.
pub fn one_test_command(exercise: &Exercise, name: &str) -> String {
    let binary = if name.contains("::") {
        "--lib".to_string()
    } else {
        format!("--test stage{}", exercise.stage)
    };
    format!(
        "cargo test --features {} {binary} -- --exact {name}",
        exercise.feature()
    )
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MESSAGE_WIDTH {
        return text.to_string();
    }
    let mut short: String = text.chars().take(MESSAGE_WIDTH).collect();
    short.push_str("...");
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::parse;

    fn exercise() -> Exercise {
        Exercise {
            stage: 1,
            number: 1,
            title: "Where does the client want to go?".into(),
            file: "exercises/stage1/parse_absolute.rs".into(),
            points: 6,
            unit_tests: vec!["uri::tests::absolute_forms".into()],
            wire_tests: vec!["wire_a".into(), "wire_b".into()],
            hints: vec!["h".into()],
        }
    }

    #[test]
    fn points_are_proportional_and_rounded_down() {
        let ex = exercise();
        let run = "running 3 tests\ntest uri::tests::absolute_forms ... ok\n\
                   test wire_a ... ok\ntest wire_b ... FAILED\n";
        let grade = Grade::of(&ex, &parse(run));
        assert_eq!(
            (grade.unit_passed, grade.wire_passed, grade.points),
            (1, 1, 4)
        );
        assert!(!grade.all_passed(&ex));
        let all = run.replace("wire_b ... FAILED", "wire_b ... ok");
        assert_eq!(Grade::of(&ex, &parse(&all)).points, 6);
    }

    #[test]
    fn a_fresh_starter_shows_what_blocks_it() {
        let ex = exercise();
        let run = "running 1 test\ntest wire_a ... FAILED\n\n---- wire_a stdout ----\n\n\
                   thread 'proxy-12' panicked at src/../exercises/stage1/parse_absolute.rs:37:5:\n\
                   not yet implemented: stage 1, exercise 1: parse_absolute\n\n\
                   thread 'wire_a' panicked at tests/common/client.rs:253:23:\nno response: Closed\n";
        let outcome = parse(run);
        let text = render(&ex, &outcome, &Grade::of(&ex, &outcome), false);
        assert!(
            text.contains("0/1 passed, wire tests 0/2 passed, 0/6 points"),
            "{text}"
        );
        assert!(text.contains("blocked by parse_absolute"), "{text}");
        assert!(
            text.contains("(1 of the 3 failing tests reached one)"),
            "{text}"
        );
        // wire_a reached the todo!(): summed up above, not listed.
        assert!(!text.contains("\u{2717} wire_a"), "{text}");
        assert!(text.contains("\u{2717} wire_b: did not run"), "{text}");
        assert!(text.contains(
            "1 \u{d7} thread 'proxy-N' panicked at exercises/stage1/parse_absolute.rs:37"
        ));
        assert!(text.contains("--features ex-1-1 --lib -- --exact uri::tests::absolute_forms"));
    }

    #[test]
    fn a_passing_exercise_points_to_its_solution() {
        let ex = exercise();
        let run = "running 3 tests\ntest uri::tests::absolute_forms ... ok\n\
                   test wire_a ... ok\ntest wire_b ... ok\n";
        let outcome = parse(run);
        let text = render(&ex, &outcome, &Grade::of(&ex, &outcome), false);
        assert!(
            text.contains("book/src/solutions/stage1.md, exercise 1"),
            "{text}"
        );
    }
}
