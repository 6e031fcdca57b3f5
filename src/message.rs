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
//! 8 KiB is a 414, and anything else malformed is a 400. httparse already
//! refuses whitespace between a field name and its colon and obsolete line
//! folding in requests, as RFC 9112 §5.1 and §5.2 ask.

use crate::error::HttpError;
use crate::headers::Headers;

/// The largest request or response head we accept.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields we accept in one head.
pub const MAX_HEADERS: usize = 100;
/// The longest request target we accept.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;

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
    /// same rule as for requests (RFC 9112 §9.3), and one more: a response
    /// with both Content-Length and Transfer-Encoding ought to be handled
    /// as an error (§6.1), so whatever follows it on the connection is not
    /// trusted.
    pub fn allows_reuse(&self) -> bool {
        if self.headers.has_token("Connection", "close") {
            return false;
        }
        if self.headers.contains("Content-Length") && self.headers.contains("Transfer-Encoding") {
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
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(used)) => {
            if used > MAX_HEAD_BYTES {
                return Err(HttpError::new(431, "request head is larger than 64 KiB"));
            }
            // httparse fills every field when it returns Complete; the
            // fallbacks only keep malformed input from ever panicking.
            let target = request.path.unwrap_or_default();
            if target.len() > MAX_TARGET_BYTES {
                return Err(HttpError::new(414, "request target is longer than 8 KiB"));
            }
            let head = RequestHead {
                method: request.method.unwrap_or_default().to_string(),
                target: target.to_string(),
                minor_version: request.version.unwrap_or(1),
                headers: Headers::from_httparse(request.headers),
            };
            Ok(Parsed::Complete(head, used))
        }
        Ok(httparse::Status::Partial) => {
            check_partial_request(buf)?;
            Ok(Parsed::Partial)
        }
        Err(httparse::Error::TooManyHeaders) => Err(HttpError::new(
            431,
            format!("request has more than {MAX_HEADERS} header fields"),
        )),
        Err(e) => Err(HttpError::bad_request(format!("malformed request: {e}"))),
    }
}
// ANCHOR_END: parse_request

/// An unfinished head may already be too large: say so now rather than
/// reading up to the limit first.
fn check_partial_request(buf: &[u8]) -> Result<(), HttpError> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    // The request line is the method, the target, the version and a few
    // spaces: allow that much on top of the target limit.
    let line_len = line_end.unwrap_or(buf.len());
    if line_len > MAX_TARGET_BYTES + 64 {
        return Err(HttpError::new(414, "request target is longer than 8 KiB"));
    }
    if buf.len() > MAX_HEAD_BYTES {
        return Err(HttpError::new(431, "request head is larger than 64 KiB"));
    }
    Ok(())
}

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
            let mut headers = Headers::from_httparse(response.headers);
            unfold_obsolete_lines(&mut headers);
            Ok(Parsed::Complete(
                ResponseHead {
                    minor_version: response.version.unwrap_or(1),
                    status: response.code.unwrap_or(502),
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
            b"GET / HTTP/9.9\r\n\r\n",
        ] {
            assert_eq!(parse_request(raw).unwrap_err().status, 400, "{raw:?}");
        }
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
