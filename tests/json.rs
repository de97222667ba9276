//! JSON round trip through CREATE, the stored session's data, VALIDATE and GET: exact numbers, nested
//! values, Unicode, and the 100-level depth limit.

mod common;

use common::{keys_of, normalize, parse_object, Layout, Server};

/// Data exercising every JSON type, numbers that lose digits as f64 or i64, and Unicode.
const ROUND_TRIP: &str = r#"{"big":123456789012345678901234567890,"negbig":-123456789012345678901234567890,"u64max_plus":18446744073709551616,"one":1.0,"tenth":0.1,"third":0.333333333333333333333333333333,"tiny":1.5e-7,"huge":1e400,"zero":0,"negzero":-0,"int":150,"neg":-42,"t":true,"f":false,"n":null,"empty_arr":[],"empty_obj":{},"nested":{"a":[1,{"b":[true,false,null,[]]}],"c":{"d":{"e":"deep"}}},"name":"Zoë","emoji":"😀 👩‍👩‍👧","escaped":"q\"b\\s\n\t\u0001","escaped_unicode":"\u00e9\ud83d\ude00","cjk":"会话","empty":""}"#;

#[test]
fn json_round_trips_exactly_through_create_validate_and_get() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(ROUND_TRIP, &[]);
    let input = parse_object(ROUND_TRIP);

    // CREATE's reply: token, then the data unchanged, then createdAt.
    let mut expected_keys = vec!["token"];
    expected_keys.extend(keys_of(&input));
    expected_keys.push("createdAt");
    assert_eq!(keys_of(&created.reply), expected_keys);

    let mut expected = input.clone();
    expected.insert("createdAt".into(), created.reply["createdAt"].clone());
    let expected = serde_json::to_string(&expected).unwrap();

    let stored = c.stored(&created.token);
    assert_eq!(stored.layout, Layout::V2);
    for (what, reply) in [
        ("VALIDATE", c.validate(&created.token)),
        ("GET", c.get(&created.token)),
        ("stored data", Some(stored.data.clone())),
    ] {
        let reply = reply.unwrap_or_else(|| panic!("{what}: nil"));
        assert_eq!(normalize(&reply), expected, "{what}");
        let parsed = parse_object(&reply);
        for (key, text) in [
            ("big", "123456789012345678901234567890"),
            ("negbig", "-123456789012345678901234567890"),
            ("u64max_plus", "18446744073709551616"),
            ("one", "1.0"),
            ("tenth", "0.1"),
            ("third", "0.333333333333333333333333333333"),
            ("int", "150"),
            ("negzero", "-0"),
            ("empty_arr", "[]"),
            ("empty_obj", "{}"),
        ] {
            assert_eq!(parsed[key].to_string(), text, "{what}: {key}");
        }
        assert_eq!(parsed["name"], "Zoë", "{what}");
        assert_eq!(parsed["emoji"], "😀 👩‍👩‍👧", "{what}");
        assert_eq!(parsed["escaped"], "q\"b\\s\n\t\u{1}", "{what}");
        assert_eq!(parsed["escaped_unicode"], "é😀", "{what}");
        // 1e400 is beyond f64: it must survive as that number (serde_json writes 1e+400),
        // not turn into null, inf or an f64's digits.
        let huge = parsed["huge"].to_string();
        assert!(huge == "1e400" || huge == "1e+400", "{what}: huge = {huge}");
        let tiny = parsed["tiny"].to_string();
        assert!(
            tiny == "1.5e-7" || tiny == "1.5e-07",
            "{what}: tiny = {tiny}"
        );
    }
}

#[test]
fn json_text_of_create_reply_matches_data_for_exact_numbers() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(r#"{"x":1.10,"y":100000000000000000000000000001}"#, &[]);
    assert_eq!(created.reply["x"].to_string(), "1.10");
    assert_eq!(
        created.reply["y"].to_string(),
        "100000000000000000000000000001"
    );
    assert!(created.raw.contains(r#""x":1.10"#), "{}", created.raw);
    let v = c.validate(&created.token).unwrap();
    assert!(
        v.starts_with(r#"{"x":1.10,"y":100000000000000000000000000001,"createdAt":""#),
        "{v}"
    );
}

/// Nested JSON `levels` deep, the outer object being level 1, alternating objects and
/// arrays, with an empty array at the deepest level.
fn nested(levels: usize) -> String {
    assert!(levels >= 1);
    let mut open = String::from("{\"k\":");
    let mut close = String::from("}");
    for level in 2..=levels {
        if level == levels {
            open.push_str("[]");
        } else if level % 2 == 0 {
            open.push('[');
            close.insert(0, ']');
        } else {
            open.push_str("{\"k\":");
            close.insert(0, '}');
        }
    }
    if levels == 1 {
        open.push('1');
    }
    open + &close
}

#[test]
fn json_nested_100_levels_round_trips() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let data = nested(100);
    let created = c.create(&data, &[]);
    let v = c.validate(&created.token).unwrap();
    let mut expected = parse_object(&data);
    expected.insert("createdAt".into(), created.reply["createdAt"].clone());
    assert_eq!(v, serde_json::to_string(&expected).unwrap());
}

#[test]
fn json_nested_101_levels_is_refused() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for data in [nested(101), nested(150)] {
        let e = c.err(&["SESSION.CREATE", &data]);
        assert_eq!(e, "ERR data is nested more than 100 levels deep");
        assert_eq!(c.dbsize(), 0);
    }
    // Depth counts containers, not the number of properties.
    let wide = format!(
        "{{{}}}",
        (0..500)
            .map(|i| format!("\"k{i}\":[[1]]"))
            .collect::<Vec<_>>()
            .join(",")
    );
    c.create(&wide, &[]);
}

#[test]
fn json_100000_deep_arrays_are_refused_and_server_lives() {
    let mut s = Server::start(&["max-data-bytes", "4194304"]);
    let mut c = s.conn();
    let n = 100_000;
    let inputs = [
        format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n)),
        format!("{}{}", "[".repeat(n), "]".repeat(n)),
        "[".repeat(n),
        format!("{{\"a\":{}", "{\"a\":".repeat(n)),
        format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)),
    ];
    for data in &inputs {
        let e = c.err(&["SESSION.CREATE", data]);
        assert!(e.starts_with("ERR "), "{e}");
        assert_eq!(c.dbsize(), 0);
        c.ping();
    }
    // Within the default size limit, the size check refuses it first; still an error.
    c.ok(&["CONFIG", "SET", "session.max-data-bytes", "65536"]);
    let e = c.err(&["SESSION.CREATE", &inputs[0]]);
    assert!(e.starts_with("ERR "), "{e}");
    s.assert_alive();
}
