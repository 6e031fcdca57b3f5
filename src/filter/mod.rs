//! Stage 5: which hosts clients may reach through the proxy.
//!
//! A forward proxy is a convenient place to enforce a policy, and a 403
//! (RFC 9110 §15.5.4) is the honest answer when it refuses. This module is
//! the policy only; the server decides when to ask and what to send.
//!
//! - [`patterns`]: the rule syntax, one line of a rule file (RFC 1034 §3.1
//!   labels, RFC 3986 §3.2.2 address literals).
//! - [`path`]: request paths normalised as RFC 3986 §6.2.2 allows, so a
//!   path rule cannot be dodged by spelling.
//! - [`rules`]: rule files, label-aligned matching and the decision.
//! - [`refusal`]: the 403 pages and the log line for a refused request.
//! - [`live`]: the rules in force, swapped while worker threads read them.
//! - [`edit`]: adding and removing rules in a file, atomically.
//!
//! Hosts are parsed and normalised in [`crate::uri`], not here: the filter
//! takes a parsed [`crate::uri::Host`].

pub mod edit;
pub mod live;
pub mod path;
pub mod patterns;
pub mod refusal;
pub mod rules;

pub use live::{LiveRules, Watcher};
pub use path::normalize_path;
pub use patterns::{HostPattern, Pattern, PatternError, parse_rule};
pub use refusal::{Refusal, RefusalKind};
pub use rules::{ListKind, Rule, RuleDiff, RuleError, RuleSet, Source, Verdict};
