//! Session tokens: random bytes from a CSPRNG as lowercase hex, and the check that an
//! attacker-supplied token is well-formed before any key is touched.

use rand::CryptoRng;
use sha2::{Digest, Sha256};

/// Shortest token accepted by commands (16 bytes of hex).
pub const MIN_LEN: usize = 32;
/// Longest token accepted by commands (128 bytes of hex).
pub const MAX_LEN: usize = 256;

/// Draws `n_bytes` bytes from `rng` and returns their lowercase hex (`2 * n_bytes` chars).
pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    rng.fill_bytes(&mut bytes);
    to_hex(&bytes)
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// True when `token` could have been made by [`generate`]: lowercase hex, 32 to 256 chars,
/// after the slot tag `{<1 to 4 letters or digits>}` of a cluster-mode token, if it has one
/// (`crate::cluster`). Anything else is treated as an unknown token without looking at the
/// keyspace.
pub fn is_well_formed(token: &[u8]) -> bool {
    let Some((_, hex)) = crate::cluster::split_token(token) else {
        return false;
    };
    (MIN_LEN..=MAX_LEN).contains(&hex.len())
        && hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// What a session is stored under in place of its token with `token-hash sha256`, and the
/// non-secret identifier LIST gives any session (docs/security.md "Hashed tokens"): the token's slot tag
/// (cluster mode), if it has one, followed by the lowercase hex SHA-256 of the whole token.
/// It keeps the token's hash slot, and is well-formed itself (64 hex digits), but names no
/// session when presented as a token: see `layout::Domain`.
pub fn hashed(token: &[u8]) -> String {
    let mut member = Vec::with_capacity(HASHED_LEN + crate::cluster::MAX_TAG_LEN + 2);
    push_hashed(&mut member, token);
    // A tag of a well-formed token is ASCII; any other token has none.
    String::from_utf8_lossy(&member).into_owned()
}

/// Hex digits of a SHA-256 hash.
pub const HASHED_LEN: usize = 64;

/// Appends [`hashed`]`(token)` to `out`, as bytes (the session key's name is built so, in
/// one buffer after the key prefix: this runs on every command given a token).
pub fn push_hashed(out: &mut Vec<u8>, token: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(crate::cluster::tag_prefix(token));
    let mut hex = [0u8; HASHED_LEN];
    for (pair, b) in hex.chunks_exact_mut(2).zip(Sha256::digest(token)) {
        if let [high, low] = pair {
            *high = DIGITS[usize::from(b >> 4)];
            *low = DIGITS[usize::from(b & 0x0f)];
        }
    }
    out.extend_from_slice(&hex);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_lowercase_hex_of_twice_the_bytes() {
        let mut rng = rand::rng();
        for n in [16, 24, 128] {
            let t = generate(&mut rng, n);
            assert_eq!(t.len(), 2 * n);
            assert!(is_well_formed(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn generated_tokens_differ() {
        let mut rng = rand::rng();
        let a = generate(&mut rng, 24);
        let b = generate(&mut rng, 24);
        assert_ne!(a, b);
    }

    #[test]
    fn hashes_are_sha256_hex_after_the_tag() {
        // FIPS 180-2 test vector: SHA-256("abc").
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hashed(b"abc"), abc);
        let token = format!("{{06S}}{}", "a".repeat(48));
        let member = hashed(token.as_bytes());
        assert!(member.starts_with("{06S}"), "{member}");
        assert_eq!(member.len(), 5 + 64);
        assert!(is_well_formed(member.as_bytes()));
        assert_eq!(
            crate::cluster::key_slot(member.as_bytes()),
            crate::cluster::key_slot(token.as_bytes())
        );
        // The tag is hashed too: another slot's token of the same hex has another hash.
        let other = format!("{{07S}}{}", "a".repeat(48));
        assert_ne!(&hashed(other.as_bytes())[5..], &member[5..]);
        assert_ne!(hashed(b"abd"), abc);
    }

    #[test]
    fn hex_encoding_is_exact() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let ok = "a".repeat(32);
        let tagged = format!("{{06S}}{ok}");
        let long_tag = format!("{{06S00}}{ok}");
        let short_hex = format!("{{06S}}{}", "a".repeat(31));
        let cases: [(&[u8], bool); 15] = [
            (ok.as_bytes(), true),
            (tagged.as_bytes(), true),
            (long_tag.as_bytes(), false),
            (short_hex.as_bytes(), false),
            (b"{}00000000000000000000000000000000", false),
            (b"{a}0000000000000000000000000000000g", false),
            (b"{a-}00000000000000000000000000000000", false),
            (&[b'0'; 256], true),
            (&[b'0'; 31], false),
            (&[b'0'; 257], false),
            (b"", false),
            (b"ABCDEF0123456789ABCDEF0123456789", false),
            (b"g0000000000000000000000000000000", false),
            (b"0000000000000000000000000000000\0", false),
            (b"00000000000000000000000000000000\xff", false),
        ];
        for (token, want) in cases {
            assert_eq!(
                is_well_formed(token),
                want,
                "{:?}",
                String::from_utf8_lossy(token)
            );
        }
    }
}
