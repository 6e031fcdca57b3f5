//! Rewriting messages as they pass through the proxy (RFC 9110 §7.6).
//!
//! A proxy is not a pipe. Some header fields describe one connection only —
//! the hop-by-hop fields — and must be removed before the message travels
//! on (§7.6.1): `Connection` and every field it names, plus `Proxy-Connection`,
//! `Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
//! `Proxy-Authorization` and `Proxy-Authenticate`. Every other field is
//! forwarded in the order it came, including ones we have never heard of
//! (§5.3).
//!
//! Upstream, the request goes out in origin-form, `GET /path HTTP/1.1`, with
//! a Host field made from the target URI (RFC 9112 §3.2); to a parent proxy
//! it stays in absolute-form (§3.2.2), as clients send it to us. Both directions get
//! a `Via` entry naming us (§7.6.3), which lets the next hop see that a proxy
//! was involved and lets us notice a request that loops back to us. We always
//! speak HTTP/1.1 ourselves, whatever version the peer used (RFC 9112 §2.3).
//!
//! `Max-Forwards` (§7.6.2) limits how far an OPTIONS or TRACE request
//! travels: at 0 the proxy is the last hop and answers itself, otherwise the
//! value goes on one smaller. A response that never has content (1xx, 204)
//! leaves with no framing fields at all (§8.6, RFC 9112 §6.1).

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::body::Framing;
use crate::error::{HttpError, write_simple_with};
use crate::headers::Headers;
use crate::message::{RequestHead, ResponseHead};
use crate::uri::AbsoluteUri;

/// Our entry in `Via` headers: the protocol version we speak and our
/// pseudonym, [`crate::NAME`] (RFC 9110 §7.6.3).
pub const VIA: &str = match std::str::from_utf8(&VIA_BYTES) {
    Ok(via) => via,
    // Two strings joined are UTF-8; this arm can only fail the build.
    Err(_) => panic!("the Via entry is not UTF-8"),
};

/// `1.1 ` and [`crate::NAME`], joined at compile time so that [`VIA`] can
/// stay a `&str` constant that the loop check and the writers share.
const VIA_BYTES: [u8; 4 + crate::NAME.len()] = join("1.1 ", crate::NAME);

// ANCHOR: via_to_parent
/// Our `Via` entry on requests to a parent proxy: [`VIA`] with a comment
/// that names this running proxy, such as `1.1 webproxy (id 3fa9c2d1)`.
///
/// Every copy of this proxy calls itself `webproxy`, so the pseudonym alone
/// cannot tell "this request passed through *me*" (a loop) from "it passed
/// through another webproxy" (a child under its parent). RFC 9110 §7.6.3
/// lets an entry carry a comment; the id in it is random per process.
pub fn via_to_parent() -> &'static str {
    static ENTRY: OnceLock<String> = OnceLock::new();
    ENTRY.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded at random for each process: a random id
        // without a random-number crate.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        format!("{VIA} (id {:08x})", hasher.finish() as u32)
    })
}

/// Is this `Via` entry one of ours? The pseudonym must be ours, and the
/// entry must not carry another webproxy's id. An entry without an id was
/// written for an origin, by this proxy or by another copy; a request that
/// carries one has been through a webproxy already, and taking it for ours
/// errs on the side of refusing a loop.
pub fn is_our_via(entry: &str) -> bool {
    let entry = entry.trim_matches([' ', '\t']);
    let (received, rest) = entry.split_once([' ', '\t']).unwrap_or((entry, ""));
    let rest = rest.trim_start_matches([' ', '\t']);
    let (by, comment) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let comment = comment.trim_matches([' ', '\t']);
    let ours = VIA.split_once(' ').map_or(VIA, |(_, name)| name);
    let our_comment = via_to_parent().strip_prefix(VIA).unwrap_or("").trim();
    !received.is_empty()
        && by.eq_ignore_ascii_case(ours)
        && (!comment.starts_with("(id ") || comment == our_comment)
}
// ANCHOR_END: via_to_parent

/// `a` followed by `b`, as bytes; `N` must be their total length.
const fn join<const N: usize>(a: &str, b: &str) -> [u8; N] {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < a.len() { a[i] } else { b[i - a.len()] };
        i += 1;
    }
    out
}

/// Fields that only ever mean something for a single connection, or for
/// the proxy hop alone. The cache uses this list too: none of these is ever
/// stored (RFC 9111 §3.1).
pub const HOP_BY_HOP: &[&str] = &[
    "Connection",
    "Proxy-Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Proxy-Authorization",
    "Proxy-Authenticate",
    "Proxy-Authentication-Info",
];

/// Is `name` one of [`HOP_BY_HOP`]?
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The fields that the `Connection` field of `headers` names, lower-cased.
/// A sender can mark any field as hop-by-hop that way (RFC 9110 §7.6.1), so
/// they are dropped along with [`HOP_BY_HOP`] wherever a message is passed
/// on or stored.
pub fn named_by_connection(headers: &Headers) -> Vec<String> {
    headers
        .list("Connection")
        .map(str::to_ascii_lowercase)
        .collect()
}

// ANCHOR: strip_hop_by_hop
/// Removes the hop-by-hop fields, including every field that `Connection`
/// names.
pub fn strip_hop_by_hop(headers: &mut Headers) {
    let named = named_by_connection(headers);
    for name in named
        .iter()
        .map(String::as_str)
        .chain(HOP_BY_HOP.iter().copied())
    {
        headers.remove(name);
    }
}
// ANCHOR_END: strip_hop_by_hop

/// The request fields to send upstream: everything but hop-by-hop fields,
/// the framing fields (we frame the body ourselves), `Host` (we set it from
/// the target URI) and `Expect` (we answer `100-continue` ourselves).
pub fn request_fields(original: &Headers) -> Headers {
    let mut headers = original.clone();
    strip_hop_by_hop(&mut headers);
    for name in ["Host", "Content-Length", "Expect"] {
        headers.remove(name);
    }
    headers
}

// ANCHOR: request_form
/// How the request line names its target upstream (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestForm {
    /// `GET /path HTTP/1.1`, for the origin itself (§3.2.1).
    Origin,
    /// `GET http://host/path HTTP/1.1`, for a parent proxy, which needs the
    /// whole URI to know where the request goes (§3.2.2).
    Absolute,
}
// ANCHOR_END: request_form

// ANCHOR: write_request_head
/// Writes the request head we send upstream. `fields` comes from
/// [`request_fields`], possibly with additions (the cache adds conditional
/// fields). Unless the connection is to be kept for later requests
/// (`keep_alive`), we ask the origin to close it after this one.
pub fn write_request_head(
    out: &mut impl Write,
    method: &str,
    uri: &AbsoluteUri,
    fields: &Headers,
    body: Framing,
    keep_alive: bool,
    form: RequestForm,
) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    match form {
        RequestForm::Origin => write!(head, "{method} {} HTTP/1.1\r\n", uri.path_and_query)?,
        // Host still goes with it: every HTTP/1.1 request has one (§3.2).
        RequestForm::Absolute => write!(
            head,
            "{method} http://{}{} HTTP/1.1\r\n",
            uri.authority.host_header(),
            uri.path_and_query
        )?,
    }
    write!(head, "Host: {}\r\n", uri.authority.host_header())?;
    one_hop_fewer(method, fields).write_to(&mut head)?;
    match body {
        Framing::Length(n) => write!(head, "Content-Length: {n}\r\n")?,
        Framing::Chunked => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::Empty | Framing::UntilClose => {}
    }
    // A parent may be another webproxy: it must see that this entry is not
    // its own.
    let via = match form {
        RequestForm::Origin => VIA,
        RequestForm::Absolute => via_to_parent(),
    };
    write!(head, "Via: {via}\r\n")?;
    if !keep_alive {
        head.extend_from_slice(b"Connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    out.write_all(&head)
}
// ANCHOR_END: write_request_head

/// The methods for which `Max-Forwards` counts (RFC 9110 §7.6.2); for
/// others a recipient may ignore it, and we pass it on untouched.
fn counts_hops(method: &str) -> bool {
    method == "OPTIONS" || method == "TRACE"
}

/// The `Max-Forwards` of an OPTIONS or TRACE request, if it has one. The
/// value is `1*DIGIT`; lines that disagree, or a value that is no number,
/// leave no way to tell how far the request may go: a 400.
fn max_forwards(request: &RequestHead) -> Result<Option<u64>, HttpError> {
    if !counts_hops(&request.method) {
        return Ok(None);
    }
    let mut found = None;
    for value in request.headers.get_all("Max-Forwards") {
        let Some(n) = hops(value) else {
            return Err(HttpError::bad_request(format!(
                "invalid Max-Forwards {:?}",
                String::from_utf8_lossy(value)
            )));
        };
        if found.is_some_and(|prev| prev != n) {
            return Err(HttpError::bad_request("conflicting Max-Forwards values"));
        }
        found = Some(n);
    }
    Ok(found)
}

/// A `Max-Forwards` value, `1*DIGIT`. One too large for a u64 is as good
/// as endless, and stays that large when it goes on.
fn hops(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Some(n.unwrap_or(u64::MAX))
}

// ANCHOR: last_hop
/// Is this proxy the last hop for `request`: an OPTIONS or TRACE whose
/// `Max-Forwards` is 0? Then it must not be forwarded (RFC 9110 §7.6.2).
pub fn is_last_hop(request: &RequestHead) -> Result<bool, HttpError> {
    Ok(max_forwards(request)? == Some(0))
}

/// The methods the proxy relays, for the `Allow` of its own answers.
pub const ALLOW: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH";

/// Answers a request for which the proxy is the last hop, as its final
/// recipient, and returns the status and the bytes written (0 when the
/// client had gone). OPTIONS gets a
/// 200 whose `Allow` lists what the proxy relays. TRACE gets a 405, by
/// policy: its answer would echo the request back, with whatever
/// credentials the client put in it (`Cookie`, `Authorization`), to any
/// script that can make a browser send TRACE through us ("cross-site
/// tracing"). RFC 9110 §9.3.8 lets the final recipient leave sensitive
/// fields out; refusing is the simpler way to be sure, and a 405 names
/// what is allowed instead (§15.5.6).
pub fn answer_last_hop(out: &mut impl Write, request: &RequestHead) -> (u16, u64) {
    let mut fields = Headers::new();
    fields.append("Allow", ALLOW);
    let (status, body): (u16, &[u8]) = if request.method == "TRACE" {
        (
            405,
            b"this proxy does not answer TRACE itself (Max-Forwards: 0)\n",
        )
    } else {
        (200, b"")
    };
    let bytes = write_simple_with(out, status, "text/plain; charset=utf-8", &fields, body);
    (status, bytes.unwrap_or(0))
}
// ANCHOR_END: last_hop

/// The fields to send on: for an OPTIONS or TRACE request, with its
/// `Max-Forwards` one smaller (RFC 9110 §7.6.2). A value of 0 never gets
/// here (the proxy answered itself), and one that is not a number has been
/// refused.
fn one_hop_fewer<'a>(method: &str, fields: &'a Headers) -> Cow<'a, Headers> {
    if !counts_hops(method) {
        return Cow::Borrowed(fields);
    }
    let Some(n) = fields.get("Max-Forwards").and_then(hops) else {
        return Cow::Borrowed(fields);
    };
    let mut fewer = fields.clone();
    fewer.set("Max-Forwards", n.saturating_sub(1).to_string());
    Cow::Owned(fewer)
}

/// Should the client connection stay open after this response?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    KeepAlive,
    Close,
}

/// The framing to use toward the client for a body framed as `upstream`.
/// Chunked bodies are re-chunked for HTTP/1.1 clients; an HTTP/1.0 client
/// does not understand chunked, so it gets the body delimited by close.
pub fn client_framing(upstream: Framing, client_minor_version: u8) -> Framing {
    match upstream {
        Framing::Chunked if client_minor_version == 0 => Framing::UntilClose,
        other => other,
    }
}

/// Does a response with this status never have content, so that it may
/// carry neither `Content-Length` (RFC 9110 §8.6) nor `Transfer-Encoding`
/// (RFC 9112 §6.1)? True for 1xx and 204. (A 304 may keep the length of the
/// representation it stands for.)
fn never_framed(status: u16) -> bool {
    (100..200).contains(&status) || status == 204
}

/// The response fields to send to the client: hop-by-hop fields removed,
/// and the framing fields removed when we frame the body ourselves. A
/// response without a body keeps its Content-Length, which then describes
/// the representation (a HEAD or 304 response), not this message;
/// [`write_response_head`] drops it for the statuses that may not have one.
pub fn response_fields(original: &Headers, framing: Framing) -> Headers {
    let mut headers = original.clone();
    strip_hop_by_hop(&mut headers);
    if framing != Framing::Empty {
        headers.remove("Content-Length");
    }
    headers
}

// ANCHOR: write_response_head
/// Writes a response head to the client. `fields` should come from
/// [`response_fields`]; this adds the framing, `Date` when the origin sent
/// none (RFC 9110 §6.6.1), our `Via`, and the connection's fate.
pub fn write_response_head(
    out: &mut impl Write,
    status: u16,
    reason: &str,
    fields: &Headers,
    body: Framing,
    persist: Persist,
    client_minor_version: u8,
) -> io::Result<u64> {
    let head = response_head(status, reason, fields, body, persist, client_minor_version)?;
    out.write_all(&head)?;
    Ok(head.len() as u64)
}

/// The bytes [`write_response_head`] writes, for a caller that sends them
/// together with a body it already holds.
pub fn response_head(
    status: u16,
    reason: &str,
    fields: &Headers,
    body: Framing,
    persist: Persist,
    client_minor_version: u8,
) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    write!(head, "HTTP/1.1 {status} {reason}\r\n")?;
    let unframed;
    let (fields, body) = if never_framed(status) {
        // An origin's `204` with `Content-Length: 5` (or a stored 204,
        // served with its length) must not reach the client so: it could
        // wait for five bytes that never come, or take the start of the
        // next response for them.
        unframed = without_framing(fields);
        (&unframed, Framing::Empty)
    } else {
        (fields, body)
    };
    fields.write_to(&mut head)?;
    if !fields.contains("Date") {
        write!(
            head,
            "Date: {}\r\n",
            httpdate::fmt_http_date(SystemTime::now())
        )?;
    }
    match body {
        Framing::Length(n) => write!(head, "Content-Length: {n}\r\n")?,
        // The caller names the codings itself when there are others
        // than chunked (see relay::relay_response).
        Framing::Chunked if fields.contains("Transfer-Encoding") => {}
        Framing::Chunked => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::Empty | Framing::UntilClose => {}
    }
    write!(head, "Via: {VIA}\r\n")?;
    match persist {
        Persist::Close => head.extend_from_slice(b"Connection: close\r\n"),
        // HTTP/1.0 clients need to hear that the connection stays open.
        Persist::KeepAlive if client_minor_version == 0 => {
            head.extend_from_slice(b"Connection: keep-alive\r\n")
        }
        Persist::KeepAlive => {}
    }
    head.extend_from_slice(b"\r\n");
    Ok(head)
}
// ANCHOR_END: write_response_head

fn without_framing(fields: &Headers) -> Headers {
    let mut fields = fields.clone();
    fields.remove("Content-Length");
    fields.remove("Transfer-Encoding");
    fields
}

// ANCHOR: write_interim_head
/// Writes an interim (1xx) response on to the client: its fields without
/// the hop-by-hop ones and without framing fields, which a 1xx may not have
/// (RFC 9110 §8.6, RFC 9112 §6.1). Nothing is added: the final response
/// carries our `Via`.
pub fn write_interim_head(out: &mut impl Write, head: &ResponseHead) -> io::Result<()> {
    let mut interim = format!("HTTP/1.1 {} {}\r\n", head.status, head.reason).into_bytes();
    let mut fields = without_framing(&head.headers);
    strip_hop_by_hop(&mut fields);
    fields.write_to(&mut interim)?;
    interim.extend_from_slice(b"\r\n");
    out.write_all(&interim)
}
// ANCHOR_END: write_interim_head

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::parse_absolute;

    #[test]
    fn hop_by_hop_fields_and_named_fields_go() {
        let mut h = Headers::new();
        h.append("Accept", "*/*");
        h.append("Connection", "keep-alive, X-Secret");
        h.append("X-Secret", "1");
        h.append("Proxy-Connection", "keep-alive");
        h.append("Keep-Alive", "timeout=5");
        h.append("TE", "trailers");
        h.append("Upgrade", "websocket");
        h.append("Proxy-Authorization", "Basic eA==");
        h.append("X-Unknown", "kept");
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["Accept", "X-Unknown"]);
    }

    #[test]
    fn via_names_us_after_the_version() {
        assert_eq!(VIA, format!("1.1 {}", crate::NAME));
    }

    #[test]
    fn our_via_entries_are_told_from_another_webproxys() {
        assert!(is_our_via("1.1 webproxy"));
        assert!(is_our_via("1.1 WebProxy"));
        assert!(is_our_via(via_to_parent()));
        assert!(
            !is_our_via("1.1 webproxy (id 00000000)") || via_to_parent().ends_with("00000000)")
        );
        assert!(!is_our_via("1.1 squid (webproxy)"));
        assert!(!is_our_via("webproxy"));
    }

    #[test]
    fn fields_named_by_connection_are_found_in_every_line_and_case() {
        let mut h = Headers::new();
        h.append("Connection", "close, X-Secret");
        h.append("connection", "Keep-Alive");
        assert_eq!(named_by_connection(&h), ["close", "x-secret", "keep-alive"]);
        assert!(named_by_connection(&Headers::new()).is_empty());
    }

    #[test]
    fn upstream_head_is_origin_form_with_host_and_via() {
        let uri = parse_absolute("http://A.test:8080/p?q=1").unwrap();
        let mut original = Headers::new();
        original.append("Host", "wrong.test");
        original.append("User-Agent", "t");
        original.append("Content-Length", "3");
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "POST",
            &uri,
            &request_fields(&original),
            Framing::Length(3),
            false,
            RequestForm::Origin,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "POST /p?q=1 HTTP/1.1\r\nHost: a.test:8080\r\nUser-Agent: t\r\n\
             Content-Length: 3\r\nVia: {VIA}\r\nConnection: close\r\n\r\n"
            )
        );
    }

    #[test]
    fn a_parent_gets_the_whole_uri_and_host() {
        let uri = parse_absolute("http://A.test/p?q=1").unwrap();
        let mut out = Vec::new();
        let fields = Headers::new();
        write_request_head(
            &mut out,
            "GET",
            &uri,
            &fields,
            Framing::Empty,
            true,
            RequestForm::Absolute,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "GET http://a.test/p?q=1 HTTP/1.1\r\nHost: a.test\r\nVia: {}\r\n\r\n",
                via_to_parent()
            )
        );
    }

    #[test]
    fn response_head_reframes_and_adds_date() {
        let mut original = Headers::new();
        original.append("Transfer-Encoding", "chunked");
        original.append("Content-Length", "10");
        original.append("X-A", "1");
        let fields = response_fields(&original, Framing::Chunked);
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            200,
            "OK",
            &fields,
            Framing::Chunked,
            Persist::Close,
            1,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nX-A: 1\r\nDate: "),
            "{text}"
        );
        assert!(text.ends_with(&format!(
            "Transfer-Encoding: chunked\r\nVia: {VIA}\r\nConnection: close\r\n\r\n"
        )));
        assert!(!text.contains("Content-Length"));
    }
}
