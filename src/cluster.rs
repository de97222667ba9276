//! Redis Cluster placement, apart from the server: hash slots of key names, the slot tags
//! that tokens carry, and the names of index keys in cluster mode (docs/cluster.md,
//! docs/DESIGN-NOTES.md). No Redis here; the glue asks the server where it can (7.4+).
//!
//! - A key's hash slot is CRC16 (XMODEM) of its hash tag (the text between the first `{`
//!   and the first `}` after it, when not empty) or else of the whole name, modulo 16384.
//! - A session's token is `{<tag>}<hex>`: `<tag>` is the shortest alphanumeric string whose
//!   slot is the session's, so the tag names a slot and nothing else (no indexed value).
//! - An index key is `<index-prefix><property>:{<value>}` when the value is not empty and
//!   holds no brace, so that its slot is the value's own (`CLUSTER KEYSLOT 150` for
//!   `user_id:{150}`); any other value gets `<index-prefix><property>:{<tag>}:<value>`, the
//!   tag of the value's slot. Either way the key's slot is [`key_slot`] of the value, which is
//!   what lets a client route `SESSION.REVOKEINDEX user_id 150` by its value argument.

use std::sync::OnceLock;

/// The number of hash slots.
pub const SLOTS: u16 = 16384;

/// Longest slot tag a token may carry (ours and the server's are at most 3 characters).
pub const MAX_TAG_LEN: usize = 4;

const ALPHANUMERIC: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// The part of `name` Redis hashes: the hash tag when there is a non-empty one.
pub fn hash_part(name: &[u8]) -> &[u8] {
    let Some(open) = name.iter().position(|&b| b == b'{') else {
        return name;
    };
    let after = name.get(open + 1..).unwrap_or_default();
    match after.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => after.get(..close).unwrap_or_default(),
        _ => name,
    }
}

/// The hash slot of the key `name`, as `CLUSTER KEYSLOT` gives it.
pub fn key_slot(name: &[u8]) -> u16 {
    CRC16.checksum(hash_part(name)) % SLOTS
}

/// The shortest alphanumeric string (digits, then upper case, then lower case, shorter
/// first) whose slot is `slot`, for every slot: computed once, in a few milliseconds.
fn tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); usize::from(SLOTS)];
        let mut missing = usize::from(SLOTS);
        let mut candidate = [0u8; MAX_TAG_LEN];
        for len in 1..=MAX_TAG_LEN {
            let count = ALPHANUMERIC.len().pow(len as u32);
            for n in 0..count {
                if missing == 0 {
                    return tags;
                }
                // n in base 62, most significant character first.
                let mut rest = n;
                for place in (0..len).rev() {
                    if let Some(c) = candidate.get_mut(place) {
                        *c = ALPHANUMERIC[rest % ALPHANUMERIC.len()];
                    }
                    rest /= ALPHANUMERIC.len();
                }
                let name = candidate.get(..len).unwrap_or_default();
                if let Some(tag) = tags.get_mut(usize::from(key_slot(name))) {
                    if tag.is_empty() {
                        *tag = String::from_utf8_lossy(name).into_owned();
                        missing -= 1;
                    }
                }
            }
        }
        tags
    })
}

/// The slot tag of `slot` (taken modulo 16384): a short alphanumeric string whose own slot
/// is `slot`.
pub fn slot_tag(slot: u16) -> &'static str {
    tags()
        .get(usize::from(slot % SLOTS))
        .map_or("", String::as_str)
}

/// Whether `tag` could be a slot tag: 1 to [`MAX_TAG_LEN`] ASCII letters or digits.
pub fn is_tag(tag: &[u8]) -> bool {
    (1..=MAX_TAG_LEN).contains(&tag.len()) && tag.iter().all(u8::is_ascii_alphanumeric)
}

/// Splits a token into its slot tag (without braces), if it has one, and the rest. A token
/// that starts with `{` but has no well-formed tag gives `None`.
pub fn split_token(token: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let Some(rest) = token.strip_prefix(b"{") else {
        return Some((None, token));
    };
    let close = rest.iter().position(|&b| b == b'}')?;
    let tag = rest.get(..close)?;
    let hex = rest.get(close + 1..)?;
    is_tag(tag).then_some((Some(tag), hex))
}

/// `{<tag>}<hex>`: the token of a session in the slot `tag` names.
pub fn tagged_token(tag: &str, hex: &str) -> String {
    let mut token = String::with_capacity(tag.len() + hex.len() + 2);
    token.push('{');
    token.push_str(tag);
    token.push('}');
    token.push_str(hex);
    token
}

/// The tag part of a token (with its braces), or `""` for an untagged one: what a rotated
/// token keeps.
pub fn tag_prefix(token: &[u8]) -> &[u8] {
    match split_token(token) {
        Some((Some(tag), _)) => token.get(..tag.len() + 2).unwrap_or_default(),
        _ => &[],
    }
}

/// Whether a value can stand inside the index key's braces as it is.
fn plain_value(value: &[u8]) -> bool {
    !value.is_empty() && !value.iter().any(|&b| b == b'{' || b == b'}')
}

/// The name of an index key in cluster mode (see the module comment). `prefix` and
/// `property` hold no brace: the settings refuse them in cluster mode ([`check_names`]).
pub fn index_key(prefix: &[u8], property: &[u8], value: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + property.len() + value.len() + 9);
    key.extend_from_slice(prefix);
    key.extend_from_slice(property);
    key.extend_from_slice(b":{");
    if plain_value(value) {
        key.extend_from_slice(value);
        key.push(b'}');
    } else {
        key.extend_from_slice(slot_tag(key_slot(value)).as_bytes());
        key.extend_from_slice(b"}:");
        key.extend_from_slice(value);
    }
    key
}

/// Why a name cannot be used in cluster mode, if it cannot: a brace in a key prefix or a
/// property would move the hash tag away from the one the module places.
pub fn check_names(what: &str, name: &str) -> Result<(), String> {
    if name.contains('{') || name.contains('}') {
        Err(format!(
            "{what} '{name}' holds '{{' or '}}', which would change the hash slot of the keys \
             the module places in cluster mode"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_are_those_of_cluster_keyslot() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.0.15 and the cluster specification.
        let cases: [(&[u8], u16); 10] = [
            (b"123456789", 12739),
            (b"a", 15495),
            (b"b", 3300),
            (b"foo", 12182),
            (b"{foo}bar", 12182),
            (b"x{foo}y{z}", 12182),
            (b"{}foo", key_slot_whole(b"{}foo")),
            (b"foo{", key_slot_whole(b"foo{")),
            (b"", 0),
            (b"{06S}x", 0),
        ];
        for (name, want) in cases {
            assert_eq!(key_slot(name), want, "{}", String::from_utf8_lossy(name));
        }
    }

    fn key_slot_whole(name: &[u8]) -> u16 {
        CRC16.checksum(name) % SLOTS
    }

    #[test]
    fn hash_parts_follow_the_first_braces() {
        assert_eq!(hash_part(b"user_id:{150}"), b"150");
        assert_eq!(hash_part(b"{a}{b}"), b"a");
        assert_eq!(hash_part(b"{}{b}"), b"{}{b}");
        assert_eq!(hash_part(b"a{b{c}d}"), b"b{c");
        assert_eq!(hash_part(b"plain"), b"plain");
    }

    #[test]
    fn every_slot_has_a_tag_of_its_own_slot() {
        for slot in 0..SLOTS {
            let tag = slot_tag(slot);
            assert!(is_tag(tag.as_bytes()), "slot {slot}: {tag:?}");
            assert!(tag.len() <= 3, "slot {slot}: {tag:?}");
            assert_eq!(key_slot(tag.as_bytes()), slot, "{tag}");
        }
        assert_eq!(slot_tag(SLOTS), slot_tag(0));
    }

    #[test]
    fn tags_are_the_shortest() {
        // No one-character string hashes to slot 0's tag length 1 unless it is the tag.
        for slot in 0..SLOTS {
            let tag = slot_tag(slot);
            if tag.len() > 1 {
                assert!(ALPHANUMERIC
                    .iter()
                    .all(|&c| usize::from(key_slot(&[c])) != usize::from(slot)));
            }
        }
    }

    #[test]
    fn tokens_split_into_tag_and_hex() {
        assert_eq!(split_token(b"abc"), Some((None, &b"abc"[..])));
        assert_eq!(
            split_token(b"{06S}abc"),
            Some((Some(&b"06S"[..]), &b"abc"[..]))
        );
        for bad in [
            &b"{}abc"[..],
            b"{abcde}abc",
            b"{a-b}abc",
            b"{abc",
            b"{",
            b"{\xff}abc",
        ] {
            assert_eq!(split_token(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(tagged_token("Qi", "00ff"), "{Qi}00ff");
        assert_eq!(tag_prefix(b"{Qi}00ff"), b"{Qi}");
        assert_eq!(tag_prefix(b"00ff"), b"");
    }

    #[test]
    fn index_keys_live_in_the_slot_of_their_value() {
        assert_eq!(index_key(b"", b"user_id", b"150"), b"user_id:{150}");
        assert_eq!(index_key(b"idx:", b"tenant", b"acme"), b"idx:tenant:{acme}");
        let empty = index_key(b"", b"user_id", b"");
        assert_eq!(empty, format!("user_id:{{{}}}:", slot_tag(0)).as_bytes());
        let braced = index_key(b"", b"user_id", b"a{b}c");
        assert_eq!(
            braced,
            format!("user_id:{{{}}}:a{{b}}c", slot_tag(key_slot(b"b"))).as_bytes()
        );
        for value in [
            &b"150"[..],
            b"",
            b"a{b}c",
            b"}{",
            b"{x}",
            b"Zo\xc3\xab",
            b"1.5",
        ] {
            assert_eq!(
                key_slot(&index_key(b"p:", b"user_id", value)),
                key_slot(value),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn plain_and_tagged_index_keys_never_meet() {
        // The tagged form always has text after its closing brace; the plain form ends there.
        let plain = index_key(b"", b"p", slot_tag(0).as_bytes());
        let tagged = index_key(b"", b"p", b"");
        assert_ne!(plain, tagged);
    }

    #[test]
    fn braces_in_names_are_refused() {
        assert!(check_names("key-prefix", "sess:").is_ok());
        assert!(check_names("key-prefix", "s{x}:").is_err());
        assert!(check_names("indexes", "a}b").is_err());
    }
}
