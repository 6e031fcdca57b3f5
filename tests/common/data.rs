//! Deterministic test bodies: the same seed gives the same bytes on every run,
//! so a failure can be reproduced, and binary bodies contain every byte
//! value (NUL, CR, LF, 0xFF) a careless relay might mangle.

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// `len` pseudo-random bytes from an xorshift64 generator seeded by `seed`.
pub fn binary(len: usize, seed: u64) -> Vec<u8> {
    // Any seed, including 0, must give a non-zero state.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    out
}

/// `len` bytes of numbered text lines.
pub fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut line = 0;
    while out.len() < len {
        line += 1;
        out.extend_from_slice(
            format!("{line:05}: the quick brown fox jumps over the lazy dog\r\n").as_bytes(),
        );
    }
    out.truncate(len);
    out
}
