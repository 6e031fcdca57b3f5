//! Request and response heads, parsed with `httparse`.
//!
//! A message head is the start line, the header fields and the empty line that
//! ends them (RFC 9112 §2.1). TCP delivers bytes, not messages: a head can
//! arrive split across many reads, or share a read with the body that follows
//! it. So parsing is incremental: [`parse_request`] looks at everything
//! buffered so far and answers "complete, and it used N bytes", "not yet", or
//! "this is broken". The caller ([`crate::conn::Conn`]) keeps reading until
//! the answer is not "not yet".
//!
//! Limits protect the proxy from a client that never stops sending a head.
//! They map to the statuses RFC 9110 §15.5 defines for them:
//! a head over 64 KiB or more than 100 fields is a 431, a request target over
//! 8 KiB is a 414, a method over 32 bytes is a 501 (RFC 9112 §3), and
//! anything else malformed is a 400. The limits look only at bytes that have
//! arrived, in the same order every time, so a request gets the same answer
//! however its bytes were split into reads. httparse already refuses
//! whitespace between a field name and its colon and obsolete line folding
//! in requests, as RFC 9112 §5.1 and §5.2 ask.
//!
//! httparse knows HTTP/1.0 and HTTP/1.1 only. A later 1.x version is read as
//! HTTP/1.1, and any other major version gets a 505 (RFC 9110 §2.5, §15.6.6).

use crate::error::HttpError;
use crate::headers::Headers;

/// The largest request or response head we accept.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields we accept in one head.
pub const MAX_HEADERS: usize = 100;
/// The longest request target we accept.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The longest method we accept. The longest registered methods are 17
/// bytes; a longer one is no method this proxy could know.
pub const MAX_METHOD_BYTES: usize = 32;

/// The start line and fields of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target exactly as sent (RFC 9112 §3.2).
    pub target: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    pub headers: Headers,
}

/// The status line and fields of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub minor_version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
}

// ANCHOR: wants_keep_alive
impl RequestHead {
    /// Does the client want the connection kept open after this exchange?
    /// HTTP/1.1 is persistent unless it says `close`; HTTP/1.0 only when it
    /// asks for `keep-alive` (RFC 9112 §9.3).
    #[cfg(not(feature = "ex-2-1"))]
    pub fn wants_keep_alive(&self) -> bool {
        if self.headers.has_token("Connection", "close") {
            return false;
        }
        self.minor_version >= 1 || self.headers.has_token("Connection", "keep-alive")
    }
}
// ANCHOR_END: wants_keep_alive

// Exercise 2.1: with its feature, the student's `wants_keep_alive` replaces
// the one above.
#[cfg(feature = "ex-2-1")]
#[path = "../exercises/stage2/keep_alive.rs"]
mod ex_2_1;

impl ResponseHead {
    /// May the connection carry another request after this response? The
    /// same rule as for requests (RFC 9112 §9.3), and two more: a response
    /// with both Content-Length and Transfer-Encoding ought to be handled
    /// as an error (§6.1), and an HTTP/1.0 one with Transfer-Encoding is
    /// to be read as if its framing were faulty and the connection closed
    /// after it (§6.1): an HTTP/1.0 sender knows no chunked, and part of
    /// what it meant as the body may still be on the way.
    pub fn allows_reuse(&self) -> bool {
        if self.headers.has_token("Connection", "close") {
            return false;
        }
        if self.headers.contains("Transfer-Encoding")
            && (self.headers.contains("Content-Length") || self.minor_version == 0)
        {
            return false;
        }
        self.minor_version >= 1 || self.headers.has_token("Connection", "keep-alive")
    }
}

/// What an incremental parse found.
#[derive(Debug)]
pub enum Parsed<T> {
    /// A whole head, and how many buffered bytes it used.
    Complete(T, usize),
    /// The head is not finished yet: read more and try again.
    Partial,
}

// ANCHOR: parse_request
/// Tries to parse a request head from the start of `buf`.
pub fn parse_request(buf: &[u8]) -> Result<Parsed<RequestHead>, HttpError> {
    check_request_line(buf)?;
    // Nothing past the head limit is ever looked at: a head that is not
    // complete within it is too large, whatever follows.
    let view = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(view) {
        Ok(httparse::Status::Complete(used)) => {
            // httparse fills every field when it returns Complete; the
            // fallbacks only keep malformed input from ever panicking.
            let head = RequestHead {
                method: request.method.unwrap_or_default().to_string(),
                target: request.path.unwrap_or_default().to_string(),
                minor_version: request.version.unwrap_or(1),
                headers: Headers::from_httparse(request.headers),
            };
            Ok(Parsed::Complete(head, used))
        }
        Ok(httparse::Status::Partial) if view.len() == MAX_HEAD_BYTES => {
            Err(HttpError::new(431, "request head is larger than 64 KiB"))
        }
        Ok(httparse::Status::Partial) => Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => Err(HttpError::new(
            431,
            format!("request has more than {MAX_HEADERS} header fields"),
        )),
        Err(httparse::Error::Version) => parse_other_version(view),
        Err(e) => Err(HttpError::bad_request(format!("malformed request: {e}"))),
    }
}
// ANCHOR_END: parse_request

/// A `tchar` (RFC 9110 §5.6.2): what a method is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// ANCHOR: check_request_line
/// Applies the method and target limits to the request line, finished or
/// not, before the parser sees it. Both look only at the start of the line,
/// so an over-long method is a 501 and an over-long target a 414 as soon as
/// the limit is passed, whether the rest has arrived or not: the same bytes
/// get the same answer however the reads split them.
fn check_request_line(buf: &[u8]) -> Result<(), HttpError> {
    // Empty lines before the request line are ignored (RFC 9112 §2.2).
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let method = line
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(line.len());
    if method > MAX_METHOD_BYTES {
        // RFC 9112 §3: a method longer than any the server implements is
        // a 501 (Not Implemented).
        return Err(HttpError::new(
            501,
            format!("request method is longer than {MAX_METHOD_BYTES} bytes"),
        ));
    }
    if line.get(method) == Some(&b' ') {
        let rest = &line[method + 1..];
        let target = rest
            .iter()
            .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
            .unwrap_or(rest.len());
        if target > MAX_TARGET_BYTES {
            return Err(HttpError::new(414, "request target is longer than 8 KiB"));
        }
    }
    Ok(())
}
// ANCHOR_END: check_request_line

// ANCHOR: other_version
/// httparse refused the version: it knows `HTTP/1.0` and `HTTP/1.1` only.
/// RFC 9110 §2.5 has a recipient of a later minor version of a major
/// version it knows (`HTTP/1.2`) handle the message as the highest minor
/// version it implements, so that head is parsed again as HTTP/1.1. Another
/// major version (`HTTP/2.0`, or `HTTP/0.9` as a version string) is a 505
/// (§15.6.6). Anything else is not `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3) and is
/// malformed.
fn parse_other_version(buf: &[u8]) -> Result<Parsed<RequestHead>, HttpError> {
    let malformed = || HttpError::bad_request("malformed request: invalid HTTP version");
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    let (line, complete) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (&rest[..end], true),
        None => (rest, false),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(malformed());
    };
    let pattern = b"HTTP/9.9";
    let fits = version.len() <= pattern.len()
        && version.iter().zip(pattern).all(|(&b, &p)| match p {
            b'9' => b.is_ascii_digit(),
            p => b == p,
        });
    if !fits {
        return Err(malformed());
    }
    if !complete || version.len() < pattern.len() {
        // Only the start of a version has arrived, and it may yet be one.
        return if complete {
            Err(malformed())
        } else {
            Ok(Parsed::Partial)
        };
    }
    if version[5] == b'1' && version[7] <= b'1' {
        // httparse knows these: something else in the line was wrong.
        return Err(malformed());
    }
    if version[5] != b'1' {
        return Err(HttpError::new(
            505,
            format!(
                "{} is not supported; this proxy speaks HTTP/1.1",
                String::from_utf8_lossy(version)
            ),
        ));
    }
    // HTTP/1.2 and later minor versions: the same bytes, read as HTTP/1.1.
    // The version has the same length, so the head's length is unchanged.
    let at = start + method.len() + 1 + target.len() + 1;
    let mut as_11 = buf.to_vec();
    as_11[at..at + pattern.len()].copy_from_slice(b"HTTP/1.1");
    parse_request(&as_11)
}
// ANCHOR_END: other_version

/// Why an upstream response head could not be used. All of these become a
/// 502 for the client (RFC 9110 §15.6.3); the text goes to the log.
pub fn parse_response(buf: &[u8]) -> Result<Parsed<ResponseHead>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    // RFC 9112 §5.1: a proxy must strip whitespace before the colon in a
    // response rather than reject it; httparse does that when asked.
    let mut config = httparse::ParserConfig::default();
    config.allow_spaces_after_header_name_in_responses(true);
    config.allow_obsolete_multiline_headers_in_responses(true);
    match config.parse_response(&mut response, buf) {
        Ok(httparse::Status::Complete(used)) => {
            if used > MAX_HEAD_BYTES {
                return Err("response head is larger than 64 KiB".into());
            }
            // RFC 9110 §15: status codes run from 100 to 599. httparse
            // takes any three digits; `099` or `999` relayed as they are
            // would be a status line the client cannot read.
            let status = response.code.unwrap_or(0);
            if !(100..=599).contains(&status) {
                return Err(format!("invalid status code {status:03}"));
            }
            let mut headers = Headers::from_httparse(response.headers);
            unfold_obsolete_lines(&mut headers);
            Ok(Parsed::Complete(
                ResponseHead {
                    minor_version: response.version.unwrap_or(1),
                    status,
                    reason: response.reason.unwrap_or_default().to_string(),
                    headers,
                },
                used,
            ))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            Err("response head is larger than 64 KiB".into())
        }
        Ok(httparse::Status::Partial) => Ok(Parsed::Partial),
        Err(e) => Err(format!("malformed response head: {e}")),
    }
}

/// RFC 9112 §5.2: a proxy that receives obs-fold in a response must replace
/// each fold with spaces before forwarding it.
fn unfold_obsolete_lines(headers: &mut Headers) {
    let folded: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|f| f.value.contains(&b'\n'))
        .map(|f| {
            let value = f
                .value
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                .collect();
            (f.name.clone(), value)
        })
        .collect();
    for (name, value) in folded {
        headers.set(&name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (RequestHead, usize) {
        match parse_request(buf) {
            Ok(Parsed::Complete(head, used)) => (head, used),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn parses_absolute_form_and_leaves_the_body() {
        let raw = b"GET http://a.test/x?y HTTP/1.1\r\nHost: a.test\r\n\r\nBODY";
        let (head, used) = complete(raw);
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "http://a.test/x?y");
        assert_eq!(head.minor_version, 1);
        assert_eq!(&raw[used..], b"BODY");
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert!(matches!(
            parse_request(b"GET http://a.test/ HTTP/1.1\r\nHo"),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn limits_map_to_their_statuses() {
        let long_target = format!("GET http://a.test/{} HTTP/1.1\r\n", "a".repeat(9000));
        assert_eq!(
            parse_request(long_target.as_bytes()).unwrap_err().status,
            414
        );
        let mut many = String::from("GET http://a.test/ HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(parse_request(many.as_bytes()).unwrap_err().status, 431);
        let mut huge = String::from("GET http://a.test/ HTTP/1.1\r\n");
        while huge.len() <= MAX_HEAD_BYTES {
            huge.push_str(&format!("X-Big: {}\r\n", "b".repeat(1000)));
        }
        assert_eq!(parse_request(huge.as_bytes()).unwrap_err().status, 431);
    }

    #[test]
    fn malformed_requests_are_400() {
        for raw in [
            &b"GET http://a.test/ HTTP/1.1\r\nHost : a.test\r\n\r\n"[..],
            b"GET http://a.test/ HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            b"G@T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.10\r\n\r\n",
            b"GET / http/1.1\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET http://a b/ HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_request(raw).unwrap_err().status, 400, "{raw:?}");
        }
    }

    #[test]
    fn later_minor_versions_are_read_as_1_1_and_other_majors_are_505() {
        let raw = b"GET http://a.test/ HTTP/1.2\r\nHost: a.test\r\n\r\nBODY";
        let (head, used) = complete(raw);
        assert_eq!((head.minor_version, &raw[used..]), (1, &b"BODY"[..]));
        assert_eq!(head.headers.get_str("Host"), Some("a.test"));
        for raw in [&b"GET / HTTP/2.0\r\n\r\n"[..], b"GET / HTTP/0.9\r\n\r\n"] {
            assert_eq!(parse_request(raw).unwrap_err().status, 505, "{raw:?}");
        }
        // The start of a version that may yet be valid waits for the rest.
        for raw in [&b"GET / HTTP/2"[..], b"GET / HTTP/2.0\r"] {
            assert!(matches!(parse_request(raw), Ok(Parsed::Partial)), "{raw:?}");
        }
    }

    #[test]
    fn a_long_method_is_501_however_much_of_it_has_arrived() {
        let method = "A".repeat(10_000);
        let whole = format!("{method} http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n");
        for len in [MAX_METHOD_BYTES + 1, 5_000, whole.len()] {
            let status = parse_request(&whole.as_bytes()[..len]).unwrap_err().status;
            assert_eq!(status, 501, "{len} bytes");
        }
        let longest = format!("{} / HTTP/1.1\r\n\r\n", "A".repeat(MAX_METHOD_BYTES));
        assert_eq!(
            complete(longest.as_bytes()).0.method.len(),
            MAX_METHOD_BYTES
        );
    }

    #[test]
    fn status_codes_outside_100_to_599_are_refused() {
        for raw in [
            &b"HTTP/1.1 099 Low\r\n\r\n"[..],
            b"HTTP/1.1 600 High\r\n\r\n",
        ] {
            assert!(parse_response(raw).is_err(), "{raw:?}");
        }
        assert!(parse_response(b"HTTP/1.1 599 Edge\r\n\r\n").is_ok());
    }

    #[test]
    fn response_folds_are_unfolded() {
        let raw = b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n";
        match parse_response(raw) {
            Ok(Parsed::Complete(head, _)) => {
                assert_eq!(head.status, 200);
                let value = head.headers.get_str("X-A").unwrap();
                assert!(!value.contains('\n'), "{value:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    // Found by fuzzing (fuzz/ target response_head): httparse read `002` as
    // status 2, which we would have relayed as the status line `HTTP/1.1 2`.
    #[test]
    fn response_status_below_100_is_malformed() {
        for raw in [
            &b"HTTP/1.1 002 OK\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 099 Early\r\n\r\n",
            b"HTTP/1.0 000 Zero\r\n\r\n",
        ] {
            assert!(parse_response(raw).is_err(), "{raw:?}");
        }
        assert!(matches!(
            parse_response(b"HTTP/1.1 100 Continue\r\n\r\n"),
            Ok(Parsed::Complete(ResponseHead { status: 100, .. }, _))
        ));
    }

    #[test]
    fn doubtful_framing_ends_the_upstream_connection() {
        let reuse = |raw: &str| match parse_response(raw.as_bytes()) {
            Ok(Parsed::Complete(head, _)) => head.allows_reuse(),
            other => panic!("{other:?}"),
        };
        assert!(reuse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(!reuse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        ));
        assert!(!reuse(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(reuse(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n"
        ));
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let (h11, _) = complete(b"GET / HTTP/1.1\r\n\r\n");
        let (h11_close, _) = complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        let (h10, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        let (h10_ka, _) = complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(h11.wants_keep_alive());
        assert!(!h11_close.wants_keep_alive());
        assert!(!h10.wants_keep_alive());
        assert!(h10_ka.wants_keep_alive());
    }
}
