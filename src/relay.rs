//! One request, relayed to the origin and back.
//!
//! This is the heart of every stage: connect to the origin named by the
//! target URI (or to a parent proxy, which the [`Connector`] decides), send
//! the request with its body, read the response head, then stream the
//! response body to the client. It is split in
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

use crate::body::{self, BodyReader, BodyWriter, CopyError, Framing};
use crate::conn::{Conn, HeadError, is_timeout};
use crate::dial::Connector;
use crate::error::HttpError;
use crate::forward::{self, Persist, RequestForm};
use crate::headers::{Headers, trim_ows};
use crate::message::{RequestHead, ResponseHead};
use crate::uri::{AbsoluteUri, Authority};
use std::fmt;
use std::io::{self, Write};

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
        Some(v) if trim_ows(v).eq_ignore_ascii_case("100-continue") => Ok(true),
        Some(v) => Err(HttpError::new(
            417,
            format!("unsupported expectation {v:?}"),
        )),
    }
}

/// The origin's answer to a request we sent, ready to be relayed.
///
/// When the exchange ends (the value is dropped), its upstream connection
/// goes back to the connector if the response was read to its end and
/// neither side asked to close; otherwise it is closed.
pub struct Exchange<'a> {
    upstream: Option<Conn>,
    pub head: ResponseHead,
    /// False when the origin answered before it took the whole request
    /// body (a 413, say, and a closed socket). The rest of that body is
    /// still on the client connection, so it must close after the answer.
    pub client_body_done: bool,
    connector: &'a dyn Connector,
    authority: Authority,
    /// Set once the response has been read completely and the connection
    /// may carry another request.
    reusable: bool,
}

impl Exchange<'_> {
    /// May the upstream connection carry another request, now that this
    /// response (framed as `framing`) has been read to its end?
    fn may_reuse(&self, framing: Framing) -> bool {
        let clean = self
            .upstream
            .as_ref()
            .is_some_and(|c| c.buffered().is_empty());
        self.connector.keeps_connections()
            && self.client_body_done
            && framing != Framing::UntilClose
            && self.head.allows_reuse()
            && clean
    }
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.upstream.take()
            && self.reusable
        {
            self.connector.checkin(&self.authority, conn);
        }
    }
}

/// Methods whose request can be sent twice with the effect of once
/// (RFC 9110 §9.2.2): only these may be retried on a new connection.
fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// How one attempt at an exchange failed.
enum Attempt {
    /// Nothing came back at all: the request may not have reached the
    /// origin, and a kept connection may simply have been closed by it.
    NoAnswer(HttpError),
    /// Anything else, including a failure after the first response byte.
    Failed(HttpError),
}

// ANCHOR: send_request
/// Sends the request and its body on a connection from `connector`, and
/// reads the response head. `fields` are the request fields to send (from
/// [`forward::request_fields`], perhaps with additions).
///
/// A kept connection may have been closed by the origin while it sat idle;
/// the only sign is that nothing comes back. Then an idempotent request
/// without a body is sent once more on a new connection (RFC 9112 §9.3.1);
/// anything else gets its 502.
pub fn send_request<'a>(
    client: &mut Conn,
    request: &RequestHead,
    uri: &AbsoluteUri,
    fields: &Headers,
    connector: &'a dyn Connector,
) -> Result<Exchange<'a>, HttpError> {
    let framing = body::request_framing(request)?;
    let expect_continue = expects_continue(request)?;
    let keep = connector.keeps_connections();
    let form = connector.request_form();

    let (mut upstream, reused) = connector.checkout(&uri.authority)?;
    let mut result = attempt(
        &mut upstream,
        client,
        request,
        uri,
        fields,
        framing,
        expect_continue,
        keep,
        form,
    );
    if reused
        && framing == Framing::Empty
        && is_idempotent(&request.method)
        && matches!(result, Err(Attempt::NoAnswer(_)))
    {
        log::debug!(
            "{}: kept connection was closed; retrying on a new one",
            uri.authority
        );
        upstream = connector.fresh(&uri.authority)?;
        result = attempt(
            &mut upstream,
            client,
            request,
            uri,
            fields,
            framing,
            expect_continue,
            keep,
            form,
        );
    }
    let (head, client_body_done) = match result {
        Ok(answer) => answer,
        Err(Attempt::NoAnswer(e) | Attempt::Failed(e)) => return Err(e),
    };
    let mut exchange = Exchange {
        upstream: Some(upstream),
        head,
        client_body_done,
        connector,
        authority: uri.authority.clone(),
        reusable: false,
    };
    // A response without a body is complete once its head is read.
    if body::response_framing(request.method == "HEAD", &exchange.head) == Ok(Framing::Empty) {
        exchange.reusable = exchange.may_reuse(Framing::Empty);
    }
    Ok(exchange)
}
// ANCHOR_END: send_request

/// One try: the request head and body out, the final response head in.
#[allow(clippy::too_many_arguments)]
fn attempt(
    upstream: &mut Conn,
    client: &mut Conn,
    request: &RequestHead,
    uri: &AbsoluteUri,
    fields: &Headers,
    framing: Framing,
    expect_continue: bool,
    keep_alive: bool,
    form: RequestForm,
) -> Result<(ResponseHead, bool), Attempt> {
    let upstream_gone =
        |e: io::Error| HttpError::bad_gateway(format!("sending the request upstream failed: {e}"));
    forward::write_request_head(
        upstream,
        &request.method,
        uri,
        fields,
        framing,
        keep_alive,
        form,
    )
    .map_err(|e| Attempt::NoAnswer(upstream_gone(e)))?;
    let mut client_body_done = true;
    if framing != Framing::Empty {
        if expect_continue && request.minor_version >= 1 {
            client
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|e| {
                    Attempt::Failed(HttpError::bad_request(format!("client went away: {e}")))
                })?;
        }
        let mut from = BodyReader::new(client, framing);
        let mut to = BodyWriter::new(upstream, framing);
        match body::copy_body(&mut from, &mut to, |_| {}) {
            Ok(_) => {}
            Err(CopyError::Read(e)) if is_timeout(&e) => {
                let e = HttpError::new(408, "timed out reading the request body");
                return Err(Attempt::Failed(e));
            }
            Err(CopyError::Read(e)) => {
                let e = HttpError::bad_request(format!("bad request body: {e}"));
                return Err(Attempt::Failed(e));
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
    match read_final_response_head(upstream, client, request) {
        Ok(head) => Ok((head, client_body_done)),
        Err(_) if !client_body_done => Err(Attempt::Failed(upstream_gone(io::Error::other(
            "the origin stopped reading the body",
        )))),
        Err(e) => Err(e),
    }
}

/// The most interim responses we take before the final one. Origins send
/// one or two (`100 Continue`, `103 Early Hints`); an origin that keeps
/// sending them would hold a worker for as long as it liked.
const MAX_INTERIM: usize = 32;

// ANCHOR: read_final_response_head
/// Reads response heads until a final (non-1xx) one arrives. Interim
/// responses are passed on to HTTP/1.1 clients (RFC 9110 §15.2), except
/// `100 Continue`, which we already answered ourselves.
fn read_final_response_head(
    upstream: &mut Conn,
    client: &mut Conn,
    request: &RequestHead,
) -> Result<ResponseHead, Attempt> {
    // Interim responses so far: none means the origin has not answered.
    let mut interim = 0;
    loop {
        let head = match upstream.read_response_head() {
            Ok(head) => head,
            Err(HeadError::Closed) if interim == 0 => {
                return Err(Attempt::NoAnswer(HttpError::bad_gateway(
                    "origin closed the connection without answering",
                )));
            }
            Err(HeadError::Closed) => {
                return Err(Attempt::Failed(HttpError::bad_gateway(
                    "origin closed the connection without a final answer",
                )));
            }
            Err(HeadError::Io(e)) if interim == 0 && upstream.buffered().is_empty() => {
                return Err(Attempt::NoAnswer(HttpError::bad_gateway(format!(
                    "reading the origin's response failed: {e}"
                ))));
            }
            Err(HeadError::Idle) => {
                let e = HttpError::gateway_timeout("origin did not answer in time");
                return Err(Attempt::Failed(e));
            }
            Err(HeadError::Http(e)) if e.status == 408 => {
                return Err(Attempt::Failed(HttpError::gateway_timeout(
                    "origin stopped in the middle of its response head",
                )));
            }
            Err(HeadError::Http(e)) => {
                return Err(Attempt::Failed(HttpError::bad_gateway(e.detail)));
            }
            Err(HeadError::Io(e)) => {
                return Err(Attempt::Failed(HttpError::bad_gateway(format!(
                    "reading the origin's response failed: {e}"
                ))));
            }
        };
        match head.status {
            101 => {
                let e = HttpError::bad_gateway("origin switched protocols unasked");
                return Err(Attempt::Failed(e));
            }
            100..=199 if interim == MAX_INTERIM => {
                let why = format!("origin sent more than {MAX_INTERIM} interim responses");
                return Err(Attempt::Failed(HttpError::bad_gateway(why)));
            }
            100..=199 => {
                interim += 1;
                if head.status != 100 && request.minor_version >= 1 {
                    forward::write_interim_head(client, &head).map_err(|e| {
                        Attempt::Failed(HttpError::bad_request(format!("client went away: {e}")))
                    })?;
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
    exchange: &mut Exchange<'_>,
    extra_fields: &Headers,
    keep_alive: bool,
    tap: impl FnMut(&[u8]),
) -> Result<Outcome, RelayError> {
    let keep_alive = keep_alive && exchange.client_body_done;
    let head = &exchange.head;
    let Some(upstream) = exchange.upstream.as_mut() else {
        return Err(HttpError::bad_gateway("the upstream connection is gone").into());
    };
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
    // No body (a 204, a 304, a HEAD): nothing to copy, only the head to
    // flush. Keeping the relay loop out of it also lets the tests of the
    // request target pass before the loop (stage 1, exercise 2) is written.
    let result = if upstream_framing == Framing::Empty {
        to.finish().map(|()| 0).map_err(CopyError::Write)
    } else {
        body::copy_body(&mut from, &mut to, tap)
    };
    let bytes = head_bytes + to.written;
    match result {
        Ok(_) => {
            exchange.reusable = exchange.may_reuse(upstream_framing);
            Ok(Outcome {
                status,
                bytes,
                persist,
            })
        }
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
    connector: &dyn Connector,
    keep_alive: bool,
) -> Result<Outcome, RelayError> {
    let fields = forward::request_fields(&request.headers);
    let mut exchange = send_request(client, request, uri, &fields, connector)?;
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
