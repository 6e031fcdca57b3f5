//! Stage 5: which hosts clients may reach through the proxy.
//!
//! A forward proxy is a convenient place to enforce a policy, and a 403
//! (RFC 9110 §15.5.4) is the honest answer when it refuses. This module is
//! the policy only; the server decides when to ask and what to send.
//!
//! - [`rules`]: the rule syntax, label-aligned matching and the decision.
//! - [`live`]: the rules in force, swapped while worker threads read them.
//! - [`edit`]: adding and removing rules in a file, atomically.

pub mod edit;
#[cfg_attr(feature = "starter-stage5", path = "../../exercises/stage5/live.rs")]
pub mod live;
#[cfg_attr(feature = "starter-stage5", path = "../../exercises/stage5/rules.rs")]
pub mod rules;

pub use live::{LiveRules, Watcher};
pub use rules::{
    HostPattern, ListKind, Pattern, Refusal, RefusalKind, Rule, RuleDiff, RuleError, RuleSet,
    Source, Verdict, normalize_path, parse_rule,
};
