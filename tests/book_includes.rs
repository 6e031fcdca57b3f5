//! Checks that every code listing the book pulls in still exists.
//!
//! The book shows real source through mdBook's `{{#include}}` and
//! `{{#rustdoc_include}}` directives. When a file is moved or an anchor is
//! renamed, `mdbook build` only logs an error and renders the chapter with a
//! hole in it, so nobody notices. This test makes that a `cargo test` failure
//! instead, and names every broken directive (chapter, line, and what is
//! missing).
//!
//! The parsing follows mdBook's own rules (mdbook-driver's `links.rs`):
//! `PATH`, `PATH:ANCHOR`, `PATH:N`, `PATH:N:`, `PATH::M` and `PATH:N:M`, with
//! PATH relative to the chapter's directory, a backslash before `{{#` to
//! escape a directive, and anchors written as `ANCHOR: name` /
//! `ANCHOR_END: name` anywhere on a line.
//!
//! It also keeps the answers out of the chapters. A graded function's
//! reference body is the item after `#[cfg(not(feature = "ex-N-K"))]` in
//! `src/`; a chapter shows the exercise's starter instead (its file in
//! `exercises/`), and only the solutions appendix (`book/src/solutions/`)
//! includes the body, every body of its stage.

use std::fs;
use std::path::{Path, PathBuf};

/// What part of the file a directive asks for.
#[derive(Debug, PartialEq, Eq)]
enum Selection {
    /// The whole file.
    All,
    /// Lines `start..=end`, 1-based, either end open. `PATH:N` alone means
    /// the single line N, which mdBook spells as `start == end == N`.
    Lines {
        start: Option<usize>,
        end: Option<usize>,
    },
    /// The lines between `ANCHOR: name` and `ANCHOR_END: name`.
    Anchor(String),
}

/// One include-like directive found in a chapter.
#[derive(Debug, PartialEq, Eq)]
struct Include {
    /// 1-based line of the chapter where the directive starts.
    line: usize,
    /// The directive as written, for error messages.
    text: String,
    /// The file path as written, relative to the chapter's directory.
    path: String,
    selection: Selection,
}

/// Finds the directives that read a file: `include`, `rustdoc_include` and
/// `playground` (whose arguments after the path are attributes, not a
/// selection). `title` and unknown directives are skipped, as are escaped
/// ones.
fn find_includes(markdown: &str) -> Vec<Include> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < markdown.len() {
        let rest = &markdown[pos..];
        // mdBook tries the escaped form first: `\{{#...}}` up to the last
        // `}}` on the same line is literal text.
        if rest.starts_with("\\{{#") {
            let line_end = rest.find('\n').unwrap_or(rest.len());
            if let Some(close) = rest[..line_end].rfind("}}").filter(|&c| c >= 4) {
                pos += close + 2;
                continue;
            }
        }
        if let Some((len, directive)) = parse_directive(rest) {
            if let Some(include) = directive {
                let line = markdown[..pos].matches('\n').count() + 1;
                found.push(Include {
                    line,
                    text: rest[..len].to_string(),
                    ..include
                });
            }
            pos += len;
            continue;
        }
        // Step one character, staying on a UTF-8 boundary.
        pos += rest.chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// Parses `{{ #kind args }}` at the start of `s`. Returns the length of
/// the directive and, if it reads a file, the include (with placeholder
/// `line` and `text`), or `None` if `s` does not start with a directive.
fn parse_directive(s: &str) -> Option<(usize, Option<Include>)> {
    let after_braces = s.strip_prefix("{{")?;
    let after_ws = after_braces.trim_start();
    let after_hash = after_ws.strip_prefix('#')?;
    let kind_len = after_hash
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after_hash.len());
    if kind_len == 0 {
        return None;
    }
    let kind = &after_hash[..kind_len];
    let after_kind = &after_hash[kind_len..];
    // At least one whitespace character must separate the kind from its
    // arguments, and the arguments run to the first `}`, which must be the
    // start of `}}`.
    if !after_kind.starts_with(char::is_whitespace) {
        return None;
    }
    let close = after_kind.find('}')?;
    if !after_kind[close..].starts_with("}}") {
        return None;
    }
    let args = &after_kind[..close];
    if args.chars().all(char::is_whitespace) {
        // mdBook's pattern needs one non-`}` character after the
        // separating whitespace; whitespace alone matches but names no file.
        return if args.chars().count() >= 2 {
            Some((s.len() - after_kind.len() + close + 2, None))
        } else {
            None
        };
    }
    let len = s.len() - after_kind.len() + close + 2;
    let file_arg = args.split_whitespace().next()?;
    let include = match kind {
        "include" | "rustdoc_include" => {
            let (path, spec) = match file_arg.split_once(':') {
                Some((path, spec)) => (path, Some(spec)),
                None => (file_arg, None),
            };
            Some(Include {
                line: 0,
                text: String::new(),
                path: path.to_string(),
                selection: parse_selection(spec),
            })
        }
        "playground" | "playpen" => Some(Include {
            line: 0,
            text: String::new(),
            path: file_arg.to_string(),
            selection: Selection::All,
        }),
        _ => None,
    };
    Some((len, include))
}

/// Interprets what follows the first `:` of an include path, the way mdBook
/// does: a number starts a line range, anything else is an anchor name.
fn parse_selection(spec: Option<&str>) -> Selection {
    let Some(spec) = spec else {
        return Selection::All;
    };
    // mdBook splits into at most three parts and ignores the third, so
    // `N:M:x` is the range N:M.
    let mut parts = spec.splitn(3, ':');
    let first = parts.next().unwrap_or("");
    let second = parts.next();
    let start = match first.parse::<usize>() {
        Ok(n) => Some(n),
        Err(_) if first.is_empty() => None,
        Err(_) => return Selection::Anchor(first.to_string()),
    };
    // An end that is empty or not a number leaves the range open.
    let end = second.map(|s| s.parse::<usize>().ok());
    match (start, end) {
        (None, None) | (None, Some(None)) => Selection::All,
        (Some(n), None) => Selection::Lines {
            start: Some(n),
            end: Some(n),
        },
        (start, Some(end)) => Selection::Lines { start, end },
    }
}

/// Returns the name an `ANCHOR:` or `ANCHOR_END:` marker on `line` gives,
/// if there is one. `marker` includes the colon.
fn anchor_name<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let at = line.find(marker)?;
    let rest = line[at + marker.len()..].trim_start();
    let len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    (len > 0).then(|| &rest[..len])
}

/// Checks that `source` (the included file's text) can satisfy
/// `selection`. Returns what is wrong, or `None` if it is fine.
fn check_selection(source: &str, selection: &Selection) -> Option<String> {
    match selection {
        Selection::All => None,
        Selection::Lines { start, end } => {
            let lines = source.lines().count();
            let first = start.unwrap_or(1).max(1);
            if first > lines {
                return Some(format!(
                    "line range starts at line {first} but the file has {lines} lines"
                ));
            }
            match end {
                Some(end) if *end < first => Some(format!(
                    "line range {first}:{end} is empty (end before start)"
                )),
                _ => None,
            }
        }
        Selection::Anchor(name) => {
            let lines: Vec<&str> = source.lines().collect();
            let start = lines
                .iter()
                .position(|l| anchor_name(l, "ANCHOR:") == Some(name));
            let Some(start) = start else {
                return Some(format!("no `ANCHOR: {name}` line"));
            };
            let has_end = lines[start + 1..]
                .iter()
                .any(|l| anchor_name(l, "ANCHOR_END:") == Some(name));
            if has_end {
                None
            } else {
                Some(format!(
                    "`ANCHOR: {name}` (line {}) has no `ANCHOR_END: {name}` after it",
                    start + 1
                ))
            }
        }
    }
}

/// Checks every include in one chapter. `chapter_dir` is the directory
/// include paths are relative to; `label` names the chapter in messages.
fn check_chapter(chapter_dir: &Path, label: &str, markdown: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for include in find_includes(markdown) {
        let target = chapter_dir.join(&include.path);
        let problem = match fs::read_to_string(&target) {
            Ok(source) => check_selection(&source, &include.selection),
            Err(_) if target.is_dir() => Some(format!("{} is a directory", include.path)),
            Err(_) if !target.exists() => Some(format!("file {} does not exist", include.path)),
            Err(e) => Some(format!("cannot read {}: {e}", include.path)),
        };
        if let Some(problem) = problem {
            problems.push(format!(
                "{label}:{} → {}: {problem}",
                include.line, include.text
            ));
        }
    }
    problems
}

/// All `.md` files under `dir`, sorted so that failures read in a stable
/// order.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_book_include_names_an_existing_file_and_anchor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let book_src = root.join("book").join("src");
    let chapters = markdown_files(&book_src);
    assert!(
        !chapters.is_empty(),
        "no chapters found under {}",
        book_src.display()
    );

    let mut problems = Vec::new();
    for chapter in &chapters {
        let markdown = fs::read_to_string(chapter)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", chapter.display()));
        let label = chapter.strip_prefix(root).unwrap_or(chapter).display();
        let dir = chapter.parent().unwrap_or(&book_src);
        problems.extend(check_chapter(dir, &label.to_string(), &markdown));
    }
    assert!(
        problems.is_empty(),
        "{} broken include(s) in the book:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The lines (1-based, inclusive) that `selection` takes from `source`, as
/// mdBook would; anchor marker lines are dropped from the output, but the
/// range between them is what counts here.
fn selected_lines(source: &str, selection: &Selection) -> (usize, usize) {
    let lines: Vec<&str> = source.lines().collect();
    match selection {
        Selection::All => (1, lines.len()),
        Selection::Lines { start, end } => (
            start.unwrap_or(1),
            end.unwrap_or(lines.len()).min(lines.len()),
        ),
        Selection::Anchor(name) => {
            let start = lines
                .iter()
                .position(|l| anchor_name(l, "ANCHOR:") == Some(name))
                .unwrap_or(lines.len());
            let end = lines[start.min(lines.len())..]
                .iter()
                .position(|l| anchor_name(l, "ANCHOR_END:") == Some(name))
                .map_or(lines.len(), |i| start + i);
            (start + 1, end + 1)
        }
    }
}

/// A graded function's reference body: the lines strictly inside the braces
/// of the item that follows `#[cfg(not(feature = "ex-N-K"))]`.
#[derive(Debug, PartialEq, Eq)]
struct GradedBody {
    /// `ex-1-2`.
    feature: String,
    /// The function's name.
    name: String,
    /// First and last line of the body, 1-based.
    lines: (usize, usize),
}

/// Finds the graded bodies of one source file.
fn graded_bodies(source: &str) -> Vec<GradedBody> {
    let marker = "#[cfg(not(feature = \"ex-";
    let mut found = Vec::new();
    let mut offset = 0;
    while let Some(at) = source[offset..].find(marker) {
        let start = offset + at;
        offset = start + marker.len();
        let feature_end = source[offset..].find('"').map_or(offset, |i| offset + i);
        let feature = format!("ex-{}", &source[offset..feature_end]);
        let Some(name) = source[offset..]
            .find("fn ")
            .map(|i| &source[offset + i + 3..])
            .and_then(|rest| rest.split(['(', '<', ' ']).next())
        else {
            continue;
        };
        let Some(open) = source[offset..].find('{').map(|i| offset + i) else {
            continue;
        };
        let Some(close) = closing_brace(source, open) else {
            continue;
        };
        let line_of = |i: usize| source[..i].matches('\n').count() + 1;
        found.push(GradedBody {
            feature,
            name: name.to_string(),
            lines: (line_of(open) + 1, line_of(close) - 1),
        });
    }
    found
}

/// The `}` that closes the `{` at `open`, skipping comments, strings and
/// character literals (a `'{'` or a `"}"` must not count).
fn closing_brace(source: &str, open: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            // A character literal ('x', '\n', '{'); a lifetime ('a) has no
            // closing quote two or three bytes on.
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'') => i += 3,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Every graded body under `src/`, by file (relative to the repository).
fn graded_sources(root: &Path) -> Vec<(PathBuf, Vec<GradedBody>)> {
    let mut files = Vec::new();
    let mut pending = vec![root.join("src")];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("list src/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = fs::read_to_string(&path).expect("read a source file");
                let bodies = graded_bodies(&source);
                if !bodies.is_empty() {
                    files.push((path, bodies));
                }
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// For each include of `chapter` that reaches into a graded body: the
/// include's line in the chapter, and the body.
fn graded_includes<'a>(
    chapter: &Path,
    graded: &'a [(PathBuf, Vec<GradedBody>)],
) -> Vec<(usize, &'a Path, &'a GradedBody)> {
    let markdown = fs::read_to_string(chapter).expect("read a chapter");
    let dir = chapter.parent().expect("a chapter has a directory");
    let mut hits = Vec::new();
    for include in find_includes(&markdown) {
        let Ok(target) = dir.join(&include.path).canonicalize() else {
            continue; // every_book_include_names_an_existing_file_and_anchor reports it
        };
        for (file, bodies) in graded {
            if file.canonicalize().ok().as_ref() != Some(&target) {
                continue;
            }
            let source = fs::read_to_string(file).expect("read a source file");
            let (first, last) = selected_lines(&source, &include.selection);
            for body in bodies {
                if first <= body.lines.1 && body.lines.0 <= last {
                    hits.push((include.line, file.as_path(), body));
                }
            }
        }
    }
    hits
}

#[test]
fn chapters_show_starters_and_only_the_solutions_show_graded_bodies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let book_src = root.join("book").join("src");
    let solutions = book_src.join("solutions");
    let graded = graded_sources(root);
    assert!(
        !graded.is_empty(),
        "no #[cfg(not(feature = \"ex-..\"))] in src/"
    );
    let mut problems = Vec::new();
    for chapter in markdown_files(&book_src) {
        if chapter.starts_with(&solutions) {
            continue;
        }
        for (line, file, body) in graded_includes(&chapter, &graded) {
            problems.push(format!(
                "{}:{line} shows the answer to {} (`{}` in {}): include the starter from \
                 exercises/ instead; the body belongs in book/src/solutions/",
                chapter.strip_prefix(root).unwrap_or(&chapter).display(),
                body.feature,
                body.name,
                file.strip_prefix(root).unwrap_or(file).display(),
            ));
        }
    }
    // Each stage's solutions page shows every graded body of that stage.
    let summary = fs::read_to_string(book_src.join("SUMMARY.md")).expect("read SUMMARY.md");
    for stage in 1..=5 {
        let page = solutions.join(format!("stage{stage}.md"));
        if !summary.contains(&format!("solutions/stage{stage}.md")) {
            problems.push(format!(
                "SUMMARY.md does not list solutions/stage{stage}.md"
            ));
        }
        let shown: Vec<&GradedBody> = if page.is_file() {
            graded_includes(&page, &graded)
                .into_iter()
                .map(|(_, _, body)| body)
                .collect()
        } else {
            problems.push(format!("{} does not exist", page.display()));
            continue;
        };
        let prefix = format!("ex-{stage}-");
        for (file, bodies) in &graded {
            for body in bodies.iter().filter(|b| b.feature.starts_with(&prefix)) {
                if !shown.contains(&body) {
                    problems.push(format!(
                        "book/src/solutions/stage{stage}.md does not show `{}` ({}, {})",
                        body.name,
                        body.feature,
                        file.strip_prefix(root).unwrap_or(file).display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn finds_graded_bodies_and_their_lines() {
    let source = "\
fn free() {}
/// Doc.
#[cfg(not(feature = \"ex-1-2\"))]
pub fn copy<R: Read>(
    from: R,
) -> u64 {
    let brace = '{';
    let text = \"}\";
    // } in a comment
    if true { 1 } else { 2 }
}
#[cfg(feature = \"ex-1-2\")]
mod ex_1_2;
";
    let bodies = graded_bodies(source);
    assert_eq!(
        bodies,
        vec![GradedBody {
            feature: "ex-1-2".into(),
            name: "copy".into(),
            lines: (7, 10),
        }]
    );
    assert_eq!(selected_lines(source, &Selection::All), (1, 13));
    assert_eq!(
        selected_lines(
            "a\n// ANCHOR: x\nb\nc\n// ANCHOR_END: x\n",
            &Selection::Anchor("x".into())
        ),
        (2, 5)
    );
}

#[test]
fn finds_every_form_of_directive() {
    let markdown = "\
intro {{#include a.rs}} text
{{#include b.rs:parse_line}}
{{ #rustdoc_include ../c.rs:3:9 }}
{{#include d.rs:4}}
{{#include e.rs::7}}
{{#include f.rs:2:}}
{{#include f2.rs:2:5:ignored}}
{{#playground g.rs editable}}
{{#title Not a file}}
\\{{#include escaped.rs}}
{{#include h.rs:unicode_é}} and {{#include i.rs}}
";
    let found: Vec<(usize, String, Selection)> = find_includes(markdown)
        .into_iter()
        .map(|i| (i.line, i.path, i.selection))
        .collect();
    let lines = |start, end| Selection::Lines { start, end };
    let anchor = |name: &str| Selection::Anchor(name.to_string());
    assert_eq!(
        found,
        vec![
            (1, "a.rs".into(), Selection::All),
            (2, "b.rs".into(), anchor("parse_line")),
            (3, "../c.rs".into(), lines(Some(3), Some(9))),
            (4, "d.rs".into(), lines(Some(4), Some(4))),
            (5, "e.rs".into(), lines(None, Some(7))),
            (6, "f.rs".into(), lines(Some(2), None)),
            (7, "f2.rs".into(), lines(Some(2), Some(5))),
            (8, "g.rs".into(), Selection::All),
            (11, "h.rs".into(), anchor("unicode_é")),
            (11, "i.rs".into(), Selection::All),
        ]
    );
}

#[test]
fn escaped_and_malformed_directives_are_not_includes() {
    assert!(find_includes("\\{{#include x.rs}}").is_empty());
    assert!(find_includes("{{#include}}").is_empty());
    assert!(find_includes("{{include x.rs}}").is_empty());
    assert!(find_includes("{{#include x.rs}").is_empty());
    assert!(find_includes("{{#include x.rs} }}").is_empty());
    // An escape with no closing braces on its line does not escape: mdBook
    // then sees the directive that starts one character later.
    let found = find_includes("\\{{#include x.rs\n}}");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "x.rs");
}

#[test]
fn anchors_must_open_and_close_with_the_exact_name() {
    let source = "\
fn before() {}
// ANCHOR: relay
fn relay() {}
// ANCHOR_END: relay
// ANCHOR: relay_body
fn unfinished() {}
// ANCHOR_END: other
/* ANCHOR_END: backwards */
/* ANCHOR: backwards */
";
    let anchor = |name: &str| Selection::Anchor(name.to_string());
    assert_eq!(check_selection(source, &anchor("relay")), None);
    // `relay` must not match the longer `relay_body`, and vice versa.
    let missing = check_selection(source, &anchor("rel")).expect("rel is not an anchor");
    assert!(missing.contains("no `ANCHOR: rel`"), "{missing}");
    let unclosed = check_selection(source, &anchor("relay_body")).expect("relay_body has no end");
    assert!(
        unclosed.contains("no `ANCHOR_END: relay_body`"),
        "{unclosed}"
    );
    assert!(check_selection(source, &anchor("backwards")).is_some());
    assert!(check_selection(source, &anchor("other")).is_some());
}

#[test]
fn line_ranges_must_fall_inside_the_file() {
    let source = "one\ntwo\nthree\n";
    let lines = |start, end| Selection::Lines { start, end };
    assert_eq!(check_selection(source, &Selection::All), None);
    assert_eq!(check_selection(source, &lines(Some(1), Some(3))), None);
    assert_eq!(check_selection(source, &lines(Some(3), None)), None);
    assert_eq!(check_selection(source, &lines(None, Some(99))), None);
    assert!(check_selection(source, &lines(Some(4), None)).is_some());
    assert!(check_selection(source, &lines(Some(3), Some(2))).is_some());
}

#[test]
fn reports_every_broken_include_with_its_line() {
    // Include paths are relative to the chapter's directory; the crate root
    // is a directory whose files we know.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let markdown = "\
{{#include Cargo.toml}}
{{#include Cargo.toml:1:2}}
{{#include no/such/file.rs}}
\\{{#include escaped/missing.rs}}
{{#rustdoc_include Cargo.toml:no_such_anchor}}
{{#include Cargo.toml:100000}}
{{#include src}}
";
    let problems = check_chapter(root, "sample.md", markdown);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].starts_with("sample.md:3 → {{#include no/such/file.rs}}"));
    assert!(problems[0].contains("does not exist"));
    assert!(problems[1].starts_with("sample.md:5 → "));
    assert!(problems[1].contains("no `ANCHOR: no_such_anchor`"));
    assert!(problems[2].starts_with("sample.md:6 → "));
    assert!(problems[2].contains("starts at line 100000"));
    assert!(problems[3].starts_with("sample.md:7 → {{#include src}}"));
    assert!(problems[3].contains("is a directory"));
}
