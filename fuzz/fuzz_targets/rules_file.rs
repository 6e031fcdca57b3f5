//! Rule files (`--block`, `--allow`), edited by hand and reloaded while the
//! proxy runs: a bad file must be an error, never a panic.
//!
//! Input: block file, NUL, allow file, NUL, `host[/path]` to check. Beyond
//! "never panics":
//! - each rule's canonical form (used in reload diffs) parses back to it;
//! - each rule matches the host it names, so no rule is silently dead.
#![no_main]

use std::net::IpAddr;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use webproxy::filter::{HostPattern, ListKind, RefusalKind, RuleSet, Source, Verdict, parse_rule};

/// A host that the pattern must cover.
fn host_for(pattern: &HostPattern) -> String {
    match pattern {
        HostPattern::Domain(name) | HostPattern::Exact(name) => name.clone(),
        HostPattern::Subdomains(name) => format!("x.{name}"),
        HostPattern::Address(IpAddr::V4(a)) => a.to_string(),
        HostPattern::Address(IpAddr::V6(a)) => format!("[{a}]"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let block = parts.next().unwrap_or_default();
    let allow = parts.next();
    let query = parts.next().unwrap_or_default();

    let mut sources = vec![Source {
        kind: ListKind::Block,
        file: Path::new("block.rules"),
        text: block,
    }];
    if let Some(allow) = allow {
        sources.push(Source {
            kind: ListKind::Allow,
            file: Path::new("allow.rules"),
            text: allow,
        });
    }
    let Ok(set) = RuleSet::from_sources(&sources) else {
        return;
    };

    let query = String::from_utf8_lossy(query);
    let (host, path) = match query.find('/') {
        Some(i) => (&query[..i], Some(&query[i..])),
        None => (&query[..], None),
    };
    let _ = set.check(&webproxy::uri::normalize_host(host), path);
    assert!(set.diff(&set).is_empty());

    for (kind, rule) in set.rules() {
        assert_eq!(parse_rule(&rule.text).as_ref(), Ok(&rule.pattern));
        let canonical = rule.pattern.to_string();
        assert_eq!(
            parse_rule(&canonical).as_ref(),
            Ok(&rule.pattern),
            "{:?} -> {canonical:?}",
            rule.text
        );

        let host = host_for(&rule.pattern.host);
        let host = webproxy::uri::normalize_host(&host);
        let verdict = set.check(&host, rule.pattern.path.as_deref());
        match (kind, &verdict) {
            (ListKind::Block, Verdict::Block(_)) => {}
            (ListKind::Allow, Verdict::Allow) => {}
            // An allowed host may still be blocked by a block rule.
            (ListKind::Allow, Verdict::Block(refusal))
                if matches!(refusal.reason, RefusalKind::Blocked { .. }) => {}
            _ => panic!(
                "rule {:?} ({kind}) gave {verdict:?} for {host:?}",
                rule.text
            ),
        }
    }
});
