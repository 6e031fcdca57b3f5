// Starter code for stage 5, exercise 1 (see exercises/stage5/HINTS.md).
// With `--features starter-stage5` this file replaces src/filter/rules.rs.
// Left for you: label-aligned matching (`HostPattern::accepts` and
// `List::find`). Everything else is the reference code.
//! Rule files and the decision "may a client reach this host?".
//!
//! A rule names a host the way DNS does: a sequence of labels read from the
//! right (RFC 1034 §3.1). So we compare whole labels, never substrings: the rule
//! `example.com` covers `example.com` and `www.example.com`, but not
//! `notexample.com`, and certainly not a URL that merely contains the word.
//! Host names are case-insensitive (RFC 4343, RFC 9110 §4.2.3) and a trailing
//! dot only marks the name as absolute, so both are normalised away. Address
//! literals are compared as parsed addresses, IPv6 ones written in brackets as
//! in a URL (RFC 3986 §3.2.2). A rule may add a path prefix; paths are compared
//! after the syntax-based normalisation of RFC 3986 §6.2.2, so `/%61ds/` and
//! `/x/../ads/` do not slip past `/ads/`.
//!
//! A [`RuleSet`] is immutable once built. Live reloading (see `live.rs`) builds
//! a new one and swaps it in, so a check never sees half a file.

// Until you write them, some arguments and a method go unused.
#![allow(unused_variables, dead_code)]

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

// ANCHOR: host_pattern
/// The host part of a rule, already normalised (lower case, no trailing dot).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `example.com`: the name itself and every name below it.
    Domain(String),
    /// `=example.com`: that name only.
    Exact(String),
    /// `*.example.com`: names below it, not the name itself.
    Subdomains(String),
    /// `10.1.2.3` or `[::1]`: that address only.
    Address(IpAddr),
}

impl HostPattern {
    /// Whether the pattern accepts a host when its name was found as a
    /// label-aligned suffix of that host; `whole` means the suffix was the
    /// entire host.
    fn accepts(&self, whole: bool) -> bool {
        // TODO(exercise 1a): `Domain` and `Address` accept both; `Exact`
        // only the whole host; `Subdomains` only a proper suffix.
        todo!("stage 5, exercise 1a: HostPattern::accepts")
    }
}
// ANCHOR_END: host_pattern

/// A parsed rule: which hosts, and optionally which paths on them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    pub host: HostPattern,
    /// A normalised path prefix, starting with `/`. Only plain HTTP requests
    /// have a path; a CONNECT tunnel hides it, so such rules never match one.
    pub path: Option<String>,
}

/// The canonical spelling: two rules that mean the same print the same.
impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Domain(name) => f.write_str(name)?,
            HostPattern::Exact(name) => write!(f, "={name}")?,
            HostPattern::Subdomains(name) => write!(f, "*.{name}")?,
            HostPattern::Address(IpAddr::V4(a)) => write!(f, "{a}")?,
            HostPattern::Address(IpAddr::V6(a)) => write!(f, "[{a}]")?,
        }
        match &self.path {
            Some(path) => f.write_str(path),
            None => Ok(()),
        }
    }
}

/// The part of a rule-file line that is the rule: everything before `#`,
/// without surrounding whitespace. `trim` also removes the `\r` that a file
/// saved with CRLF line endings leaves on every line.
pub(crate) fn rule_text(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
    .trim()
}

// ANCHOR: parse_rule
/// Parses one rule (already stripped of comments and whitespace).
/// The error says what is wrong, without the file and line, which the
/// caller knows.
pub fn parse_rule(text: &str) -> Result<Pattern, String> {
    if text.is_empty() {
        return Err("empty rule".into());
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{c:?} inside the rule (one rule per line)"));
    }
    let (host, path) = match text.find('/') {
        Some(i) => (&text[..i], Some(parse_path(&text[i..])?)),
        None => (text, None),
    };
    let host = if let Some(rest) = host.strip_prefix("*.") {
        HostPattern::Subdomains(parse_name(rest)?)
    } else if let Some(rest) = host.strip_prefix('=') {
        match parse_address(rest)? {
            Some(ip) => HostPattern::Address(ip),
            None => HostPattern::Exact(parse_name(rest)?),
        }
    } else {
        match parse_address(host)? {
            Some(ip) => HostPattern::Address(ip),
            None => HostPattern::Domain(parse_name(host)?),
        }
    };
    Ok(Pattern { host, path })
}
// ANCHOR_END: parse_rule

/// An address literal, if the text is one. `Ok(None)` means "try it as a name".
fn parse_address(text: &str) -> Result<Option<IpAddr>, String> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("'[' without a closing ']'")?;
        let addr: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("[{inner}] is not an IPv6 address"))?;
        return Ok(Some(IpAddr::V6(addr).to_canonical()));
    }
    if text.contains(':') {
        return Err(if text.parse::<Ipv6Addr>().is_ok() {
            format!("write IPv6 addresses in brackets, like [{text}]")
        } else {
            "':' in a host name (rules have no port)".into()
        });
    }
    let text = text.strip_suffix('.').unwrap_or(text);
    Ok(text.parse::<Ipv4Addr>().ok().map(IpAddr::V4))
}

/// A host name: non-empty labels of letters, digits, `-` and `_`.
/// (`_` is not legal in a host name, but real names carry it and rejecting
/// it would only make a rule impossible to write.)
fn parse_name(text: &str) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() {
        return Err("no host name".into());
    }
    if !name.is_ascii() {
        return Err("non-ASCII name: write it in its xn-- (punycode) form".into());
    }
    if name.len() > 253 {
        return Err("name longer than 253 characters".into());
    }
    let name = name.to_ascii_lowercase();
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("empty label in {name:?}"));
        }
        if label.len() > 63 {
            return Err(format!("label longer than 63 characters in {name:?}"));
        }
        let bad = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        match bad {
            Some('*') => return Err("'*' may only start a rule, as in *.example.com".into()),
            Some(c) => return Err(format!("{c:?} is not allowed in a host name")),
            None => {}
        }
    }
    if ends_in_number(&name) {
        return Err(format!(
            "{name:?} ends in a number but is not an IPv4 address like 10.1.2.3"
        ));
    }
    Ok(name)
}

/// A path prefix from a rule: visible ASCII, well-formed `%XX` escapes.
fn parse_path(path: &str) -> Result<String, String> {
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("{c:?} in the path: percent-encode it"));
    }
    let bytes = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        if bytes.get(i + 1..i + 3).and_then(hex_pair).is_none() {
            return Err("'%' not followed by two hex digits in the path".into());
        }
    }
    Ok(normalize_path(path).into_owned())
}

/// WHATWG URL's test for "this host must be an IPv4 address": the last label
/// is a number (decimal, or hex with `0x`).
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.is_empty() {
        return false;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

// ANCHOR: loose_ipv4
/// Reads an IPv4 address the way `inet_aton` (and so the resolver the proxy
/// connects through) does: one to four parts, each decimal, octal (`0` prefix)
/// or hex (`0x`), the last part filling the remaining bytes. `167838211`,
/// `0xa.1.2.3` and `10.1.515` all name 10.1.2.3; a filter that only knows the
/// dotted-quad spelling would let them through.
fn parse_ipv4_loose(name: &str) -> Option<Ipv4Addr> {
    let parts = name
        .split('.')
        .map(parse_ipv4_part)
        .collect::<Option<Vec<u64>>>()?;
    let (&last, init) = parts.split_last()?;
    if init.len() > 3 || init.iter().any(|&n| n > 255) {
        return None;
    }
    if last >= 1u64 << (8 * (4 - init.len())) {
        return None;
    }
    let high = init
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, &n)| acc | (n << (8 * (3 - i))));
    u32::try_from(high | last).ok().map(Ipv4Addr::from)
}
// ANCHOR_END: loose_ipv4

fn parse_ipv4_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or(part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if part.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if digits.is_empty() {
        return Some(0); // a bare "0x" is zero, as inet_aton reads it
    }
    u64::from_str_radix(digits, radix).ok()
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    match pair {
        [hi, lo] => {
            let hi = char::from(*hi).to_digit(16)?;
            let lo = char::from(*lo).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        }
        _ => None,
    }
}

// ANCHOR: normalize_path
/// Puts a request path into the form rules are written in (RFC 3986 §6.2.2):
/// escapes of unreserved characters decoded (`%61` is `a`), other escapes in
/// upper case, and `.`/`..` segments resolved. The query, if any, is kept as
/// sent. Anything that is not an absolute path (`*`, say) is returned as is.
pub fn normalize_path(target: &str) -> Cow<'_, str> {
    if !target.starts_with('/') {
        return Cow::Borrowed(target);
    }
    let (path, query) = match target.find('?') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    let decoded = if path.contains('%') {
        Cow::Owned(normalize_escapes(path))
    } else {
        Cow::Borrowed(path)
    };
    let resolved = if decoded.split('/').any(|s| s == "." || s == "..") {
        Cow::Owned(remove_dot_segments(&decoded))
    } else {
        decoded
    };
    match resolved {
        Cow::Borrowed(_) => Cow::Borrowed(target),
        Cow::Owned(mut path) => {
            path.push_str(query);
            Cow::Owned(path)
        }
    }
}
// ANCHOR_END: normalize_path

fn normalize_escapes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.as_bytes().get(i + 1..i + 3).and_then(hex_pair) {
            Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                out.push(char::from(b));
                rest = &rest[i + 3..];
            }
            Some(b) => {
                let _ = write!(out, "%{b:02X}");
                rest = &rest[i + 3..];
            }
            // A stray '%' is not an escape; keep it and move on.
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `/a/./b/../c` becomes `/a/c`; a path ending in a dot segment keeps its
/// trailing slash, as in RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, &segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => {
                out.push(other);
                continue;
            }
        }
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// A host from a request, in the form rules are stored in.
#[derive(Debug, PartialEq, Eq)]
enum Host {
    Name(String),
    Addr(IpAddr),
}

// ANCHOR: normalize_host
/// Normalises the host a client asked for. A `:port` suffix is dropped, so a
/// caller that passes a CONNECT authority or a Host header still gets the
/// right answer instead of a silent miss.
fn normalize_host(host: &str) -> Host {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let inner = rest.split(']').next().unwrap_or(rest);
        if let Ok(addr) = inner.parse::<Ipv6Addr>() {
            return Host::Addr(IpAddr::V6(addr).to_canonical());
        }
    }
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Host::Addr(addr.to_canonical());
    }
    let host = match host.split_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if ends_in_number(&name)
        && let Some(addr) = parse_ipv4_loose(&name)
    {
        return Host::Addr(IpAddr::V4(addr));
    }
    Host::Name(name)
}
// ANCHOR_END: normalize_host

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
    /// are `notexample.com` and `com`, never `example.com`.
    fn find(&self, host: &Host, path: Option<&str>) -> Option<&Rule> {
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
    // ANCHOR_END: find_rule
}

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

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// A block rule matched.
    Blocked {
        rule: String,
        file: PathBuf,
        line: usize,
    },
    /// Allow-list mode, and no allow rule matched. There is no rule to name,
    /// only the files that were searched.
    NotAllowed { allow_files: Vec<PathBuf> },
}

/// A refused request: the host as the client wrote it, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub host: String,
    pub reason: RefusalKind,
}

/// One line for the log, also the sentence in the 403 bodies.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            RefusalKind::Blocked { rule, file, line } => write!(
                f,
                "{} is blocked by the rule \"{rule}\" ({}:{line})",
                self.host,
                file.display()
            ),
            RefusalKind::NotAllowed { allow_files } => {
                write!(f, "{} is not on the allow list (", self.host)?;
                for (i, file) in allow_files.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", file.display())?;
                }
                f.write_str(")")
            }
        }
    }
}

// ANCHOR: refusal_bodies
impl Refusal {
    /// The 403 body for clients that did not ask for HTML.
    pub fn text_body(&self) -> String {
        format!("Forbidden by the proxy: {self}.\n")
    }

    /// The 403 body for browsers. Everything interpolated comes from the
    /// client or a rule file, so all of it is escaped.
    pub fn html_body(&self) -> String {
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <title>403 Forbidden</title></head>\n\
             <body><h1>403 Forbidden</h1>\n<p>{}.</p></body></html>\n",
            escape_html(&self.to_string())
        )
    }
}
// ANCHOR_END: refusal_bodies

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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
    /// Decides one request. `host` is the target host (a `:port` suffix is
    /// ignored); `path` is the origin-form path and query of a plain HTTP
    /// request, `None` for CONNECT, where the path is inside the tunnel.
    /// A block rule beats an allow rule: blocking is the more specific
    /// intent ("allow example.com, but not ads.example.com").
    pub fn check(&self, host: &str, path: Option<&str>) -> Verdict {
        let normalized = normalize_host(host);
        let path = path.map(normalize_path);
        let path = path.as_deref();
        if let Some(rule) = self.block.find(&normalized, path) {
            return Verdict::Block(Refusal {
                host: host.trim().to_string(),
                reason: RefusalKind::Blocked {
                    rule: rule.text.clone(),
                    file: rule.file.to_path_buf(),
                    line: rule.line,
                },
            });
        }
        if self.allow_list_mode() && self.allow.find(&normalized, path).is_none() {
            return Verdict::Block(Refusal {
                host: host.trim().to_string(),
                reason: RefusalKind::NotAllowed {
                    allow_files: self.allow_files.clone(),
                },
            });
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
            let verdict = rules.check(host, path);
            assert_eq!(
                !verdict.is_allowed(),
                blocked,
                "rule {rule:?}, host {host:?}, path {path:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn parse_errors_name_the_problem() {
        #[rustfmt::skip]
        let bad: &[(&str, &str)] = &[
            ("exa mple.com", "inside the rule"),
            ("example..com", "empty label"),
            (".example.com", "empty label"),
            ("*.", "no host name"),
            ("*", "may only start"),
            ("*example.com", "may only start"),
            ("www.*.example.com", "may only start"),
            ("*.*.example.com", "may only start"),
            ("=", "no host name"),
            ("ex!ample.com", "'!' is not allowed"),
            ("[::1", "closing"),
            ("[::g]", "not an IPv6 address"),
            ("::1", "brackets"),
            ("example.com:80", "no port"),
            ("300.1.2.3", "ends in a number"),
            ("010.1.2.3", "ends in a number"),
            ("*.10.1.2.3", "ends in a number"),
            ("bücher.de", "punycode"),
            ("example.com/a b", "inside the rule"),
            ("example.com/%zz", "two hex digits"),
            ("example.com/é", "percent-encode"),
            ("/ads/", "no host name"),
        ];
        for &(rule, expected) in bad {
            match parse_rule(rule) {
                Ok(p) => panic!("{rule:?} parsed as {p:?}"),
                Err(message) => assert!(
                    message.contains(expected),
                    "{rule:?}: {message:?} does not mention {expected:?}"
                ),
            }
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(parse_rule(&long_label).is_err());
    }

    #[test]
    fn canonical_form() {
        #[rustfmt::skip]
        let cases = [
            ("Example.COM.", "example.com"),
            ("=WWW.example.com", "=www.example.com"),
            ("*.Example.com", "*.example.com"),
            ("[0:0::1]", "[::1]"),
            ("=10.1.2.3", "10.1.2.3"),
            ("example.com/%7euser/./x/../y", "example.com/~user/y"),
            ("example.com/a%2fb", "example.com/a%2Fb"),
        ];
        for (rule, canonical) in cases {
            match parse_rule(rule) {
                Ok(p) => assert_eq!(p.to_string(), canonical, "{rule:?}"),
                Err(e) => panic!("{rule:?}: {e}"),
            }
        }
    }

    #[test]
    fn files_allow_comments_blank_lines_and_crlf() {
        let text = "# ads\r\n\r\nads.example.com\r\n  tracker.example.net   # trailing comment\r\n\t\r\n=exact.example.org\r\n# last line has no newline\r\n[::1]";
        let rules = set(text, None);
        assert_eq!(rules.len(), 4);
        assert!(!rules.check("ads.example.com", None).is_allowed());
        assert!(!rules.check("x.tracker.example.net", None).is_allowed());
        assert!(!rules.check("exact.example.org", None).is_allowed());
        assert!(!rules.check("[::1]", None).is_allowed());
        assert!(rules.check("example.com", None).is_allowed());
        // The line number of the rule is the one a text editor shows.
        match rules.check("tracker.example.net", None) {
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
        assert!(!rules.check("example.com", None).is_allowed());
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
        let missing = std::env::temp_dir().join("webproxy-no-such-rule-file.txt");
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
        assert!(rules.check("www.example.com", None).is_allowed());
        assert!(rules.check("example.com", None).is_allowed());
        match rules.check("x.ads.example.com", None) {
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
        assert!(rules.check("a.example.com", None).is_allowed());
        assert!(rules.check("docs.rs", None).is_allowed());
        assert!(rules.check("10.0.0.1", None).is_allowed());
        assert!(rules.check("example.net", Some("/public/a")).is_allowed());
        for (host, path) in [
            ("notexample.com", None),
            ("www.docs.rs", None),
            ("10.0.0.2", None),
            ("example.net", Some("/private")),
            // The path of a tunnel is unknown, so a path rule cannot allow it.
            ("example.net", None),
        ] {
            match rules.check(host, path) {
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
        assert!(!rules.check("example.com", None).is_allowed());
        assert!(RuleSet::empty().check("example.com", None).is_allowed());
    }

    #[test]
    fn bodies_name_rule_and_place_and_escape() {
        let rules = set("# c\nexample.com/<b>\n", None);
        let refusal = match rules.check("example.com", Some("/<b>x")) {
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
        assert!(!rules.check("a.host4999.example.com", None).is_allowed());
        assert!(rules.check("host5000.example.com", None).is_allowed());
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

    #[test]
    fn path_normalisation() {
        #[rustfmt::skip]
        let cases = [
            ("/a/b", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/..", "/"),
            ("/../../x", "/x"),
            ("/a//b", "/a//b"),
            ("/a/%2e%2E/x", "/x"),
            ("/%41%2e%2E/x", "/A../x"),
            ("/%7e/%2f/%zz%", "/~/%2F/%zz%"),
            ("/a/../b?x=/../y", "/b?x=/../y"),
            ("*", "*"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_path(input), expected, "{input:?}");
        }
    }

    #[test]
    fn loose_ipv4_spellings() {
        let cases = [
            ("10.1.2.3", Some([10, 1, 2, 3])),
            ("167838211", Some([10, 1, 2, 3])),
            ("0x0A010203", Some([10, 1, 2, 3])),
            ("10.66051", Some([10, 1, 2, 3])),
            ("0", Some([0, 0, 0, 0])),
            ("0x", Some([0, 0, 0, 0])),
            ("1.2.3.256", None),
            ("256.1.2.3", None),
            ("4294967296", None),
            ("1.2.3.4.5", None),
            ("08.1.2.3", None),
            ("1..2", None),
            ("+1.2.3.4", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_ipv4_loose(input),
                expected.map(Ipv4Addr::from),
                "{input}"
            );
        }
    }
}
