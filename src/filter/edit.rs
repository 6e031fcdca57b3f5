//! Adding and removing rules in a rule file while the proxy runs.
//!
//! The running proxy polls the file, so an edit must never be visible half
//! done: we write the new contents to a temporary file in the same directory,
//! flush it to disk, and rename it over the old one. A rename within one file
//! system replaces the name in one step (POSIX `rename`), so the watcher sees
//! either the old file or the new one. Everything we do not touch, comments
//! included, is kept byte for byte.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::patterns::{Pattern, parse_rule, rule_text};

/// Checks a rule given on the command line with the same parser the proxy
/// uses, so a rule that would break the file is refused before it is written.
fn validate(rule: &str) -> io::Result<Pattern> {
    let text = rule.trim();
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    if text.contains('#') {
        return Err(invalid(format!("bad rule {text:?}: '#' starts a comment")));
    }
    parse_rule(text).map_err(|m| invalid(format!("bad rule {text:?}: {m}")))
}

/// The rule on a line, if the line holds a valid one.
fn line_rule(line: &str) -> Option<Pattern> {
    let text = rule_text(line);
    if text.is_empty() {
        return None;
    }
    parse_rule(text).ok()
}

// ANCHOR: edit_block
/// Appends `rule` to `file` unless a line already holds the same rule
/// (compared in canonical form, so `Example.com.` is `example.com`).
/// Creates the file if needed. Returns whether the file changed.
pub fn block(file: &Path, rule: &str) -> io::Result<bool> {
    let pattern = validate(rule)?;
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if text
        .lines()
        .any(|line| line_rule(line).as_ref() == Some(&pattern))
    {
        return Ok(false);
    }
    // Keep the file's own line endings.
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = text;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push_str(newline);
    }
    out.push_str(&pattern.to_string());
    out.push_str(newline);
    write_atomically(file, out.as_bytes())?;
    Ok(true)
}

/// Removes every line whose rule equals `rule` (in canonical form; a
/// comment on that line goes with it). Returns whether the file changed;
/// a missing file has nothing to remove.
pub fn unblock(file: &Path, rule: &str) -> io::Result<bool> {
    let pattern = validate(rule)?;
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        if line_rule(line).as_ref() == Some(&pattern) {
            changed = true;
        } else {
            out.push_str(line);
        }
    }
    if changed {
        write_atomically(file, out.as_bytes())?;
    }
    Ok(changed)
}
// ANCHOR_END: edit_block

// ANCHOR: write_atomically
/// Replaces `file` with `contents` so that readers see the old file or the
/// new one, never a mix, even if we crash half way.
pub fn write_atomically(file: &Path, contents: &[u8]) -> io::Result<()> {
    // Renaming over a symbolic link would replace the link, not the file
    // it points to, so resolve it first.
    let target = match fs::canonicalize(file) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => file.to_path_buf(),
        Err(e) => return Err(e),
    };
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    // The temporary file must be in the same directory: rename is only
    // atomic within one file system.
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    if let Err(e) = write_then_rename(&temp, &target, contents) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // The rename lives in the directory; flush it too. Not every platform
    // lets us open a directory, so this step is best effort.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_then_rename(temp: &Path, target: &Path, contents: &[u8]) -> io::Result<()> {
    // create_new: never follow or reuse something already at that name.
    let mut out = OpenOptions::new().write(true).create_new(true).open(temp)?;
    if let Ok(meta) = fs::metadata(target) {
        out.set_permissions(meta.permissions())?;
    }
    out.write_all(contents)?;
    // On disk before the rename, or a crash could leave an empty file
    // under the real name.
    out.sync_all()?;
    drop(out);
    fs::rename(temp, target)
}
// ANCHOR_END: write_atomically

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn read(path: &Path) -> String {
        fs::read_to_string(path).expect("read back")
    }

    #[test]
    fn round_trip_keeps_comments_and_other_rules() {
        let dir = TempDir::new("round");
        let file = dir.0.join("block.txt");
        let original = "# ads\nads.example.com\n\n# trackers\ntracker.example.net # noisy\n";
        fs::write(&file, original).expect("write");

        assert!(block(&file, "  Bad.Example.ORG. ").expect("block"));
        assert_eq!(read(&file), format!("{original}bad.example.org\n"));
        // Already there, in another spelling: no change.
        assert!(!block(&file, "bad.example.org").expect("block again"));

        assert!(unblock(&file, "bad.example.org").expect("unblock"));
        assert_eq!(read(&file), original);
        assert!(!unblock(&file, "bad.example.org").expect("unblock again"));

        // A rule with a trailing comment is removed with its comment; the
        // other lines stay.
        assert!(unblock(&file, "TRACKER.example.net").expect("unblock"));
        assert_eq!(read(&file), "# ads\nads.example.com\n\n# trackers\n");

        // The edited file is still a valid rule file.
        let set = crate::filter::RuleSet::load(&[file], &[]).expect("load");
        assert_eq!(set.len(), 1);
        // No temporary files left behind.
        let leftovers: Vec<_> = fs::read_dir(&dir.0)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn different_rule_kinds_are_different_rules() {
        let dir = TempDir::new("kinds");
        let file = dir.0.join("block.txt");
        fs::write(&file, "=example.com\n*.example.com\nexample.com/ads/\n").expect("write");
        assert!(!unblock(&file, "example.com").expect("unblock"));
        assert!(unblock(&file, "*.EXAMPLE.com").expect("unblock"));
        assert_eq!(read(&file), "=example.com\nexample.com/ads/\n");
        assert!(block(&file, "[0:0::1]").expect("block"));
        assert!(!block(&file, "[::1]").expect("block"));
    }

    #[test]
    fn creates_a_missing_file_and_keeps_crlf() {
        let dir = TempDir::new("create");
        let file = dir.0.join("new.txt");
        assert!(!unblock(&file, "example.com").expect("unblock"));
        assert!(!file.exists());
        assert!(block(&file, "example.com").expect("block"));
        assert_eq!(read(&file), "example.com\n");

        let crlf = dir.0.join("crlf.txt");
        fs::write(&crlf, "# windows\r\na.example").expect("write");
        assert!(block(&crlf, "b.example").expect("block"));
        assert_eq!(read(&crlf), "# windows\r\na.example\r\nb.example\r\n");
        assert!(unblock(&crlf, "a.example").expect("unblock"));
        assert_eq!(read(&crlf), "# windows\r\nb.example\r\n");
    }

    #[test]
    fn invalid_rules_are_refused_before_writing() {
        let dir = TempDir::new("invalid");
        let file = dir.0.join("block.txt");
        fs::write(&file, "a.example\n").expect("write");
        for bad in ["exa mple.com", "bad..example", "a.example # note", "", "*."] {
            let err = block(&file, bad).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains("bad rule"), "{err}");
            assert!(unblock(&file, bad).is_err(), "{bad:?}");
        }
        assert_eq!(read(&file), "a.example\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_file_is_edited_in_place() {
        let dir = TempDir::new("link");
        let real = dir.0.join("real.txt");
        let link = dir.0.join("link.txt");
        fs::write(&real, "a.example\n").expect("write");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        assert!(block(&link, "b.example").expect("block"));
        assert!(
            fs::symlink_metadata(&link)
                .expect("stat")
                .file_type()
                .is_symlink()
        );
        assert_eq!(read(&real), "a.example\nb.example\n");
    }
}
