//! Keeping a copy of a response body while it is relayed, so that the cache
//! can store it afterwards.
//!
//! The proxy streams a body to the client as it arrives; it never waits for
//! the whole body first. The copy for the cache is taken on the way, chunk by
//! chunk, and given up as soon as it grows past the per-object limit, so a
//! large download costs no extra memory.
//!
//! ## Complete bodies only
//!
//! The caller stores a captured body only when the message framing says the
//! body was read to its end (Content-Length reached, or the last chunk seen).
//! A response cut short by a timeout or a closed connection is relayed as far
//! as it got and never stored (RFC 9111 §3.3), because the next client would
//! receive the truncated copy as if it were whole.

// ANCHOR: capture
/// Keeps a copy of a body while it is relayed, up to a limit.
///
/// The relay loop pushes every chunk it forwards. Once the body grows past
/// `limit` the copy is dropped for good and later pushes cost nothing: the
/// client still gets the whole body, the cache simply will not store it.
/// Only call [`Capture::finish`] and store the result when the framing says
/// the body is complete; a truncated body must never be stored.
#[derive(Debug)]
pub struct Capture {
    limit: usize,
    buf: Vec<u8>,
    overflowed: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Capture {
            limit,
            buf: Vec::new(),
            overflowed: false,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.buf.len().saturating_add(bytes.len()) > self.limit {
            self.overflowed = true;
            self.buf = Vec::new(); // give the memory back now
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The captured body, or `None` if it outgrew the limit.
    pub fn finish(self) -> Option<Vec<u8>> {
        if self.overflowed {
            None
        } else {
            Some(self.buf)
        }
    }
}
// ANCHOR_END: capture

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_stops_for_good_after_overflow() {
        let mut cap = Capture::new(5);
        cap.push(b"abc");
        cap.push(b"de");
        assert!(!cap.overflowed());
        assert_eq!(cap.finish(), Some(b"abcde".to_vec()));

        let mut cap = Capture::new(5);
        cap.push(b"abc");
        cap.push(b"def");
        cap.push(b""); // later pushes must not resurrect it
        assert!(cap.overflowed());
        assert_eq!(cap.finish(), None);
    }
}
