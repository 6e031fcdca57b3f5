//! Stage 5, exercise 1: match a domain rule.
//!
//! With `--features ex-5-1`, the methods in this file replace the reference
//! `HostPattern::accepts` (in `src/filter/patterns.rs`) and `List::find`
//! (in `src/filter/rules.rs`), and everything around them is the reference
//! code: this file is a child module of `filter::rules`, so `use super::*`
//! reaches the private `List` and its indexes `by_name` and `by_addr`, and
//! `HostPattern`. Both are `pub(super)` so that `src/filter/rules.rs` can
//! call them. Hints: `exercises/stage5/HINTS.md`; grade it with
//! `cargo run --bin grade -- 5`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: accepts
impl HostPattern {
    /// Whether the pattern accepts a host when its name was found as a
    /// label-aligned suffix of that host; `whole` means the suffix was the
    /// entire host.
    pub(super) fn accepts(&self, whole: bool) -> bool {
        // TODO(exercise 1a): `Domain` and `Address` accept both; `Exact`
        // only the whole host; `Subdomains` only a proper suffix.
        todo!("stage 5, exercise 1a: HostPattern::accepts")
    }
}
// ANCHOR_END: accepts

// ANCHOR: find_rule
impl List {
    /// The first rule matching `host` (and `path`, for path rules). Names are
    /// looked up suffix by suffix, each suffix starting at a label boundary:
    /// `a.b.example.com`, `b.example.com`, `example.com`, `com`. That walk is
    /// what makes `notexample.com` miss the rule `example.com`: its suffixes
    /// are `notexample.com` and `com`, never `example.com`. `host` is in
    /// its canonical form ([`Host::canonical`]).
    pub(super) fn find(&self, host: &Host, path: Option<&str>) -> Option<&Rule> {
        // TODO(exercise 1b): the first rule that matches `host` and `path`.
        //
        // - A rule without a path matches any path. A rule with a path
        //   matches only a request whose (normalised) path starts with it,
        //   and never a CONNECT (`path` is `None`: the path is inside the
        //   tunnel).
        // - An address is looked up as it is, in `by_addr`.
        // - A name is looked up suffix by suffix, each starting at a label
        //   boundary: `a.b.example.com`, `b.example.com`, `example.com`,
        //   `com` (RFC 1034 §3.1). A rule found under a suffix must also
        //   `accept` the host: `whole` is true only for the first suffix,
        //   the host itself.
        //
        // Never compare substrings: `notexample.com` does not end in the
        // label `example.com`, and one hash lookup per label keeps a check
        // fast however many rules there are.
        todo!("stage 5, exercise 1b: List::find")
    }
}
// ANCHOR_END: find_rule
