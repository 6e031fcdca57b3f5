//! Stage 4, exercise 2: may this CONNECT open a tunnel?
//!
//! With `--features ex-4-2`, the function in this file replaces the
//! reference `check_target` in `src/connect.rs`, and everything around it
//! is the reference code: this file is a child module of `connect`, so
//! `use super::*` reaches `uri`, `body`, `Framing` and `PortPolicy`. Hints:
//! `exercises/stage4/HINTS.md`; grade it with `cargo run --bin grade -- 4`.

// Until you write it, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: check_target
/// Checks a CONNECT request before anything is opened.
pub fn check_target(request: &RequestHead, ports: &PortPolicy) -> Result<Authority, HttpError> {
    // TODO(exercise 2): decide whether this CONNECT may open a tunnel, before
    // anything is opened. In this order:
    //
    // 1. The target must be in authority-form, `host:port` (RFC 9112
    //    §3.2.3): `uri::parse_authority_form` answers 400 otherwise.
    // 2. A CONNECT request has no content (RFC 9110 §9.3.6). If its framing
    //    (`body::request_framing`) announces a body, refuse it with a 400:
    //    those bytes would otherwise slip into the tunnel as its first data.
    // 3. The port must be one the policy allows (`ports.allows`): otherwise
    //    403 Forbidden, with a message that names the port and the allowed
    //    ones (`PortPolicy` implements `Display`). A proxy that tunnels
    //    anywhere is a free relay for spam and for reaching services that
    //    trust its address.
    //
    // Return the parsed authority.
    todo!("stage 4, exercise 2: check_target")
}
// ANCHOR_END: check_target
