//! Property tests on the pure layer (no Redis): the parsers that see client bytes never
//! panic, accept exactly what the contract calls valid, and keep what they accept intact.
//!
//! `cargo test --release --lib` runs each property with proptest's default case count (256,
//! a few seconds in all); `make fuzz` runs the same properties with `PROPTEST_CASES=200000`.
//! A failing case is printed shrunk to a minimal input; failure files are not written, so a
//! case worth keeping becomes a table row in the unit tests beside the code.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

use crate::config::{Setting, Settings};
use crate::error::Error;
use crate::json::{self, Object};
use crate::layout::{encode, Domain, Secret, View};
use crate::limits::{MAX_DEPTH, MAX_SECONDS};
use crate::session::{CreateOptions, Lifetime, MaxSessions, Stored};
use crate::token;

/// The default config (so `PROPTEST_CASES` still applies) without failure files in the tree.
fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// Generators

/// Number texts as clients send them: small and huge integers, fractions, exponents far
/// beyond f64 (`1e999999`), negative zero.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{18,400}",
        "-?(0|[1-9][0-9]{0,30})\\.[0-9]{1,40}",
        "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,5})?[eE][+-]?[0-9]{1,7}",
        Just("-0".to_string()),
        Just("1e999999".to_string()),
    ]
}

/// A JSON number value keeping its exact text (serde_json's `arbitrary_precision`).
fn number() -> impl Strategy<Value = Value> {
    number_text().prop_map(|text| serde_json::from_str(&text).expect("generated number parses"))
}

/// Any Unicode text, NUL and control characters included (`any::<String>()` has none).
fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..12).prop_map(|chars| chars.into_iter().collect())
}

/// Property names: any Unicode, and a few that matter here.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => text(),
        2 => "[a-z_]{1,8}",
        1 => Just("token".to_string()),
        1 => Just("createdAt".to_string()),
        1 => Just("user_id".to_string()),
        1 => Just("a\u{0}b".to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ]
}

/// Any JSON value a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(name(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any JSON object a few levels deep (session data or a patch).
fn object() -> impl Strategy<Value = Object> {
    btree_map(name(), value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// Bytes that are often almost JSON: a valid text with a few bytes changed, inserted or
/// cut off, or entirely random bytes.
fn json_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        object(),
        vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..4),
    )
        .prop_map(|(o, edits)| {
            let mut bytes = json::to_text(&o).into_bytes();
            for (at, byte, how) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            bytes
        });
    prop_oneof![
        3 => mutated,
        2 => any::<Vec<u8>>(),
        1 => vec(
            prop::sample::select(&b"{}[]\":,0123456789.eE+-tfnul \\x\x00\xff"[..]),
            0..200
        ),
    ]
}

/// Values for `TTL`/`MAXLIFETIME`: numbers near the bounds, zero-padded, signed, spaced,
/// huge, non-ASCII digits, random bytes.
fn option_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0i64..=20).prop_map(|n| n.to_string().into_bytes()),
        (MAX_SECONDS - 3..=MAX_SECONDS + 3).prop_map(|n| n.to_string().into_bytes()),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        (0u32..=400, 1usize..=20).prop_map(|(n, w)| format!("{n:0>w$}").into_bytes()),
        "[+ -]?[0-9]{1,25}[ .]?".prop_map(String::into_bytes),
        Just("1.5".into()),
        Just("1e3".into()),
        Just("\u{663}".into()),
        Just(Vec::new()),
        vec(any::<u8>(), 0..8),
    ]
}

/// Option keywords: the real ones in any case, near misses, random bytes.
fn option_keyword() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "TTL", "ttl", "Ttl", "MAXLIFETIME", "maxLifetime", "MAXSESSIONS", "maxsessions", "DENY", "ROUTE", "route",
            "deny",
        ])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::sample::select(vec!["TTL ", "TT", "EX", "MAX-LIFETIME", "T\u{0}TL", ""])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => vec(any::<u8>(), 0..12),
    ]
}

/// An option list: mostly keyword/value pairs, sometimes with a stray argument.
fn option_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        3 => vec((option_keyword(), option_value()), 0..4)
            .prop_map(|pairs| pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        1 => vec(prop_oneof![option_keyword(), option_value()], 0..7),
    ]
}

/// Byte strings that are often tokens, nearly tokens, or not at all.
fn token_like() -> impl Strategy<Value = Vec<u8>> {
    let hex = prop::sample::select(&b"0123456789abcdef"[..]);
    prop_oneof![
        vec(hex.clone(), 28..=260),
        (
            vec(hex, 30..=258),
            any::<prop::sample::Index>(),
            any::<u8>()
        )
            .prop_map(|(mut t, at, b)| {
                let i = at.index(t.len());
                t[i] = b;
                t
            }),
        vec(any::<u8>(), 0..300),
    ]
}

/// Setting names as load arguments give them: real, prefixed, any case, or junk.
fn setting_name() -> impl Strategy<Value = Vec<u8>> {
    let real = prop::sample::select(Setting::ALL.to_vec());
    prop_oneof![
        3 => (real, any::<bool>(), any::<bool>()).prop_map(|(s, prefix, upper)| {
            let name = if prefix {
                format!("session.{}", s.name())
            } else {
                s.name().to_string()
            };
            if upper { name.to_uppercase() } else { name }.into_bytes()
        }),
        1 => vec(any::<u8>(), 0..12),
    ]
}

/// Setting values: numbers near and past every range, index lists, prefixes, junk.
fn setting_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        (-2i64..=20).prop_map(|n| n.to_string().into_bytes()),
        prop::sample::select(vec![
            1023i64,
            1024,
            536_870_912,
            536_870_913,
            15,
            16,
            128,
            129,
            MAX_SECONDS,
            MAX_SECONDS + 1,
        ])
        .prop_map(|n| n.to_string().into_bytes()),
        "[a-z_ ,]{0,20}".prop_map(String::into_bytes),
        text().prop_map(String::into_bytes),
        vec(any::<u8>(), 0..16),
    ]
}

// ---------------------------------------------------------------------------------------
// Reference definitions, written apart from the code under test

/// A token is lowercase hex of 32 to 256 characters (SPEC, Tokens).
fn reference_token(t: &[u8]) -> bool {
    let len_ok = t.len() >= 32 && t.len() <= 256;
    len_ok && t.iter().all(|b| b"0123456789abcdef".contains(b))
}

/// A whole number written in decimal digits (leading zeros allowed), between `min` and
/// [`MAX_SECONDS`] (SPEC, SESSION.CREATE).
fn reference_whole(text: &[u8], min: i64) -> Option<i64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = text
        .iter()
        .position(|&b| b != b'0')
        .map_or(&b"0"[..], |i| &text[i..]);
    if digits.len() > 18 {
        return None;
    }
    let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (min..=MAX_SECONDS).contains(&n).then_some(n)
}

/// `[TTL n] [MAXLIFETIME n] [MAXSESSIONS n [DENY]]` in any order, each at most once,
/// keywords in any case.
fn reference_options(args: &[Vec<u8>]) -> Option<CreateOptions> {
    let mut options = CreateOptions::default();
    let mut rest = args;
    while !rest.is_empty() {
        let keyword = rest[0].to_ascii_uppercase();
        let value = rest.get(1)?;
        let at = args.len() - rest.len() + 1;
        rest = &rest[2..];
        match keyword.as_slice() {
            b"ROUTE" if options.route.is_none() => options.route = Some(at),
            b"TTL" if options.ttl.is_none() => options.ttl = Some(reference_whole(value, 1)?),
            b"MAXLIFETIME" if options.max_lifetime.is_none() => {
                options.max_lifetime = Some(reference_whole(value, 0)?)
            }
            b"MAXSESSIONS" if options.max_sessions.is_none() => {
                let limit = reference_whole(value, 1).filter(|n| *n <= 1_000_000)?;
                let deny = rest
                    .first()
                    .is_some_and(|a| a.eq_ignore_ascii_case(b"DENY"));
                if deny {
                    rest = &rest[1..];
                }
                options.max_sessions = Some(MaxSessions { limit, deny });
            }
            _ => return None,
        }
    }
    Some(options)
}

/// Nesting depth with the outer object being level 1.
fn levels(value: &Value) -> usize {
    match value {
        Value::Object(m) => 1 + m.values().map(levels).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(levels).max().unwrap_or(0),
        _ => 0,
    }
}

fn patched(target: &Object, patch: &Object) -> Object {
    let mut out = target.clone();
    json::merge_patch(&mut out, patch);
    out
}

/// Every numeric setting is inside its range and the text settings are well-formed.
fn settings_in_range(s: &Settings) -> Result<(), TestCaseError> {
    for setting in Setting::ALL {
        if let Some((min, max)) = setting.range() {
            let v = s.numeric(setting);
            prop_assert!((min..=max).contains(&v), "{setting:?} = {v}");
        }
    }
    for name in &s.indexes {
        prop_assert!(!name.is_empty() && name.trim() == name && !name.contains(['\0', ',']));
    }
    let mut unique = s.indexes.clone();
    unique.sort();
    unique.dedup();
    prop_assert_eq!(unique.len(), s.indexes.len());
    prop_assert!(!s.key_prefix.contains('\0') && !s.index_prefix.contains('\0'));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    /// Whatever bytes arrive, `parse_object` answers; what it accepts is an object within
    /// the limits whose compact text parses back to the same object (a fixed point).
    #[test]
    fn parse_object_never_panics_and_accepted_text_round_trips(
        bytes in json_like_bytes(),
        max in prop_oneof![Just(65536i64), 0i64..64],
    ) {
        if let Ok(object) = json::parse_object(&bytes, max) {
            prop_assert!(bytes.len() as i64 <= max);
            prop_assert!(json::within_depth(&object));
            let text = json::to_text(&object);
            let again = json::parse_object(text.as_bytes(), i64::MAX);
            prop_assert_eq!(again.as_ref(), Ok(&object), "{}", text);
            prop_assert_eq!(json::to_text(&again.unwrap()), text);
        }
    }

    /// Any object a client could send comes back exactly: key order, NUL bytes in names,
    /// Unicode, and numbers beyond i64 and f64 with their digits.
    #[test]
    fn serialized_objects_are_accepted_and_kept_exactly(object in object()) {
        let text = serde_json::to_string(&object).unwrap();
        let parsed = json::parse_object(text.as_bytes(), i64::MAX).unwrap();
        prop_assert_eq!(&parsed, &object);
        prop_assert_eq!(json::to_text(&parsed), text);
    }

    /// Nesting up to 100 levels is accepted and deeper is refused as too deep, whatever
    /// mix of objects and arrays makes it, and however much deeper (up to 100,000).
    #[test]
    fn nesting_is_accepted_exactly_up_to_100_levels(
        kinds in vec(any::<bool>(), 0..130),
        extra in prop_oneof![Just(0usize), 1usize..100_000],
        closed in any::<bool>(),
    ) {
        // Level 1 is the outer object; each `kinds` entry adds a level, an object (`{"k":`)
        // or an array (`[`); `extra` adds that many more array levels.
        let mut text = String::from("{\"k\":");
        let mut closers = vec!['}'];
        for &is_object in &kinds {
            text.push_str(if is_object { "{\"k\":" } else { "[" });
            closers.push(if is_object { '}' } else { ']' });
        }
        text.extend(std::iter::repeat_n('[', extra));
        closers.extend(std::iter::repeat_n(']', extra));
        text.push('1');
        if closed {
            text.extend(closers.iter().rev());
        }
        let depth = 1 + kinds.len() + extra;
        let got = json::parse_object(text.as_bytes(), i64::MAX);
        if !closed {
            // Not JSON at all; whether the parser first meets the end of the text or its
            // recursion limit, it is refused.
            prop_assert!(matches!(got, Err(Error::NotJson(_) | Error::TooDeep)), "{:?}", got);
        } else if depth <= MAX_DEPTH {
            let object = got.unwrap();
            prop_assert_eq!(levels(&Value::Object(object.clone())), depth);
            prop_assert_eq!(json::to_text(&object), text);
        } else {
            prop_assert_eq!(got, Err(Error::TooDeep));
        }
    }

    /// The size limit counts bytes, and comes before any parsing.
    #[test]
    fn texts_over_the_limit_are_refused_as_too_large(
        bytes in json_like_bytes(),
        max in 0i64..300,
    ) {
        let got = json::parse_object(&bytes, max);
        if bytes.len() as i64 > max {
            prop_assert_eq!(got, Err(Error::TooLarge(max)));
        } else {
            prop_assert!(!matches!(got, Err(Error::TooLarge(_))));
        }
    }

    /// CREATE's options: no panic on any argument list, and accepted exactly when valid by
    /// the reference definition, with the same values.
    #[test]
    fn create_options_accept_exactly_valid_lists(args in option_args()) {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let got = CreateOptions::parse(&refs).ok();
        prop_assert_eq!(got, reference_options(&args), "{:?}", args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>());
    }

    /// ROTATE's options: no panic, and accepted exactly as `[GRACE n]` with n in 0..=300.
    #[test]
    fn rotate_options_accept_exactly_grace_in_range(args in vec(
        prop_oneof![
            prop::sample::select(vec!["GRACE", "grace", "Grace", "TTL", ""])
                .prop_map(|s| s.as_bytes().to_vec()),
            option_value(),
        ],
        0..4,
    )) {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let got = crate::session::parse_rotate_options(&refs).ok();
        let want = match args.as_slice() {
            [] => Some(0),
            [k, v] if k.eq_ignore_ascii_case(b"GRACE") => {
                reference_whole(v, 0).filter(|n| *n <= 300)
            }
            _ => None,
        };
        prop_assert_eq!(got, want);
    }

    /// `is_well_formed` is the contract's definition of a token.
    #[test]
    fn token_check_agrees_with_the_reference(t in token_like()) {
        prop_assert_eq!(token::is_well_formed(&t), reference_token(&t));
    }

    /// Generated tokens are well-formed for every allowed `token-bytes`.
    #[test]
    fn generated_tokens_are_well_formed(n in 16usize..=128) {
        let t = token::generate(&mut rand::rng(), n);
        prop_assert_eq!(t.len(), 2 * n);
        prop_assert!(reference_token(t.as_bytes()));
    }

    /// The hash a session is stored under (`token-hash sha256`) and LIST's identifier: for
    /// any token, its slot tag then 64 hex digits, well-formed, in the token's hash slot
    /// when it has a tag, and never the token itself; never a panic, for any bytes.
    #[test]
    fn hashed_tokens_keep_their_slot_and_are_well_formed(
        t in token_like(),
        tagged in any::<bool>(),
    ) {
        let mut token = if tagged { b"{06S}".to_vec() } else { Vec::new() };
        token.extend_from_slice(&t);
        let member = token::hashed(&token);
        if token::is_well_formed(&token) {
            let tag = crate::cluster::tag_prefix(&token);
            prop_assert!(member.as_bytes().starts_with(tag));
            prop_assert_eq!(member.len(), tag.len() + token::HASHED_LEN);
            prop_assert!(token::is_well_formed(member.as_bytes()));
            // A tagged token's hash is in its slot (an untagged one is not in cluster mode).
            if !tag.is_empty() {
                prop_assert_eq!(
                    crate::cluster::key_slot(member.as_bytes()),
                    crate::cluster::key_slot(&token)
                );
            }
            prop_assert_ne!(member.as_bytes(), token.as_slice());
            prop_assert_eq!(member, token::hashed(&token));
        }
    }

    /// LIST's elements: the token (when shown) and the identifier first, then the data as it
    /// was, less a `sessionId` of its own; always one JSON object.
    #[test]
    fn list_elements_are_the_data_after_token_and_identifier(
        mut object in object(),
        own_id in option::of(value()),
        shown in any::<bool>(),
    ) {
        // Stored data never has a `token` (CREATE and UPDATE refuse it).
        object.remove("token");
        if let Some(v) = own_id {
            object.insert("sessionId".to_string(), v);
        }
        let data = json::to_text(&object);
        let token = "ab".repeat(24);
        let id = "cd".repeat(32);
        let element = crate::session::listed(&data, shown.then_some(token.as_str()), &id);
        let parsed = json::parse_object(element.as_bytes(), i64::MAX).unwrap();
        let keys: Vec<&str> = parsed.keys().map(String::as_str).collect();
        let mut expected = object.clone();
        expected.remove("sessionId");
        let head = if shown { 2 } else { 1 };
        prop_assert_eq!(keys.len(), expected.len() + head);
        if shown {
            prop_assert_eq!(keys.first().copied(), Some("token"));
            prop_assert_eq!(parsed.get("token"), Some(&Value::String(token.clone())));
        }
        prop_assert_eq!(keys.get(head - 1).copied(), Some("sessionId"));
        prop_assert_eq!(parsed.get("sessionId"), Some(&Value::String(id.clone())));
        let mut rest = parsed.clone();
        rest.remove("token");
        rest.remove("sessionId");
        prop_assert_eq!(rest, expected);
    }

    /// A hash's fields, whatever they hold, decode without panic; what decodes is a session
    /// by the documented rule (data an object text, ttl in range, deadline >= 0).
    #[test]
    fn stored_decode_never_panics_and_accepts_only_sessions(
        data in option::of(prop_oneof![json_like_bytes(), any::<Vec<u8>>()]),
        ttl in option::of(option_value()),
        deadline in option::of(prop_oneof![
            option_value(),
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        ]),
        indexes in option::of(prop_oneof![
            vec(text(), 0..4).prop_map(|v| serde_json::to_vec(&v).unwrap()),
            any::<Vec<u8>>(),
        ]),
    ) {
        let got = Stored::decode(data.as_deref(), ttl.as_deref(), deadline.as_deref(), indexes.as_deref());
        if let Some(stored) = got {
            prop_assert_eq!(data.as_ref().and_then(|d| d.first()), Some(&b'{'));
            prop_assert!((1..=MAX_SECONDS).contains(&stored.lifetime.ttl));
            prop_assert!(stored.lifetime.deadline_ms >= 0);
            let want: Vec<String> = match &indexes {
                Some(text) => serde_json::from_slice(text).unwrap(),
                None => Vec::new(),
            };
            let text = indexes.as_deref().unwrap_or(b"[]");
            prop_assert_eq!(crate::session::parse_index_list(text), Some(want));
        }
    }

    /// What the module writes, it reads back as the same session.
    #[test]
    fn stored_fields_written_by_the_module_decode_to_themselves(
        object in object(),
        ttl in 1..=MAX_SECONDS,
        deadline_ms in prop_oneof![Just(0i64), 0..=i64::MAX],
        index_keys in vec(text(), 0..4),
    ) {
        let data = json::to_text(&object);
        let ttl_text = ttl.to_string();
        let deadline_text = deadline_ms.to_string();
        let indexes = (!index_keys.is_empty()).then(|| serde_json::to_vec(&index_keys).unwrap());
        let got = Stored::decode(
            Some(data.as_bytes()),
            Some(ttl_text.as_bytes()),
            Some(deadline_text.as_bytes()),
            indexes.as_deref(),
        );
        prop_assert_eq!(got, Some(Stored { lifetime: Lifetime { ttl, deadline_ms } }));
        let text = indexes.unwrap_or_else(|| b"[]".to_vec());
        prop_assert_eq!(crate::session::parse_index_list(&text), Some(index_keys));
    }

    /// Any string value parses as layout 2 without panic, and what parses has the layout's
    /// rules (magic, TTL in range, data an object's text, index list an array).
    #[test]
    fn layout_parse_never_panics_and_accepts_only_the_layout(
        value in prop_oneof![
            any::<Vec<u8>>(),
            (any::<Vec<u8>>(), json_like_bytes()).prop_map(|(h, d)| {
                let mut v = b"s2 0123456789abcdef 7200 0".to_vec();
                v.extend_from_slice(&h);
                v.push(b'\n');
                v.extend_from_slice(&d);
                v
            }),
        ],
        check in any::<bool>(),
    ) {
        if let Some(view) = View::parse(&value, check) {
            prop_assert!(value.starts_with(b"s2 "));
            prop_assert!((1..=MAX_SECONDS).contains(&view.lifetime.ttl));
            prop_assert!(view.lifetime.deadline_ms >= 0);
            prop_assert_eq!(view.data.first(), Some(&b'{'));
            prop_assert_eq!(view.data.last(), Some(&b'}'));
            if let (true, Some(list)) = (check, view.indexes) {
                prop_assert!(crate::session::parse_index_list(list).is_some());
            }
        }
    }

    /// What the module writes in layout 2, it reads back as the same session, signed for its
    /// own name and secret only.
    #[test]
    fn layout_written_by_the_module_reads_back_as_itself(
        object in object(),
        ttl in 1..=MAX_SECONDS,
        deadline_ms in prop_oneof![Just(0i64), 0..=i64::MAX],
        index_keys in vec(text(), 0..4),
        name in vec(any::<u8>(), 0..64),
        key in any::<[u8; 16]>(),
        hashed in any::<bool>(),
    ) {
        let secret = Secret::from_hex(token::to_hex(&key).as_bytes()).unwrap();
        let (domain, wrong) = if hashed {
            (Domain::Hashed, Domain::Plain)
        } else {
            (Domain::Plain, Domain::Hashed)
        };
        let data = json::to_text(&object);
        let indexes = (!index_keys.is_empty()).then(|| serde_json::to_string(&index_keys).unwrap());
        let lifetime = Lifetime { ttl, deadline_ms };
        let value = encode(
            &secret,
            domain,
            &name,
            lifetime,
            indexes.as_deref().map(str::as_bytes),
            data.as_bytes(),
        );
        let view = View::parse(&value, true).unwrap();
        prop_assert!(view.is_signed(&secret, domain, &name));
        prop_assert!(!view.is_signed(&secret, wrong, &name));
        prop_assert_eq!(view.domain(&secret, &name), Some(domain));
        let mut other = name.clone();
        other.push(b'x');
        prop_assert!(!view.is_signed(&secret, domain, &other));
        prop_assert_eq!(view.lifetime, lifetime);
        prop_assert_eq!(view.data, data.as_bytes());
        prop_assert_eq!(view.indexes, indexes.as_deref().map(str::as_bytes));
    }

    /// Load arguments never panic and never leave a setting out of its range, accepted or
    /// refused.
    #[test]
    fn load_args_never_leave_a_value_out_of_range(
        args in vec(prop_oneof![setting_name(), setting_value()], 0..9),
    ) {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut settings = Settings::default();
        let outcome = settings.apply_load_args(&refs);
        settings_in_range(&settings)?;
        if let Err(e) = outcome {
            prop_assert!(e.to_string().starts_with("ERR session."), "{}", e);
        }
    }

    /// Load arguments made of real names and in-range values are all accepted.
    #[test]
    fn in_range_load_args_are_accepted(
        ttl in 1..=MAX_SECONDS,
        token_bytes in 16i64..=128,
        max_data in 1024i64..=536_870_912,
        life in 0..=MAX_SECONDS,
        indexes in vec("[a-z_]{1,8}", 0..4),
    ) {
        let pairs = [
            ("ttl", ttl.to_string()),
            ("TOKEN-BYTES", token_bytes.to_string()),
            ("session.max-data-bytes", max_data.to_string()),
            ("Max-Lifetime", life.to_string()),
            ("indexes", indexes.join(",")),
        ];
        let args: Vec<&[u8]> = pairs
            .iter()
            .flat_map(|(n, v)| [n.as_bytes(), v.as_bytes()])
            .collect();
        let mut settings = Settings::default();
        prop_assert_eq!(settings.apply_load_args(&args), Ok(()));
        prop_assert_eq!(
            (settings.ttl, settings.token_bytes, settings.max_data_bytes, settings.max_lifetime),
            (ttl, token_bytes, max_data, life)
        );
        settings_in_range(&settings)?;
    }

    /// RFC 7386: the empty patch changes nothing.
    #[test]
    fn merge_patch_with_empty_object_is_identity(target in object()) {
        prop_assert_eq!(patched(&target, &Object::new()), target);
    }

    /// RFC 7386: a patch applied twice gives what it gives once.
    #[test]
    fn merge_patch_is_idempotent(target in object(), patch in object()) {
        let once = patched(&target, &patch);
        prop_assert_eq!(patched(&once, &patch), once);
    }

    /// After a patch, each patched name holds what the patch says (null: gone; an object:
    /// merged; anything else: replaced), every other name is as it was, and the target's
    /// names keep their order.
    #[test]
    fn merge_patch_sets_what_the_patch_says(target in object(), patch in object()) {
        let out = patched(&target, &patch);
        for (name, value) in &patch {
            match value {
                Value::Null => prop_assert!(!out.contains_key(name)),
                Value::Object(inner) => {
                    let base = match target.get(name) {
                        Some(Value::Object(m)) => m.clone(),
                        _ => Object::new(),
                    };
                    prop_assert_eq!(out.get(name), Some(&Value::Object(patched(&base, inner))));
                }
                other => prop_assert_eq!(out.get(name), Some(other)),
            }
        }
        for (name, value) in &target {
            if !patch.contains_key(name) {
                prop_assert_eq!(out.get(name), Some(value));
            }
        }
        let kept: Vec<&String> = target.keys().filter(|k| out.contains_key(*k)).collect();
        let order: Vec<&String> = out.keys().filter(|k| target.contains_key(*k)).collect();
        prop_assert_eq!(kept, order);
    }
}

/// The case the options property found: a zero-padded whole number in range is a whole
/// number in range, however many zeros pad it (the module accepts `060` but refused
/// `0000000000060`, whose 13 characters passed a length check meant for significant digits).
#[test]
fn zero_padded_whole_numbers_are_accepted_whatever_their_length() {
    for (args, want) in [
        (
            [&b"TTL"[..], b"060"],
            CreateOptions {
                ttl: Some(60),
                ..CreateOptions::default()
            },
        ),
        (
            [&b"TTL"[..], b"0000000000060"],
            CreateOptions {
                ttl: Some(60),
                ..CreateOptions::default()
            },
        ),
        (
            [&b"MAXLIFETIME"[..], b"00000000000000000000"],
            CreateOptions {
                max_lifetime: Some(0),
                ..CreateOptions::default()
            },
        ),
    ] {
        let shown = args.map(String::from_utf8_lossy);
        assert_eq!(CreateOptions::parse(&args), Ok(want), "{shown:?}");
    }
}
