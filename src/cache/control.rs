//! Reading `Cache-Control` (RFC 9111 §5.2) and request `Pragma` (§5.4).
//!
//! `Cache-Control` is how the client and the origin tell caches what they
//! may do. It is a list of directives, `token [ "=" ( token / quoted-string ) ]`,
//! spread over any number of field lines (RFC 9110 §5.3 lets a list be split
//! across lines). Directive names compare case-insensitively, and a
//! recipient must accept both the token and the quoted-string form of an
//! argument (§5.2), so `max-age="60"` means the same as `max-age=60`.
//!
//! A quoted argument may itself contain commas (`no-cache="Set-Cookie, X-A"`),
//! so we cannot split field values on `,` the way [`Headers::list`] does: this
//! module has its own small tokenizer.
//!
//! ## Values that do not parse
//!
//! Numbers are delta-seconds, `1*DIGIT` (§1.2.2). For anything else (`abc`,
//! `-1`, `1.5`, or a missing value) we pick, directive by directive, the
//! reading that makes the cache *contact the origin* rather than serve
//! something nobody allowed: one extra round trip is cheap, a wrong response
//! is not. §4.2.1 encourages exactly this for responses ("consider responses
//! that have invalid freshness information ... to be stale"):
//!
//! | directive | invalid value means |
//! |---|---|
//! | response `max-age`, `s-maxage` | 0: stale at once |
//! | request `max-age` | 0: revalidate |
//! | request `min-fresh` | the largest value: never fresh enough, revalidate |
//! | request `max-stale` with a bad number | absent: no stale response |
//! | `stale-if-error`, `stale-while-revalidate` | absent: no permission |
//!
//! A value too large for us saturates at 2^31 seconds (about 68 years), the
//! value §1.2.2 tells caches to use, so arithmetic never overflows.
//!
//! When a directive appears twice, the first occurrence wins (§4.2.1 allows
//! "the first occurrence" or "stale"; the first is simpler to explain).
//!
//! The qualified forms `no-cache="field"` and `private="field"` are treated
//! like the unqualified ones. That is stricter than required (§5.2.2.4 and
//! §5.2.2.7 would let us store the response without those fields) but always
//! safe, and it saves us from editing stored responses.
//!
//! [`Headers::list`]: crate::headers::Headers::list

use crate::headers::Headers;

/// The value RFC 9111 §1.2.2 tells a cache to use for delta-seconds that are
/// too big to represent: 2^31.
pub const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// One directive: lower-cased name, and its argument with quotes and
/// backslash escapes removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: Option<String>,
}

// ANCHOR: parse_directives
/// Splits every `name` field line of `headers` into directives, in order.
/// Commas inside a quoted-string do not split.
pub fn parse_directives(headers: &Headers, name: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    for line in headers.get_all(name) {
        parse_line(line, &mut out);
    }
    out
}

fn parse_line(line: &[u8], out: &mut Vec<Directive>) {
    let is_ows = |b: u8| b == b' ' || b == b'\t';
    let mut i = 0;
    while i < line.len() {
        // Empty list elements (", ,") are allowed and ignored (RFC 9110 §5.6.1).
        while i < line.len() && (is_ows(line[i]) || line[i] == b',') {
            i += 1;
        }
        let start = i;
        while i < line.len() && line[i] != b'=' && line[i] != b',' {
            i += 1;
        }
        let name = String::from_utf8_lossy(line[start..i].trim_ascii()).to_ascii_lowercase();
        let mut value = None;
        if i < line.len() && line[i] == b'=' {
            i += 1;
            while i < line.len() && is_ows(line[i]) {
                i += 1;
            }
            if i < line.len() && line[i] == b'"' {
                let (text, end) = quoted_string(line, i);
                value = Some(text);
                i = end;
                // Anything between the closing quote and the next comma is
                // malformed; skip it rather than start a bogus directive.
                while i < line.len() && line[i] != b',' {
                    i += 1;
                }
            } else {
                let start = i;
                while i < line.len() && line[i] != b',' {
                    i += 1;
                }
                value = Some(String::from_utf8_lossy(line[start..i].trim_ascii()).into_owned());
            }
        }
        if !name.is_empty() {
            out.push(Directive { name, value });
        }
    }
}

/// Reads the quoted-string starting at `line[open]` (the `"`), undoing
/// `\x` quoted-pairs (RFC 9110 §5.6.4). Returns the text and the index just
/// past the closing quote; an unterminated string runs to the end of the line.
fn quoted_string(line: &[u8], open: usize) -> (String, usize) {
    let mut text = Vec::new();
    let mut i = open + 1;
    while i < line.len() {
        match line[i] {
            b'"' => return (String::from_utf8_lossy(&text).into_owned(), i + 1),
            b'\\' if i + 1 < line.len() => {
                text.push(line[i + 1]);
                i += 2;
            }
            b => {
                text.push(b);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), i)
}
// ANCHOR_END: parse_directives

// ANCHOR: delta_seconds
/// Parses delta-seconds (`1*DIGIT`, RFC 9111 §1.2.2). `None` when the text is
/// not a non-negative integer; a value too big saturates at
/// [`DELTA_SECONDS_MAX`] instead of overflowing.
pub fn delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u64 = 0;
    for b in text.bytes() {
        n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
        if n >= DELTA_SECONDS_MAX {
            return Some(DELTA_SECONDS_MAX);
        }
    }
    Some(n)
}
// ANCHOR_END: delta_seconds

fn value_seconds(d: &Directive) -> Option<u64> {
    d.value.as_deref().and_then(delta_seconds)
}

// ANCHOR: request_directives
/// What the client asked of caches (RFC 9111 §5.2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestDirectives {
    /// §5.2.1.4: do not answer from the cache without validating first.
    /// Also set by `Pragma: no-cache` when there is no Cache-Control (§5.4).
    pub no_cache: bool,
    /// §5.2.1.5: store neither this request nor its response.
    pub no_store: bool,
    /// §5.2.1.1: the client wants a response no older than this.
    pub max_age: Option<u64>,
    /// §5.2.1.2: the client accepts a stale response; `Some(None)` means
    /// "of any staleness", `Some(Some(n))` "at most n seconds past its lifetime".
    pub max_stale: Option<Option<u64>>,
    /// §5.2.1.3: the client wants a response that stays fresh this much longer.
    pub min_fresh: Option<u64>,
    /// §5.2.1.6.
    pub no_transform: bool,
    /// §5.2.1.7: answer from the cache or with 504, never contact the origin.
    pub only_if_cached: bool,
    /// RFC 5861 §4: the client accepts a response this stale if the origin fails.
    pub stale_if_error: Option<u64>,
}

impl RequestDirectives {
    pub fn from_headers(headers: &Headers) -> Self {
        let mut r = RequestDirectives::default();
        for d in parse_directives(headers, "cache-control") {
            match d.name.as_str() {
                "no-cache" => r.no_cache = true,
                "no-store" => r.no_store = true,
                "no-transform" => r.no_transform = true,
                "only-if-cached" => r.only_if_cached = true,
                "max-age" if r.max_age.is_none() => {
                    r.max_age = Some(value_seconds(&d).unwrap_or(0));
                }
                "min-fresh" if r.min_fresh.is_none() => {
                    r.min_fresh = Some(value_seconds(&d).unwrap_or(DELTA_SECONDS_MAX));
                }
                "max-stale" if r.max_stale.is_none() => {
                    r.max_stale = match &d.value {
                        None => Some(None),
                        Some(_) => value_seconds(&d).map(Some),
                    };
                }
                "stale-if-error" if r.stale_if_error.is_none() => {
                    r.stale_if_error = value_seconds(&d);
                }
                _ => {} // unknown extensions are ignored (§5.2.3)
            }
        }
        // §5.4: HTTP/1.0 clients say "reload" with Pragma; Cache-Control,
        // when present at all, takes precedence.
        if !headers.contains("cache-control") && headers.has_token("pragma", "no-cache") {
            r.no_cache = true;
        }
        r
    }
}
// ANCHOR_END: request_directives

// ANCHOR: response_directives
/// What the origin allowed caches to do (RFC 9111 §5.2.2, RFC 5861).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseDirectives {
    /// §5.2.2.1: fresh for this many seconds.
    pub max_age: Option<u64>,
    /// §5.2.2.10: like max-age but for shared caches only, and it takes
    /// precedence; it also forbids serving stale (implies proxy-revalidate).
    pub s_maxage: Option<u64>,
    /// §5.2.2.4: may be stored, but must be validated before every reuse.
    pub no_cache: bool,
    /// §5.2.2.5: must not be stored at all.
    pub no_store: bool,
    /// §5.2.2.7: only for the user's own cache; a shared cache must not store it.
    pub private: bool,
    /// §5.2.2.9: may be stored even if it would not be otherwise
    /// (for example when the request carried Authorization).
    pub public: bool,
    /// §5.2.2.2: once stale, never serve without validating.
    pub must_revalidate: bool,
    /// §5.2.2.8: must-revalidate for shared caches only (that is us).
    pub proxy_revalidate: bool,
    /// §5.2.2.6: do not transform the content.
    pub no_transform: bool,
    /// §5.2.2.3: parsed so the field reads complete; we never need it because
    /// we obey no-store regardless.
    pub must_understand: bool,
    /// RFC 5861 §4: may serve this stale for n seconds when the origin fails.
    pub stale_if_error: Option<u64>,
    /// RFC 5861 §3: may serve this stale for n seconds while revalidating.
    pub stale_while_revalidate: Option<u64>,
}

impl ResponseDirectives {
    pub fn from_headers(headers: &Headers) -> Self {
        let mut r = ResponseDirectives::default();
        for d in parse_directives(headers, "cache-control") {
            match d.name.as_str() {
                "no-cache" => r.no_cache = true,
                "no-store" => r.no_store = true,
                "private" => r.private = true,
                "public" => r.public = true,
                "must-revalidate" => r.must_revalidate = true,
                "proxy-revalidate" => r.proxy_revalidate = true,
                "no-transform" => r.no_transform = true,
                "must-understand" => r.must_understand = true,
                // Invalid freshness information means stale (§4.2.1).
                "max-age" if r.max_age.is_none() => {
                    r.max_age = Some(value_seconds(&d).unwrap_or(0))
                }
                "s-maxage" if r.s_maxage.is_none() => {
                    r.s_maxage = Some(value_seconds(&d).unwrap_or(0));
                }
                "stale-if-error" if r.stale_if_error.is_none() => {
                    r.stale_if_error = value_seconds(&d);
                }
                "stale-while-revalidate" if r.stale_while_revalidate.is_none() => {
                    r.stale_while_revalidate = value_seconds(&d);
                }
                _ => {}
            }
        }
        r
    }

    /// §4.2.4: directives that forbid a shared cache to serve this response
    /// once it is stale, whatever the client or an error would allow.
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.no_cache || self.s_maxage.is_some()
    }
}
// ANCHOR_END: response_directives

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.append(n, *v);
        }
        h
    }

    fn resp(v: &str) -> ResponseDirectives {
        ResponseDirectives::from_headers(&headers(&[("Cache-Control", v)]))
    }

    fn req(v: &str) -> RequestDirectives {
        RequestDirectives::from_headers(&headers(&[("Cache-Control", v)]))
    }

    #[test]
    fn names_are_case_insensitive_and_values_may_be_quoted() {
        let d = resp(r#"Max-Age="60", PUBLIC, S-MaxAge=30"#);
        assert_eq!(d.max_age, Some(60));
        assert_eq!(d.s_maxage, Some(30));
        assert!(d.public);
    }

    #[test]
    fn commas_inside_quotes_do_not_split() {
        let h = headers(&[("Cache-Control", r#"no-cache="Set-Cookie, X-A", max-age=5"#)]);
        let all = parse_directives(&h, "cache-control");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "no-cache");
        assert_eq!(all[0].value.as_deref(), Some("Set-Cookie, X-A"));
        assert_eq!(all[1].value.as_deref(), Some("5"));
    }

    #[test]
    fn quoted_pairs_and_unterminated_quotes() {
        let h = headers(&[("Cache-Control", r#"x="a\"b", y="open"#)]);
        let all = parse_directives(&h, "Cache-Control");
        assert_eq!(all[0].value.as_deref(), Some("a\"b"));
        assert_eq!(all[1].value.as_deref(), Some("open"));
    }

    #[test]
    fn several_lines_and_empty_elements() {
        let h = headers(&[
            ("Cache-Control", " , no-store,,"),
            ("cache-control", "must-revalidate , max-age = 7"),
        ]);
        let d = ResponseDirectives::from_headers(&h);
        assert!(d.no_store && d.must_revalidate);
        assert_eq!(d.max_age, Some(7));
    }

    #[test]
    fn first_occurrence_wins() {
        assert_eq!(resp("max-age=10, max-age=99999").max_age, Some(10));
        assert_eq!(req("max-stale=5, max-stale").max_stale, Some(Some(5)));
    }

    #[test]
    fn invalid_response_numbers_mean_stale() {
        assert_eq!(resp("max-age=abc").max_age, Some(0));
        assert_eq!(resp("max-age=-1").max_age, Some(0));
        assert_eq!(resp("max-age=1.5").max_age, Some(0));
        assert_eq!(resp("s-maxage").s_maxage, Some(0));
        assert_eq!(resp("stale-if-error=soon").stale_if_error, None);
    }

    #[test]
    fn invalid_request_numbers_mean_go_to_the_origin() {
        assert_eq!(req("max-age=x").max_age, Some(0));
        assert_eq!(req("min-fresh=-3").min_fresh, Some(DELTA_SECONDS_MAX));
        assert_eq!(req("max-stale=-3").max_stale, None);
        assert_eq!(req("max-stale").max_stale, Some(None));
        assert_eq!(req("max-stale=30").max_stale, Some(Some(30)));
    }

    #[test]
    fn huge_numbers_saturate() {
        assert_eq!(
            delta_seconds("99999999999999999999999999"),
            Some(DELTA_SECONDS_MAX)
        );
        assert_eq!(delta_seconds("2147483647"), Some(2_147_483_647));
        assert_eq!(delta_seconds(""), None);
        assert_eq!(delta_seconds("+5"), None);
    }

    #[test]
    fn pragma_no_cache_only_without_cache_control() {
        let only_pragma = headers(&[("Pragma", "no-cache")]);
        assert!(RequestDirectives::from_headers(&only_pragma).no_cache);
        let both = headers(&[("Pragma", "no-cache"), ("Cache-Control", "max-age=60")]);
        let d = RequestDirectives::from_headers(&both);
        assert!(!d.no_cache);
        assert_eq!(d.max_age, Some(60));
    }

    #[test]
    fn request_flags() {
        let d = req("no-cache, no-store, only-if-cached, min-fresh=20, no-transform");
        assert!(d.no_cache && d.no_store && d.only_if_cached && d.no_transform);
        assert_eq!(d.min_fresh, Some(20));
    }

    #[test]
    fn what_forbids_stale() {
        assert!(!resp("max-age=5").forbids_stale());
        assert!(resp("must-revalidate").forbids_stale());
        assert!(resp("proxy-revalidate").forbids_stale());
        assert!(resp("no-cache").forbids_stale());
        assert!(resp("s-maxage=5").forbids_stale());
        assert!(resp(r#"private="x", no-cache="Set-Cookie""#).private);
    }
}
