//! Request paths in the one spelling that path rules compare.
//!
//! A rule such as `example.com/ads/` must not be bypassed by writing the
//! same path another way: `/%61ds/` (an escaped `a`) and `/x/../ads/` (a dot
//! segment) name the same resource. RFC 3986 §6.2.2 lists the normalisations
//! that never change what a URI means: decode escapes of unreserved
//! characters, write the remaining escapes in upper case, and remove dot
//! segments (§5.2.4). Rule paths and request paths both go through
//! [`normalize_path`] before they are compared. The request itself is still
//! forwarded as sent (RFC 9110 §7.7).

use std::borrow::Cow;
use std::fmt::Write as _;

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

/// The byte that a `%XX` escape stands for, if `pair` is two hex digits.
pub(super) fn hex_pair(pair: &[u8]) -> Option<u8> {
    match pair {
        [hi, lo] => {
            let hi = char::from(*hi).to_digit(16)?;
            let lo = char::from(*lo).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
