//! Storage layout 2: a session is one Redis string, a one-line header and the data.
//!
//! ```text
//! s2 <tag> <ttl> <deadline>[ <indexes>]\n<data>
//! ```
//!
//! - `s2`: the layout's name and version;
//! - `<tag>`: 16 lowercase hex digits, SipHash-2-4 of the key's name keyed by the dataset's
//!   session secret ([`Secret`]): the mark that this module wrote a session under this very
//!   name (a string made up by someone else, or copied from another session's key, fails it).
//!   A session stored under its token's hash (`token-hash sha256`) is tagged with a key
//!   derived from the secret instead ([`Domain::Hashed`]), so that its key's name, presented
//!   as a token, names no session;
//! - `<ttl>`: the session's idle timeout in seconds (1 .. 315360000);
//! - `<deadline>`: unix milliseconds past which it is never prolonged, `0` for none;
//! - `<indexes>`: the index keys the token was added to, as a compact JSON array of strings;
//!   left out (with its space) when there are none;
//! - `<data>`: the session data as compact JSON, exactly what VALIDATE replies.
//!
//! Neither compact JSON text contains a raw newline (JSON escapes control characters inside
//! strings), so the first `\n` ends the header. One string costs a third less memory than a
//! hash of four fields, which Redis keeps as a hashtable as soon as `data` is longer than
//! `hash-max-listpack-value`, and one `SET ... PXAT` replicates value and expiry at once.

use std::hash::Hasher;

use rand::CryptoRng;
use sha2::{Digest, Sha256};
use siphasher::sip::SipHasher24;

use crate::limits::MAX_SECONDS;
use crate::session::{self, Lifetime};

/// What every session string starts with.
pub const MAGIC: &[u8] = b"s2 ";
/// Hex digits of a tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a secret.
pub const SECRET_BYTES: usize = 16;
/// The key holding the secret, after the key prefix.
pub const SECRET_KEY: &str = "session-secret";

/// The key that holds the session secret of a dataset: `<key-prefix>session-secret`. It can
/// never name a session (a token is hex) and holds a string, never a set.
pub fn secret_key(key_prefix: &str) -> String {
    format!("{key_prefix}{SECRET_KEY}")
}

/// How a session key is named, which decides the key of its tag: after the key prefix,
/// the token itself, or its hash (`crate::token::hashed`).
///
/// The hash is well-formed as a token, so a client that learnt it (from `SCAN`, or as the
/// identifier LIST gives) could present it: looked up as a token, it names the hashed
/// session's key, whose tag then fails, because it was made with the other key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// `<key-prefix><token>`: every session of 0.1.0 and of `token-hash none`.
    Plain,
    /// `<key-prefix><hash of the token>`: `token-hash sha256`.
    Hashed,
}

/// What the key of [`Domain::Hashed`] tags is derived from: SHA-256 of this and the secret.
const HASHED_DOMAIN: &[u8] = b"redis-session layout 2, hashed token keys\0";

/// The session secret of a dataset: 16 random bytes, kept as 32 lowercase hex digits in
/// [`secret_key`], that key the tags of its sessions; and the key derived from it for
/// sessions stored under their token's hash (computed once, when the secret is read).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    plain: [u8; SECRET_BYTES],
    hashed: [u8; SECRET_BYTES],
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never printed: a secret in a log would let its reader make tags.
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A new secret from a CSPRNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Secret {
        let mut bytes = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut bytes);
        Secret::new(bytes)
    }

    fn new(plain: [u8; SECRET_BYTES]) -> Secret {
        let digest = Sha256::new()
            .chain_update(HASHED_DOMAIN)
            .chain_update(plain)
            .finalize();
        let mut hashed = [0u8; SECRET_BYTES];
        for (to, from) in hashed.iter_mut().zip(digest) {
            *to = from;
        }
        Secret { plain, hashed }
    }

    /// The secret stored as `text`: exactly 32 lowercase hex digits, or `None`.
    pub fn from_hex(text: &[u8]) -> Option<Secret> {
        if text.len() != 2 * SECRET_BYTES {
            return None;
        }
        let mut bytes = [0u8; SECRET_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let [high, low] = pair else {
                return None;
            };
            *byte = (hex_digit(*high)? << 4) | hex_digit(*low)?;
        }
        Some(Secret::new(bytes))
    }

    /// The text stored in the secret's key.
    pub fn to_hex(&self) -> String {
        crate::token::to_hex(&self.plain)
    }

    /// The tag of a session stored under the key `name`, named by its token.
    pub fn tag(&self, name: &[u8]) -> u64 {
        self.tag_in(Domain::Plain, name)
    }

    /// The tag of a session stored under the key `name`, named as `domain` says.
    pub fn tag_in(&self, domain: Domain, name: &[u8]) -> u64 {
        let key = match domain {
            Domain::Plain => &self.plain,
            Domain::Hashed => &self.hashed,
        };
        let mut hasher = SipHasher24::new_with_key(key);
        hasher.write(name);
        hasher.finish()
    }
}

/// The value of a lowercase hex digit.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// A decimal number of 1 to 19 digits that fits an `i64` at the start of `text`, and what
/// follows it.
fn number(text: &[u8]) -> Option<(i64, &[u8])> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let (number, rest) = text.split_at_checked(digits)?;
    let value = number.iter().try_fold(0i64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
    })?;
    Some((value, rest))
}

/// The string stored for a session under the key `name`, named as `domain` says.
pub fn encode(
    secret: &Secret,
    domain: Domain,
    name: &[u8],
    lifetime: Lifetime,
    indexes: Option<&[u8]>,
    data: &[u8],
) -> Vec<u8> {
    // Written piece by piece: `format!` costs CREATE and UPDATE more than everything here.
    let mut numbers = itoa::Buffer::new();
    let mut value = Vec::with_capacity(48 + indexes.map_or(0, <[u8]>::len) + data.len());
    value.extend_from_slice(MAGIC);
    value.extend_from_slice(
        crate::token::to_hex(&secret.tag_in(domain, name).to_be_bytes()).as_bytes(),
    );
    value.push(b' ');
    value.extend_from_slice(numbers.format(lifetime.ttl).as_bytes());
    value.push(b' ');
    value.extend_from_slice(numbers.format(lifetime.deadline_ms).as_bytes());
    if let Some(indexes) = indexes {
        value.push(b' ');
        value.extend_from_slice(indexes);
    }
    value.push(b'\n');
    value.extend_from_slice(data);
    value
}

/// A session string taken apart (not yet checked against a secret: see [`View::is_signed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View<'a> {
    tag: u64,
    pub lifetime: Lifetime,
    /// The index list's JSON text, if the session is in any index.
    pub indexes: Option<&'a [u8]>,
    /// The data's JSON text.
    pub data: &'a [u8],
}

impl<'a> View<'a> {
    /// Takes `value` apart; `None` unless it has the layout exactly: the magic, a tag of 16
    /// lowercase hex digits, a TTL in range, a deadline of digits, an index list that is a
    /// JSON array of strings, and data that is the text of an object. `check_indexes` false
    /// leaves the index list's contents to the caller (VALIDATE walks it once, checking it).
    pub fn parse(value: &'a [u8], check_indexes: bool) -> Option<View<'a>> {
        // One pass, byte by byte: this runs on every VALIDATE.
        let rest = value.strip_prefix(MAGIC)?;
        let (tag, rest) = (rest.get(..TAG_LEN)?, rest.get(TAG_LEN..)?);
        let tag = tag
            .iter()
            .try_fold(0u64, |acc, &b| Some((acc << 4) | u64::from(hex_digit(b)?)))?;
        let rest = rest.strip_prefix(b" ")?;
        let (ttl, rest) = number(rest)?;
        let rest = rest.strip_prefix(b" ")?;
        let (deadline_ms, rest) = number(rest)?;
        if !(1..=MAX_SECONDS).contains(&ttl) {
            return None;
        }
        let (indexes, data) = match rest.split_first()? {
            (b'\n', data) => (None, data),
            (b' ', rest) => {
                let newline = rest.iter().position(|&b| b == b'\n')?;
                let (list, data) = (rest.get(..newline)?, rest.get(newline + 1..)?);
                if list.first() != Some(&b'[')
                    || (check_indexes && !session::visit_index_list(list, |_| {}))
                {
                    return None;
                }
                (Some(list), data)
            }
            _ => return None,
        };
        if data.first() != Some(&b'{') || data.last() != Some(&b'}') {
            return None;
        }
        Some(View {
            tag,
            lifetime: Lifetime { ttl, deadline_ms },
            indexes,
            data,
        })
    }

    /// True when the tag is the one `secret` gives the key `name` in `domain`: the module
    /// wrote this session under this name, named so.
    pub fn is_signed(&self, secret: &Secret, domain: Domain, name: &[u8]) -> bool {
        self.tag == secret.tag_in(domain, name)
    }

    /// The domain whose tag this is for the key `name`, if either.
    pub fn domain(&self, secret: &Secret, name: &[u8]) -> Option<Domain> {
        [Domain::Plain, Domain::Hashed]
            .into_iter()
            .find(|&domain| self.is_signed(secret, domain, name))
    }
}

/// What a rotated token's key holds during its grace window (SESSION.ROTATE ... GRACE):
/// `r2 <tag> <new member>`, the tag as a session's (the secret's SipHash of this key's own
/// name, in its domain), the new session's key name after the key prefix (its token, or with
/// `token-hash sha256` the token's hash: a record never holds a token that was not already
/// its key's). It forwards reads to the new session, read-only, until it expires.
pub const FORWARD_MAGIC: &[u8] = b"r2 ";

/// The grace record of the key `name` (named as `domain` says), forwarding to the session
/// at `<key-prefix><target>`.
pub fn encode_forward(secret: &Secret, domain: Domain, name: &[u8], target: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(FORWARD_MAGIC.len() + TAG_LEN + 1 + target.len());
    value.extend_from_slice(FORWARD_MAGIC);
    value.extend_from_slice(
        crate::token::to_hex(&secret.tag_in(domain, name).to_be_bytes()).as_bytes(),
    );
    value.push(b' ');
    value.extend_from_slice(target);
    value
}

/// The key name (after the key prefix) a grace record of the key `name` forwards to, when
/// `value` is one that `secret` signs for that name in `domain`; `None` for anything else.
pub fn parse_forward<'a>(
    value: &'a [u8],
    secret: &Secret,
    domain: Domain,
    name: &[u8],
) -> Option<&'a [u8]> {
    let rest = value.strip_prefix(FORWARD_MAGIC)?;
    let (tag, rest) = (rest.get(..TAG_LEN)?, rest.get(TAG_LEN..)?);
    let tag = tag
        .iter()
        .try_fold(0u64, |acc, &b| Some((acc << 4) | u64::from(hex_digit(b)?)))?;
    let token = rest.strip_prefix(b" ")?;
    (tag == secret.tag_in(domain, name) && crate::token::is_well_formed(token)).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_hex(b"000102030405060708090a0b0c0d0e0f").unwrap()
    }

    const NAME: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_documented_text() {
        let s = secret();
        let lifetime = Lifetime {
            ttl: 7200,
            deadline_ms: 0,
        };
        let value = encode(
            &s,
            Domain::Plain,
            NAME,
            lifetime,
            Some(br#"["user_id:150"]"#),
            br#"{"user_id":150}"#,
        );
        let text = String::from_utf8(value.clone()).unwrap();
        let expected = format!(
            "s2 {:016x} 7200 0 [\"user_id:150\"]\n{{\"user_id\":150}}",
            s.tag(NAME)
        );
        assert_eq!(text, expected);
        let view = View::parse(&value, true).unwrap();
        assert!(view.is_signed(&s, Domain::Plain, NAME));
        assert_eq!(view.lifetime, lifetime);
        assert_eq!(view.indexes, Some(br#"["user_id:150"]"#.as_slice()));
        assert_eq!(view.data, br#"{"user_id":150}"#);

        let plain = encode(&s, Domain::Plain, NAME, lifetime, None, b"{}");
        let view = View::parse(&plain, true).unwrap();
        assert_eq!(view.indexes, None);
        assert_eq!(view.data, b"{}");
        assert!(plain.starts_with(b"s2 "));
    }

    #[test]
    fn sip_hash_2_4_with_the_reference_key() {
        // The SipHash paper's test vector: key 00..0f, empty message.
        assert_eq!(secret().tag(b""), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn the_tag_binds_name_and_secret() {
        let s = secret();
        let other = Secret::from_hex(b"100102030405060708090a0b0c0d0e0f").unwrap();
        let lifetime = Lifetime {
            ttl: 60,
            deadline_ms: 1,
        };
        let value = encode(&s, Domain::Plain, NAME, lifetime, None, b"{}");
        let view = View::parse(&value, true).unwrap();
        assert!(view.is_signed(&s, Domain::Plain, NAME));
        assert!(!view.is_signed(&other, Domain::Plain, NAME));
        assert!(!view.is_signed(
            &s,
            Domain::Plain,
            b"sess:0123456789abcdef0123456789abcdef0123456789abcdef"
        ));
    }

    #[test]
    fn a_hashed_session_is_no_session_by_its_name_as_a_token() {
        let s = secret();
        let lifetime = Lifetime {
            ttl: 60,
            deadline_ms: 0,
        };
        let hashed = encode(&s, Domain::Hashed, NAME, lifetime, None, b"{}");
        let view = View::parse(&hashed, true).unwrap();
        assert!(view.is_signed(&s, Domain::Hashed, NAME));
        assert!(!view.is_signed(&s, Domain::Plain, NAME));
        assert_eq!(view.domain(&s, NAME), Some(Domain::Hashed));
        let plain = encode(&s, Domain::Plain, NAME, lifetime, None, b"{}");
        let view = View::parse(&plain, true).unwrap();
        assert!(!view.is_signed(&s, Domain::Hashed, NAME));
        assert_eq!(view.domain(&s, NAME), Some(Domain::Plain));
        assert_eq!(view.domain(&s, b"another name"), None);
        // The derived key is neither the secret nor the same for another secret.
        let other = Secret::from_hex(b"100102030405060708090a0b0c0d0e0f").unwrap();
        assert_ne!(s.tag_in(Domain::Hashed, NAME), s.tag(NAME));
        assert_ne!(
            s.tag_in(Domain::Hashed, NAME),
            other.tag_in(Domain::Hashed, NAME)
        );
        // Grace records too.
        let record = encode_forward(&s, Domain::Hashed, NAME, NAME);
        assert_eq!(parse_forward(&record, &s, Domain::Plain, NAME), None);
        assert_eq!(parse_forward(&record, &s, Domain::Hashed, NAME), Some(NAME));
    }

    #[test]
    fn anything_else_is_not_a_session() {
        let tag = "0123456789abcdef";
        for bad in [
            String::new(),
            "s2".into(),
            format!("s2 {tag} 7200 0"),
            format!("s2 {tag} 7200 0\n"),
            format!("s2 {tag} 7200 0\n[1]"),
            format!("s2 {tag} 7200 0\n{{"),
            format!("S2 {tag} 7200 0\n{{}}"),
            format!("s3 {tag} 7200 0\n{{}}"),
            format!("s2 {} 7200 0\n{{}}", &tag[1..]),
            format!("s2 {}A 7200 0\n{{}}", &tag[1..]),
            format!("s2 {tag} 0 0\n{{}}"),
            format!("s2 {tag} 315360001 0\n{{}}"),
            format!("s2 {tag} -1 0\n{{}}"),
            format!("s2 {tag} 7200 -1\n{{}}"),
            format!("s2 {tag} 7200 99999999999999999999\n{{}}"),
            format!("s2 {tag} 7200\n{{}}"),
            format!("s2 {tag} 7200 0 \n{{}}"),
            format!("s2 {tag} 7200 0 x\n{{}}"),
            format!("s2 {tag} 7200 0 [1]\n{{}}"),
            format!("s2 {tag} 7200 0 [\"a\"\n{{}}"),
            format!("s2  {tag} 7200 0\n{{}}"),
        ] {
            assert_eq!(View::parse(bad.as_bytes(), true), None, "{bad:?}");
        }
        assert!(View::parse(format!("s2 {tag} 7200 0\n{{}}").as_bytes(), true).is_some());
    }

    #[test]
    fn secrets_are_32_lowercase_hex_digits() {
        let mut rng = rand::rng();
        let s = Secret::generate(&mut rng);
        assert_eq!(Secret::from_hex(s.to_hex().as_bytes()), Some(s));
        assert_eq!(s.to_hex().len(), 32);
        for bad in [
            &b""[..],
            b"000102030405060708090a0b0c0d0e0",
            b"000102030405060708090a0b0c0d0e0f0",
            b"000102030405060708090A0B0C0D0E0F",
            b"00010203040506070809 a0b0c0d0e0f",
        ] {
            assert_eq!(Secret::from_hex(bad), None);
        }
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn a_grace_record_forwards_only_when_signed_for_its_name() {
        let s = secret();
        let new = b"abcdef0123456789abcdef0123456789abcdef0123456789";
        let value = encode_forward(&s, Domain::Plain, NAME, new);
        let tag = format!("{:016x}", s.tag(NAME));
        assert_eq!(
            value,
            format!("r2 {tag} {}", std::str::from_utf8(new).unwrap()).into_bytes()
        );
        assert_eq!(
            parse_forward(&value, &s, Domain::Plain, NAME),
            Some(new.as_slice())
        );
        assert_eq!(parse_forward(&value, &s, Domain::Plain, b"other"), None);
        let other = Secret::from_hex(b"ff0102030405060708090a0b0c0d0e0f").unwrap();
        assert_eq!(parse_forward(&value, &other, Domain::Plain, NAME), None);
        for bad in [
            format!("r2 {tag} "),
            format!("r2 {tag} ABCDEF0123456789ABCDEF0123456789"),
            format!("r2 {tag}"),
            format!("r2 {tag}  abcdef0123456789abcdef0123456789"),
            format!("s2 {tag} abcdef0123456789abcdef0123456789"),
        ] {
            assert_eq!(
                parse_forward(bad.as_bytes(), &s, Domain::Plain, NAME),
                None,
                "{bad}"
            );
        }
        // A grace record is no session.
        assert_eq!(View::parse(&value, true), None);
    }

    #[test]
    fn secret_key_follows_the_prefix() {
        assert_eq!(secret_key(""), "session-secret");
        assert_eq!(secret_key("app:"), "app:session-secret");
        assert!(!crate::token::is_well_formed(secret_key("").as_bytes()));
    }
}
