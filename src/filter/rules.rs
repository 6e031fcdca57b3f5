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
mod tests {
    use super::*;
    use crate::uri::normalize_host;

    /// `rules.check` for a host written as a client may write it.
    fn check(rules: &RuleSet, host: &str, path: Option<&str>) -> Verdict {
        rules.check(&normalize_host(host), path)
    }

    fn set(block: &str, allow: Option<&str>) -> RuleSet {
        let mut sources = vec![Source {
            kind: ListKind::Block,
            file: Path::new("block.txt"),
            text: block.as_bytes(),
        }];
        if let Some(allow) = allow {
            sources.push(Source {
                kind: ListKind::Allow,
                file: Path::new("allow.txt"),
                text: allow.as_bytes(),
            });
        }
        match RuleSet::from_sources(&sources) {
            Ok(set) => set,
            Err(e) => panic!("test rules do not parse: {e}"),
        }
    }

    /// One block rule, one request, blocked or not.
    #[test]
    fn matching_table() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, Option<&str>, bool)] = &[
            // Label alignment: a rule covers the name and names below it.
            ("example.com", "example.com", None, true),
            ("example.com", "www.example.com", None, true),
            ("example.com", "a.b.example.com", None, true),
            ("example.com", "notexample.com", None, false),
            ("example.com", "example.com.evil.net", None, false),
            ("example.com", "example.org", None, false),
            ("example.com", "com", None, false),
            ("ads", "ads.example.com", None, false),
            // Exact and subdomain-only rules.
            ("=example.com", "example.com", None, true),
            ("=example.com", "www.example.com", None, false),
            ("*.example.com", "example.com", None, false),
            ("*.example.com", "www.example.com", None, true),
            ("*.example.com", "a.b.example.com", None, true),
            ("*.example.com", "notexample.com", None, false),
            // Case and trailing dots, on either side.
            ("Example.COM", "www.example.com", None, true),
            ("example.com", "WWW.EXAMPLE.COM", None, true),
            ("example.com.", "example.com", None, true),
            ("example.com", "example.com.", None, true),
            ("=example.com", "Example.Com.", None, true),
            // A port on the host is not part of the name.
            ("example.com", "example.com:443", None, true),
            ("=example.com", "example.com:8080", None, true),
            // IPv4 literals: that address only, however it is spelled.
            ("10.1.2.3", "10.1.2.3", None, true),
            ("10.1.2.3", "10.1.2.4", None, false),
            ("10.1.2.3", "1.10.1.2.3", None, false),
            ("10.1.2.3", "167838211", None, true),
            ("10.1.2.3", "0xa.1.2.3", None, true),
            ("10.1.2.3", "012.1.2.3", None, true),
            ("10.1.2.3", "10.1.515", None, true),
            ("10.1.2.3", "10.1.2.3:80", None, true),
            ("10.1.2.3", "[::ffff:10.1.2.3]", None, true),
            // IPv6 literals, compared as addresses.
            ("[::1]", "[::1]", None, true),
            ("[::1]", "[0:0::1]", None, true),
            ("[::1]", "::1", None, true),
            ("[::1]", "[::1]:8080", None, true),
            ("[0:0:0:0:0:0:0:1]", "[::1]", None, true),
            ("[::1]", "[::2]", None, false),
            ("[2001:db8::1]", "[2001:DB8::1]", None, true),
            ("[::ffff:10.1.2.3]", "10.1.2.3", None, true),
            // Path prefixes apply to plain HTTP only.
            ("example.com/ads/", "example.com", Some("/ads/banner.gif"), true),
            ("example.com/ads/", "www.example.com", Some("/ads/x"), true),
            ("example.com/ads/", "example.com", Some("/news/"), false),
            ("example.com/ads/", "example.com", Some("/ads"), false),
            ("example.com/ads/", "example.com", None, false),
            ("example.com/ads/", "notexample.com", Some("/ads/x"), false),
            ("example.com/ads/", "example.com", Some("/%61ds/x"), true),
            ("example.com/ads/", "example.com", Some("/x/../ads/y"), true),
            ("example.com/ads/", "example.com", Some("/./ads/y?q=1"), true),
            ("example.com/ads/", "example.com", Some("/ADS/x"), false),
            ("example.com/a%2fb", "example.com", Some("/a%2Fb"), true),
            ("example.com/a%2fb", "example.com", Some("/a/b"), false),
            ("example.com/?q", "example.com", Some("/?q=1"), true),
            ("=example.com/x", "www.example.com", Some("/x"), false),
            ("10.1.2.3/x", "10.1.2.3", Some("/x/y"), true),
            ("10.1.2.3/x", "10.1.2.3", None, false),
            ("example.com", "example.com", Some("/anything"), true),
        ];
        for &(rule, host, path, blocked) in cases {
            let rules = set(rule, None);
            let verdict = check(&rules, host, path);
            assert_eq!(
                !verdict.is_allowed(),
                blocked,
                "rule {rule:?}, host {host:?}, path {path:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn files_allow_comments_blank_lines_and_crlf() {
        let text = "# ads\r\n\r\nads.example.com\r\n  tracker.example.net   # trailing comment\r\n\t\r\n=exact.example.org\r\n# last line has no newline\r\n[::1]";
        let rules = set(text, None);
        assert_eq!(rules.len(), 4);
        assert!(!check(&rules, "ads.example.com", None).is_allowed());
        assert!(!check(&rules, "x.tracker.example.net", None).is_allowed());
        assert!(!check(&rules, "exact.example.org", None).is_allowed());
        assert!(!check(&rules, "[::1]", None).is_allowed());
        assert!(check(&rules, "example.com", None).is_allowed());
        // The line number of the rule is the one a text editor shows.
        match check(&rules, "tracker.example.net", None) {
            Verdict::Block(Refusal {
                reason: RefusalKind::Blocked { rule, line, file },
                ..
            }) => {
                assert_eq!(rule, "tracker.example.net");
                assert_eq!(line, 4);
                assert_eq!(file, Path::new("block.txt"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_rule() {
        let rules = set("\u{feff}example.com\n", None);
        assert!(!check(&rules, "example.com", None).is_allowed());
    }

    #[test]
    fn errors_carry_file_and_line() {
        let sources = [
            Source {
                kind: ListKind::Block,
                file: Path::new("good.txt"),
                text: b"example.com\n",
            },
            Source {
                kind: ListKind::Allow,
                file: Path::new("lists/allow.txt"),
                text: b"# fine\r\nok.example\r\nbad..example # oops\r\n",
            },
        ];
        let err = match RuleSet::from_sources(&sources) {
            Ok(_) => panic!("a bad line was accepted"),
            Err(e) => e,
        };
        assert_eq!(err.file, Path::new("lists/allow.txt"));
        assert_eq!(err.line, Some(3));
        let shown = err.to_string();
        assert!(
            shown.starts_with("lists/allow.txt:3: bad rule \"bad..example\""),
            "{shown}"
        );
        assert!(!shown.contains('\n'));

        let not_utf8 = [Source {
            kind: ListKind::Block,
            file: Path::new("b.txt"),
            text: b"a.example\n\xff\xfe\n",
        }];
        match RuleSet::from_sources(&not_utf8) {
            Err(e) => assert_eq!((e.line, e.message.as_str()), (Some(2), "not UTF-8 text")),
            Ok(_) => panic!("bytes that are not UTF-8 were accepted"),
        }
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let missing = std::env::temp_dir().join(format!("{}-no-such-rule-file.txt", crate::NAME));
        match RuleSet::load(std::slice::from_ref(&missing), &[]) {
            Err(e) => {
                assert_eq!(e.file, missing);
                assert_eq!(e.line, None);
            }
            Ok(_) => panic!("a missing file was accepted"),
        }
    }

    #[test]
    fn block_wins_over_allow() {
        let rules = set("ads.example.com\n", Some("example.com\n"));
        assert!(rules.allow_list_mode());
        assert!(check(&rules, "www.example.com", None).is_allowed());
        assert!(check(&rules, "example.com", None).is_allowed());
        match check(&rules, "x.ads.example.com", None) {
            Verdict::Block(r) => {
                assert!(matches!(r.reason, RefusalKind::Blocked { line: 1, .. }))
            }
            Verdict::Allow => panic!("block rule lost to the allow rule"),
        }
    }

    #[test]
    fn allow_list_mode_refuses_everything_else() {
        let rules = set(
            "",
            Some("example.com\n=docs.rs\n10.0.0.1\nexample.net/public/\n"),
        );
        assert!(check(&rules, "a.example.com", None).is_allowed());
        assert!(check(&rules, "docs.rs", None).is_allowed());
        assert!(check(&rules, "10.0.0.1", None).is_allowed());
        assert!(check(&rules, "example.net", Some("/public/a")).is_allowed());
        for (host, path) in [
            ("notexample.com", None),
            ("www.docs.rs", None),
            ("10.0.0.2", None),
            ("example.net", Some("/private")),
            // The path of a tunnel is unknown, so a path rule cannot allow it.
            ("example.net", None),
        ] {
            match check(&rules, host, path) {
                Verdict::Block(r) => {
                    assert_eq!(
                        r.reason,
                        RefusalKind::NotAllowed {
                            allow_files: vec![PathBuf::from("allow.txt")]
                        }
                    );
                    assert!(r.to_string().contains("not on the allow list (allow.txt)"));
                }
                Verdict::Allow => panic!("{host} {path:?} was allowed"),
            }
        }
    }

    #[test]
    fn an_empty_allow_file_allows_nothing() {
        let rules = set("", Some("# nothing yet\n"));
        assert!(!check(&rules, "example.com", None).is_allowed());
        assert!(check(&RuleSet::empty(), "example.com", None).is_allowed());
    }

    #[test]
    fn bodies_name_rule_and_place_and_escape() {
        let rules = set("# c\nexample.com/<b>\n", None);
        let refusal = match check(&rules, "example.com", Some("/<b>x")) {
            Verdict::Block(r) => r,
            Verdict::Allow => panic!("not blocked"),
        };
        let text = refusal.text_body();
        assert!(text.contains("\"example.com/<b>\""), "{text}");
        assert!(text.contains("block.txt:2"), "{text}");
        assert!(text.ends_with('\n'));
        let html = refusal.html_body();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("example.com/&lt;b&gt;"), "{html}");
        assert!(html.contains("&quot;"));
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("block.txt:2"));
    }

    #[test]
    fn many_rules_are_looked_up_not_scanned() {
        let text: String = (0..5000)
            .map(|i| format!("host{i}.example.com\n"))
            .collect();
        let rules = set(&text, None);
        assert_eq!(rules.len(), 5000);
        assert!(!check(&rules, "a.host4999.example.com", None).is_allowed());
        assert!(check(&rules, "host5000.example.com", None).is_allowed());
        // One bucket per name: a lookup touches only the buckets of the
        // host's own suffixes.
        assert_eq!(rules.block.by_name.len(), 5000);
    }

    #[test]
    fn diff_compares_canonical_rules() {
        let old = set("example.com\nads.example.net\n", None);
        let new = set("EXAMPLE.com.\ntracker.example.org\n", Some("docs.rs\n"));
        let diff = old.diff(&new);
        assert_eq!(diff.added, ["block tracker.example.org", "allow docs.rs"]);
        assert_eq!(diff.removed, ["block ads.example.net"]);
        assert_eq!(diff.total, 3);
        assert!(
            old.diff(&set("example.com\n# x\nads.example.net", None))
                .is_empty()
        );
    }
}
