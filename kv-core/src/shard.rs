//! Which server holds a key: FNV-1a 32-bit of the key text mod the number
//! of servers, the course's convention, so every client agrees.

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// FNV-1a, 32-bit.
#[inline]
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// Index of the server (of `servers`) that owns `key`. `servers` must be > 0.
#[inline]
pub fn server_for(key: &[u8], servers: usize) -> usize {
    debug_assert!(servers > 0);
    fnv1a32(key) as usize % servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 32-bit test vectors.
        assert_eq!(fnv1a32(b""), 0x811c9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn spreads_keys() {
        let mut counts = [0usize; 4];
        for k in 0..10_000u32 {
            counts[server_for(k.to_string().as_bytes(), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 2_000), "{counts:?}");
    }
}
