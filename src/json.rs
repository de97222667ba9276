//! Session data as JSON: parsing a client's `data` argument under the contract's limits,
//! and the text an indexed value takes in an index key's name.
//!
//! serde_json runs with `arbitrary_precision` (numbers keep their exact digits, whatever
//! their size) and `preserve_order` (objects keep their key order), so what a client stored
//! is what it gets back.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::limits::MAX_DEPTH;

/// A JSON object, as session data is.
pub type Object = Map<String, Value>;

/// Parses `text` as a JSON object no longer than `max_bytes` and no deeper than
/// [`MAX_DEPTH`].
pub fn parse_object(text: &[u8], max_bytes: i64) -> Result<Object> {
    if i64::try_from(text.len()).map_or(true, |len| len > max_bytes) {
        return Err(Error::TooLarge(max_bytes));
    }
    // serde_json refuses nesting past 128 levels by itself, which also bounds the recursion
    // of `depth` and of dropping the value below.
    let value: Value = serde_json::from_slice(text).map_err(|e| {
        let detail = e.to_string();
        if detail.starts_with("recursion limit exceeded") {
            Error::TooDeep
        } else {
            Error::NotJson(detail)
        }
    })?;
    let Value::Object(object) = value else {
        return Err(Error::NotObject);
    };
    if !within_depth(&object) {
        return Err(Error::TooDeep);
    }
    Ok(object)
}

/// Nesting depth of a value: 0 for scalars, 1 for an object or array of scalars.
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The text a property's value takes in an index key's name: a string's raw UTF-8, a
/// number's or boolean's compact JSON. `Ok(None)` for `null` (not indexed); an error for an
/// object or an array.
pub fn index_value(property: &str, value: &Value) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Object(_) | Value::Array(_) => Err(Error::BadIndexValue(property.to_string())),
    }
}

/// Applies `patch` to `target` as an RFC 7386 JSON Merge Patch: `null` removes a property,
/// objects merge recursively, anything else replaces.
pub fn merge_patch(target: &mut Object, patch: &Object) {
    for (name, value) in patch {
        match value {
            Value::Null => {
                target.shift_remove(name);
            }
            Value::Object(inner_patch) => {
                let slot = target
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(Object::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Object::new());
                }
                if let Value::Object(inner) = slot {
                    merge_patch(inner, inner_patch);
                }
            }
            other => {
                target.insert(name.clone(), other.clone());
            }
        }
    }
}

/// True when `object` (the outer level being 1) is nested no deeper than [`MAX_DEPTH`].
pub fn within_depth(object: &Object) -> bool {
    object.values().map(depth).max().unwrap_or(0) < MAX_DEPTH
}

/// Compact JSON text of an object.
pub fn to_text(object: &Object) -> String {
    // Serializing a `Map<String, Value>` into a String cannot fail: every key is a string
    // and every number was parsed from valid JSON.
    serde_json::to_string(object).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        // `levels` objects deep: {"a":{"a":...{}}}
        let mut s = String::new();
        for _ in 0..levels - 1 {
            s.push_str("{\"a\":");
        }
        s.push_str("{}");
        for _ in 0..levels - 1 {
            s.push('}');
        }
        s
    }

    #[test]
    fn objects_parse_and_round_trip_exactly() {
        let cases = [
            r#"{"user_id":150,"foo":"bar"}"#,
            r#"{"big":123456789012345678901234567890,"f":1.0,"g":0.1,"h":-0,"i":1.50}"#,
            r#"{"z":1,"a":2,"m":3}"#,
            r#"{"empty":[],"obj":{},"nested":{"x":[1,[2,[3]]]}}"#,
            r#"{"name":"Zoë 🦀","t":true,"n":null}"#,
            r#"{}"#,
        ];
        for text in cases {
            let object = parse_object(text.as_bytes(), 65536).unwrap();
            assert_eq!(to_text(&object), text);
        }
    }

    #[test]
    fn exponents_keep_their_digits_in_normal_form() {
        let object = parse_object(br#"{"a":1e400,"b":2.5E-3,"c":7e+2}"#, 65536).unwrap();
        assert_eq!(to_text(&object), r#"{"a":1e+400,"b":2.5e-3,"c":7e+2}"#);
    }

    #[test]
    fn non_objects_and_bad_json_are_refused() {
        let cases: [(&[u8], Error); 7] = [
            (b"[1,2]", Error::NotObject),
            (b"42", Error::NotObject),
            (b"\"s\"", Error::NotObject),
            (b"null", Error::NotObject),
            (b"{", Error::NotJson(String::new())),
            (b"{\"a\":\xff}", Error::NotJson(String::new())),
            (b"", Error::NotJson(String::new())),
        ];
        for (text, want) in cases {
            let got = parse_object(text, 65536).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&want),
                "{got}"
            );
        }
    }

    #[test]
    fn size_limit_counts_bytes() {
        let text = format!("{{\"a\":\"{}\"}}", "x".repeat(1100));
        assert_eq!(
            parse_object(text.as_bytes(), 1024),
            Err(Error::TooLarge(1024))
        );
        assert!(parse_object(text.as_bytes(), text.len() as i64).is_ok());
    }

    #[test]
    fn hundred_levels_pass_and_more_are_refused() {
        assert!(parse_object(nested(100).as_bytes(), 1 << 20).is_ok());
        assert_eq!(
            parse_object(nested(101).as_bytes(), 1 << 20),
            Err(Error::TooDeep)
        );
        assert_eq!(
            parse_object(nested(130).as_bytes(), 1 << 20),
            Err(Error::TooDeep)
        );
        let deep_arrays = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse_object(deep_arrays.as_bytes(), 1 << 20),
            Err(Error::TooDeep)
        );
    }

    fn obj(text: &str) -> Object {
        parse_object(text.as_bytes(), 1 << 20).unwrap()
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The examples of RFC 7386 section 3 that start from an object.
        let cases = [
            (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
            (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
            (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
            (
                r#"{"a":{"b":"c"}}"#,
                r#"{"a":{"b":"d","c":null}}"#,
                r#"{"a":{"b":"d"}}"#,
            ),
            (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
            (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
            (
                r#"{}"#,
                r#"{"a":{"bb":{"ccc":null}}}"#,
                r#"{"a":{"bb":{}}}"#,
            ),
            (r#"{"a":1}"#, r#"{"a":{"b":2}}"#, r#"{"a":{"b":2}}"#),
        ];
        for (target, patch, want) in cases {
            let mut t = obj(target);
            merge_patch(&mut t, &obj(patch));
            assert_eq!(to_text(&t), want, "{target} + {patch}");
        }
    }

    #[test]
    fn index_values_take_their_documented_form() {
        let object = parse_object(
            r#"{"i":150,"f":1.5,"g":1.0,"b":true,"s":"alice","u":"Zoë","n":null,"o":{},"a":[]}"#
                .as_bytes(),
            65536,
        )
        .unwrap();
        let form = |k: &str| index_value(k, &object[k]);
        assert_eq!(form("i"), Ok(Some("150".into())));
        assert_eq!(form("f"), Ok(Some("1.5".into())));
        assert_eq!(form("g"), Ok(Some("1.0".into())));
        assert_eq!(form("b"), Ok(Some("true".into())));
        assert_eq!(form("s"), Ok(Some("alice".into())));
        assert_eq!(form("u"), Ok(Some("Zoë".into())));
        assert_eq!(form("n"), Ok(None));
        assert_eq!(form("o"), Err(Error::BadIndexValue("o".into())));
        assert_eq!(form("a"), Err(Error::BadIndexValue("a".into())));
    }
}
