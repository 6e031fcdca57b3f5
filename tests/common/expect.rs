//! Assertions on a response that show the wire transcript when they fail.
//!
//! `assert_eq!(response.status, 200)` says `left: 502, right: 200`;
//! `response.expect_status(200)` says `expected status 200, got 502 Bad
//! Gateway` and then what went over the connection (see [`super::wire`]).
//! They return the response, so they chain:
//! `response.expect_status(200).expect_body(b"hello")`.

use std::fmt;

use super::client::Response;
use super::wire::{self, SharedLog};

/// The log of the connection a response came on; shown by the `expect_*`
/// assertions when they fail.
#[derive(Clone)]
pub struct Wire(SharedLog);

impl Wire {
    pub(crate) fn new(log: SharedLog) -> Wire {
        Wire(log)
    }

    /// The connection's transcript so far.
    pub fn transcript(&self) -> String {
        wire::transcript(&self.0)
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wire")
    }
}

impl Response {
    /// Panics with `what` and the transcript of the connection.
    #[track_caller]
    pub fn fail(&self, what: impl fmt::Display) -> ! {
        panic!("{what}\n{}", self.wire.transcript())
    }

    /// Panics with `what` and the transcript unless `ok`.
    #[track_caller]
    pub fn expect(&self, ok: bool, what: impl fmt::Display) -> &Self {
        if !ok {
            self.fail(what);
        }
        self
    }

    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Self {
        self.expect(
            self.status == status,
            format_args!("expected status {status}, got {}", self.status_line()),
        )
    }

    /// `value` None: the field must be absent.
    #[track_caller]
    pub fn expect_header(&self, name: &str, value: Option<&str>) -> &Self {
        let found = self.header(name);
        self.expect(
            found == value,
            format_args!("expected {name}: {value:?}, got {found:?}"),
        )
    }

    #[track_caller]
    pub fn expect_body(&self, body: &[u8]) -> &Self {
        if self.body != body {
            let first = self.body.iter().zip(body).position(|(a, b)| a != b);
            let at = first.unwrap_or(self.body.len().min(body.len()));
            self.fail(format_args!(
                "the body is not what the origin sent: {} bytes arrived of the {} expected, \
                 the first difference at byte {at}",
                self.body.len(),
                body.len()
            ));
        }
        self
    }
}
