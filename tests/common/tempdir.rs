//! Scratch directories for tests that need files (rule files, say).
//!
//! Each directory lives under the system temp dir with a name made of a tag,
//! the process id and a counter, so tests running in parallel, and test
//! binaries running at the same time, never share one. It is removed when
//! the guard is dropped, whatever the test's outcome.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh, empty directory; removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let name = format!("webproxy-test-{tag}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        // A leftover from a crashed run with a recycled process id.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create a temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to the file `name` in the directory (plainly, not
    /// atomically: for files nobody is watching yet) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path.join(name);
        fs::write(&path, text).expect("write a test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
