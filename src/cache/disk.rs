//! `--cache-dir DIR`: a copy of every cache entry on disk, so a restarted
//! proxy does not start cold.
//!
//! Memory stays the source of truth: lookups never read the disk. Each entry
//! is mirrored to one file, rewritten when the entry is replaced or freshened
//! and removed when it is evicted or invalidated. At start the directory is
//! read back (see [`load_dir`] and `Cache::new`): newest responses first,
//! until the byte budget is full; what does not fit is deleted.
//!
//! ## File names
//!
//! `<16 hex digits>.wpc`: the FNV-1a 64 hash of the cache key and the
//! variant's Vary values. We cannot use `std`'s `DefaultHasher` for this: its
//! algorithm is not promised to stay the same between Rust releases, and a
//! proxy rebuilt with a newer compiler would no longer find its own files.
//! FNV-1a ([`super::fnv`]) is ten lines, fixed forever, and good enough to
//! spread names (a collision only evicts, see [`super::variant`]). Hashing also keeps any byte of the
//! URI out of the file system, where the seed proxies' "replace `/` and `.`
//! by `_`" names made different URIs share one file.
//!
//! ## Format (version 1)
//!
//! Text lines for the structure, raw bytes for the data, every byte string
//! preceded by its length so no escaping is needed. Numbers are decimal.
//!
//! ```text
//! webproxy-cache 1                 magic (crate::NAME) and format version
//! key <n>                          n bytes of key, then a newline
//! request-time <secs>.<nanos>      since 1970-01-01 UTC
//! response-time <secs>.<nanos>
//! status <code>
//! reason <n>                       n bytes, newline
//! vary <count>                     then per Vary header:
//!   vary-name <n>                    n bytes, newline
//!   vary-value <n> | vary-absent     n bytes, newline (for vary-value)
//! headers <count>                  then per field, in wire order:
//!   name <n>                         n bytes, newline
//!   value <n>                        n bytes, newline
//! body <n>                         n bytes, newline
//! checksum <16 hex digits>         FNV-1a 64 of every byte before this line
//! ```
//!
//! A file is written to `<name>.tmp` in the same directory and then renamed
//! over `<name>`: a rename within one directory is atomic, so a reader (or a
//! restart after a crash) sees the old file or the new one, never half of
//! one. We do not fsync; if a crash still leaves a torn file, the checksum
//! catches it. A file that is truncated, has a wrong checksum, an unknown
//! version, a name that does not match its content, or cannot be read is
//! logged, deleted and never served.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::fnv::fnv1a64;
use super::variant::{StoredResponse, variant_id};
use crate::headers::Headers;

/// The first line of every file: whose cache this is, and the format
/// version. [`crate::NAME`] supplies the first word.
fn magic() -> String {
    format!("{}-cache 1", crate::NAME)
}
const EXTENSION: &str = "wpc";
/// "checksum " + 16 hex digits + "\n".
const CHECKSUM_LINE: usize = 9 + 16 + 1;

/// The file name for variant `id`.
pub fn file_name(id: u64) -> String {
    format!("{id:016x}.{EXTENSION}")
}

// ANCHOR: encode
/// Serialises one entry in the format described in the module doc.
pub fn encode(key: &str, r: &StoredResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.size() + key.len() + 512);
    put_line(&mut out, &magic());
    put_bytes(&mut out, "key", key.as_bytes());
    put_time(&mut out, "request-time", r.request_time);
    put_time(&mut out, "response-time", r.response_time);
    put_line(&mut out, &format!("status {}", r.status));
    put_bytes(&mut out, "reason", r.reason.as_bytes());
    put_line(&mut out, &format!("vary {}", r.vary.len()));
    for (name, value) in &r.vary {
        put_bytes(&mut out, "vary-name", name.as_bytes());
        match value {
            Some(v) => put_bytes(&mut out, "vary-value", v),
            None => put_line(&mut out, "vary-absent"),
        }
    }
    put_line(&mut out, &format!("headers {}", r.headers.len()));
    for field in &r.headers {
        put_bytes(&mut out, "name", field.name.as_bytes());
        put_bytes(&mut out, "value", &field.value);
    }
    put_bytes(&mut out, "body", &r.body);
    let sum = fnv1a64(&out);
    put_line(&mut out, &format!("checksum {sum:016x}"));
    out
}
// ANCHOR_END: encode

fn put_line(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

fn put_bytes(out: &mut Vec<u8>, tag: &str, bytes: &[u8]) {
    put_line(out, &format!("{tag} {}", bytes.len()));
    out.extend_from_slice(bytes);
    out.push(b'\n');
}

fn put_time(out: &mut Vec<u8>, tag: &str, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    put_line(
        out,
        &format!("{tag} {}.{:09}", d.as_secs(), d.subsec_nanos()),
    );
}

/// Why a file was rejected; only ever logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Corrupt {}

fn corrupt<T>(why: impl Into<String>) -> Result<T, Corrupt> {
    Err(Corrupt(why.into()))
}

/// A cursor over a file's bytes. Every read checks the bounds, so a
/// truncated or doctored file ends in an error, never a panic.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn line(&mut self) -> Result<&'a str, Corrupt> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return corrupt("truncated line");
        };
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).or_else(|_| corrupt("structure line is not text"))
    }

    /// Reads `tag <number>` and returns the number.
    fn number(&mut self, tag: &str) -> Result<u64, Corrupt> {
        let line = self.line()?;
        match line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse()
                .or_else(|_| corrupt(format!("{tag}: number too large"))),
            _ => corrupt(format!("expected `{tag} <number>`, found `{line}`")),
        }
    }

    /// Reads `tag <n>`, then n bytes and a newline.
    fn bytes(&mut self, tag: &str) -> Result<&'a [u8], Corrupt> {
        let n = self.number(tag)?;
        let remaining = (self.data.len() - self.pos) as u64;
        if n >= remaining {
            return corrupt(format!("{tag}: {n} bytes announced, file too short"));
        }
        let n = n as usize; // n < remaining, which is a usize
        let bytes = &self.data[self.pos..self.pos + n];
        if self.data[self.pos + n] != b'\n' {
            return corrupt(format!("{tag}: missing newline after the data"));
        }
        self.pos += n + 1;
        Ok(bytes)
    }

    fn text(&mut self, tag: &str) -> Result<String, Corrupt> {
        let b = self.bytes(tag)?;
        String::from_utf8(b.to_vec()).or_else(|_| corrupt(format!("{tag}: not UTF-8")))
    }

    fn time(&mut self, tag: &str) -> Result<SystemTime, Corrupt> {
        let line = self.line()?;
        let value = line
            .strip_prefix(tag)
            .and_then(|r| r.strip_prefix(' '))
            .and_then(|v| v.split_once('.'));
        let Some((secs, nanos)) = value else {
            return corrupt(format!("expected `{tag} <secs>.<nanos>`"));
        };
        let secs: u64 = secs
            .parse()
            .or_else(|_| corrupt(format!("{tag}: bad seconds")))?;
        let nanos: u32 = nanos
            .parse()
            .or_else(|_| corrupt(format!("{tag}: bad nanoseconds")))?;
        if nanos >= 1_000_000_000 {
            return corrupt(format!("{tag}: bad nanoseconds"));
        }
        UNIX_EPOCH
            .checked_add(Duration::new(secs, nanos))
            .map_or_else(|| corrupt(format!("{tag}: out of range")), Ok)
    }

    /// A count of following records; bounded by the bytes left, since every
    /// record takes several bytes, so a forged count cannot make us allocate
    /// a huge vector.
    fn count(&mut self, tag: &str) -> Result<usize, Corrupt> {
        let n = self.number(tag)?;
        if n > (self.data.len() - self.pos) as u64 {
            return corrupt(format!("{tag}: count {n} larger than the file"));
        }
        Ok(n as usize)
    }
}

// ANCHOR: decode
/// Parses a file written by [`encode`]. The checksum is verified before
/// anything else is trusted.
pub fn decode(data: &[u8]) -> Result<(String, StoredResponse), Corrupt> {
    if data.len() < CHECKSUM_LINE {
        return corrupt("file too short");
    }
    let (content, tail) = data.split_at(data.len() - CHECKSUM_LINE);
    let expected = std::str::from_utf8(tail)
        .ok()
        .and_then(|t| t.strip_prefix("checksum "))
        .and_then(|t| t.strip_suffix('\n'))
        // Exactly the lower-case digits we write: `from_str_radix` alone
        // would also take "ABC", and a changed byte must never pass.
        .filter(|hex| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok());
    match expected {
        None => return corrupt("no checksum line at the end (truncated?)"),
        Some(sum) if sum != fnv1a64(content) => return corrupt("checksum mismatch"),
        Some(_) => {}
    }

    let mut r = Reader {
        data: content,
        pos: 0,
    };
    if r.line()? != magic() {
        return corrupt(format!(
            "not a {} cache file, or another format version",
            crate::NAME
        ));
    }
    let key = r.text("key")?;
    let request_time = r.time("request-time")?;
    let response_time = r.time("response-time")?;
    let status = r.number("status")?;
    if !(100..=999).contains(&status) {
        return corrupt("status out of range");
    }
    let reason = String::from_utf8_lossy(r.bytes("reason")?).into_owned();
    let mut vary = Vec::new();
    for _ in 0..r.count("vary")? {
        let name = r.text("vary-name")?;
        let value = if r.data[r.pos..].starts_with(b"vary-absent\n") {
            r.line()?;
            None
        } else {
            Some(r.bytes("vary-value")?.to_vec())
        };
        vary.push((name, value));
    }
    let mut headers = Headers::new();
    for _ in 0..r.count("headers")? {
        let name = r.text("name")?;
        let value = r.bytes("value")?;
        headers.append(&name, value);
    }
    let body = r.bytes("body")?;
    if r.pos != content.len() {
        return corrupt("unexpected bytes after the body");
    }
    let response = StoredResponse {
        status: status as u16, // checked to be 100..=999 above
        reason,
        headers,
        body: body.into(),
        request_time,
        response_time,
        vary,
    };
    Ok((key, response))
}
// ANCHOR_END: decode

/// Writes `bytes` to `path` atomically: first to a temporary file in the
/// same directory, then renamed over the target.
pub fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!("{file_name}.tmp"));
    let result = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        remove_quietly(&tmp);
    }
    result
}

/// Creates and removes a scratch file in `dir`, to find out at start
/// whether entries could be written there. Its name is that of a leftover
/// temporary file, which [`load_dir`] removes should we stop in between.
pub fn check_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".write-check.{EXTENSION}.tmp"));
    fs::File::create(&probe).and_then(|mut f| f.write_all(b"webproxy\n"))?;
    fs::remove_file(&probe)
}

/// Removes a file; a file already gone is fine, anything else is logged.
pub fn remove_quietly(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("cache: cannot remove {}: {e}", path.display()),
    }
}

/// One entry read back from the cache directory.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub key: String,
    pub response: StoredResponse,
}

// ANCHOR: load_dir
/// Reads every entry file in `dir`. Files that are corrupt, unreadable,
/// misnamed or clearly too large are logged and deleted. Leftover temporary
/// files from an interrupted write are deleted. Files that are not ours
/// (another extension) are left alone.
pub fn load_dir(dir: &Path, max_object_bytes: usize) -> io::Result<Vec<Loaded>> {
    // A file a bit larger than the object limit can still hold an entry of
    // that size: the format adds a line per field. Beyond twice the limit it
    // cannot, and we will not read it into memory.
    let max_file = (max_object_bytes as u64)
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    let mut loaded = Vec::new();
    for dirent in fs::read_dir(dir)? {
        let path = match dirent {
            Ok(d) => d.path(),
            Err(e) => {
                log::warn!("cache: cannot list {}: {e}", dir.display());
                continue;
            }
        };
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(&format!(".{EXTENSION}.tmp")) {
            remove_quietly(&path);
            continue;
        }
        let Some(id) = name
            .strip_suffix(&format!(".{EXTENSION}"))
            .filter(|stem| stem.len() == 16)
            .and_then(|stem| u64::from_str_radix(stem, 16).ok())
        else {
            continue;
        };
        match read_entry(&path, id, max_file) {
            Ok((key, response)) => loaded.push(Loaded {
                path,
                key,
                response,
            }),
            Err(why) => {
                log::warn!("cache: ignoring and removing {}: {why}", path.display());
                remove_quietly(&path);
            }
        }
    }
    Ok(loaded)
}

fn read_entry(path: &Path, id: u64, max_file: u64) -> Result<(String, StoredResponse), Corrupt> {
    let len = fs::metadata(path)
        .map_err(|e| Corrupt(format!("unreadable: {e}")))?
        .len();
    if len > max_file {
        return corrupt(format!("{len} bytes, larger than any entry we would store"));
    }
    let data = fs::read(path).map_err(|e| Corrupt(format!("unreadable: {e}")))?;
    let (key, response) = decode(&data)?;
    if variant_id(&key, &response.vary) != id {
        return corrupt("file name does not match its key");
    }
    Ok((key, response))
}
// ANCHOR_END: load_dir

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn sample(body: &[u8], at: u64) -> StoredResponse {
        let mut h = Headers::new();
        h.append("Content-Type", "text/plain");
        h.append("Set-Cookie", "a=1");
        h.append("Set-Cookie", "b=2");
        h.append("Vary", "Accept-Encoding, Accept");
        h.append("X-Bin", &b"\xff\x00\n"[..]);
        let mut req = Headers::new();
        req.append("Accept-Encoding", "gzip");
        let mut r = StoredResponse::new(200, "OK", h, body.to_vec(), &req, t(at), t(at));
        r.request_time = t(at) - Duration::from_millis(250);
        r
    }

    #[test]
    fn encode_decode_round_trip() {
        let r = sample(b"line1\nline2\n\x00binary", 7);
        let bytes = encode("http://a.test:80/x?y", &r);
        let (key, back) = decode(&bytes).unwrap();
        assert_eq!(key, "http://a.test:80/x?y");
        assert_eq!(back, r);
        assert_eq!(
            back.vary[1],
            ("accept-encoding".to_string(), Some(b"gzip".to_vec()))
        );
        assert_eq!(back.vary[0], ("accept".to_string(), None));
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_caught() {
        let bytes = encode("http://a.test:80/", &sample(b"hello", 1));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(decode(&bad).is_err(), "flipped byte {i} accepted");
            assert!(decode(&bytes[..i]).is_err(), "truncation at {i} accepted");
        }
    }

    #[test]
    fn load_dir_reads_good_files_and_removes_bad_ones() {
        let dir = TempDir::new("load-dir");
        let write = |key: &str, response: &StoredResponse, id: u64| {
            let path = dir.0.join(file_name(id));
            write_atomic(&dir.0, &path, &encode(key, response)).unwrap();
            path
        };
        let good = sample(b"good", 1);
        let good_id = variant_id("http://a.test:80/good", &good.vary);
        write("http://a.test:80/good", &good, good_id);
        let misnamed = write("http://a.test:80/other", &sample(b"other", 2), 12345);
        fs::write(dir.0.join("notes.txt"), b"not ours").unwrap();

        let loaded = load_dir(&dir.0, 100_000).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].key, "http://a.test:80/good");
        assert_eq!(loaded[0].response, good);
        assert!(!misnamed.exists(), "a file whose name lies is removed");
        assert!(
            dir.0.join("notes.txt").exists(),
            "other files are left alone"
        );
    }
}
