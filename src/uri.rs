//! Request targets: where does the client want to go?
//!
//! A client talking to a proxy names the whole URI in the request line, the
//! absolute-form `GET http://host:port/path?query HTTP/1.1` (RFC 9112 §3.2.2).
//! A tunnel request names only `host:port`, the authority-form (§3.2.3). A
//! client that thinks it is talking to the origin sends just `/path`, the
//! origin-form (§3.2.1): a forward proxy cannot serve that, because it does
//! not say which server to ask.
//!
//! The host may be a registered name, an IPv4 address or an IPv6 address in
//! brackets (RFC 3986 §3.2.2); the port defaults to 80 for `http`. The
//! `Host` field must name a host in the same way, even where the target
//! overrides it (RFC 9112 §3.2). The path
//! and query are forwarded byte for byte, never decoded or rewritten
//! (RFC 9110 §7.7): two URIs that differ by one escaped byte can name two
//! different resources.
//!
//! Hosts are parsed and normalised here and nowhere else. Comparing hosts
//! (the domain rules of stage 5) needs one canonical spelling of each:
//! [`Host::canonical`] lower-cases names and drops the trailing dot that only
//! marks a name as absolute (RFC 1034 §3.1, RFC 4343), reads the loose IPv4
//! spellings the system resolver accepts (`167838211`, `0xa.1.2.3`), and
//! turns IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2) into the IPv4
//! address they carry. The target itself is still forwarded as sent.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::HttpError;
use crate::message::RequestHead;

/// A host as it appears in a URI authority.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A registered name, lower-cased (host names are case-insensitive,
    /// RFC 3986 §3.2.2).
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    /// The form used in a URI or a Host header: IPv6 goes in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::V4(ip) => write!(f, "{ip}"),
            Host::V6(ip) => write!(f, "[{ip}]"),
        }
    }
}

impl Host {
    /// The form the resolver wants: no brackets.
    pub fn to_lookup(&self) -> String {
        match self {
            Host::Name(name) => name.clone(),
            Host::V4(ip) => ip.to_string(),
            Host::V6(ip) => ip.to_string(),
        }
    }
}

// ANCHOR: normalize_host
/// Normalises a host as a client or a header may write it: a `:port` suffix
/// is dropped and IPv6 may come with or without brackets, so a caller that
/// passes a CONNECT authority or a Host header still gets the right answer
/// instead of a silent miss. The result is [`Host::canonical`].
pub fn normalize_host(host: &str) -> Host {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let inner = rest.split(']').next().unwrap_or(rest);
        if let Ok(addr) = inner.parse::<Ipv6Addr>() {
            return Host::from_ip(IpAddr::V6(addr));
        }
    }
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Host::from_ip(addr);
    }
    let host = match host.split_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    Host::canonical_name(host)
}

impl Host {
    /// The one spelling of this host that comparisons use: a name in lower
    /// case without a trailing dot, an IPv4 address however the name spelled
    /// it, an IPv4-mapped IPv6 address as the IPv4 address it carries.
    pub fn canonical(&self) -> Host {
        match self {
            Host::Name(name) => Host::canonical_name(name),
            Host::V4(addr) => Host::V4(*addr),
            Host::V6(addr) => Host::from_ip(IpAddr::V6(*addr)),
        }
    }

    /// The address, if this host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::V4(addr) => Some(IpAddr::V4(*addr)),
            Host::V6(addr) => Some(IpAddr::V6(*addr)),
        }
    }

    fn from_ip(addr: IpAddr) -> Host {
        match addr.to_canonical() {
            IpAddr::V4(addr) => Host::V4(addr),
            IpAddr::V6(addr) => Host::V6(addr),
        }
    }

    fn canonical_name(name: &str) -> Host {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if ends_in_number(&name)
            && let Some(addr) = parse_ipv4_loose(&name)
        {
            return Host::V4(addr);
        }
        Host::Name(name)
    }
}
// ANCHOR_END: normalize_host

/// WHATWG URL's test for "this host must be an IPv4 address": the last label
/// is a number (decimal, or hex with `0x`).
pub fn ends_in_number(name: &str) -> bool {
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
pub fn parse_ipv4_loose(name: &str) -> Option<Ipv4Addr> {
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

/// `host:port`, as in authority-form or the authority of an `http` URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Authority {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Authority {
    /// The value for a Host header: the port is left out when it is the
    /// default, as clients do (RFC 9110 §7.2).
    pub fn host_header(&self) -> String {
        if self.port == 80 {
            self.host.to_string()
        } else {
            self.to_string()
        }
    }
}

/// An `http` URI in absolute-form, split into what the proxy needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbsoluteUri {
    pub authority: Authority,
    /// Path and query, exactly as sent; `/` when the URI had no path, or
    /// `*` for an OPTIONS request about the whole server (see
    /// [`proxy_target`]). This is the request target sent upstream.
    pub path_and_query: String,
}

impl fmt::Display for AbsoluteUri {
    /// The normalised URI: lower-cased host and an explicit port. The cache
    /// uses this as its key, so `http://A.test/` and `http://a.test:80/`
    /// land in the same place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path_and_query)
    }
}

impl AbsoluteUri {
    /// The path without the query, for path-prefix rules.
    pub fn path(&self) -> &str {
        match self.path_and_query.find('?') {
            Some(i) => &self.path_and_query[..i],
            None => &self.path_and_query,
        }
    }
}

/// The body of the 400 we send to a client that used a proxy like a server.
pub const NOT_A_PROXY_REQUEST: &str = "this is a proxy: send the full URL in the request line, \
as in `GET http://example.test/ HTTP/1.1`; with curl, use `curl -x http://PROXY:PORT http://example.test/`";

// ANCHOR: proxy_target
/// Finds where a proxy request wants to go. With an absolute-form target
/// the target wins, and Host is replaced when the request is forwarded; it
/// must still be a valid Host field ([`check_host_field`]).
pub fn proxy_target(request: &RequestHead) -> Result<AbsoluteUri, HttpError> {
    check_host_field(request)?;
    if request.target.starts_with('/') || request.target == "*" {
        return Err(HttpError::bad_request(NOT_A_PROXY_REQUEST));
    }
    let mut uri = parse_absolute(&request.target)?;
    // RFC 9112 §3.2.4: `OPTIONS http://a.test` (empty path, no query)
    // asks about the server itself, and the last proxy sends it on as
    // `OPTIONS *`. `http://a.test/` asks about the resource `/`.
    if request.method == "OPTIONS" && names_only_the_server(&request.target) {
        uri.path_and_query = "*".to_string();
    }
    Ok(uri)
}
// ANCHOR_END: proxy_target

/// Does an absolute-form target end with its authority (a fragment aside),
/// with neither a path nor a query?
fn names_only_the_server(target: &str) -> bool {
    let rest = target.split_once("://").map_or("", |(_, rest)| rest);
    rest.find(['/', '?', '#'])
        .is_none_or(|end| rest[end..].starts_with('#'))
}

// ANCHOR: check_host_field
/// RFC 9112 §3.2: a request needs exactly one Host field (an HTTP/1.0 one
/// may have none), and its value must be `host [ ":" port ]`. Anything else
/// is a 400. The value does not decide where the request goes, but a server
/// behind us, or a log reader, may trust it: `Host: exa mple` must not pass.
pub fn check_host_field(request: &RequestHead) -> Result<(), HttpError> {
    match request.headers.count("Host") {
        0 if request.minor_version >= 1 => Err(HttpError::bad_request(
            "HTTP/1.1 request without a Host header",
        )),
        0 => Ok(()),
        1 => match request.headers.get("Host") {
            Some(value) if !is_host_field(value) => Err(HttpError::bad_request(format!(
                "invalid Host header {:?}",
                String::from_utf8_lossy(value)
            ))),
            _ => Ok(()),
        },
        _ => Err(HttpError::bad_request(
            "request has more than one Host header",
        )),
    }
}

/// Is `value` a `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2)?
/// Empty is allowed: it is what a client sends for a URI without an
/// authority. The port is digits, and may be empty.
fn is_host_field(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']').is_some_and(|(inside, after)| {
            inside.parse::<Ipv6Addr>().is_ok()
                && (after.is_empty() || after.strip_prefix(':').is_some_and(digits))
        });
    }
    let host = match text.rsplit_once(':') {
        Some((host, port)) if digits(port) => host,
        Some(_) => return false,
        None => text,
    };
    host.chars().all(is_reg_name_char)
}
// ANCHOR_END: check_host_field

/// The characters of a reg-name (RFC 3986 §3.2.2): unreserved, pct-encoded
/// and sub-delims. An IPv4 address is made of them too.
fn is_reg_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=".contains(c)
}

// ANCHOR: parse_absolute
/// Parses an absolute-form target such as `http://a.test:8080/x?y`.
#[cfg(not(feature = "ex-1-1"))]
pub fn parse_absolute(target: &str) -> Result<AbsoluteUri, HttpError> {
    let Some((scheme, rest)) = target.split_once("://") else {
        return Err(HttpError::bad_request(NOT_A_PROXY_REQUEST));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(HttpError::bad_request(format!(
            "only http:// URLs can be proxied this way (got {scheme}://); \
             https goes through CONNECT"
        )));
    }
    // The authority ends where the path, the query or a fragment begins.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = parse_authority(&rest[..end], 80)?;
    let mut path_and_query = &rest[end..];
    // A fragment is for the client's eyes only and must not be sent
    // (RFC 9110 §4.2.5); clients should not send one, but some do.
    if let Some(hash) = path_and_query.find('#') {
        path_and_query = &path_and_query[..hash];
    }
    let path_and_query = if path_and_query.starts_with('/') {
        path_and_query.to_string()
    } else {
        // `http://a.test` or `http://a.test?q`: the path is empty, and an
        // empty path is sent as `/` (RFC 9112 §3.2.1).
        format!("/{path_and_query}")
    };
    Ok(AbsoluteUri {
        authority,
        path_and_query,
    })
}
// ANCHOR_END: parse_absolute

// ANCHOR: exercise_wiring
// Exercise 1.1: with its feature, the student's `parse_absolute` replaces
// the one above.
#[cfg(feature = "ex-1-1")]
#[path = "../exercises/stage1/parse_absolute.rs"]
mod ex_1_1;
#[cfg(feature = "ex-1-1")]
pub use ex_1_1::parse_absolute;
// ANCHOR_END: exercise_wiring

// ANCHOR: authority_form
/// Parses the authority-form of a CONNECT target (RFC 9112 §3.2.3):
/// `host:port`, where the port is required, since no scheme implies one.
pub fn parse_authority_form(target: &str) -> Result<Authority, HttpError> {
    if !target.contains(':') || target.ends_with(':') || target.ends_with(']') {
        return Err(HttpError::bad_request(format!(
            "CONNECT needs host:port, got {target:?}"
        )));
    }
    parse_authority(target, 0)
}
// ANCHOR_END: authority_form

fn parse_authority(text: &str, default_port: u16) -> Result<Authority, HttpError> {
    let bad = |why: &str| HttpError::bad_request(format!("bad authority {text:?}: {why}"));
    if text.contains('@') {
        // RFC 9110 §4.2.4: userinfo in an http URI is deprecated and a
        // common phishing trick.
        return Err(bad("user information is not allowed"));
    }
    let (host_text, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(bad("missing ]"));
        };
        let ip: Ipv6Addr = inside.parse().map_err(|_| bad("invalid IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
        };
        return Ok(Authority {
            host: Host::V6(ip),
            port: parse_port(port, default_port).ok_or_else(|| bad("invalid port"))?,
        });
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = parse_port(port_text, default_port).ok_or_else(|| bad("invalid port"))?;
    if host_text.is_empty() {
        return Err(bad("empty host"));
    }
    if let Ok(ip) = host_text.parse::<Ipv4Addr>() {
        return Ok(Authority {
            host: Host::V4(ip),
            port,
        });
    }
    // reg-name (RFC 3986 §3.2.2): anything else here is either an attack
    // or a typo.
    if !host_text.chars().all(is_reg_name_char) {
        return Err(bad("invalid character in host"));
    }
    Ok(Authority {
        host: Host::Name(host_text.to_ascii_lowercase()),
        port,
    })
}

/// An empty or missing port means the default; otherwise 1 to 65535.
fn parse_port(text: Option<&str>, default_port: u16) -> Option<u16> {
    match text {
        None | Some("") if default_port != 0 => Some(default_port),
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().filter(|&n| n != 0)
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_forms() {
        let cases = [
            ("http://a.test/x?y", "a.test", 80, "/x?y"),
            (
                "HTTP://A.Test:8080/P%41th?Q=1",
                "a.test",
                8080,
                "/P%41th?Q=1",
            ),
            ("http://a.test", "a.test", 80, "/"),
            ("http://a.test?q=1", "a.test", 80, "/?q=1"),
            ("http://a.test:/x", "a.test", 80, "/x"),
            ("http://10.0.0.1:81/", "10.0.0.1", 81, "/"),
            ("http://[::1]:8080/v6", "[::1]", 8080, "/v6"),
            ("http://[::1]/v6", "[::1]", 80, "/v6"),
            ("http://a.test/x#frag", "a.test", 80, "/x"),
        ];
        for (target, host, port, path) in cases {
            let uri = parse_absolute(target).unwrap_or_else(|e| panic!("{target}: {e}"));
            assert_eq!(uri.authority.host.to_string(), host, "{target}");
            assert_eq!(uri.authority.port, port, "{target}");
            assert_eq!(uri.path_and_query, path, "{target}");
        }
    }

    #[test]
    fn normalised_form_has_explicit_port() {
        let uri = parse_absolute("http://A.test/x?b").unwrap();
        assert_eq!(uri.to_string(), "http://a.test:80/x?b");
        assert_eq!(uri.authority.host_header(), "a.test");
        assert_eq!(uri.path(), "/x");
    }

    #[test]
    fn rejects_bad_targets() {
        for target in [
            "/just/a/path",
            "https://a.test/",
            "ftp://a.test/",
            "http:///x",
            "http://user:pw@a.test/",
            "http://a.test:0/",
            "http://a.test:65536/",
            "http://a.test:8o/",
            "http://[::1/",
            "http://[zz]/",
            "http://a b/",
            "http://a\"b/",
        ] {
            assert_eq!(parse_absolute(target).unwrap_err().status, 400, "{target}");
        }
    }

    #[test]
    fn authority_form_requires_a_port() {
        let a = parse_authority_form("Secure.Test:443").unwrap();
        assert_eq!(a.to_string(), "secure.test:443");
        assert_eq!(parse_authority_form("[::1]:8443").unwrap().port, 8443);
        for bad in ["secure.test", "secure.test:", "[::1]", ":443", "a.test:x"] {
            assert!(parse_authority_form(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_are_normalised_for_comparison() {
        let name = |n: &str| Host::Name(n.to_string());
        let v4 = |a: [u8; 4]| Host::V4(Ipv4Addr::from(a));
        let cases = [
            ("Example.COM.", name("example.com")),
            ("example.com:443", name("example.com")),
            (" www.example.com ", name("www.example.com")),
            ("10.1.2.3:80", v4([10, 1, 2, 3])),
            ("167838211", v4([10, 1, 2, 3])),
            ("0xa.1.2.3", v4([10, 1, 2, 3])),
            ("10.1.515.", v4([10, 1, 2, 3])),
            ("[::ffff:10.1.2.3]", v4([10, 1, 2, 3])),
            ("::1", Host::V6(Ipv6Addr::LOCALHOST)),
            ("[0:0::1]:8080", Host::V6(Ipv6Addr::LOCALHOST)),
            // Ends in a number but is no address: stays a name (and is
            // refused by a rule file, see filter::patterns).
            ("300.1.2.3", name("300.1.2.3")),
        ];
        for (text, expected) in cases {
            assert_eq!(normalize_host(text), expected, "{text:?}");
        }
        // A parsed target becomes the same canonical host.
        let uri = parse_absolute("http://0xA.1.2.3./x").unwrap();
        assert_eq!(uri.authority.host.canonical(), v4([10, 1, 2, 3]));
        assert_eq!(uri.authority.host.to_string(), "0xa.1.2.3.");
        assert_eq!(v4([10, 1, 2, 3]).ip(), Some(IpAddr::from([10, 1, 2, 3])));
        assert_eq!(name("a.test").ip(), None);
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
