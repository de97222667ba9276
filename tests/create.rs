//! SESSION.CREATE: reply shape, the stored session (layout 2) and the dataset's secret, expiry
//! from TTL and max lifetime, options, tokens, and every error case (each leaving nothing
//! written).

mod common;

use std::collections::BTreeSet;

use common::{is_lower_hex, keys_of, normalize, parse_created_at, tag_v2, Conn, Layout, Server};

/// `createdAt` must be UTC "now": between the server times taken around the command.
fn assert_created_at_now(created_at: &str, t0_ms: i64, t1_ms: i64) {
    let secs = parse_created_at(created_at)
        .unwrap_or_else(|| panic!("createdAt {created_at:?} is not YYYY-MM-DD HH:MM:SS"));
    assert!(
        (t0_ms / 1000..=t1_ms / 1000).contains(&secs),
        "createdAt {created_at} is not UTC now ({t0_ms}..{t1_ms} ms)"
    );
}

#[test]
fn create_reply_has_token_first_then_data_in_order_then_created_at() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let t0 = c.time_ms();
    let created = c.create(
        r#"{"b":1,"a":"x","c":[1,2],"user_id":150,"foo":"bar"}"#,
        &[],
    );
    let t1 = c.time_ms();
    assert_eq!(
        keys_of(&created.reply),
        ["token", "b", "a", "c", "user_id", "foo", "createdAt"]
    );
    assert_eq!(created.reply["b"].to_string(), "1");
    assert_eq!(created.reply["c"].to_string(), "[1,2]");
    assert_eq!(created.reply["user_id"].to_string(), "150");
    let created_at = created.reply["createdAt"]
        .as_str()
        .expect("createdAt is a string");
    assert_created_at_now(created_at, t0, t1);
}

#[test]
fn create_keeps_data_own_created_at_where_it_was() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(r#"{"x":1,"createdAt":"2015-10-25 20:14:10","y":2}"#, &[]);
    assert_eq!(keys_of(&created.reply), ["token", "x", "createdAt", "y"]);
    assert_eq!(created.reply["createdAt"], "2015-10-25 20:14:10");
    assert_eq!(
        created.raw.matches("createdAt").count(),
        1,
        "{}",
        created.raw
    );
    // Even a non-string createdAt is the data's own.
    let created = c.create(r#"{"createdAt":17}"#, &[]);
    assert_eq!(created.reply["createdAt"].to_string(), "17");
    assert_eq!(c.validate(&created.token).unwrap(), r#"{"createdAt":17}"#);
}

#[test]
fn create_of_empty_object_replies_token_and_created_at() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create("{}", &[]);
    assert_eq!(keys_of(&created.reply), ["token", "createdAt"]);
}

/// A session is one string, `s2 <tag> <ttl> <deadline>\n<data>` (no indexes configured: no
/// index list, nor its space), tagged for its key with the dataset's secret, which the first
/// CREATE made: 32 lowercase hex digits at `session-secret`, with no expiry.
#[test]
fn create_stores_documented_layout_2_string() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_eq!(c.dbsize(), 0);
    assert_eq!(c.secret(""), None, "no secret before the first CREATE");
    let created = c.create(r#"{"user_id":150,"foo":"bar"}"#, &[]);
    assert_eq!(c.key_type(&created.token), "string");
    let stored = c.stored(&created.token);
    assert_eq!(stored.layout, Layout::V2);
    assert_eq!(
        stored.indexes, None,
        "no indexes configured: no index list; got {stored:?}"
    );
    assert_eq!(
        normalize(&stored.data),
        created.data_text(),
        "data is the reply without token"
    );
    assert!(!stored.data.contains("token"));
    assert_eq!(stored.ttl, 7200);
    assert_eq!(stored.deadline, 0);
    assert_eq!(
        c.validate(&created.token).as_deref(),
        Some(stored.data.as_str())
    );
    // The secret, and the tag it gives the token's key.
    let secret = c.secret("").expect("CREATE made the secret");
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(is_lower_hex(&secret), "{secret}");
    assert_eq!(c.key_type("session-secret"), "string");
    assert_eq!(
        c.pexpiretime("session-secret"),
        -1,
        "the secret never expires"
    );
    let tag = tag_v2(&secret, created.token.as_bytes());
    assert_eq!(stored.tag.as_deref(), Some(tag.as_str()));
    // The exact bytes.
    assert_eq!(
        String::from_utf8(c.get_bytes(&created.token).unwrap()).unwrap(),
        format!("s2 {tag} 7200 0\n{}", stored.data)
    );
    // The session and the secret, nothing else; a second CREATE keeps the same secret.
    let mut expected = vec![
        created.token.clone().into_bytes(),
        b"session-secret".to_vec(),
    ];
    expected.sort();
    assert_eq!(c.keys(), expected);
    let second = c.create("{}", &[]);
    assert_eq!(c.secret("").as_deref(), Some(secret.as_str()));
    assert_eq!(
        c.stored(&second.token).tag,
        Some(tag_v2(&secret, second.token.as_bytes()))
    );
    assert_eq!(c.dbsize(), 3);
}

#[test]
fn create_with_indexes_records_index_keys_in_session() {
    let s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let stored = c.stored(&created.token);
    assert_eq!(stored.layout, Layout::V2);
    let idx = stored.indexes.clone().expect("an index list");
    assert_eq!(idx.len(), 2, "{idx:?}");
    assert_eq!(
        idx.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from(["tenant_id:acme".to_string(), "user_id:150".to_string()])
    );
    // The list is compact JSON, the header's fifth field.
    let value = String::from_utf8(c.get_bytes(&created.token).unwrap()).unwrap();
    let header = value.split_once('\n').unwrap().0;
    let list = header.splitn(5, ' ').nth(4).expect("a fifth header field");
    assert_eq!(
        list,
        serde_json::to_string(stored.indexes.as_ref().unwrap()).unwrap()
    );
    // A session with none of the indexed properties has no index list (nor its space).
    let plain = c.create(r#"{"other":1}"#, &[]);
    assert_eq!(c.stored(&plain.token).indexes, None);
    let value = String::from_utf8(c.get_bytes(&plain.token).unwrap()).unwrap();
    let header = value.split_once('\n').unwrap().0;
    assert_eq!(header.split(' ').count(), 4, "{header:?}");
}

/// Creates with `options` and checks expiry = now + `ttl_s` and deadline = now + `max_s`
/// (0: none), and that the expiry is capped by the deadline.
fn assert_create_timing(c: &mut Conn, options: &[&str], ttl_s: i64, max_s: i64) {
    let t0 = c.time_ms();
    let created = c.create(r#"{"a":1}"#, options);
    let t1 = c.time_ms();
    let stored = c.stored(&created.token);
    assert_eq!(stored.layout, Layout::V2, "options {options:?}");
    assert_eq!(stored.ttl, ttl_s, "options {options:?}");
    let deadline = stored.deadline;
    if max_s == 0 {
        assert_eq!(deadline, 0, "options {options:?}");
    } else {
        assert!(
            (t0 + max_s * 1000..=t1 + max_s * 1000).contains(&deadline),
            "options {options:?}: deadline {deadline} not now + {max_s} s ({t0}..{t1})"
        );
    }
    let exp = c.pexpiretime(&created.token);
    let mut lo = t0 + ttl_s * 1000;
    let mut hi = t1 + ttl_s * 1000;
    if max_s != 0 && max_s < ttl_s {
        lo = deadline;
        hi = deadline;
    }
    assert!(
        (lo..=hi).contains(&exp),
        "options {options:?}: expiry {exp} not in {lo}..={hi}"
    );
}

#[test]
fn create_sets_expiry_to_now_plus_default_ttl() {
    let s = Server::start(&[]);
    assert_create_timing(&mut s.conn(), &[], 7200, 0);
}

#[test]
fn create_ttl_option_overrides_setting() {
    let s = Server::start(&["ttl", "300"]);
    let mut c = s.conn();
    assert_create_timing(&mut c, &["TTL", "60"], 60, 0);
    assert_create_timing(&mut c, &[], 300, 0);
}

#[test]
fn create_maxlifetime_option_caps_expiry() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_create_timing(&mut c, &["TTL", "600", "MAXLIFETIME", "100"], 600, 100);
    assert_create_timing(&mut c, &["MAXLIFETIME", "100", "TTL", "600"], 600, 100);
}

#[test]
fn create_maxlifetime_longer_than_ttl_keeps_ttl_expiry() {
    let s = Server::start(&[]);
    assert_create_timing(
        &mut s.conn(),
        &["TTL", "60", "MAXLIFETIME", "1000"],
        60,
        1000,
    );
}

#[test]
fn create_max_lifetime_setting_caps_expiry() {
    let s = Server::start(&["max-lifetime", "100"]);
    assert_create_timing(&mut s.conn(), &[], 7200, 100);
}

#[test]
fn create_maxlifetime_zero_lifts_setting_cap() {
    let s = Server::start(&["max-lifetime", "100"]);
    assert_create_timing(&mut s.conn(), &["MAXLIFETIME", "0"], 7200, 0);
}

#[test]
fn create_option_keywords_are_case_insensitive() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_create_timing(&mut c, &["ttl", "60", "maxlifetime", "30"], 60, 30);
    assert_create_timing(&mut c, &["Ttl", "70", "MaxLifeTime", "40"], 70, 40);
}

#[test]
fn create_accepts_option_range_bounds() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_create_timing(&mut c, &["TTL", "1"], 1, 0);
    assert_create_timing(&mut c, &["TTL", "315360000"], 315_360_000, 0);
    assert_create_timing(&mut c, &["MAXLIFETIME", "315360000"], 7200, 315_360_000);
}

#[test]
fn tokens_are_48_lowercase_hex_chars_by_default() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for _ in 0..20 {
        let t = c.create("{}", &[]).token;
        assert_eq!(t.len(), 48, "{t}");
        assert!(is_lower_hex(&t), "{t}");
    }
}

#[test]
fn tokens_are_distinct_across_many_creates() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let n = 2000;
    let tokens: BTreeSet<String> = (0..n).map(|_| c.create("{}", &[]).token).collect();
    assert_eq!(tokens.len(), n);
    // Every session, and the secret.
    assert!(c.secret("").is_some());
    assert_eq!(c.dbsize(), n as i64 + 1);
}

/// Runs `SESSION.CREATE args...` and checks it fails with an error starting with
/// `expected`, writing nothing.
fn assert_refused(c: &mut Conn, args: &[&str], expected: &str) {
    let before = c.dbsize();
    let mut full = vec!["SESSION.CREATE"];
    full.extend_from_slice(args);
    let e = c.err(&full);
    assert!(
        e.starts_with(expected),
        "SESSION.CREATE {args:?}: expected an error starting {expected:?}, got {e:?}"
    );
    assert_eq!(
        c.dbsize(),
        before,
        "SESSION.CREATE {args:?} wrote something"
    );
    c.ping();
}

/// A server with an index configured, so that a half-done CREATE would show in DBSIZE.
fn server_with_index() -> Server {
    Server::start(&["indexes", "user_id"])
}

#[test]
fn create_refuses_data_that_is_not_json() {
    let s = server_with_index();
    let mut c = s.conn();
    for data in [
        "",
        "{",
        "not json",
        r#"{"user_id":1"#,
        r#"{"user_id":1}x"#,
        r#"{user_id:1}"#,
        r#"{"a":01}"#,
        r#"{"a":'x'}"#,
    ] {
        assert_refused(&mut c, &[data], "ERR data is not valid JSON");
    }
}

#[test]
fn create_refuses_data_that_is_not_an_object() {
    let s = server_with_index();
    let mut c = s.conn();
    for data in ["[]", r#"[{"user_id":1}]"#, "1", r#""s""#, "null", "true"] {
        assert_refused(&mut c, &[data], "ERR data must be a JSON object");
    }
}

#[test]
fn create_refuses_data_larger_than_max_data_bytes() {
    let s = Server::start(&["indexes", "user_id", "max-data-bytes", "1024"]);
    let mut c = s.conn();
    let data = |len: usize| {
        let overhead = r#"{"user_id":1,"pad":""}"#.len();
        format!(r#"{{"user_id":1,"pad":"{}"}}"#, "x".repeat(len - overhead))
    };
    assert_refused(
        &mut c,
        &[&data(1025)],
        "ERR data is larger than max-data-bytes (1024 bytes)",
    );
    c.create(&data(1024), &[]);
    // The default, 65536.
    c.ok(&["CONFIG", "SET", "session.max-data-bytes", "65536"]);
    assert_refused(
        &mut c,
        &[&data(65537)],
        "ERR data is larger than max-data-bytes (65536 bytes)",
    );
    c.create(&data(65536), &[]);
}

#[test]
fn create_refuses_reserved_token_property() {
    let s = server_with_index();
    let mut c = s.conn();
    for data in [
        r#"{"token":"x"}"#,
        r#"{"user_id":1,"token":null}"#,
        r#"{"a":1,"token":{"b":2}}"#,
    ] {
        assert_refused(
            &mut c,
            &[data],
            "ERR data must not contain the reserved property 'token'",
        );
    }
}

#[test]
fn create_refuses_indexed_property_holding_object_or_array() {
    let s = server_with_index();
    let mut c = s.conn();
    for data in [
        r#"{"user_id":{"a":1}}"#,
        r#"{"user_id":[1]}"#,
        r#"{"user_id":[]}"#,
        r#"{"user_id":{}}"#,
    ] {
        assert_refused(
            &mut c,
            &[data],
            "ERR indexed property 'user_id' must be a string, number, boolean or null",
        );
    }
    // An object or array under a property that is not indexed is fine.
    c.create(r#"{"other":{"a":[1]}}"#, &[]);
}

#[test]
fn create_refuses_bad_ttl() {
    let s = server_with_index();
    let mut c = s.conn();
    for ttl in [
        "0",
        "-1",
        "315360001",
        "1.5",
        "abc",
        "",
        "1e3",
        "99999999999999999999999",
        "0x10",
        " 5",
    ] {
        assert_refused(
            &mut c,
            &[r#"{"user_id":1}"#, "TTL", ttl],
            "ERR TTL must be a whole number from 1 to 315360000",
        );
    }
}

#[test]
fn create_refuses_bad_maxlifetime() {
    let s = server_with_index();
    let mut c = s.conn();
    for max in ["-1", "315360001", "2.5", "x", "", "99999999999999999999999"] {
        assert_refused(
            &mut c,
            &[r#"{"user_id":1}"#, "MAXLIFETIME", max],
            "ERR MAXLIFETIME must be a whole number from 0 to 315360000",
        );
    }
}

#[test]
fn create_refuses_unknown_option() {
    let s = server_with_index();
    let mut c = s.conn();
    assert_refused(
        &mut c,
        &[r#"{"user_id":1}"#, "FOO", "1"],
        "ERR unknown option 'FOO' (expected TTL, MAXLIFETIME, MAXSESSIONS or ROUTE)",
    );
    assert_refused(
        &mut c,
        &[r#"{"user_id":1}"#, "TTL", "5", "EX", "5"],
        "ERR unknown option 'EX' (expected TTL, MAXLIFETIME, MAXSESSIONS or ROUTE)",
    );
}

#[test]
fn create_refuses_option_without_value() {
    let s = server_with_index();
    let mut c = s.conn();
    for args in [
        vec![r#"{"user_id":1}"#, "TTL"],
        vec![r#"{"user_id":1}"#, "MAXLIFETIME"],
        vec![r#"{"user_id":1}"#, "TTL", "5", "MAXLIFETIME"],
    ] {
        assert_refused(&mut c, &args, "ERR ");
    }
}

#[test]
fn create_refuses_option_given_twice() {
    let s = server_with_index();
    let mut c = s.conn();
    assert_refused(
        &mut c,
        &[r#"{"user_id":1}"#, "TTL", "5", "TTL", "6"],
        "ERR option 'TTL' given twice",
    );
    // The option is named as the client spelled it or in capitals: either is clear.
    let before = c.dbsize();
    let e = c.err(&[
        "SESSION.CREATE",
        r#"{"user_id":1}"#,
        "MAXLIFETIME",
        "5",
        "ttl",
        "6",
        "maxlifetime",
        "7",
    ]);
    assert!(
        e.to_lowercase() == "err option 'maxlifetime' given twice",
        "{e}"
    );
    assert_eq!(c.dbsize(), before);
}

#[test]
fn create_refuses_wrong_arity() {
    let s = server_with_index();
    let mut c = s.conn();
    assert_refused(
        &mut c,
        &[],
        "ERR wrong number of arguments for 'session.create' command",
    );
}

#[test]
fn refused_create_leaves_existing_keys_alone() {
    let s = server_with_index();
    let mut c = s.conn();
    let kept = c.create(r#"{"user_id":1}"#, &[]);
    let before = c.get_bytes(&kept.token).expect("the session");
    let exp = c.pexpiretime(&kept.token);
    let secret = c.secret("");
    let members = c.smembers("user_id:1");
    assert_refused(
        &mut c,
        &[r#"{"user_id":1,"token":"x"}"#],
        "ERR data must not contain",
    );
    assert_refused(&mut c, &[r#"{"user_id":1}"#, "TTL", "0"], "ERR TTL");
    assert_eq!(c.get_bytes(&kept.token), Some(before));
    assert_eq!(c.pexpiretime(&kept.token), exp);
    assert_eq!(c.secret(""), secret);
    assert_eq!(c.smembers("user_id:1"), members);
}

/// `ROUTE key` is for cluster clients: outside cluster mode any key name (binary, empty,
/// long, the name of another key) is accepted and not used, and the session is made as
/// without it; ROUTE twice, or with no key, is refused with nothing written.
#[test]
fn route_is_accepted_and_not_used_outside_cluster_mode() {
    let s = server_with_index();
    let mut c = s.conn();
    c.ok(&["SET", "precious", "v"]);
    let long = "k".repeat(100_000);
    for route in [
        "user_id:{1}",
        "",
        "precious",
        "\u{0}\u{ff}{}",
        long.as_str(),
    ] {
        let created = c.create(r#"{"user_id":1}"#, &["ROUTE", route, "TTL", "60"]);
        assert!(
            !created.token.starts_with('{'),
            "no slot tag outside cluster mode"
        );
        assert!(c.validate(&created.token).is_some());
        let ttl = c.int(&["TTL", created.token.as_str()]);
        assert!(
            (59..=60).contains(&ttl),
            "TTL after ROUTE still applies: {ttl}"
        );
    }
    assert_eq!(c.string(&["GET", "precious"]), "v");
    assert_eq!(c.smembers("user_id:1").len(), 5);
    assert_refused(
        &mut c,
        &[r#"{"user_id":1}"#, "ROUTE"],
        "ERR ROUTE needs a key name after it",
    );
    assert_refused(
        &mut c,
        &[r#"{"user_id":1}"#, "ROUTE", "a", "route", "a"],
        "ERR option 'ROUTE' given twice",
    );
    assert_refused(
        &mut c,
        &[r#"{"user_id":1}"#, "TTL", "5", "ROUTE"],
        "ERR ROUTE needs a key name after it",
    );
}

/// A token with a slot tag in front (the cluster form) is a token like any other: one that
/// names no session of ours is unknown, whatever the key holds, and is left alone.
#[test]
fn tagged_tokens_that_name_no_session_are_unknown() {
    let s = server_with_index();
    let mut c = s.conn();
    let hex = "ab".repeat(24);
    let tagged = format!("{{06S}}{hex}");
    c.ok(&["SET", &tagged, "s2 0000000000000000 60 0\n{}"]);
    for token in [
        tagged.as_str(),
        "{}abababababababababababababababab",
        "{x-y}abababababababababababababababab",
    ] {
        assert_eq!(c.validate(token), None, "{token}");
        assert_eq!(c.get(token), None, "{token}");
        assert_eq!(c.int(&["SESSION.DESTROY", token]), 0, "{token}");
    }
    assert_eq!(c.string(&["GET", &tagged]), "s2 0000000000000000 60 0\n{}");
}
