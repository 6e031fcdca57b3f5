//! Rule files and the decision "may a client reach this host?".
//!
//! Rules are compared label by label, never as substrings: a host's name is
//! looked up suffix by suffix, each suffix starting at a label boundary
//! (RFC 1034 §3.1), so the rule `example.com` covers `www.example.com` but
//! not `notexample.com`, and certainly not a URL that merely contains the
//! word. Hosts arrive parsed ([`crate::uri::Host`]) and are compared in their
//! canonical form, so case, a trailing dot and the spelling of an address
//! make no difference. What a rule line means is [`super::patterns`]; how a
//! path is normalised is [`super::path`]; the 403 a refused client gets is
//! [`super::refusal`].
//!
//! A [`RuleSet`] is immutable once built. Live reloading (see `live.rs`) builds
//! a new one and swaps it in, so a check never sees half a file.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::path::normalize_path;
use super::patterns::{HostPattern, Pattern, parse_rule, rule_text};
use super::refusal::{Refusal, RefusalKind};
use crate::uri::Host;

/// Which command-line option a rule file came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListKind {
    /// `--block FILE`: matching hosts are refused.
    Block,
    /// `--allow FILE`: once any allow file is given, only matching hosts pass.
    Allow,
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListKind::Block => "block",
            ListKind::Allow => "allow",
        })
    }
}

/// One rule as loaded, with where it came from so a refusal can point at it.
#[derive(Clone, Debug)]
pub struct Rule {
    pub pattern: Pattern,
    /// The rule as written in the file (comment and whitespace removed).
    pub text: String,
    pub file: Arc<Path>,
    /// 1-based.
    pub line: usize,
}

/// The rules of one kind, indexed by the name or address they mention, so a
/// check costs one hash lookup per label of the host, however many rules
/// there are.
#[derive(Debug, Default)]
struct List {
    by_name: HashMap<String, Vec<Rule>>,
    by_addr: HashMap<IpAddr, Vec<Rule>>,
    len: usize,
}

impl List {
    fn push(&mut self, rule: Rule) {
        let bucket = match &rule.pattern.host {
            HostPattern::Domain(name)
            | HostPattern::Exact(name)
            | HostPattern::Subdomains(name) => self.by_name.entry(name.clone()).or_default(),
            HostPattern::Address(addr) => self.by_addr.entry(*addr).or_default(),
        };
        bucket.push(rule);
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.by_name.values().chain(self.by_addr.values()).flatten()
    }

    // ANCHOR: find_rule
    /// The first rule matching `host` (and `path`, for path rules). Names are
    /// looked up suffix by suffix, each suffix starting at a label boundary:
    /// `a.b.example.com`, `b.example.com`, `example.com`, `com`. That walk is
    /// what makes `notexample.com` miss the rule `example.com`: its suffixes
    /// are `notexample.com` and `com`, never `example.com`. `host` is in
    /// its canonical form ([`Host::canonical`]).
    #[cfg(not(feature = "ex-5-1"))]
    fn find(&self, host: &Host, path: Option<&str>) -> Option<&Rule> {
        let path_ok = |rule: &&Rule| match (&rule.pattern.path, path) {
            (None, _) => true,
            (Some(prefix), Some(path)) => path.starts_with(prefix.as_str()),
            (Some(_), None) => false,
        };
        let name = match host {
            Host::Name(name) => name.as_str(),
            Host::V4(_) | Host::V6(_) => {
                return self.by_addr.get(&host.ip()?)?.iter().find(path_ok);
            }
        };
        let mut suffix = name;
        let mut whole = true;
        loop {
            if let Some(rules) = self.by_name.get(suffix) {
                let hit = rules
                    .iter()
                    .filter(|rule| rule.pattern.host.accepts(whole))
                    .find(path_ok);
                if hit.is_some() {
                    return hit;
                }
            }
            suffix = suffix.split_once('.')?.1;
            whole = false;
        }
    }
    // ANCHOR_END: find_rule
}

// Exercise 5.1: with its feature, the student's `List::find` (above) and
// `HostPattern::accepts` (in `patterns.rs`) replace the reference ones.
#[cfg(feature = "ex-5-1")]
#[path = "../../exercises/stage5/rules.rs"]
mod ex_5_1;

/// What one rule file contributes to a [`RuleSet`]: its kind, its name (for
/// messages) and its bytes. Lets callers that read the file themselves (the
/// live reloader) and tests build rule sets without a second read.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub kind: ListKind,
    pub file: &'a Path,
    pub text: &'a [u8],
}

/// A rule file that could not be read or has a bad line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    /// 1-based; `None` when the whole file is the problem (unreadable).
    pub line: Option<usize>,
    pub message: String,
}

impl RuleError {
    pub(crate) fn io(file: &Path, err: &std::io::Error) -> RuleError {
        RuleError {
            file: file.to_path_buf(),
            line: None,
            message: format!("cannot read the rule file: {err}"),
        }
    }
}

/// `file:line: message`, the form editors and terminals know how to jump to.
impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for RuleError {}

/// The answer for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Block(Refusal),
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allow)
    }
}

/// What a reload changed, as canonical rules prefixed by their list
/// (`block example.com`), sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Rules in force after the change.
    pub total: usize,
}

impl RuleDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

impl fmt::Display for RuleDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} added, {} removed, {} rules in force",
            self.added.len(),
            self.removed.len(),
            self.total
        )
    }
}

/// All block and allow rules, ready for lookups. Immutable: reloading builds
/// a new one.
#[derive(Debug, Default)]
pub struct RuleSet {
    block: List,
    allow: List,
    /// Non-empty means allow-list mode, even if the files hold no rules:
    /// an empty allow list allows nothing.
    allow_files: Vec<PathBuf>,
}

impl RuleSet {
    /// No rules, no allow list: every host passes.
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// Reads and parses the files given with `--block` and `--allow`.
    pub fn load(block_files: &[PathBuf], allow_files: &[PathBuf]) -> Result<RuleSet, RuleError> {
        let mut texts = Vec::new();
        let files = block_files
            .iter()
            .map(|f| (ListKind::Block, f))
            .chain(allow_files.iter().map(|f| (ListKind::Allow, f)));
        for (kind, file) in files {
            let text = std::fs::read(file).map_err(|e| RuleError::io(file, &e))?;
            texts.push((kind, file, text));
        }
        let sources: Vec<Source<'_>> = texts
            .iter()
            .map(|(kind, file, text)| Source {
                kind: *kind,
                file,
                text,
            })
            .collect();
        RuleSet::from_sources(&sources)
    }

    /// Builds a rule set from file contents already in memory.
    pub fn from_sources(sources: &[Source<'_>]) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        for source in sources {
            let list = match source.kind {
                ListKind::Block => &mut set.block,
                ListKind::Allow => {
                    set.allow_files.push(source.file.to_path_buf());
                    &mut set.allow
                }
            };
            parse_file(source.file, source.text, list)?;
        }
        Ok(set)
    }

    // ANCHOR: check
    /// Decides one request. `host` is the target host as parsed from the
    /// request, compared in its canonical form ([`Host::canonical`]); `path`
    /// is the origin-form path and query of a plain HTTP request, `None` for
    /// CONNECT, where the path is inside the tunnel.
    /// A block rule beats an allow rule: blocking is the more specific
    /// intent ("allow example.com, but not ads.example.com").
    pub fn check(&self, host: &Host, path: Option<&str>) -> Verdict {
        let normalized = host.canonical();
        let path = path.map(normalize_path);
        let path = path.as_deref();
        if let Some(rule) = self.block.find(&normalized, path) {
            return Verdict::Block(Refusal {
                host: host.to_string(),
                reason: RefusalKind::Blocked {
                    rule: rule.text.clone(),
                    file: rule.file.to_path_buf(),
                    line: rule.line,
                },
            });
        }
        if self.allow_list_mode() {
            let Some(rule) = self.allow.find(&normalized, path) else {
                return Verdict::Block(Refusal {
                    host: host.to_string(),
                    reason: RefusalKind::NotAllowed {
                        allow_files: self.allow_files.clone(),
                    },
                });
            };
            log::debug!(
                "{host} is allowed by the rule \"{}\" ({}:{})",
                rule.text,
                rule.file.display(),
                rule.line
            );
        }
        Verdict::Allow
    }
    // ANCHOR_END: check

    /// True when `--allow` was given: unmatched hosts are refused.
    pub fn allow_list_mode(&self) -> bool {
        !self.allow_files.is_empty()
    }

    /// Number of rules, block and allow together.
    pub fn len(&self) -> usize {
        self.block.len + self.allow.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every rule with its list, in no particular order.
    pub fn rules(&self) -> impl Iterator<Item = (ListKind, &Rule)> {
        let block = self.block.iter().map(|r| (ListKind::Block, r));
        block.chain(self.allow.iter().map(|r| (ListKind::Allow, r)))
    }

    /// What changes when `newer` replaces `self`. Rules are compared in
    /// canonical form, so moving a rule or changing its case is no change.
    pub fn diff(&self, newer: &RuleSet) -> RuleDiff {
        let old = self.keys();
        let new = newer.keys();
        let show = |(kind, rule): &(ListKind, String)| format!("{kind} {rule}");
        RuleDiff {
            added: new.difference(&old).map(show).collect(),
            removed: old.difference(&new).map(show).collect(),
            total: newer.len(),
        }
    }

    fn keys(&self) -> BTreeSet<(ListKind, String)> {
        self.rules()
            .map(|(kind, rule)| (kind, rule.pattern.to_string()))
            .collect()
    }
}

// ANCHOR: parse_file
/// Adds the rules of one file to `list`. Stops at the first bad line, so a
/// typo is reported instead of silently matching nothing.
fn parse_file(file: &Path, bytes: &[u8], list: &mut List) -> Result<(), RuleError> {
    let file: Arc<Path> = Arc::from(file);
    let error = |line: usize, message: String| RuleError {
        file: file.to_path_buf(),
        line: Some(line),
        message,
    };
    // Some Windows editors start a UTF-8 file with a byte-order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = std::str::from_utf8(raw).map_err(|_| error(line, "not UTF-8 text".into()))?;
        let text = rule_text(raw);
        if text.is_empty() {
            continue;
        }
        let pattern =
            parse_rule(text).map_err(|m| error(line, format!("bad rule {text:?}: {m}")))?;
        list.push(Rule {
            pattern,
            text: text.to_string(),
            file: Arc::clone(&file),
            line,
        });
    }
    Ok(())
}
// ANCHOR_END: parse_file

#[cfg(test)]
mod tests;
