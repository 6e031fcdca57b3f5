//! Checks that every starter file in `exercises/stageN/` is still the
//! reference module it replaces, except for the blocks it leaves to the
//! student (the innermost `{ ... }` around each `todo!(`), its opening
//! comment lines and its `#![allow(...)]` line.
//!
//! Without this, a fix to a reference module would not reach its starter:
//! students would work on stale code, and a correct answer could fail its
//! tests. `.ci/check-exercises` builds and runs it:
//!
//! ```text
//! rustc --edition 2024 -o target/starter-drift .ci/starter-drift.rs
//! target/starter-drift 3        # the starters of stage 3
//! ```
//!
//! The reference module is found from the wiring in `src/`: the line
//! `#[cfg_attr(feature = "starter-stageN", path = ".../NAME.rs")]` in
//! `DIR/FILE.rs`, followed by `pub mod MODULE;`, replaces `DIR/MODULE.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (starter file name, reference module path) for stage `n`.
fn wiring(n: &str) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    files.sort();
    let feature = format!("feature=\"starter-stage{n}\",path=\"");
    let mut found = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        // rustfmt may split the attribute over lines: compare without blanks.
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mut rest = squeezed.as_str();
        while let Some(at) = rest.find(&feature) {
            rest = &rest[at + feature.len()..];
            let Some(end) = rest.find('"') else { break };
            let starter = rest[..end].rsplit('/').next().unwrap_or("").to_string();
            let module = rest
                .find("pubmod")
                .map(|m| &rest[m + "pubmod".len()..])
                .and_then(|m| m.split(';').next())
                .unwrap_or("");
            let dir = file.parent().unwrap_or(Path::new("src"));
            found.push((starter, dir.join(format!("{module}.rs"))));
        }
    }
    found
}

/// The end (exclusive) of the `{ ... }` block that opens at `open`, skipping
/// strings, characters and comments.
fn block_end(s: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < s.len() {
        match s[i] {
            '/' if s.get(i + 1) == Some(&'/') => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if s.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < s.len() && !(s[i] == '*' && s[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            'r' if matches!(s.get(i + 1), Some('"') | Some('#'))
                && (i == 0 || !(s[i - 1].is_alphanumeric() || s[i - 1] == '_')) =>
            {
                // A raw string: r"..." or r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while s.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if s.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= s.len() {
                        return None;
                    }
                    if s[j] == '"' && (0..hashes).all(|k| s.get(j + 1 + k) == Some(&'#')) {
                        i = j + 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                continue;
            }
            '"' => {
                i += 1;
                while i < s.len() && s[i] != '"' {
                    if s[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '\'' => {
                // A character literal ('{', '\'', '\n'), not a lifetime ('a).
                if s.get(i + 1) == Some(&'\\') {
                    let mut j = i + 2;
                    while j < s.len() && s[j] != '\'' {
                        j += 1;
                    }
                    i = j;
                } else if s.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
            }
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The starter without its opening comment lines and its allow line (with
/// the comment line just before it and one blank line after it).
fn strip_starter_extras(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let first_doc = lines
        .iter()
        .position(|l| !l.starts_with("//") || l.starts_with("//!"))
        .unwrap_or(0);
    lines.drain(..first_doc);
    if let Some(at) = lines.iter().position(|l| l.starts_with("#![allow(")) {
        let mut from = at;
        if at > 0 && lines[at - 1].starts_with("// ") {
            from -= 1;
        }
        let mut to = at + 1;
        if lines.get(to).is_some_and(|l| l.is_empty()) {
            to += 1;
        }
        lines.drain(from..to);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The spans (start of `{`, end after `}`) of the innermost blocks around
/// each `todo!(`, in order, without duplicates.
fn gutted_blocks(s: &[char]) -> Vec<(usize, usize)> {
    let text: String = s.iter().collect();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut search = 0;
    while let Some(found) = text[search..].find("todo!(") {
        let byte = search + found;
        search = byte + 1;
        let at = text[..byte].chars().count();
        // Walk back to the nearest `{` whose block contains `at`.
        let mut open = at;
        let span = loop {
            if open == 0 {
                break None;
            }
            open -= 1;
            if s[open] == '{'
                && let Some(end) = block_end(s, open)
                && end > at
            {
                break Some((open, end));
            }
        };
        if let Some(span) = span
            && !spans.contains(&span)
        {
            spans.push(span);
        }
    }
    spans
}

/// The line number (1-based) of char offset `at`.
fn line_of(s: &[char], at: usize) -> usize {
    s[..at.min(s.len())].iter().filter(|&&c| c == '\n').count() + 1
}

/// Compares a starter with its reference; `Err` says where they part.
fn compare(starter: &str, reference: &str) -> Result<usize, String> {
    let st: Vec<char> = strip_starter_extras(starter).chars().collect();
    let rf: Vec<char> = reference.chars().collect();
    let blocks = gutted_blocks(&st);
    if blocks.is_empty() {
        return Err("no todo!() found".into());
    }
    let (mut si, mut ri) = (0, 0);
    for &(open, end) in &blocks {
        let expected = &st[si..open];
        if rf.len() < ri + expected.len() || rf[ri..ri + expected.len()] != *expected {
            return Err(first_difference(expected, &rf[ri..], ri, &rf));
        }
        ri += expected.len();
        if rf.get(ri) != Some(&'{') {
            return Err(format!(
                "reference line {}: expected the block the starter leaves out",
                line_of(&rf, ri)
            ));
        }
        ri = block_end(&rf, ri).ok_or("unbalanced braces in the reference")?;
        si = end;
    }
    let tail = &st[si..];
    if rf[ri..] != *tail {
        return Err(first_difference(tail, &rf[ri..], ri, &rf));
    }
    Ok(blocks.len())
}

fn first_difference(expected: &[char], actual: &[char], offset: usize, whole: &[char]) -> String {
    let at = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let line = |s: &[char], from: usize| -> String {
        let start = s[..from.min(s.len())]
            .iter()
            .rposition(|&c| c == '\n')
            .map_or(0, |p| p + 1);
        s[start..]
            .iter()
            .take_while(|&&c| c != '\n')
            .collect::<String>()
    };
    format!(
        "differs from the reference at its line {}:\n    reference: {}\n    starter:   {}",
        line_of(whole, offset + at),
        line(actual, at).trim(),
        line(expected, at).trim()
    )
}

fn main() -> ExitCode {
    let stages: Vec<String> = std::env::args().skip(1).collect();
    let mut failed = false;
    for n in &stages {
        let wired = wiring(n);
        if wired.is_empty() {
            eprintln!("stage {n}: no starter is wired into src/");
            failed = true;
        }
        for (name, reference) in wired {
            let starter = PathBuf::from(format!("exercises/stage{n}/{name}"));
            let (Ok(s), Ok(r)) = (fs::read_to_string(&starter), fs::read_to_string(&reference))
            else {
                eprintln!(
                    "stage {n}: cannot read {} or {}",
                    starter.display(),
                    reference.display()
                );
                failed = true;
                continue;
            };
            match compare(&s, &r) {
                Ok(blocks) => println!(
                    "   ok: {} is {} with {blocks} block(s) left to write",
                    starter.display(),
                    reference.display()
                ),
                Err(why) => {
                    eprintln!(
                        "stage {n}: {} {why}\n    (copy the change from {} into the starter)",
                        starter.display(),
                        reference.display()
                    );
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
