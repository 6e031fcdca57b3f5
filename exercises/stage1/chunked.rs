//! Stage 1, exercise 3: decoding chunked bodies.
//!
//! With `--features ex-1-3`, the methods in this file replace the reference
//! chunked decoder of `BodyReader` in `src/body.rs`, and everything around
//! them is the reference code: this file is a child module of `body`, so
//! `use super::*` reaches `BodyReader`'s private fields (`inner`, `state`),
//! `ReadState`, the limits and the error helpers `truncated` and `invalid`.
//! The methods are `pub(super)` so that `src/body.rs` can call them.
//! Hints: `exercises/stage1/HINTS.md`; grade it with
//! `cargo run --bin grade -- 1`.

// Until you write them, the arguments and the imports go unused.
#![allow(unused_variables, unused_imports, dead_code)]

use super::*;

// ANCHOR: chunked
impl<R: BufRead> BodyReader<'_, R> {
    /// Reads one line (without its CRLF or bare LF), refusing lines longer
    /// than `max`.
    pub(super) fn read_line(&mut self, max: usize) -> io::Result<Vec<u8>> {
        // TODO(exercise 3a): read bytes from `self.inner` up to and including
        // the next `\n`, and return the line without it, and without the
        // `\r` before it if there is one (RFC 9112 §2.2 lets a recipient
        // accept a bare LF).
        //
        // - `self.inner` is a `BufRead`: `fill_buf()` shows what is
        //   buffered (reading more when nothing is), `consume(n)` marks `n`
        //   bytes as used. A line may span several `fill_buf` calls.
        // - `fill_buf` returning an empty slice means the peer closed: the
        //   body is cut short, `Err(truncated(...))`.
        // - A line longer than `max` bytes (not counting the CRLF) is an
        //   `Err(invalid(...))`. Check as you go, so that a peer sending an
        //   endless line cannot make you buffer it all.
        todo!("stage 1, exercise 3a: read_line")
    }

    // ANCHOR: chunk_size
    /// Parses `1a2b;ext=1` into 0x1a2b. Sizes are hex and unbounded in the
    /// grammar (RFC 9112 §7.1), so we check for overflow rather than trust
    /// the sender.
    pub(super) fn read_chunk_size(&mut self) -> io::Result<u64> {
        // TODO(exercise 3b): parse the chunk-size line (RFC 9112 §7.1):
        //
        //     chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
        //     chunk-size = 1*HEXDIG
        //     chunk-ext  = *( BWS ";" BWS chunk-ext-name [ ... ] )
        //
        // - Read the line with `self.read_line(MAX_CHUNK_LINE)`.
        // - At least one hex digit, then nothing, or extensions starting with
        //   `;` (perhaps after spaces or tabs). Ignore the extensions.
        //   Anything else (`zz`, `-1`, `0x10`, `5z`, an empty line) is
        //   `Err(invalid(...))`.
        // - The grammar puts no limit on the number of digits: compute the
        //   size with `checked_mul` / `checked_add` and make an overflow an
        //   error, never a panic or a wrapped-around small number.
        todo!("stage 1, exercise 3b: read_chunk_size")
    }
    // ANCHOR_END: chunk_size

    /// Skips the trailer section after the last chunk. We do not forward
    /// trailers: they are optional metadata (RFC 9110 §6.5) and dropping
    /// them is allowed.
    pub(super) fn skip_trailers(&mut self) -> io::Result<()> {
        // TODO(exercise 3c): after the last chunk come trailer fields, one
        // per line, then an empty line (RFC 9112 §7.1.2). Read lines with
        // `read_line(MAX_TRAILERS)` until the empty one. Count the bytes:
        // more than `MAX_TRAILERS` in all is `Err(invalid(...))`, so a peer
        // cannot keep us reading trailers forever.
        todo!("stage 1, exercise 3c: skip_trailers")
    }

    /// The `ChunkStart` state of `read`: a chunk begins with its size line.
    pub(super) fn start_chunk(&mut self) -> io::Result<()> {
        // TODO(exercise 3d): read the size (`read_chunk_size`). Size 0 is
        // the last chunk: skip the trailers, and the body is done
        // (`self.state = ReadState::Done`). Otherwise `size` bytes of data
        // follow: `ReadState::InChunk(size)`. That state (written, in
        // `read`) hands the data out and moves on to `ChunkEnd` when the
        // chunk is used up.
        todo!("stage 1, exercise 3d: start_chunk")
    }

    /// The `ChunkEnd` state of `read`: the CRLF after a chunk's data.
    pub(super) fn end_chunk(&mut self) -> io::Result<()> {
        // TODO(exercise 3d): chunk data is followed by CRLF (`read_line(0)`
        // gives an empty line). Anything else means the data was longer
        // than its size said: `Err(invalid(...))`. Then the next chunk
        // starts: `ReadState::ChunkStart`.
        todo!("stage 1, exercise 3d: end_chunk")
    }
}
// ANCHOR_END: chunked
