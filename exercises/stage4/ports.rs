//! Stage 4, exercise 1: the port policy.
//!
//! With `--features ex-4-1`, the functions in this file replace the
//! reference `PortPolicy::parse`, `PortPolicy::allows` and `parse_port` in
//! `src/tunnel/ports.rs`, and everything around them is the reference code:
//! this file is a child module of `tunnel::ports`, so `use super::*`
//! reaches `PortPolicy`'s private `ranges` and `PortListError`. Hints:
//! `exercises/stage4/HINTS.md`; grade it with `cargo run --bin grade -- 4`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: port_policy
impl PortPolicy {
    /// Parses a comma-separated list of ports and ranges: `"443,8443"`,
    /// `"443, 8000-8100"`. Port 0, reversed ranges, empty entries and
    /// anything that is not a decimal number are errors: a typo in an
    /// access rule must stop the proxy from starting, not widen the rule.
    pub fn parse(spec: &str) -> Result<PortPolicy, PortListError> {
        // TODO(exercise 1a): split `spec` on commas; each entry, trimmed, is
        // a port (`443`) or an inclusive range (`8000-8100`), read with
        // `parse_port`. An empty list, an empty entry (`443,`) or a range
        // that runs backwards (`8100-8000`) is an error that says what is
        // wrong. Never skip a bad entry: a typo in an access rule must stop
        // the proxy from starting, not quietly change the rule.
        todo!("stage 4, exercise 1a: PortPolicy::parse")
    }

    /// Is `port` one of the ports the policy lists?
    pub fn allows(&self, port: u16) -> bool {
        // TODO(exercise 1b): is `port` inside one of the ranges?
        todo!("stage 4, exercise 1b: PortPolicy::allows")
    }
}

/// One port of a port list: a decimal number from 1 to 65535.
fn parse_port(text: &str) -> Result<u16, PortListError> {
    // TODO(exercise 1a): a decimal port from 1 to 65535, nothing else: no
    // sign, no spaces inside, no hex, not 0 (it cannot be connected to).
    // Careful: `"+443".parse::<u16>()` is `Ok(443)`.
    todo!("stage 4, exercise 1a: parse_port")
}
// ANCHOR_END: port_policy
