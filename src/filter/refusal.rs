//! The 403 a refused client gets, and the log line that says why.
//!
//! A forward proxy that refuses a request owes the client an honest answer:
//! 403 Forbidden (RFC 9110 §15.5.4), with a body that says which rule, in
//! which file and on which line, refused it, so the person at the browser
//! (or the administrator reading the log) can find it. Browsers get a small
//! HTML page, everyone else plain text. Everything interpolated into the
//! page comes from the client or from a rule file, so all of it is escaped.

use std::fmt;
use std::path::PathBuf;

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

/// One line for the log, also the sentence in the 403 bodies.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            RefusalKind::Blocked { rule, file, line } => write!(
                f,
                "{} is blocked by the rule \"{rule}\" ({}:{line})",
                self.host,
                file.display()
            ),
            RefusalKind::NotAllowed { allow_files } => {
                write!(f, "{} is not on the allow list (", self.host)?;
                for (i, file) in allow_files.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", file.display())?;
                }
                f.write_str(")")
            }
        }
    }
}

// ANCHOR: refusal_bodies
impl Refusal {
    /// The 403 body for clients that did not ask for HTML.
    pub fn text_body(&self) -> String {
        format!("Forbidden by the proxy: {self}.\n")
    }

    /// The 403 body for browsers. Everything interpolated comes from the
    /// client or a rule file, so all of it is escaped.
    pub fn html_body(&self) -> String {
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <title>403 Forbidden</title></head>\n\
             <body><h1>403 Forbidden</h1>\n<p>{}.</p></body></html>\n",
            escape_html(&self.to_string())
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
}
