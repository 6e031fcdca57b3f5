// Starter code for stage 2, exercise 1 (see exercises/stage2/HINTS.md).
// With `--features starter-stage2` this file replaces src/message.rs. Only
// `RequestHead::wants_keep_alive` is left for you; everything else is the
// reference code.
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

// Until you write it, the method's receiver goes unused.
#![allow(unused_variables)]

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

impl RequestHead {
    /// Does the client want the connection kept open after this exchange?
    /// HTTP/1.1 is persistent unless it says `close`; HTTP/1.0 only when it
    /// asks for `keep-alive` (RFC 9112 §9.3).
    pub fn wants_keep_alive(&self) -> bool {
        // TODO(exercise 1): the persistence rule of RFC 9112 §9.3.
        //
        // - A `close` token in `Connection` ends the connection after this
        //   exchange, whatever the version.
        // - Otherwise HTTP/1.1 (and later) is persistent by default...
        // - ...and HTTP/1.0 is persistent only when the client asked with a
        //   `keep-alive` token in `Connection`.
        //
        // `Connection` is a list (`Connection: Keep-Alive, X-Foo`), and its
        // tokens are case-insensitive: `self.headers.has_token` handles
        // both. `self.minor_version` is 0 for HTTP/1.0 and 1 for HTTP/1.1.
        todo!("stage 2, exercise 1: wants_keep_alive")
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
            // httparse takes any three digits, so `002` arrives as 2. We
            // write the status back as a number, and `HTTP/1.1 2 OK` is no
            // status line (RFC 9112 §4 wants three digits; RFC 9110 §15
            // starts at 100), so such a response cannot be relayed.
            let status = response.code.unwrap_or(502);
            if status < 100 {
                return Err(format!("malformed response head: status {status:03}"));
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
