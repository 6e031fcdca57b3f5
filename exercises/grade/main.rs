//! The grader, in the spirit of proxylab's driver and rustlings:
//!
//! ```text
//! cargo run --bin grade -- 3            # grade stage 3's exercises
//! cargo run --bin grade                 # every stage
//! cargo run --bin grade -- 3 --watch    # again whenever a file under exercises/ changes
//! cargo run --bin grade -- hint 3.2     # the next hint of exercise 3.2, one at a time
//! ```
//!
//! Each exercise is graded alone: `cargo test` with its feature only
//! (`--features ex-3-2`), so its own file is the only starter code and
//! everything else is the reference. Only its graded tests run, the ones
//! its `HINTS.md` section lists. For each exercise the grader prints the unit
//! and wire tests passed, the first `todo!()` the tests reached, why the
//! other tests failed (panics on the proxy's threads folded into one line
//! each), and the points; then a total for the stage and for the course,
//! out of 100, with the last known score of stages not graded this time.

mod course;
mod outcome;
mod report;
mod run;
mod state;

use std::collections::BTreeMap;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};

use course::{Exercise, STAGES};
use report::Grade;
use state::Counts;

/// How often `--watch` looks at the files.
const POLL: Duration = Duration::from_millis(500);

#[derive(Parser)]
#[command(
    name = "grade",
    about = "Grades the webproxy exercises, one exercise at a time",
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// The stages to grade, 1 to 5; all of them when none is given.
    stages: Vec<u32>,
    /// Grade again whenever a file under exercises/ changes (Ctrl-C stops).
    #[arg(long)]
    watch: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Shows the next hint of an exercise, one more each time: `hint 3.2`.
    Hint {
        /// The exercise, as STAGE.NUMBER.
        exercise: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let result = match args.command {
        Some(Command::Hint { exercise }) => hint(root, &exercise),
        None => grade_command(root, &args.stages, args.watch),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grade: {e}");
            ExitCode::FAILURE
        }
    }
}

fn grade_command(root: &Path, stages: &[u32], watch: bool) -> Result<(), String> {
    let stages = if stages.is_empty() {
        STAGES.to_vec()
    } else {
        stages.to_vec()
    };
    if let Some(bad) = stages.iter().find(|s| !STAGES.contains(s)) {
        return Err(format!("there is no stage {bad}: stages are 1 to 5"));
    }
    let mut exercises = Vec::new();
    for &stage in &stages {
        exercises.extend(course::load_stage(root, stage)?);
    }
    grade(root, &stages, &exercises)?;
    if !watch {
        return Ok(());
    }
    let dir = root.join("exercises");
    loop {
        println!("\nwatching exercises/ for changes (Ctrl-C to stop)");
        let changed = wait_for_change(&dir);
        // An exercise file alone changed: grade that exercise again, and
        // keep the others' last scores. Anything else: grade them all.
        let only: Vec<Exercise> = exercises
            .iter()
            .filter(|e| changed.iter().any(|p| p.ends_with(&e.file)))
            .cloned()
            .collect();
        let all_exercise_files = changed
            .iter()
            .all(|p| exercises.iter().any(|e| p.ends_with(&e.file)));
        if all_exercise_files && !only.is_empty() {
            grade(root, &stages, &only)?;
        } else {
            exercises.clear();
            for &stage in &stages {
                exercises.extend(course::load_stage(root, stage)?);
            }
            grade(root, &stages, &exercises)?;
        }
    }
}

/// Grades `exercises`, prints each, then the totals of `stages` and of the
/// course.
fn grade(root: &Path, stages: &[u32], exercises: &[Exercise]) -> Result<(), String> {
    let mut scores = Counts::load(root, "scores");
    let mut stage_shown = None;
    for exercise in exercises {
        if stage_shown != Some(exercise.stage) {
            println!("\n== Stage {}", exercise.stage);
            stage_shown = Some(exercise.stage);
        }
        let progress = format!(
            "   grading {} (cargo test --features {}) ...",
            exercise.id(),
            exercise.feature()
        );
        let terminal = std::io::stdout().is_terminal();
        if terminal {
            print!("{progress}");
            let _ = std::io::stdout().flush();
        }
        let run = run::run_tests(root, exercise).map_err(|e| format!("cannot run cargo: {e}"))?;
        if terminal {
            print!("\r{}\r", " ".repeat(progress.len()));
        }
        let outcome = outcome::parse(&run.output);
        let grade = Grade::of(exercise, &outcome);
        println!(
            "{}",
            report::render(exercise, &outcome, &grade, run.timed_out)
        );
        scores.set(&exercise.id(), grade.points);
    }
    if let Err(e) = scores.save() {
        eprintln!("grade: cannot remember the scores: {e}");
    }
    for &stage in stages {
        let all = course::load_stage(root, stage)?;
        let (got, of) = stage_total(&all, &scores);
        println!("Stage {stage}: {got}/{of} points");
    }
    println!("{}", course_total(root, &scores)?);
    Ok(())
}

/// Points scored and points possible, from the last known scores.
fn stage_total(exercises: &[Exercise], scores: &Counts) -> (u32, u32) {
    let got = exercises.iter().filter_map(|e| scores.get(&e.id())).sum();
    let of = exercises.iter().map(|e| e.points).sum();
    (got, of)
}

fn course_total(root: &Path, scores: &Counts) -> Result<String, String> {
    let mut got = 0;
    let mut of = 0;
    let mut parts = Vec::new();
    for stage in STAGES {
        let exercises = course::load_stage(root, stage)?;
        let (stage_got, stage_of) = stage_total(&exercises, scores);
        got += stage_got;
        of += stage_of;
        if exercises.iter().any(|e| scores.get(&e.id()).is_some()) {
            parts.push(format!("stage {stage} {stage_got}/{stage_of}"));
        } else {
            parts.push(format!("stage {stage} not graded yet"));
        }
    }
    Ok(format!("Course: {got}/{of} points ({})", parts.join(", ")))
}

/// Blocks until a file under `dir` is added, removed or modified; returns
/// the files that changed.
fn wait_for_change(dir: &Path) -> Vec<PathBuf> {
    let before = snapshot(dir);
    loop {
        thread::sleep(POLL);
        let now = snapshot(dir);
        if now != before {
            // An editor may write in several steps: let it finish.
            thread::sleep(POLL);
            let now = snapshot(dir);
            let mut changed: Vec<PathBuf> = now
                .iter()
                .filter(|(path, time)| before.get(*path) != Some(time))
                .map(|(path, _)| path.clone())
                .collect();
            changed.extend(before.keys().filter(|p| !now.contains_key(*p)).cloned());
            return changed;
        }
    }
}

/// Every file under `dir` with its modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                todo.push(path);
            } else if let Ok(time) = meta.modified() {
                files.insert(path, time);
            }
        }
    }
    files
}

/// `grade hint 3.2`: the next hint not shown yet.
fn hint(root: &Path, id: &str) -> Result<(), String> {
    let (stage, number) = id
        .split_once('.')
        .and_then(|(s, n)| Some((s.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
        .ok_or_else(|| format!("`{id}` is not an exercise; write it as STAGE.NUMBER, e.g. 3.2"))?;
    if !STAGES.contains(&stage) {
        return Err(format!("there is no stage {stage}: stages are 1 to 5"));
    }
    let exercises = course::load_stage(root, stage)?;
    let exercise = exercises
        .iter()
        .find(|e| e.number == number)
        .ok_or_else(|| format!("stage {stage} has no exercise {number}"))?;
    let mut shown = Counts::load(root, "hints");
    let seen = shown.get(id).unwrap_or(0) as usize;
    let total = exercise.hints.len();
    println!("Exercise {id}: {} ({})\n", exercise.title, exercise.file);
    if seen >= total {
        println!(
            "No more hints: you have seen all {total}. They are all in exercises/stage{stage}/HINTS.md.\n\
             The reference solution is in {}, exercise {number}: read it once your tests pass.",
            exercise.solution_page()
        );
        return Ok(());
    }
    println!("Hint {} of {total}:\n", seen + 1);
    for line in exercise.hints[seen].lines() {
        println!("    {line}");
    }
    println!();
    if seen + 1 < total {
        println!("Run the same command again for the next one.");
    } else {
        println!("That was the last hint.");
    }
    shown.set(id, seen as u32 + 1);
    shown
        .save()
        .map_err(|e| format!("cannot remember the hints shown: {e}"))
}
