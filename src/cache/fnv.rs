//! FNV-1a, 64-bit (Fowler, Noll, Vo): the one hash the cache writes down.
//!
//! A variant's id ([`super::variant::variant_id`]) names its file in the
//! cache directory, and a checksum guards each file's bytes
//! ([`super::disk`]). Both outlive the process, so the hash must give the
//! same number in every build, which `std`'s `DefaultHasher` does not
//! promise. FNV-1a is ten lines and fixed forever. It sits below both of its
//! users so that neither has to import the other. No RFC is involved; the
//! algorithm is the one published at <http://www.isthe.com/chongo/tech/comp/fnv/>.

// ANCHOR: fnv
/// FNV-1a, 64-bit (Fowler, Noll, Vo): a tiny hash whose output never changes
/// between builds, unlike `std`'s `DefaultHasher`.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub fn new() -> Self {
        Fnv1a64(Self::OFFSET_BASIS)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// Writes the length first, so that consecutive fields cannot run into
    /// each other ("ab" + "c" hashes differently from "a" + "bc").
    pub fn write_len_prefixed(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.write(bytes);
    h.finish()
}
// ANCHOR_END: fnv

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
