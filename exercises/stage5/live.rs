//! Stage 5, exercise 3: rules that change while the proxy runs.
//!
//! With `--features ex-5-3`, the functions in this file replace the
//! reference `unchanged` and `LiveRules::reload_locked` in
//! `src/filter/live.rs`, and everything around them is the reference code:
//! this file is a child module of `filter::live`, so `use super::*` reaches
//! `Stamp`, `hash_bytes` and `LiveRules`' shared state. Read the module
//! comment at the top of `src/filter/live.rs` first. Both are `pub(super)`
//! so that `src/filter/live.rs` (the watcher) can call them. Hints:
//! `exercises/stage5/HINTS.md`; grade it with `cargo run --bin grade -- 5`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: unchanged
/// Whether `path` still looks the way `seen` recorded it. Size and time are
/// checked first because they are cheap; the contents only while the time
/// is too close to the last read to be trusted.
pub(super) fn unchanged(seen: &mut Option<Stamp>, path: &Path) -> bool {
    // TODO(exercise 3a): does the file at `path` still look the way `seen`
    // recorded it when it was last read?
    //
    // - Missing then and missing now: unchanged (the error was reported
    //   when it went missing). Missing in one of the two: changed.
    // - A different size or modification time: changed. Both are cheap
    //   (`fs::metadata`).
    // - Same size and time, and the stamp is `settled()`: unchanged.
    // - Otherwise the time cannot be trusted: the file was read within a
    //   clock tick of its last write, so a second write in the same tick
    //   would leave size and time alone. Compare the contents' hash
    //   (`hash_bytes`) instead; if it is the same, record `read_at` as now,
    //   so that the time alone will do once this read is a tick past the
    //   write.
    todo!("stage 5, exercise 3a: unchanged")
}
// ANCHOR_END: unchanged

// ANCHOR: reload
impl LiveRules {
    /// Reads every rule file and swaps the result in; `seen` (under its
    /// lock) receives the new stamps.
    // Until the body uses `seen`, clippy would rather it were a slice.
    #[allow(clippy::ptr_arg)]
    pub(super) fn reload_locked(
        &self,
        seen: &mut Vec<Option<Stamp>>,
    ) -> Result<RuleDiff, RuleError> {
        // TODO(exercise 3b): read and parse every file (`self.shared.read_all()`)
        // and swap the result in.
        //
        // - Store the new stamps in `seen` whatever happened, so that a
        //   broken file is reported once, not on every tick.
        // - A file that failed to read or parse changes nothing: the rules
        //   in force stay, the error is logged and returned.
        // - Otherwise replace the `Arc<RuleSet>` in `self.shared.current`
        //   under its write lock, holding the lock only for the swap. A
        //   request that took the old `Arc` with `current()` finishes under
        //   the old rules. Drop the old set after the lock is released.
        // - Return what changed (`old.diff(&new)`), and log it.
        todo!("stage 5, exercise 3b: reload_locked")
    }
}
// ANCHOR_END: reload
