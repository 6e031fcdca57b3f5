//! The 403 a refused client gets, and the log line that says why.
//!
//! A forward proxy that refuses a request owes the client an honest answer:
//! 403 Forbidden (RFC 9110 §15.5.4), with a body that says which rule, in
//! which file and on which line, refused it, so the person at the browser
//! (or the administrator reading the log) can find it. Browsers get a small
//! HTML page, everyone else plain text. Everything interpolated into the
//! page comes from the client or from a rule file, so all of it is escaped.
//! The page names a rules file by its name only: where the server keeps
//! its files is none of the client's business; the log has the whole path.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// A block rule matched.
    Blocked {
        rule: String,
        file: PathBuf,
        line: usize,
    },
    /// Allow-list mode, and no allow rule matched. There is no rule to name,
    /// only the files that were searched.
    NotAllowed { allow_files: Vec<PathBuf> },
}

/// A refused request: the host as the client wrote it, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub host: String,
    pub reason: RefusalKind,
}

/// One line for the log, with each file's whole path.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sentence(|file| file.display().to_string()))
    }
}

impl Refusal {
    /// The sentence in the 403 bodies: each file by its name only.
    pub fn for_client(&self) -> String {
        self.sentence(|file| match file.file_name() {
            Some(name) => name.to_string_lossy().into_owned(),
            None => file.display().to_string(),
        })
    }

    /// Why the request was refused, with files shown by `name`.
    fn sentence(&self, name: impl Fn(&Path) -> String) -> String {
        match &self.reason {
            RefusalKind::Blocked { rule, file, line } => format!(
                "{} is blocked by the rule \"{rule}\" ({}:{line})",
                self.host,
                name(file)
            ),
            RefusalKind::NotAllowed { allow_files } => {
                let files: Vec<String> = allow_files.iter().map(|f| name(f)).collect();
                format!(
                    "{} is not on the allow list ({})",
                    self.host,
                    files.join(", ")
                )
            }
        }
    }
}

// ANCHOR: refusal_bodies
impl Refusal {
    /// The 403 body for clients that did not ask for HTML.
    pub fn text_body(&self) -> String {
        format!("Forbidden by the proxy: {}.\n", self.for_client())
    }

    /// The 403 body for browsers. Everything interpolated comes from the
    /// client or a rule file, so all of it is escaped.
    pub fn html_body(&self) -> String {
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <title>403 Forbidden</title></head>\n\
             <body><h1>403 Forbidden</h1>\n<p>{}.</p></body></html>\n",
            escape_html(&self.for_client())
        )
    }
}
// ANCHOR_END: refusal_bodies

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_refusal_names_every_file_and_escapes_the_host() {
        let refusal = Refusal {
            host: "<script>.example".to_string(),
            reason: RefusalKind::NotAllowed {
                allow_files: vec![PathBuf::from("a.txt"), PathBuf::from("b's.txt")],
            },
        };
        assert_eq!(
            refusal.to_string(),
            "<script>.example is not on the allow list (a.txt, b's.txt)"
        );
        assert_eq!(
            refusal.text_body(),
            "Forbidden by the proxy: <script>.example is not on the allow list (a.txt, b's.txt).\n"
        );
        let html = refusal.html_body();
        assert!(html.contains("&lt;script&gt;.example"), "{html}");
        assert!(html.contains("b&#39;s.txt"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn the_client_sees_the_file_name_and_the_log_the_whole_path() {
        let refusal = Refusal {
            host: "ads.example".to_string(),
            reason: RefusalKind::Blocked {
                rule: "ads.example".to_string(),
                file: PathBuf::from("/etc/webproxy/blocked.txt"),
                line: 3,
            },
        };
        let named = "ads.example is blocked by the rule \"ads.example\"";
        assert_eq!(
            refusal.to_string(),
            format!("{named} (/etc/webproxy/blocked.txt:3)")
        );
        assert_eq!(
            refusal.text_body(),
            format!("Forbidden by the proxy: {named} (blocked.txt:3).\n")
        );
        let html = refusal.html_body();
        assert!(
            html.contains("(blocked.txt:3)") && !html.contains("/etc/"),
            "{html}"
        );
        let allow = Refusal {
            host: "a.test".to_string(),
            reason: RefusalKind::NotAllowed {
                allow_files: vec![PathBuf::from("/srv/allow.txt")],
            },
        };
        assert!(allow.text_body().contains("(allow.txt)"));
    }
}
