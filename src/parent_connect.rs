//! CONNECT through a parent proxy (stage 4).
//!
//! With parents configured ([`crate::parent`]), a tunnel cannot start with
//! a TCP connection to the target: only the parent may reach it. So we ask
//! the parent the way our client asked us, `CONNECT host:port HTTP/1.1`
//! (RFC 9110 §9.3.6), and read its answer:
//!
//! - **2xx:** the parent has connected and from the end of its response
//!   head on, the connection is the tunnel. Bytes that came right after the
//!   head are the target's, and go to the client first. A 2xx to CONNECT
//!   has no body, whatever framing fields it carries (§9.3.6).
//! - **anything else:** the client gets a 502 Bad Gateway naming the parent
//!   and quoting its status line, not the parent's status itself. The
//!   parent's answer is about the hop between the two proxies, where the
//!   client can do nothing: a `407` asks for credentials the client cannot
//!   send to the parent through us (Proxy-Authorization is hop-by-hop), and
//!   a `403` is the parent's policy, not ours. 502 says what happened from
//!   the client's side, "a proxy further in got a bad answer" (§15.6.3), and
//!   the body says which.
//!
//! The CONNECT we send carries the client's end-to-end fields and our `Via`
//! entry (§7.6.3), so a chain of proxies that tunnels in a circle is caught
//! by the loop check of stage 5 like a plain request is.

use std::io::Write;
use std::net::TcpStream;

use crate::conn::HeadError;
use crate::dial::Timeouts;
use crate::error::HttpError;
use crate::forward;
use crate::message::RequestHead;
use crate::parent::Parents;
use crate::uri::Authority;

// ANCHOR: open
/// A tunnel to `authority` through the first parent that answers, and the
/// bytes that came through it after the parent's 2xx. `request` is the
/// client's CONNECT, whose fields travel on.
pub fn open(
    parents: &Parents,
    request: &RequestHead,
    authority: &Authority,
    timeouts: &Timeouts,
) -> Result<(TcpStream, Vec<u8>), HttpError> {
    let (mut conn, parent) = parents.open(timeouts)?;
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    let sent = forward::request_fields(&request.headers)
        .write_to(&mut head)
        .and_then(|()| write!(head, "Via: {}\r\n\r\n", forward::via_to_parent()))
        .and_then(|()| conn.write_all(&head));
    if let Err(e) = sent {
        let why = format!("sending CONNECT to parent proxy {parent} failed: {e}");
        return Err(HttpError::bad_gateway(why));
    }
    let answer = match conn.read_response_head() {
        Ok(answer) => answer,
        Err(e) => return Err(no_answer(parent, e)),
    };
    if !(200..300).contains(&answer.status) {
        return Err(HttpError::bad_gateway(format!(
            "parent proxy {parent} refused CONNECT {authority}: {} {}",
            answer.status, answer.reason
        )));
    }
    log::debug!("CONNECT {authority}: tunnel through parent proxy {parent}");
    Ok(conn.into_parts())
}
// ANCHOR_END: open

/// The error for a parent that gave no usable answer: a 504 when it was
/// too slow, as for an origin (RFC 9110 §15.6.5), else a 502.
fn no_answer(parent: &Authority, e: HeadError) -> HttpError {
    match e {
        HeadError::Idle => {
            HttpError::gateway_timeout(format!("parent proxy {parent} did not answer CONNECT"))
        }
        HeadError::Http(e) if e.status == 408 => HttpError::gateway_timeout(format!(
            "parent proxy {parent} stopped in the middle of its answer to CONNECT"
        )),
        HeadError::Closed => HttpError::bad_gateway(format!(
            "parent proxy {parent} closed the connection without answering CONNECT"
        )),
        HeadError::Http(e) => HttpError::bad_gateway(format!(
            "parent proxy {parent} answered CONNECT with nonsense: {}",
            e.detail
        )),
        HeadError::Io(e) => HttpError::bad_gateway(format!(
            "reading parent proxy {parent}'s answer to CONNECT failed: {e}"
        )),
    }
}
