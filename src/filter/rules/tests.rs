//! Unit tests of the rule set: matching, block against allow, the rules file
//! and its errors.

use super::*;
use crate::uri::normalize_host;

/// `rules.check` for a host written as a client may write it.
fn check(rules: &RuleSet, host: &str, path: Option<&str>) -> Verdict {
    rules.check(&normalize_host(host), path)
}

fn set(block: &str, allow: Option<&str>) -> RuleSet {
    let mut sources = vec![Source {
        kind: ListKind::Block,
        file: Path::new("block.txt"),
        text: block.as_bytes(),
    }];
    if let Some(allow) = allow {
        sources.push(Source {
            kind: ListKind::Allow,
            file: Path::new("allow.txt"),
            text: allow.as_bytes(),
        });
    }
    match RuleSet::from_sources(&sources) {
        Ok(set) => set,
        Err(e) => panic!("test rules do not parse: {e}"),
    }
}

/// One block rule, one request, blocked or not.
#[test]
fn matching_table() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, Option<&str>, bool)] = &[
        // Label alignment: a rule covers the name and names below it.
        ("example.com", "example.com", None, true),
        ("example.com", "www.example.com", None, true),
        ("example.com", "a.b.example.com", None, true),
        ("example.com", "notexample.com", None, false),
        ("example.com", "example.com.evil.net", None, false),
        ("example.com", "example.org", None, false),
        ("example.com", "com", None, false),
        ("ads", "ads.example.com", None, false),
        // Exact and subdomain-only rules.
        ("=example.com", "example.com", None, true),
        ("=example.com", "www.example.com", None, false),
        ("*.example.com", "example.com", None, false),
        ("*.example.com", "www.example.com", None, true),
        ("*.example.com", "a.b.example.com", None, true),
        ("*.example.com", "notexample.com", None, false),
        // Case and trailing dots, on either side.
        ("Example.COM", "www.example.com", None, true),
        ("example.com", "WWW.EXAMPLE.COM", None, true),
        ("example.com.", "example.com", None, true),
        ("example.com", "example.com.", None, true),
        ("=example.com", "Example.Com.", None, true),
        // A port on the host is not part of the name.
        ("example.com", "example.com:443", None, true),
        ("=example.com", "example.com:8080", None, true),
        // IPv4 literals: that address only, however it is spelled.
        ("10.1.2.3", "10.1.2.3", None, true),
        ("10.1.2.3", "10.1.2.4", None, false),
        ("10.1.2.3", "1.10.1.2.3", None, false),
        ("10.1.2.3", "167838211", None, true),
        ("10.1.2.3", "0xa.1.2.3", None, true),
        ("10.1.2.3", "012.1.2.3", None, true),
        ("10.1.2.3", "10.1.515", None, true),
        ("10.1.2.3", "10.1.2.3:80", None, true),
        ("10.1.2.3", "[::ffff:10.1.2.3]", None, true),
        // IPv6 literals, compared as addresses.
        ("[::1]", "[::1]", None, true),
        ("[::1]", "[0:0::1]", None, true),
        ("[::1]", "::1", None, true),
        ("[::1]", "[::1]:8080", None, true),
        ("[0:0:0:0:0:0:0:1]", "[::1]", None, true),
        ("[::1]", "[::2]", None, false),
        ("[2001:db8::1]", "[2001:DB8::1]", None, true),
        ("[::ffff:10.1.2.3]", "10.1.2.3", None, true),
        // Path prefixes apply to plain HTTP only.
        ("example.com/ads/", "example.com", Some("/ads/banner.gif"), true),
        ("example.com/ads/", "www.example.com", Some("/ads/x"), true),
        ("example.com/ads/", "example.com", Some("/news/"), false),
        ("example.com/ads/", "example.com", Some("/ads"), false),
        ("example.com/ads/", "example.com", None, false),
        ("example.com/ads/", "notexample.com", Some("/ads/x"), false),
        ("example.com/ads/", "example.com", Some("/%61ds/x"), true),
        ("example.com/ads/", "example.com", Some("/x/../ads/y"), true),
        ("example.com/ads/", "example.com", Some("/./ads/y?q=1"), true),
        ("example.com/ads/", "example.com", Some("/ADS/x"), false),
        ("example.com/a%2fb", "example.com", Some("/a%2Fb"), true),
        ("example.com/a%2fb", "example.com", Some("/a/b"), false),
        ("example.com/?q", "example.com", Some("/?q=1"), true),
        ("=example.com/x", "www.example.com", Some("/x"), false),
        ("10.1.2.3/x", "10.1.2.3", Some("/x/y"), true),
        ("10.1.2.3/x", "10.1.2.3", None, false),
        ("example.com", "example.com", Some("/anything"), true),
    ];
    for &(rule, host, path, blocked) in cases {
        let rules = set(rule, None);
        let verdict = check(&rules, host, path);
        assert_eq!(
            !verdict.is_allowed(),
            blocked,
            "rule {rule:?}, host {host:?}, path {path:?}: {verdict:?}"
        );
    }
}

#[test]
fn files_allow_comments_blank_lines_and_crlf() {
    let text = "# ads\r\n\r\nads.example.com\r\n  tracker.example.net   # trailing comment\r\n\t\r\n=exact.example.org\r\n# last line has no newline\r\n[::1]";
    let rules = set(text, None);
    assert_eq!(rules.len(), 4);
    assert!(!check(&rules, "ads.example.com", None).is_allowed());
    assert!(!check(&rules, "x.tracker.example.net", None).is_allowed());
    assert!(!check(&rules, "exact.example.org", None).is_allowed());
    assert!(!check(&rules, "[::1]", None).is_allowed());
    assert!(check(&rules, "example.com", None).is_allowed());
    // The line number of the rule is the one a text editor shows.
    match check(&rules, "tracker.example.net", None) {
        Verdict::Block(Refusal {
            reason: RefusalKind::Blocked { rule, line, file },
            ..
        }) => {
            assert_eq!(rule, "tracker.example.net");
            assert_eq!(line, 4);
            assert_eq!(file, Path::new("block.txt"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_rule() {
    let rules = set("\u{feff}example.com\n", None);
    assert!(!check(&rules, "example.com", None).is_allowed());
}

#[test]
fn errors_carry_file_and_line() {
    let sources = [
        Source {
            kind: ListKind::Block,
            file: Path::new("good.txt"),
            text: b"example.com\n",
        },
        Source {
            kind: ListKind::Allow,
            file: Path::new("lists/allow.txt"),
            text: b"# fine\r\nok.example\r\nbad..example # oops\r\n",
        },
    ];
    let err = match RuleSet::from_sources(&sources) {
        Ok(_) => panic!("a bad line was accepted"),
        Err(e) => e,
    };
    assert_eq!(err.file, Path::new("lists/allow.txt"));
    assert_eq!(err.line, Some(3));
    let shown = err.to_string();
    assert!(
        shown.starts_with("lists/allow.txt:3: bad rule \"bad..example\""),
        "{shown}"
    );
    assert!(!shown.contains('\n'));

    let not_utf8 = [Source {
        kind: ListKind::Block,
        file: Path::new("b.txt"),
        text: b"a.example\n\xff\xfe\n",
    }];
    match RuleSet::from_sources(&not_utf8) {
        Err(e) => assert_eq!((e.line, e.message.as_str()), (Some(2), "not UTF-8 text")),
        Ok(_) => panic!("bytes that are not UTF-8 were accepted"),
    }
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let missing = std::env::temp_dir().join(format!("{}-no-such-rule-file.txt", crate::NAME));
    match RuleSet::load(std::slice::from_ref(&missing), &[]) {
        Err(e) => {
            assert_eq!(e.file, missing);
            assert_eq!(e.line, None);
        }
        Ok(_) => panic!("a missing file was accepted"),
    }
}

#[test]
fn block_wins_over_allow() {
    let rules = set("ads.example.com\n", Some("example.com\n"));
    assert!(rules.allow_list_mode());
    assert!(check(&rules, "www.example.com", None).is_allowed());
    assert!(check(&rules, "example.com", None).is_allowed());
    match check(&rules, "x.ads.example.com", None) {
        Verdict::Block(r) => {
            assert!(matches!(r.reason, RefusalKind::Blocked { line: 1, .. }))
        }
        Verdict::Allow => panic!("block rule lost to the allow rule"),
    }
}

#[test]
fn allow_list_mode_refuses_everything_else() {
    let rules = set(
        "",
        Some("example.com\n=docs.rs\n10.0.0.1\nexample.net/public/\n"),
    );
    assert!(check(&rules, "a.example.com", None).is_allowed());
    assert!(check(&rules, "docs.rs", None).is_allowed());
    assert!(check(&rules, "10.0.0.1", None).is_allowed());
    assert!(check(&rules, "example.net", Some("/public/a")).is_allowed());
    for (host, path) in [
        ("notexample.com", None),
        ("www.docs.rs", None),
        ("10.0.0.2", None),
        ("example.net", Some("/private")),
        // The path of a tunnel is unknown, so a path rule cannot allow it.
        ("example.net", None),
    ] {
        match check(&rules, host, path) {
            Verdict::Block(r) => {
                assert_eq!(
                    r.reason,
                    RefusalKind::NotAllowed {
                        allow_files: vec![PathBuf::from("allow.txt")]
                    }
                );
                assert!(r.to_string().contains("not on the allow list (allow.txt)"));
            }
            Verdict::Allow => panic!("{host} {path:?} was allowed"),
        }
    }
}

#[test]
fn an_empty_allow_file_allows_nothing() {
    let rules = set("", Some("# nothing yet\n"));
    assert!(!check(&rules, "example.com", None).is_allowed());
    assert!(check(&RuleSet::empty(), "example.com", None).is_allowed());
}

#[test]
fn bodies_name_rule_and_place_and_escape() {
    let rules = set("# c\nexample.com/<b>\n", None);
    let refusal = match check(&rules, "example.com", Some("/<b>x")) {
        Verdict::Block(r) => r,
        Verdict::Allow => panic!("not blocked"),
    };
    let text = refusal.text_body();
    assert!(text.contains("\"example.com/<b>\""), "{text}");
    assert!(text.contains("block.txt:2"), "{text}");
    assert!(text.ends_with('\n'));
    let html = refusal.html_body();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("example.com/&lt;b&gt;"), "{html}");
    assert!(html.contains("&quot;"));
    assert!(!html.contains("<b>"), "{html}");
    assert!(html.contains("block.txt:2"));
}

#[test]
fn many_rules_are_looked_up_not_scanned() {
    let text: String = (0..5000)
        .map(|i| format!("host{i}.example.com\n"))
        .collect();
    let rules = set(&text, None);
    assert_eq!(rules.len(), 5000);
    assert!(!check(&rules, "a.host4999.example.com", None).is_allowed());
    assert!(check(&rules, "host5000.example.com", None).is_allowed());
    // One bucket per name: a lookup touches only the buckets of the
    // host's own suffixes.
    assert_eq!(rules.block.by_name.len(), 5000);
}

#[test]
fn diff_compares_canonical_rules() {
    let old = set("example.com\nads.example.net\n", None);
    let new = set("EXAMPLE.com.\ntracker.example.org\n", Some("docs.rs\n"));
    let diff = old.diff(&new);
    assert_eq!(diff.added, ["block tracker.example.org", "allow docs.rs"]);
    assert_eq!(diff.removed, ["block ads.example.net"]);
    assert_eq!(diff.total, 3);
    assert!(
        old.diff(&set("example.com\n# x\nads.example.net", None))
            .is_empty()
    );
}
