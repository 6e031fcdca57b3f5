//! What the grader remembers between runs, in `target/grade/`: how many
//! hints of each exercise were shown, and the last score of each exercise
//! (so grading one stage can still print a course total). Both are small
//! text files, one `ID VALUE` line per exercise; `cargo clean` forgets them.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One `ID VALUE` file.
pub struct Counts {
    path: PathBuf,
    values: BTreeMap<String, u32>,
}

impl Counts {
    /// Reads `target/grade/NAME` under `root`; a missing or unreadable file
    /// is an empty one.
    pub fn load(root: &Path, name: &str) -> Counts {
        Counts::at(target_dir(root).join("grade").join(name))
    }

    fn at(path: PathBuf) -> Counts {
        let values = fs::read_to_string(&path)
            .map(|text| parse(&text))
            .unwrap_or_default();
        Counts { path, values }
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        self.values.get(id).copied()
    }

    pub fn set(&mut self, id: &str, value: u32) {
        self.values.insert(id.to_string(), value);
    }

    pub fn save(&self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let text: String = self
            .values
            .iter()
            .map(|(id, value)| format!("{id} {value}\n"))
            .collect();
        fs::write(&self.path, text)
    }
}

/// Where cargo builds: `CARGO_TARGET_DIR`, or `target/` in the repository.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn parse(text: &str) -> BTreeMap<String, u32> {
    text.lines()
        .filter_map(|line| {
            let (id, value) = line.split_once(' ')?;
            Some((id.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_a_save_and_a_load() {
        let dir = std::env::temp_dir().join(format!("grade-state-{}", std::process::id()));
        let path = dir.join("grade").join("hints");
        let mut counts = Counts::at(path.clone());
        assert_eq!(counts.get("3.2"), None);
        counts.set("3.2", 2);
        counts.set("1.1", 1);
        counts.save().unwrap();
        let again = Counts::at(path);
        assert_eq!(again.get("3.2"), Some(2));
        assert_eq!(again.get("1.1"), Some(1));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_lines_are_skipped() {
        let values = parse("3.2 2\ngarbage\n1.1 x\n4.1 7\n");
        assert_eq!(values.len(), 2);
        assert_eq!(values["4.1"], 7);
    }
}
