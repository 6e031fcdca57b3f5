//! Error responses the proxy writes itself.
//!
//! When something goes wrong before the origin's response has started, the
//! client deserves a real HTTP answer, not a closed socket: the right status
//! (RFC 9110 §15), a short text body that says what was wrong, a
//! Content-Length so the client knows where the body ends (RFC 9112 §6.2),
//! and `Connection: close`, because after an error we no longer trust what is
//! left on the connection (RFC 9112 §9.6).
//!
//! Every error takes the same path through [`HttpError`] and [`write_error`],
//! so there is exactly one place that decides what an error looks like on the
//! wire.

use std::fmt;
use std::io::{self, Write};

use crate::headers::Headers;

/// A failure that becomes an HTTP error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    /// One sentence for the client and the log, without a trailing newline.
    pub detail: String,
    /// Extra header fields for the error response (stage 3 adds its
    /// Cache-Status here).
    pub fields: Headers,
}

impl HttpError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        HttpError {
            status,
            detail: detail.into(),
            fields: Headers::new(),
        }
    }

    /// The same error, with one more header field in its response.
    pub fn with_field(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.fields.append(name, value);
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }

    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        Self::new(502, detail)
    }

    pub fn gateway_timeout(detail: impl Into<String>) -> Self {
        Self::new(504, detail)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status,
            reason(self.status),
            self.detail
        )
    }
}

impl std::error::Error for HttpError {}

/// The reason phrase we send for the statuses the proxy produces itself.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

// ANCHOR: write_error
/// Writes a complete error response and returns how many bytes it took.
///
/// The body is plain text so that `curl` users can read it directly.
pub fn write_error(out: &mut impl Write, error: &HttpError) -> io::Result<u64> {
    let body = format!("{}\n", error.detail);
    let content_type = "text/plain; charset=utf-8";
    write_page(
        out,
        error.status,
        content_type,
        &error.fields,
        body.as_bytes(),
    )
}
// ANCHOR_END: write_error

/// Writes a complete response with the given body and `Connection: close`.
/// Used for errors and for the pages the proxy makes itself (such as 403).
pub fn write_simple(
    out: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> io::Result<u64> {
    write_page(out, status, content_type, &Headers::new(), body)
}

/// Like [`write_simple`], with extra header fields.
pub fn write_simple_with(
    out: &mut impl Write,
    status: u16,
    content_type: &str,
    fields: &Headers,
    body: &[u8],
) -> io::Result<u64> {
    write_page(out, status, content_type, fields, body)
}

fn write_page(
    out: &mut impl Write,
    status: u16,
    content_type: &str,
    fields: &Headers,
    body: &[u8],
) -> io::Result<u64> {
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    fields.write_to(&mut response)?;
    // The version is the one on our status line above. Not `forward::VIA`:
    // this module sits below `forward`, and importing it would make a loop.
    write!(
        response,
        "Via: 1.1 {}\r\nConnection: close\r\n\r\n",
        crate::NAME
    )?;
    response.extend_from_slice(body);
    out.write_all(&response)?;
    out.flush()?;
    Ok(response.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_is_complete_and_framed() {
        let mut out = Vec::new();
        let n = write_error(&mut out, &HttpError::bad_request("no Host header")).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(n as usize, text.len());
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(text.contains("Content-Length: 15\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        // The same entry as forward::VIA, whose own test ties it to NAME.
        assert!(text.contains(&format!("Via: 1.1 {}\r\n", crate::NAME)));
        assert!(text.ends_with("\r\n\r\nno Host header\n"));
    }
}
