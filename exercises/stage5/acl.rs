//! Stage 5, exercise 2: who may use the proxy?
//!
//! With `--features ex-5-2`, the functions in this file replace the
//! reference CIDR matching in `src/acl.rs` (`mask_v4`, `mask_v6`,
//! `Net::contains`, `ClientAcl::allows`), and everything around them is the
//! reference code: this file is a child module of `acl`, so `use super::*`
//! reaches the private `Net` and `ClientAcl`'s networks. The helpers are
//! `pub(super)` so that `src/acl.rs` (its parser) can call them. Hints:
//! `exercises/stage5/HINTS.md`; grade it with `cargo run --bin grade -- 5`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: cidr
/// The netmask of a /`prefix` IPv4 network.
pub(super) fn mask_v4(prefix: u8) -> u32 {
    // TODO(exercise 2a): the netmask of a /`prefix` IPv4 network: the top
    // `prefix` bits set, the rest clear (RFC 4632 §3.1). /0 is all zeros,
    // /32 all ones. Careful: shifting a u32 by 32 is an overflow in Rust
    // (a panic in a debug build); `checked_shl` says so instead.
    todo!("stage 5, exercise 2a: mask_v4")
}

/// The netmask of a /`prefix` IPv6 network.
pub(super) fn mask_v6(prefix: u8) -> u128 {
    // TODO(exercise 2a): the same for IPv6, 128 bits (RFC 4291 §2.3).
    todo!("stage 5, exercise 2a: mask_v6")
}

impl Net {
    /// Is `ip` inside this network?
    pub(super) fn contains(self, ip: IpAddr) -> bool {
        // TODO(exercise 2b): `ip` is in the network when its top `prefix`
        // bits equal the network's (`base` has its host bits zero already).
        // An IPv4 network never contains an IPv6 address, nor the reverse.
        todo!("stage 5, exercise 2b: Net::contains")
    }
}
// ANCHOR_END: cidr

// ANCHOR: acl_allows
impl ClientAcl {
    /// Whether a client at `ip` may use the proxy.
    pub fn allows(&self, ip: IpAddr) -> bool {
        // TODO(exercise 2c): allowed when any network contains the client.
        // A dual-stack socket reports an IPv4 client as an IPv4-mapped IPv6
        // address, `::ffff:10.1.2.3` (RFC 4291 §2.5.5.2): check it as the
        // IPv4 address it is (`IpAddr::to_canonical`), so that `10.0.0.0/8`
        // means the same on either kind of socket.
        todo!("stage 5, exercise 2c: ClientAcl::allows")
    }
}
// ANCHOR_END: acl_allows
