//! The rule syntax: what one line of a rule file means.
//!
//! A rule names a host the way DNS does: a sequence of labels read from the
//! right (RFC 1034 §3.1). `example.com` covers the name and every name below
//! it, `=example.com` the name only, `*.example.com` the names below it only;
//! an address literal (`10.1.2.3`, or IPv6 in brackets as in a URL, RFC 3986
//! §3.2.2) covers that address. Host names are case-insensitive (RFC 4343)
//! and a trailing dot only marks the name as absolute, so both are
//! normalised away as the rule is read. A rule may add a path prefix,
//! normalised as in RFC 3986 §6.2.2 (see [`super::path`]). A URL pasted
//! from a browser's address bar means its host and path.
//!
//! A bad rule is an error that says what is wrong ([`PatternError`]), never
//! a rule that quietly matches nothing. Every [`Pattern`] has one canonical
//! spelling (its `Display`), which is how edits and reloads compare rules.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::path::{hex_pair, normalize_path};
use crate::uri::ends_in_number;

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
// ANCHOR_END: host_pattern

// ANCHOR: accepts
impl HostPattern {
    /// Whether the pattern accepts a host when its name was found as a
    /// label-aligned suffix of that host; `whole` means the suffix was the
    /// entire host.
    #[cfg(not(feature = "ex-5-1"))]
    pub(super) fn accepts(&self, whole: bool) -> bool {
        match self {
            HostPattern::Domain(_) | HostPattern::Address(_) => true,
            HostPattern::Exact(_) => whole,
            HostPattern::Subdomains(_) => !whole,
        }
    }
}
// ANCHOR_END: accepts

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
pub fn parse_rule(text: &str) -> Result<Pattern, PatternError> {
    if text.is_empty() {
        return Err(PatternError::Empty);
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(PatternError::Blank(c));
    }
    // A URL only if `://` comes before the path: `ads.example/go?to=http://x`
    // is a path rule.
    if let Some((scheme, rest)) = text.split_once("://")
        && !scheme.contains('/')
    {
        return parse_rule(from_url(scheme, rest)?);
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

/// The rule a URL pasted from a browser means: `http://ads.example/x` is
/// `ads.example/x`, and `http://ads.example/` the whole host. An `https`
/// URL can only name a whole host: its path travels inside the tunnel,
/// where no rule sees it, so a path rule would never match. Anything else
/// is refused with the rule to write instead.
fn from_url<'a>(scheme: &str, rest: &'a str) -> Result<&'a str, PatternError> {
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return Err(PatternError::NoName);
    }
    let host = host.to_string();
    if authority.contains('@') {
        return Err(PatternError::Url(host));
    }
    let whole_host = path.is_empty() || path == "/";
    if scheme.eq_ignore_ascii_case("http") {
        return Ok(if whole_host { authority } else { rest });
    }
    if scheme.eq_ignore_ascii_case("https") {
        return match whole_host {
            true => Ok(authority),
            false => Err(PatternError::HttpsPath(host)),
        };
    }
    Err(PatternError::Url(host))
}

/// An address literal, if the text is one. `Ok(None)` means "try it as a name".
fn parse_address(text: &str) -> Result<Option<IpAddr>, PatternError> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(PatternError::UnclosedBracket)?;
        let addr: Ipv6Addr = inner
            .parse()
            .map_err(|_| PatternError::BadIpv6(inner.to_string()))?;
        return Ok(Some(IpAddr::V6(addr).to_canonical()));
    }
    if text.contains(':') {
        return Err(if text.parse::<Ipv6Addr>().is_ok() {
            PatternError::Ipv6WithoutBrackets(text.to_string())
        } else {
            PatternError::Port
        });
    }
    let text = text.strip_suffix('.').unwrap_or(text);
    Ok(text.parse::<Ipv4Addr>().ok().map(IpAddr::V4))
}

/// A host name: non-empty labels of letters, digits, `-` and `_`.
/// (`_` is not legal in a host name, but real names carry it and rejecting
/// it would only make a rule impossible to write.)
fn parse_name(text: &str) -> Result<String, PatternError> {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() {
        return Err(PatternError::NoName);
    }
    if !name.is_ascii() {
        return Err(PatternError::NotAscii);
    }
    if name.len() > 253 {
        return Err(PatternError::NameTooLong);
    }
    let name = name.to_ascii_lowercase();
    for label in name.split('.') {
        if label.is_empty() {
            return Err(PatternError::EmptyLabel(name.clone()));
        }
        if label.len() > 63 {
            return Err(PatternError::LabelTooLong(name.clone()));
        }
        let bad = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        match bad {
            Some('*') => return Err(PatternError::MisplacedStar),
            Some(c) => return Err(PatternError::BadChar(c)),
            None => {}
        }
    }
    if ends_in_number(&name) {
        return Err(PatternError::EndsInNumber(name));
    }
    Ok(name)
}

/// A path prefix from a rule: visible ASCII, well-formed `%XX` escapes.
fn parse_path(path: &str) -> Result<String, PatternError> {
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(PatternError::PathChar(c));
    }
    let bytes = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        if bytes.get(i + 1..i + 3).and_then(hex_pair).is_none() {
            return Err(PatternError::BadEscape);
        }
    }
    Ok(normalize_path(path).into_owned())
}

/// Why a rule does not parse. The message names the problem, not the file
/// and line, which the caller knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternError {
    /// Nothing left once the comment and blanks are gone.
    Empty,
    /// Whitespace or a control character inside the rule.
    Blank(char),
    /// `[` without its `]`.
    UnclosedBracket,
    /// Brackets around something that is not an IPv6 address.
    BadIpv6(String),
    /// An IPv6 address without its brackets.
    Ipv6WithoutBrackets(String),
    /// A `:` in a name: rules have no port.
    Port,
    /// No name at all (`*.`, `=`, a rule that starts with `/`).
    NoName,
    /// A name outside ASCII, which needs its punycode form.
    NotAscii,
    /// A name longer than DNS allows (RFC 1035 §2.3.4).
    NameTooLong,
    /// Two dots in a row, or a dot at the start.
    EmptyLabel(String),
    /// A label longer than DNS allows (RFC 1035 §2.3.4).
    LabelTooLong(String),
    /// `*` anywhere but at the start of `*.name`.
    MisplacedStar,
    /// A character that no host name has.
    BadChar(char),
    /// A name whose last label is a number but which is no IPv4 address:
    /// the resolver would read it as one (see [`crate::uri::ends_in_number`]).
    EndsInNumber(String),
    /// A character in the path that must be percent-encoded.
    PathChar(char),
    /// A `%` without two hex digits after it.
    BadEscape,
    /// A URL this syntax has no rule for (another scheme, user information):
    /// the host it names, for the message.
    Url(String),
    /// An `https` URL with a path, which the proxy never sees.
    HttpsPath(String),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Empty => f.write_str("empty rule"),
            PatternError::Blank(c) => write!(f, "{c:?} inside the rule (one rule per line)"),
            PatternError::UnclosedBracket => f.write_str("'[' without a closing ']'"),
            PatternError::BadIpv6(inner) => write!(f, "[{inner}] is not an IPv6 address"),
            PatternError::Ipv6WithoutBrackets(text) => {
                write!(f, "write IPv6 addresses in brackets, like [{text}]")
            }
            PatternError::Port => f.write_str("':' in a host name (rules have no port)"),
            PatternError::NoName => f.write_str("no host name"),
            PatternError::NotAscii => {
                f.write_str("non-ASCII name: write it in its xn-- (punycode) form")
            }
            PatternError::NameTooLong => f.write_str("name longer than 253 characters"),
            PatternError::EmptyLabel(name) => write!(f, "empty label in {name:?}"),
            PatternError::LabelTooLong(name) => {
                write!(f, "label longer than 63 characters in {name:?}")
            }
            PatternError::MisplacedStar => {
                f.write_str("'*' may only start a rule, as in *.example.com")
            }
            PatternError::BadChar(c) => write!(f, "{c:?} is not allowed in a host name"),
            PatternError::EndsInNumber(name) => write!(
                f,
                "{name:?} ends in a number but is not an IPv4 address like 10.1.2.3"
            ),
            PatternError::PathChar(c) => write!(f, "{c:?} in the path: percent-encode it"),
            PatternError::BadEscape => {
                f.write_str("'%' not followed by two hex digits in the path")
            }
            PatternError::Url(host) => write!(
                f,
                "a rule is a host name, optionally with a path, not a URL: write {host} \
                 or {host}/path"
            ),
            PatternError::HttpsPath(host) => write!(
                f,
                "the path of an https:// URL is inside the encrypted tunnel, where the \
                 proxy cannot see it: write {host} to block the whole host"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("https://ads.example/x", "write ads.example to block the whole host"),
            ("ftp://ads.example/x", "not a URL: write ads.example or ads.example/path"),
            ("http://u@ads.example/", "not a URL"),
            ("http://ads.example:8080/x", "no port"),
            ("http://", "no host name"),
        ];
        for &(rule, expected) in bad {
            match parse_rule(rule) {
                Ok(p) => panic!("{rule:?} parsed as {p:?}"),
                Err(error) => assert!(
                    error.to_string().contains(expected),
                    "{rule:?}: {error:?} does not mention {expected:?}"
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
            // URLs pasted from a browser.
            ("http://Ads.Example/x/../y?z", "ads.example/y?z"),
            ("HTTP://ads.example/", "ads.example"),
            ("http://ads.example", "ads.example"),
            ("https://ads.example/", "ads.example"),
            ("http://[::1]/x", "[::1]/x"),
            // `://` in a path is not a URL. Found by the rules_file fuzz
            // target: a canonical form that did not parse back.
            ("ads.example/go?to=http://x", "ads.example/go?to=http://x"),
            ("a.example/b/../.://x", "a.example/.://x"),
            ("http://ads.example/go?to=http://x", "ads.example/go?to=http://x"),
        ];
        for (rule, canonical) in cases {
            match parse_rule(rule) {
                Ok(p) => {
                    assert_eq!(p.to_string(), canonical, "{rule:?}");
                    assert_eq!(parse_rule(canonical), Ok(p), "{canonical:?} parses back");
                }
                Err(e) => panic!("{rule:?}: {e}"),
            }
        }
    }

    #[test]
    fn errors_can_be_told_apart() {
        assert_eq!(parse_rule(""), Err(PatternError::Empty));
        assert_eq!(parse_rule("example.com:80"), Err(PatternError::Port));
        assert_eq!(
            parse_rule("a..b"),
            Err(PatternError::EmptyLabel("a..b".into()))
        );
        assert_eq!(parse_rule("/x"), Err(PatternError::NoName));
    }
}
