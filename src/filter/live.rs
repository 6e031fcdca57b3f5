//! Rules that change while the proxy runs.
//!
//! Every worker thread asks for the rules on every request, and a watcher
//! thread replaces them when a file changes. The rules themselves are never
//! modified: a reload parses the files into a fresh [`RuleSet`] and swaps the
//! `Arc` that points to it. A reader holds the lock only long enough to clone
//! that `Arc`, so a request that started under the old rules finishes under
//! them, and a request never sees a half-parsed file. A file that fails to
//! parse changes nothing: the old rules stay in force and the log says where
//! the mistake is.
//!
//! Whoever edits the files should replace them in one step (write a new file,
//! rename it over the old one, as `edit.rs` does). A program that truncates
//! and rewrites in place may be caught half way by a tick; the next tick
//! then loads the finished file, but for one interval the rules were those
//! of a partial file.

// While this exercise's starter stands in for the reference code, what only
// the reference used goes unused.
#![cfg_attr(feature = "ex-5-3", allow(dead_code, unused_imports))]

use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use super::rules::{ListKind, RuleDiff, RuleError, RuleSet, Source};

/// How close to a file's modification time we may read it and still trust
/// the time to reveal the next write. Some file systems store whole seconds
/// (FAT: two), so a second write in the same tick leaves the time unchanged.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// The shortest polling interval `watch` accepts; zero would spin.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A shareable handle to the rules in force. Cloning it is cheap and every
/// clone sees the same rules.
#[derive(Clone)]
pub struct LiveRules {
    shared: Arc<Shared>,
}

struct Shared {
    block_files: Vec<PathBuf>,
    allow_files: Vec<PathBuf>,
    current: RwLock<Arc<RuleSet>>,
    /// What each file looked like when last read, in `files()` order. The
    /// mutex also makes reloads take turns.
    seen: Mutex<Vec<Option<Stamp>>>,
}

// ANCHOR: stamp
/// What we know about a rule file from the last time we read it.
#[derive(Clone, Debug)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// `None` if the file existed but could not be read.
    hash: Option<u64>,
    read_at: SystemTime,
}

impl Stamp {
    /// Whether a later write is sure to show in the modification time: it is
    /// if we read the file at least one clock tick after it was written
    /// (git calls the opposite case "racily clean").
    fn settled(&self) -> bool {
        match self.modified {
            Some(modified) => self
                .read_at
                .duration_since(modified)
                .is_ok_and(|age| age >= RACY_WINDOW),
            None => false,
        }
    }
}
// ANCHOR_END: stamp

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// Reads a rule file and describes it. The stamp is taken before the read,
/// so a write that races with the read leaves a stamp older than the
/// contents, and the next poll reloads once more rather than never.
fn read_file(path: &Path) -> (Option<Stamp>, io::Result<Vec<u8>>) {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return (None, Err(e)),
    };
    let read_at = SystemTime::now();
    let contents = fs::read(path);
    let stamp = Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        hash: contents.as_ref().ok().map(|b| hash_bytes(b)),
        read_at,
    };
    (Some(stamp), contents)
}

// ANCHOR: unchanged
/// Whether `path` still looks the way `seen` recorded it. Size and time are
/// checked first because they are cheap; the contents only while the time
/// is too close to the last read to be trusted.
#[cfg(not(feature = "ex-5-3"))]
fn unchanged(seen: &mut Option<Stamp>, path: &Path) -> bool {
    let meta = fs::metadata(path).ok();
    let (stamp, meta) = match (seen.as_mut(), meta) {
        // Still missing: the error was logged when it went missing.
        (None, None) => return true,
        (Some(stamp), Some(meta)) => (stamp, meta),
        _ => return false,
    };
    if meta.len() != stamp.len || meta.modified().ok() != stamp.modified {
        return false;
    }
    if stamp.settled() {
        return true;
    }
    let now = SystemTime::now();
    let hash = fs::read(path).ok().map(|b| hash_bytes(&b));
    if hash != stamp.hash {
        return false;
    }
    // Same bytes, read now: once this read is a tick past the write,
    // the time alone will do.
    stamp.read_at = now;
    true
}
// ANCHOR_END: unchanged

// Exercise 5.3: with its feature, the student's `unchanged` (above) and
// `LiveRules::reload_locked` (below) replace the reference ones.
#[cfg(feature = "ex-5-3")]
#[path = "../../exercises/stage5/live.rs"]
mod ex_5_3;
#[cfg(feature = "ex-5-3")]
use ex_5_3::unchanged;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave stamps half-written in a way that
    // matters: at worst the next poll reloads once more.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LiveRules {
    /// Loads the files; fails like [`RuleSet::load`] if any is missing or bad.
    pub fn load(block_files: &[PathBuf], allow_files: &[PathBuf]) -> Result<LiveRules, RuleError> {
        let shared = Shared {
            block_files: block_files.to_vec(),
            allow_files: allow_files.to_vec(),
            current: RwLock::new(Arc::new(RuleSet::empty())),
            seen: Mutex::new(Vec::new()),
        };
        let (stamps, set) = shared.read_all();
        *lock(&shared.seen) = stamps;
        *shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(set?);
        Ok(LiveRules {
            shared: Arc::new(shared),
        })
    }

    // ANCHOR: current
    /// The rules in force. Hold on to the result for the whole request: a
    /// reload during it does not change what this request was judged by.
    pub fn current(&self) -> Arc<RuleSet> {
        let guard = self.shared.current.read();
        Arc::clone(&guard.unwrap_or_else(PoisonError::into_inner))
    }
    // ANCHOR_END: current

    /// Re-reads every file now, changed or not, and swaps in the result.
    /// On error the old rules stay. Both outcomes are logged.
    pub fn reload_now(&self) -> Result<RuleDiff, RuleError> {
        let mut seen = lock(&self.shared.seen);
        self.reload_locked(&mut seen)
    }

    /// Reloads if any file changed since it was last read: `None` if
    /// nothing changed. This is what the watcher calls on every tick.
    pub fn reload_if_changed(&self) -> Option<Result<RuleDiff, RuleError>> {
        let mut seen = lock(&self.shared.seen);
        let changed = self
            .shared
            .files()
            .zip(seen.iter_mut())
            .any(|((_, path), stamp)| !unchanged(stamp, path));
        if changed {
            Some(self.reload_locked(&mut seen))
        } else {
            None
        }
    }

    // ANCHOR: reload
    /// Reads every rule file and swaps the result in; `seen` (under its
    /// lock) receives the new stamps.
    #[cfg(not(feature = "ex-5-3"))]
    fn reload_locked(&self, seen: &mut Vec<Option<Stamp>>) -> Result<RuleDiff, RuleError> {
        let (stamps, parsed) = self.shared.read_all();
        // Remember what we saw even if it is broken, so a bad file is
        // reported once, not on every tick until someone fixes it.
        *seen = stamps;
        let old = self.current();
        let new = match parsed {
            Ok(new) => new,
            Err(e) => {
                log::warn!(
                    "rules not reloaded, the {} rules in force stay: {e}",
                    old.len()
                );
                return Err(e);
            }
        };
        let diff = old.diff(&new);
        let replaced = {
            let mut current = self
                .shared
                .current
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *current, Arc::new(new))
        };
        // Dropped after the lock is released: if no request still holds the
        // old rules, freeing thousands of them should not stall readers.
        drop(replaced);
        if diff.is_empty() {
            log::debug!(
                "rule files changed, rules did not ({} in force)",
                diff.total
            );
        } else {
            log::info!("rules reloaded: {diff}");
            for rule in &diff.added {
                log::debug!("rule added: {rule}");
            }
            for rule in &diff.removed {
                log::debug!("rule removed: {rule}");
            }
        }
        Ok(diff)
    }
    // ANCHOR_END: reload

    // ANCHOR: watch
    /// Starts a thread that polls the files every `every` and reloads when
    /// one changed. It stops when the returned [`Watcher`] is dropped, or
    /// when the last `LiveRules` handle is, whichever comes first: the
    /// thread holds only a weak reference between ticks.
    pub fn watch(&self, every: Duration) -> io::Result<Watcher> {
        let every = every.max(MIN_INTERVAL);
        let stop = Arc::new(StopSignal::default());
        let signal = Arc::clone(&stop);
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let thread = thread::Builder::new()
            .name("rule-watcher".into())
            .spawn(move || {
                while !signal.wait(every) {
                    let Some(shared) = weak.upgrade() else { break };
                    // The outcome is logged by the reload itself.
                    let _ = LiveRules { shared }.reload_if_changed();
                }
            })?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }
    // ANCHOR_END: watch

    /// The watched files, block files first.
    pub fn files(&self) -> impl Iterator<Item = (ListKind, &Path)> {
        self.shared.files()
    }
}

impl Shared {
    fn files(&self) -> impl Iterator<Item = (ListKind, &Path)> {
        let block = self
            .block_files
            .iter()
            .map(|f| (ListKind::Block, f.as_path()));
        block.chain(
            self.allow_files
                .iter()
                .map(|f| (ListKind::Allow, f.as_path())),
        )
    }

    /// Reads every file (recording a stamp for each, even after an error)
    /// and parses them into one rule set.
    fn read_all(&self) -> (Vec<Option<Stamp>>, Result<RuleSet, RuleError>) {
        let mut stamps = Vec::new();
        let mut texts = Vec::new();
        let mut failure = None;
        for (kind, path) in self.files() {
            let (stamp, contents) = read_file(path);
            stamps.push(stamp);
            match contents {
                Ok(text) => texts.push((kind, path, text)),
                Err(e) => {
                    failure.get_or_insert_with(|| RuleError::io(path, &e));
                }
            }
        }
        if let Some(e) = failure {
            return (stamps, Err(e));
        }
        let sources: Vec<Source<'_>> = texts
            .iter()
            .map(|&(kind, file, ref text)| Source { kind, file, text })
            .collect();
        (stamps, RuleSet::from_sources(&sources))
    }
}

/// Wakes the watcher early when it should stop.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    /// Sleeps up to `timeout`; true if a stop was requested.
    fn wait(&self, timeout: Duration) -> bool {
        let guard = lock(&self.stopped);
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, timeout, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }

    fn stop(&self) {
        *lock(&self.stopped) = true;
        self.wake.notify_all();
    }
}

/// The running watcher thread. Dropping it stops the thread and waits for
/// it, so tests and shutdown leave nothing behind.
pub struct Watcher {
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            // A panic in the watcher has already been reported; shutdown
            // should not panic again.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::edit::write_atomically;
    use crate::filter::rules::Verdict;
    use crate::test_util::TempDir;
    use crate::uri::normalize_host;
    use std::time::Instant;

    fn blocked(rules: &LiveRules, host: &str) -> bool {
        !rules
            .current()
            .check(&normalize_host(host), None)
            .is_allowed()
    }

    /// Polls `condition` every 20 ms for up to 5 s.
    fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        condition()
    }

    #[test]
    fn reload_now_reports_added_and_removed() {
        let dir = TempDir::new("diff");
        let block = dir.write("block.txt", "a.example\nb.example\n");
        let allow = dir.write("allow.txt", "example\n");
        let rules = LiveRules::load(std::slice::from_ref(&block), &[allow]).expect("load");
        assert_eq!(rules.current().len(), 3);
        assert!(blocked(&rules, "x.a.example"));

        let held = rules.current();
        fs::write(&block, "# a is gone\nb.example\nc.example\n").expect("rewrite");
        let diff = rules.reload_now().expect("reload");
        assert_eq!(diff.added, ["block c.example"]);
        assert_eq!(diff.removed, ["block a.example"]);
        assert_eq!(diff.total, 3);
        assert!(!blocked(&rules, "a.example"));
        assert!(blocked(&rules, "c.example"));
        // A request that took the rules before the reload keeps them.
        assert!(!held.check(&normalize_host("a.example"), None).is_allowed());
    }

    #[test]
    fn a_broken_file_keeps_the_old_rules() {
        let dir = TempDir::new("broken");
        let block = dir.write("block.txt", "a.example\n");
        let rules = LiveRules::load(std::slice::from_ref(&block), &[]).expect("load");

        fs::write(&block, "b.example\nbad..example\n").expect("rewrite");
        let err = rules.reload_now().expect_err("a bad line was accepted");
        assert_eq!(err.file, block);
        assert_eq!(err.line, Some(2));
        assert!(blocked(&rules, "a.example"));
        assert!(!blocked(&rules, "b.example"));
        // Reported once: the broken file is not "changed" on the next tick.
        assert!(rules.reload_if_changed().is_none());

        fs::remove_file(&block).expect("remove");
        match rules.reload_if_changed() {
            Some(Err(e)) => assert_eq!((e.file, e.line), (block.clone(), None)),
            other => panic!("a missing file was not reported: {other:?}"),
        }
        assert!(blocked(&rules, "a.example"));
        assert!(rules.reload_if_changed().is_none());

        fs::write(&block, "b.example\n").expect("fix");
        let diff = match rules.reload_if_changed() {
            Some(Ok(diff)) => diff,
            other => panic!("the fixed file was not loaded: {other:?}"),
        };
        assert_eq!(diff.added, ["block b.example"]);
        assert!(blocked(&rules, "b.example"));
    }

    #[test]
    fn a_same_size_edit_within_the_same_second_is_noticed() {
        let dir = TempDir::new("racy");
        let block = dir.write("block.txt", "a.example\n");
        let rules = LiveRules::load(std::slice::from_ref(&block), &[]).expect("load");
        assert!(rules.reload_if_changed().is_none());
        let before = fs::metadata(&block)
            .and_then(|m| m.modified())
            .expect("mtime");

        fs::write(&block, "b.example\n").expect("rewrite");
        // Pretend the file system only stores whole seconds: put the old
        // time back, so only the contents tell the change.
        let file = fs::File::options().write(true).open(&block).expect("open");
        file.set_modified(before).expect("set mtime");
        drop(file);

        match rules.reload_if_changed() {
            Some(Ok(diff)) => assert_eq!(diff.added, ["block b.example"]),
            other => panic!("the edit was missed: {other:?}"),
        }
    }

    #[test]
    fn an_edit_in_a_later_second_is_noticed_by_size_or_time_alone() {
        let dir = TempDir::new("settled");
        let block = dir.write("block.txt", "a.example\n");
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let set_time = |at: SystemTime| {
            let file = fs::File::options().write(true).open(&block).expect("open");
            file.set_modified(at).expect("set mtime");
        };
        // Written long before it was read: the time alone can be trusted.
        set_time(hour_ago);
        let rules = LiveRules::load(std::slice::from_ref(&block), &[]).expect("load");
        assert!(rules.reload_if_changed().is_none());

        // The same size, a new time.
        fs::write(&block, "b.example\n").expect("rewrite");
        let half_hour_ago = hour_ago + Duration::from_secs(1800);
        set_time(half_hour_ago);
        match rules.reload_if_changed() {
            Some(Ok(diff)) => assert_eq!(diff.added, ["block b.example"]),
            other => panic!("the same-size edit was missed: {other:?}"),
        }
        // A new size, the same time.
        fs::write(&block, "cc.example\n").expect("rewrite");
        set_time(half_hour_ago);
        match rules.reload_if_changed() {
            Some(Ok(diff)) => assert_eq!(diff.added, ["block cc.example"]),
            other => panic!("the edit that kept its time was missed: {other:?}"),
        }
        assert!(rules.reload_if_changed().is_none());
    }

    #[test]
    fn the_watcher_picks_up_changes_and_stops() {
        let dir = TempDir::new("watch");
        let block = dir.write("block.txt", "a.example\n");
        let rules = LiveRules::load(std::slice::from_ref(&block), &[]).expect("load");
        let watcher = rules.watch(Duration::from_millis(20)).expect("spawn");

        // fs::write truncates and then writes: a watcher tick in between
        // would load the empty file. Replace it in one step, as edit.rs does.
        let replace = |text: &str| write_atomically(&block, text.as_bytes()).expect("rewrite");
        replace("a.example\nnew.example\n");
        assert!(eventually(|| blocked(&rules, "new.example")));

        // Broken: once the watcher has read the file (its stamp holds the
        // broken contents), the rules must be the ones from before.
        let broken = "a.example\nnew.example\nexa mple\nlater.example\n";
        replace(broken);
        let read_by_watcher = || {
            let seen = lock(&rules.shared.seen);
            seen.first().and_then(|s| s.as_ref()).and_then(|s| s.hash)
                == Some(hash_bytes(broken.as_bytes()))
        };
        assert!(
            eventually(read_by_watcher),
            "the watcher never read the broken file"
        );
        assert!(!blocked(&rules, "later.example"));
        assert!(blocked(&rules, "new.example"));

        drop(watcher);
        // With the watcher gone, changes wait for an explicit reload.
        fs::write(&block, "other.example\n").expect("rewrite");
        assert!(blocked(&rules, "a.example"));
        rules.reload_now().expect("reload");
        assert!(!blocked(&rules, "a.example"));
    }

    #[test]
    fn the_watcher_ends_with_the_last_handle() {
        let dir = TempDir::new("weak");
        let block = dir.write("block.txt", "a.example\n");
        let rules = LiveRules::load(std::slice::from_ref(&block), &[]).expect("load");
        let watcher = rules.watch(Duration::from_millis(10)).expect("spawn");
        let thread_done = {
            let handle = watcher.thread.as_ref().expect("thread");
            drop(rules);
            eventually(|| handle.is_finished())
        };
        assert!(thread_done, "the watcher outlived every LiveRules handle");
        drop(watcher);
    }

    #[test]
    fn readers_on_many_threads_see_whole_rule_sets() {
        let dir = TempDir::new("threads");
        let one = "a.example\nb.example\n";
        let two = "c.example\nd.example\n";
        let block = dir.write("block.txt", one);
        let rules = LiveRules::load(std::slice::from_ref(&block), &[]).expect("load");
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let rules = rules.clone();
                thread::spawn(move || {
                    for _ in 0..2000 {
                        let set = rules.current();
                        let a = !set.check(&normalize_host("a.example"), None).is_allowed();
                        let b = !set.check(&normalize_host("b.example"), None).is_allowed();
                        let c = !set.check(&normalize_host("c.example"), None).is_allowed();
                        // Never a mix of the two files.
                        assert_eq!(a, b);
                        assert_ne!(a, c);
                        assert_eq!(set.len(), 2);
                    }
                })
            })
            .collect();
        for i in 0..50 {
            fs::write(&block, if i % 2 == 0 { two } else { one }).expect("rewrite");
            rules.reload_now().expect("reload");
        }
        for reader in readers {
            reader.join().expect("a reader saw a torn rule set");
        }
        assert!(matches!(
            rules.current().check(&normalize_host("a.example"), None),
            Verdict::Block(_)
        ));
    }
}
