//! What the grader knows about the course, read from the stages' `HINTS.md`
//! files: one list of exercises, in one place, that the students read too.
//!
//! An exercise is a section `## Exercise K: title (size)` of
//! `exercises/stageN/HINTS.md`, with these lines in it:
//!
//! - `- File: ` its file, the first backquoted path on the line;
//! - `- Points: ` what it is worth (each stage is worth 20, the course 100);
//! - `- Graded by: ` the tests that grade it, backquoted; names with `::`
//!   are unit tests (`cargo test --lib`), the others wire tests in
//!   `tests/stageN.rs`;
//! - a numbered list after a line that starts with `Hints`, one hint per
//!   item, from gentle to explicit.
//!
//! `.ci/check-exercises` reads the same lines, so the grader, the CI and
//! the book's table cannot disagree about what grades an exercise.

use std::fs;
use std::path::Path;

/// The stages that have exercises.
pub const STAGES: [u32; 5] = [1, 2, 3, 4, 5];

/// One exercise, as its stage's `HINTS.md` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exercise {
    pub stage: u32,
    pub number: u32,
    pub title: String,
    /// The student's file, relative to the repository.
    pub file: String,
    pub points: u32,
    /// Graded unit tests, with their module path (`uri::tests::absolute_forms`).
    pub unit_tests: Vec<String>,
    /// Graded wire tests of `tests/stageN.rs`.
    pub wire_tests: Vec<String>,
    pub hints: Vec<String>,
}

impl Exercise {
    /// `3.2`, as the student types it.
    pub fn id(&self) -> String {
        format!("{}.{}", self.stage, self.number)
    }

    /// The cargo feature that switches this exercise's starter on.
    pub fn feature(&self) -> String {
        format!("ex-{}-{}", self.stage, self.number)
    }

    /// The book page with the reference solution.
    pub fn solution_page(&self) -> String {
        format!("book/src/solutions/stage{}.md", self.stage)
    }

    pub fn graded_tests(&self) -> impl Iterator<Item = &String> {
        self.unit_tests.iter().chain(&self.wire_tests)
    }
}

/// The exercises of stage `stage`, read from `root/exercises/stageN/HINTS.md`.
pub fn load_stage(root: &Path, stage: u32) -> Result<Vec<Exercise>, String> {
    let path = root.join(format!("exercises/stage{stage}/HINTS.md"));
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_hints(stage, &text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses one `HINTS.md`.
pub fn parse_hints(stage: u32, text: &str) -> Result<Vec<Exercise>, String> {
    let mut exercises = Vec::new();
    let mut current: Option<(Exercise, bool)> = None;
    let mut finish = |current: Option<(Exercise, bool)>| -> Result<(), String> {
        if let Some((exercise, _)) = current {
            check(&exercise)?;
            exercises.push(exercise);
        }
        Ok(())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("## ") {
            finish(current.take())?;
            if let Some(heading) = rest.strip_prefix("Exercise ") {
                current = Some((new_exercise(stage, heading)?, false));
            }
            continue;
        }
        let Some((exercise, in_hints)) = current.as_mut() else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("- File:") {
            exercise.file = backquoted(rest).into_iter().next().unwrap_or_default();
        } else if let Some(rest) = line.strip_prefix("- Points:") {
            exercise.points = rest
                .trim()
                .trim_end_matches('.')
                .parse()
                .map_err(|_| format!("exercise {}: bad Points line", exercise.id()))?;
        } else if let Some(rest) = line.strip_prefix("- Graded by:") {
            for name in backquoted(rest) {
                if name.contains("::") {
                    exercise.unit_tests.push(name);
                } else {
                    exercise.wire_tests.push(name);
                }
            }
        } else if line.starts_with("Hints") {
            *in_hints = true;
        } else if *in_hints {
            add_hint_line(&mut exercise.hints, line);
        }
    }
    finish(current.take())?;
    if exercises.is_empty() {
        return Err("no `## Exercise` sections".into());
    }
    Ok(exercises)
}

/// `1: Where does the client want to go? (small)`
fn new_exercise(stage: u32, heading: &str) -> Result<Exercise, String> {
    let (number, title) = heading
        .split_once(':')
        .ok_or_else(|| format!("heading `Exercise {heading}` has no `:`"))?;
    let number = number
        .trim()
        .parse()
        .map_err(|_| format!("heading `Exercise {heading}`: no exercise number"))?;
    let title = title.trim();
    let title = match title.rfind(" (") {
        Some(i) if title.ends_with(')') => &title[..i],
        _ => title,
    };
    Ok(Exercise {
        stage,
        number,
        title: title.to_string(),
        file: String::new(),
        points: 0,
        unit_tests: Vec::new(),
        wire_tests: Vec::new(),
        hints: Vec::new(),
    })
}

fn check(exercise: &Exercise) -> Result<(), String> {
    let id = exercise.id();
    if exercise.file.is_empty() {
        return Err(format!("exercise {id} has no `- File:` line"));
    }
    if exercise.points == 0 {
        return Err(format!("exercise {id} has no `- Points:` line"));
    }
    if exercise.graded_tests().next().is_none() {
        return Err(format!("exercise {id} has no `- Graded by:` line"));
    }
    if exercise.hints.is_empty() {
        return Err(format!("exercise {id} has no numbered hints"));
    }
    Ok(())
}

/// A numbered item starts a hint, and indented lines continue it.
fn add_hint_line(hints: &mut Vec<String>, line: &str) {
    let numbered = line
        .split_once(". ")
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if let Some((_, text)) = numbered {
        hints.push(text.trim().to_string());
    } else if let Some(last) = hints.last_mut()
        && line.starts_with("   ")
    {
        last.push('\n');
        last.push_str(line.trim());
    }
}

/// The `backquoted` words of a line, in order.
pub fn backquoted(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Stage 9 exercises\n\nIntro.\n\n\
## Exercise 1: Parse it (small)\n\n\
- File: `exercises/stage9/parse.rs`, function `parse`.\n\
- Points: 5\n\
- Graded by: `m::tests::parses`, `wire_one`, `wire_two`\n\n\
Hints, from gentle to explicit:\n\n\
1. Look at the\n   first byte.\n\
2. Then the rest.\n\n\
## Exercise 2: Loop it (large)\n\n\
- File: `exercises/stage9/loop.rs`.\n\
- Points: 15\n\
- Graded by: `wire_three`\n\n\
A table:\n\n```text\n1. not a hint\n```\n\n\
Hints:\n\n1. Only one.\n\n## Not an exercise\n\n1. Not a hint either.\n";

    #[test]
    fn reads_exercises_tests_points_and_hints() {
        let exercises = parse_hints(9, SAMPLE).unwrap();
        assert_eq!(exercises.len(), 2);
        let first = &exercises[0];
        assert_eq!(first.id(), "9.1");
        assert_eq!(first.feature(), "ex-9-1");
        assert_eq!(first.title, "Parse it");
        assert_eq!(first.file, "exercises/stage9/parse.rs");
        assert_eq!(first.points, 5);
        assert_eq!(first.unit_tests, ["m::tests::parses"]);
        assert_eq!(first.wire_tests, ["wire_one", "wire_two"]);
        assert_eq!(first.hints, ["Look at the\nfirst byte.", "Then the rest."]);
        assert_eq!(exercises[1].hints, ["Only one."]);
        assert_eq!(exercises[1].solution_page(), "book/src/solutions/stage9.md");
    }

    #[test]
    fn an_exercise_without_tests_or_points_is_an_error() {
        let no_tests = SAMPLE.replace("- Graded by: `wire_three`\n", "");
        assert!(parse_hints(9, &no_tests).unwrap_err().contains("9.2"));
        let no_points = SAMPLE.replace("- Points: 5\n", "");
        assert!(parse_hints(9, &no_points).unwrap_err().contains("Points"));
    }

    #[test]
    fn the_course_is_worth_100_points() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut total = 0;
        for stage in STAGES {
            let exercises = load_stage(root, stage).unwrap();
            let points: u32 = exercises.iter().map(|e| e.points).sum();
            assert_eq!(points, 20, "stage {stage}");
            for e in &exercises {
                assert!(root.join(&e.file).is_file(), "{}: {}", e.id(), e.file);
            }
            total += points;
        }
        assert_eq!(total, 100);
    }
}
