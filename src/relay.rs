//! One request, relayed to the origin and back.
//!
//! This is the heart of every stage: connect to the origin named by the
//! target URI, send the request in origin-form with its body, read the
//! response head, then stream the response body to the client. It is split in
//! two halves, [`send_request`] and [`relay_response`], so that the cache
//! (stage 3) can look at the response head between them and decide whether to
//! keep a copy.
//!
//! Failures map to the statuses RFC 9110 §15.6 gives a gateway: the origin
//! could not be reached or answered nonsense → 502 Bad Gateway (§15.6.3); it
//! did not answer in time → 504 Gateway Timeout (§15.6.5). Once the first byte
//! of a response has gone to the client, it is too late to send an error
//! status: the only honest thing left is to close the connection, so the
//! client sees a truncated body rather than a wrong one.

use std::fmt;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::body::{self, BodyReader, BodyWriter, CopyError, Framing};
use crate::conn::{Conn, HeadError, is_timeout};
use crate::error::HttpError;
use crate::forward::{self, Persist};
use crate::headers::Headers;
use crate::message::{RequestHead, ResponseHead};
use crate::uri::{AbsoluteUri, Authority};

// ANCHOR: timeouts
/// Every timeout the proxy applies. Nothing waits forever: a silent peer
/// must never hold a thread.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// How long to wait for a TCP connection to the origin.
    pub connect: Duration,
    /// How long the origin may stay silent while we wait for its response.
    pub upstream_read: Duration,
    /// How long a client may take to send the rest of a request it started.
    pub client_read: Duration,
    /// How long an idle persistent client connection is kept open.
    pub client_idle: Duration,
    /// How long a write may block before we give up on the peer.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            upstream_read: Duration::from_secs(30),
            client_read: Duration::from_secs(30),
            client_idle: Duration::from_secs(15),
            write: Duration::from_secs(30),
        }
    }
}
// ANCHOR_END: timeouts

/// Why a connection to an upstream host could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// The name did not resolve.
    Resolve(String),
    /// Every address refused or failed.
    Failed(String),
    /// No address answered in time.
    TimedOut,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Resolve(e) => write!(f, "cannot resolve: {e}"),
            ConnectError::Failed(e) => write!(f, "cannot connect: {e}"),
            ConnectError::TimedOut => f.write_str("connecting timed out"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    /// The error response for a plain HTTP request: every connect failure is
    /// a 502, because the origin never answered at all.
    pub fn to_http(&self, authority: &Authority) -> HttpError {
        match self {
            ConnectError::Resolve(e) => {
                HttpError::bad_gateway(format!("cannot resolve {}: {e}", authority.host))
            }
            ConnectError::Failed(e) => {
                HttpError::bad_gateway(format!("cannot connect to {authority}: {e}"))
            }
            ConnectError::TimedOut => {
                HttpError::bad_gateway(format!("connecting to {authority} timed out"))
            }
        }
    }
}

// ANCHOR: connect
/// Resolves `authority` and connects to the first address that answers.
pub fn connect(authority: &Authority, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<_> = (authority.host.to_lookup().as_str(), authority.port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Resolve(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Resolve("no addresses".into()));
    }
    let mut last = ConnectError::TimedOut;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if is_timeout(&e) => last = ConnectError::TimedOut,
            Err(e) => last = ConnectError::Failed(e.to_string()),
        }
    }
    Err(last)
}
// ANCHOR_END: connect

/// What happened to one exchange, for the access log.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub status: u16,
    /// Bytes written to the client, head included.
    pub bytes: u64,
    pub persist: Persist,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum RelayError {
    /// Nothing has been sent to the client yet: answer with this error.
    Http(HttpError),
    /// The response had started (or the client vanished): log the reason
    /// and close the connection.
    Aborted {
        status: u16,
        bytes: u64,
        why: String,
    },
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::Http(e) => e.fmt(f),
            RelayError::Aborted { status, bytes, why } => {
                write!(f, "{status} response aborted after {bytes} bytes: {why}")
            }
        }
    }
}

impl std::error::Error for RelayError {}

impl From<HttpError> for RelayError {
    fn from(e: HttpError) -> Self {
        RelayError::Http(e)
    }
}

/// Checks what `Expect` asks for. We answer `100-continue` ourselves
/// (RFC 9110 §10.1.1) and refuse expectations we do not know.
pub fn expects_continue(request: &RequestHead) -> Result<bool, HttpError> {
    match request.headers.get_str("Expect") {
        None => Ok(false),
        Some(v) if v.trim().eq_ignore_ascii_case("100-continue") => Ok(true),
        Some(v) => Err(HttpError::new(
            417,
            format!("unsupported expectation {v:?}"),
        )),
    }
}

/// The origin's answer to a request we sent, ready to be relayed.
pub struct Exchange {
    pub upstream: Conn,
    pub head: ResponseHead,
    /// False when the origin answered before it took the whole request
    /// body (a 413, say, and a closed socket). The rest of that body is
    /// still on the client connection, so it must close after the answer.
    pub client_body_done: bool,
}

// ANCHOR: send_request
/// Connects to the origin, sends the request and its body, and reads the
/// response head. `fields` are the request fields to send (from
/// [`forward::request_fields`], perhaps with additions).
pub fn send_request(
    client: &mut Conn,
    request: &RequestHead,
    uri: &AbsoluteUri,
    fields: &Headers,
    timeouts: &Timeouts,
) -> Result<Exchange, HttpError> {
    let framing = body::request_framing(request)?;
    let expect_continue = expects_continue(request)?;

    let stream =
        connect(&uri.authority, timeouts.connect).map_err(|e| e.to_http(&uri.authority))?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(timeouts.upstream_read));
    let _ = stream.set_write_timeout(Some(timeouts.write));
    let mut upstream = Conn::new(stream);

    let upstream_gone =
        |e: io::Error| HttpError::bad_gateway(format!("sending the request upstream failed: {e}"));
    forward::write_request_head(&mut upstream, &request.method, uri, fields, framing)
        .map_err(upstream_gone)?;
    let mut client_body_done = true;
    if framing != Framing::Empty {
        if expect_continue && request.minor_version >= 1 {
            client
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|e| HttpError::bad_request(format!("client went away: {e}")))?;
        }
        let mut from = BodyReader::new(client, framing);
        let mut to = BodyWriter::new(&mut upstream, framing);
        match body::copy_body(&mut from, &mut to, |_| {}) {
            Ok(_) => {}
            Err(CopyError::Read(e)) if is_timeout(&e) => {
                return Err(HttpError::new(408, "timed out reading the request body"));
            }
            Err(CopyError::Read(e)) => {
                return Err(HttpError::bad_request(format!("bad request body: {e}")));
            }
            // The origin stopped reading. It may have answered already
            // (413 Content Too Large, 401, ...): that answer, not a 502, is
            // what the client should see. Only with no answer is it a 502.
            Err(CopyError::Write(e)) => {
                log::debug!("origin stopped reading the request body: {e}");
                client_body_done = false;
            }
        }
    }
    let head = match read_final_response_head(&mut upstream, client, request) {
        Ok(head) => head,
        Err(_) if !client_body_done => {
            return Err(upstream_gone(io::Error::other(
                "the origin stopped reading the body",
            )));
        }
        Err(e) => return Err(e),
    };
    Ok(Exchange {
        upstream,
        head,
        client_body_done,
    })
}
// ANCHOR_END: send_request

// ANCHOR: read_final_response_head
/// Reads response heads until a final (non-1xx) one arrives. Interim
/// responses are passed on to HTTP/1.1 clients (RFC 9110 §15.2), except
/// `100 Continue`, which we already answered ourselves.
fn read_final_response_head(
    upstream: &mut Conn,
    client: &mut Conn,
    request: &RequestHead,
) -> Result<ResponseHead, HttpError> {
    loop {
        let head = match upstream.read_response_head() {
            Ok(head) => head,
            Err(HeadError::Closed) => {
                return Err(HttpError::bad_gateway(
                    "origin closed the connection without answering",
                ));
            }
            Err(HeadError::Idle) => {
                return Err(HttpError::gateway_timeout("origin did not answer in time"));
            }
            Err(HeadError::Http(e)) if e.status == 408 => {
                return Err(HttpError::gateway_timeout(
                    "origin stopped in the middle of its response head",
                ));
            }
            Err(HeadError::Http(e)) => return Err(HttpError::bad_gateway(e.detail)),
            Err(HeadError::Io(e)) => {
                return Err(HttpError::bad_gateway(format!(
                    "reading the origin's response failed: {e}"
                )));
            }
        };
        match head.status {
            101 => return Err(HttpError::bad_gateway("origin switched protocols unasked")),
            100 => continue,
            102..=199 => {
                if request.minor_version >= 1 {
                    let mut interim =
                        format!("HTTP/1.1 {} {}\r\n", head.status, head.reason).into_bytes();
                    let mut fields = head.headers.clone();
                    forward::strip_hop_by_hop(&mut fields);
                    let _ = fields.write_to(&mut interim);
                    interim.extend_from_slice(b"\r\n");
                    client
                        .write_all(&interim)
                        .map_err(|e| HttpError::bad_request(format!("client went away: {e}")))?;
                }
            }
            _ => return Ok(head),
        }
    }
}
// ANCHOR_END: read_final_response_head

// ANCHOR: relay_response
/// Streams the response to the client. `keep_alive` says whether the server
/// would keep the client connection open; the client, the framing and an
/// unfinished request body can still force a close. `tap` sees every body
/// byte on its way (the cache keeps a copy through it); the result says
/// whether the body was complete.
pub fn relay_response(
    client: &mut Conn,
    request: &RequestHead,
    exchange: &mut Exchange,
    extra_fields: &Headers,
    keep_alive: bool,
    tap: impl FnMut(&[u8]),
) -> Result<Outcome, RelayError> {
    let keep_alive = keep_alive && exchange.client_body_done;
    let (upstream, head) = (&mut exchange.upstream, &exchange.head);
    let upstream_framing = body::response_framing(request.method == "HEAD", head)
        .map_err(|e| HttpError::bad_gateway(format!("bad response framing: {e}")))?;
    let framing = forward::client_framing(upstream_framing, request.minor_version);
    let persist = if keep_alive && request.wants_keep_alive() && framing != Framing::UntilClose {
        Persist::KeepAlive
    } else {
        Persist::Close
    };
    let mut fields = forward::response_fields(&head.headers, framing);
    let codings = body::other_transfer_codings(&head.headers);
    if !codings.is_empty() && framing != Framing::Empty {
        if request.minor_version == 0 {
            // HTTP/1.0 has no Transfer-Encoding: this body cannot be sent.
            let why = format!("the origin used transfer coding {codings:?}, which HTTP/1.0 lacks");
            return Err(HttpError::bad_gateway(why).into());
        }
        let mut value = codings.join(", ");
        if framing == Framing::Chunked {
            value.push_str(", chunked");
        }
        fields.append("Transfer-Encoding", value);
    }
    for f in extra_fields {
        fields.append(&f.name, f.value.clone());
    }
    let status = head.status;
    let head_bytes = forward::write_response_head(
        client,
        status,
        &head.reason,
        &fields,
        framing,
        persist,
        request.minor_version,
    )
    .map_err(|e| RelayError::Aborted {
        status,
        bytes: 0,
        why: format!("client went away: {e}"),
    })?;

    let mut from = BodyReader::new(upstream, upstream_framing);
    let mut to = BodyWriter::new(client, framing);
    let result = body::copy_body(&mut from, &mut to, tap);
    let bytes = head_bytes + to.written;
    match result {
        Ok(_) => Ok(Outcome {
            status,
            bytes,
            persist,
        }),
        Err(CopyError::Read(e)) => Err(RelayError::Aborted {
            status,
            bytes,
            why: format!("origin response body broken: {e}"),
        }),
        Err(CopyError::Write(e)) => Err(RelayError::Aborted {
            status,
            bytes,
            why: format!("client went away: {e}"),
        }),
    }
}
// ANCHOR_END: relay_response

// ANCHOR: forward
/// Relays one request to its origin and the response back: the whole job
/// of stages 1 and 2.
pub fn forward(
    client: &mut Conn,
    request: &RequestHead,
    uri: &AbsoluteUri,
    timeouts: &Timeouts,
    keep_alive: bool,
) -> Result<Outcome, RelayError> {
    let fields = forward::request_fields(&request.headers);
    let mut exchange = send_request(client, request, uri, &fields, timeouts)?;
    relay_response(
        client,
        request,
        &mut exchange,
        &Headers::new(),
        keep_alive,
        |_| {},
    )
}
// ANCHOR_END: forward
