//! An ordered list of header fields.
//!
//! A proxy must forward the fields it does not understand and keep their order
//! (RFC 9110 §5.3), so a map keyed by name is the wrong shape: two `Set-Cookie`
//! lines must stay two lines, in the order the origin sent them. We keep a plain
//! `Vec` of `(name, value)` pairs and look names up case-insensitively
//! (RFC 9110 §5.1). Values stay raw bytes because a field value may contain
//! obs-text (bytes above 0x7F) that is not UTF-8, and we must relay it untouched.

use std::io::{self, Write};

/// One header field as it appeared on the wire, minus the line ending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: Vec<u8>,
}

/// Header fields in wire order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<Field>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies the fields httparse found. Names are kept as sent: case does
    /// not matter for lookups, but a student reading a dump of what we
    /// forwarded should recognise it.
    pub fn from_httparse(raw: &[httparse::Header<'_>]) -> Self {
        let fields = raw
            .iter()
            .map(|h| Field {
                name: h.name.to_string(),
                value: h.value.to_vec(),
            })
            .collect();
        Headers { fields }
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter()
    }

    /// The first value of `name`, as bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_slice())
    }

    /// The first value of `name` as text, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_slice())
    }

    /// Every comma-separated element of every `name` field, trimmed and
    /// without empty elements (RFC 9110 §5.6.1 list syntax). Elements that
    /// are not UTF-8 are skipped: every list-valued field we interpret is
    /// made of tokens.
    pub fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(trim_ows)
            .filter(|s| !s.is_empty())
    }

    /// True when the list field `name` contains `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.list(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// How many lines carry `name`.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// Appends a field at the end, after everything already there.
    pub fn append(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.fields.push(Field {
            name: name.to_string(),
            value: value.into(),
        });
    }

    /// Replaces every `name` line with one line holding `value`. The new line
    /// takes the place of the first old one, so order is kept when a value is
    /// merely updated (for example when a 304 freshens a stored response).
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self
            .fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
        {
            Some(first) => {
                self.fields[first].value = value;
                let mut index = 0;
                self.fields.retain(|f| {
                    let keep = index <= first || !f.name.eq_ignore_ascii_case(name);
                    index += 1;
                    keep
                });
            }
            None => self.append(name, value),
        }
    }

    /// Removes every `name` line; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.fields.len();
        self.fields.retain(|f| !f.name.eq_ignore_ascii_case(name));
        self.fields.len() != before
    }

    /// Writes `Name: value\r\n` for every field, in order.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        for f in &self.fields {
            out.write_all(f.name.as_bytes())?;
            out.write_all(b": ")?;
            out.write_all(&f.value)?;
            out.write_all(b"\r\n")?;
        }
        Ok(())
    }
}

/// Removes optional whitespace, which is spaces and tabs only (RFC 9110
/// §5.6.3). `str::trim` would also remove Unicode spaces such as U+00A0,
/// and turn `Transfer-Encoding: \u{a0}chunked` into a `chunked` that the
/// next server, reading the bytes, does not see: two readers, two framings.
pub fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Field;
    type IntoIter = std::slice::Iter<'a, Field>;

    fn into_iter(self) -> Self::IntoIter {
        self.fields.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Headers {
        let mut h = Headers::new();
        h.append("Host", "a.test");
        h.append("Set-Cookie", "a=1");
        h.append("X-Unknown", "kept");
        h.append("set-cookie", "b=2");
        h
    }

    #[test]
    fn lookups_ignore_case_and_keep_order() {
        let h = sample();
        assert_eq!(h.get("HOST"), Some(&b"a.test"[..]));
        let cookies: Vec<_> = h.get_all("Set-Cookie").collect();
        assert_eq!(cookies, vec![&b"a=1"[..], &b"b=2"[..]]);
    }

    #[test]
    fn set_replaces_in_place() {
        let mut h = sample();
        h.set("set-cookie", "c=3");
        let mut out = Vec::new();
        h.write_to(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Host: a.test\r\nSet-Cookie: c=3\r\nX-Unknown: kept\r\n"
        );
    }

    #[test]
    fn list_splits_commas_and_skips_empties() {
        let mut h = Headers::new();
        h.append("Connection", "keep-alive, , X-Foo");
        h.append("connection", "close");
        let items: Vec<_> = h.list("Connection").collect();
        assert_eq!(items, vec!["keep-alive", "X-Foo", "close"]);
        assert!(h.has_token("connection", "x-foo"));
    }

    #[test]
    fn list_trims_spaces_and_tabs_only() {
        let mut h = Headers::new();
        h.append("Transfer-Encoding", "\tchunked ,\u{a0}chunked");
        let items: Vec<_> = h.list("Transfer-Encoding").collect();
        assert_eq!(items, vec!["chunked", "\u{a0}chunked"]);
    }

    #[test]
    fn remove_reports_presence() {
        let mut h = sample();
        assert!(h.remove("SET-COOKIE"));
        assert!(!h.remove("Set-Cookie"));
        assert_eq!(h.len(), 2);
    }
}
