//! The index commands of issue 3: SESSION.DESTROY, SESSION.REVOKEINDEX, SESSION.LIST and
//! SESSION.UPDATE, against a real server. What each replies, what it leaves in the index sets
//! (a session indexed by both `user_id` and `tenant_id`, value forms, prefixes), how stale
//! tokens are pruned (all of them by LIST and REVOKEINDEX, a bounded sample by the other
//! writes), index expiry, index keys of another type, and replicas without the module.
//! Sessions are stored in layout 2 (one string each); the keyspace also holds the dataset's
//! session secret (`<key-prefix>session-secret`), which the first CREATE writes and no index
//! command deletes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::thread::sleep;
use std::time::Duration;

use common::{
    keys_of, normalize, parse_object, session_id, sync_replica, Conn, Layout, Server,
    StoredSession, UNKNOWN_TOKEN,
};
use redis::Value;

const MODULE_ARGS: [&str; 2] = ["indexes", "user_id,tenant_id"];

const NOT_AN_INDEX_EMAIL: &str =
    "ERR property 'email' is not a configured index (see session.indexes)";

// ---------------------------------------------------------------------------------------
// Helpers

/// `SESSION.DESTROY token`: 1 or 0.
fn destroy(c: &mut Conn, token: &str) -> i64 {
    c.int(&["SESSION.DESTROY", token])
}

/// `SESSION.REVOKEINDEX property value [EXCEPT token]`: the count.
fn revoke(c: &mut Conn, property: &str, value: &str, except: Option<&str>) -> i64 {
    let mut args = vec!["SESSION.REVOKEINDEX", property, value];
    if let Some(token) = except {
        args.extend_from_slice(&["EXCEPT", token]);
    }
    c.int(&args)
}

/// `SESSION.LIST property value`: the elements as sent (JSON texts).
fn list(c: &mut Conn, property: &str, value: &str) -> Vec<String> {
    match c.cmd(&["SESSION.LIST", property, value]) {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::BulkString(b) => String::from_utf8(b).expect("LIST element is UTF-8"),
                other => panic!("SESSION.LIST {property} {value}: element {other:?}"),
            })
            .collect(),
        other => panic!("SESSION.LIST {property} {value}: expected an array, got {other:?}"),
    }
}

/// The tokens of `SESSION.LIST property value`, each element checked to start with `token`.
fn list_tokens(c: &mut Conn, property: &str, value: &str) -> BTreeSet<String> {
    list(c, property, value)
        .iter()
        .map(|text| {
            let m = parse_object(text);
            assert_eq!(m.keys().next().map(String::as_str), Some("token"), "{text}");
            m["token"].as_str().expect("token is a string").to_string()
        })
        .collect()
}

/// `SESSION.UPDATE token patch`: the new data, or `None` for nil.
fn update(c: &mut Conn, token: &str, patch: &str) -> Option<String> {
    match c.cmd(&["SESSION.UPDATE", token, patch]) {
        Value::Nil => None,
        Value::BulkString(b) => Some(String::from_utf8(b).expect("UPDATE reply is UTF-8")),
        other => panic!("SESSION.UPDATE {token} {patch}: expected data or nil, got {other:?}"),
    }
}

/// The index list of a stored session (layout 2), sorted (empty when absent).
fn indexes_field(c: &mut Conn, key: &str) -> BTreeSet<String> {
    let stored = c.stored(key);
    assert_eq!(stored.layout, Layout::V2, "{key}");
    stored.index_keys().into_iter().collect()
}

/// The header line of a layout-2 session string (`s2 <tag> <ttl> <deadline>[ <indexes>]`).
fn header_line(c: &mut Conn, key: &str) -> String {
    let value = c
        .get_bytes(key)
        .unwrap_or_else(|| panic!("{key}: no string"));
    let text = String::from_utf8(value).expect("a session string is UTF-8");
    text.split_once('\n').expect("header line").0.to_string()
}

/// Two strings that look like sessions of layout 2 but are not tagged for their key names:
/// one made up (tagged with another secret), one copied from the session key `source`.
/// Both are written under hex names `base` and `base + 1`; returns those names.
fn untagged_copies(c: &mut Conn, source: &str, base: u8) -> (String, String) {
    let made_up = hex_name(base);
    let session = StoredSession {
        layout: Layout::V2,
        tag: None,
        data: r#"{"user_id":150}"#.to_string(),
        ttl: 3600,
        deadline: 0,
        indexes: Some(vec!["user_id:150".to_string()]),
    };
    let value = session.encode_v2(&"5a".repeat(16), made_up.as_bytes());
    c.ok(&[
        b"SET".as_slice(),
        made_up.as_bytes(),
        &value,
        b"PX",
        b"100000",
    ]);
    let copied = hex_name(base + 1);
    let value = c.get_bytes(source).expect("source session");
    assert!(StoredSession::parse_v2(&value).is_some(), "{source}");
    c.ok(&[
        b"SET".as_slice(),
        copied.as_bytes(),
        &value,
        b"PX",
        b"100000",
    ]);
    (made_up, copied)
}

fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A 48-character lowercase hex key name that no session takes.
fn hex_name(i: u8) -> String {
    format!("{i:02x}").repeat(24)
}

/// A JSON object `levels` deep (the outer object being level 1): `{"a":{"a":...{}}}`.
fn nested(levels: usize) -> String {
    let mut s = String::from("{}");
    for _ in 1..levels {
        s = format!(r#"{{"a":{s}}}"#);
    }
    s
}

/// Everything about a key that must match: type, value and absolute expiry.
#[derive(Debug, PartialEq)]
enum KeyState {
    Hash(BTreeMap<String, String>, i64),
    Set(BTreeSet<String>, i64),
    String(String, i64),
    List(Value, i64),
}

/// Every key of the database with its type, value and PEXPIRETIME.
fn snapshot(c: &mut Conn) -> BTreeMap<Vec<u8>, KeyState> {
    let mut out = BTreeMap::new();
    for key in c.keys() {
        let exp = c.pexpiretime(&key);
        let state = match c.key_type(&key).as_str() {
            "hash" => KeyState::Hash(c.hgetall(&key), exp),
            "set" => KeyState::Set(c.smembers(&key), exp),
            "string" => KeyState::String(c.string(&[b"GET".as_slice(), &key]), exp),
            "list" => KeyState::List(c.cmd(&[b"LRANGE".as_slice(), &key, b"0", b"-1"]), exp),
            other => panic!(
                "unexpected type {other} at {}",
                String::from_utf8_lossy(&key)
            ),
        };
        out.insert(key, state);
    }
    out
}

/// Sends `args`, which must fail with exactly `expected`, and checks nothing changed.
fn assert_refused(c: &mut Conn, args: &[&str], expected: &str) {
    let before = snapshot(c);
    assert_eq!(c.err(args), expected, "{args:?}");
    assert_eq!(snapshot(c), before, "{args:?} changed the database");
}

/// Lets a key expire: a 1 ms expiry, then a pause.
fn expire_now(c: &mut Conn, key: &str) {
    c.ok(&["PEXPIRE", key, "1"]);
    sleep(Duration::from_millis(20));
    assert!(!c.exists(key), "{key} did not expire");
}

// ---------------------------------------------------------------------------------------
// SESSION.DESTROY

#[test]
fn destroy_replies_1_then_0_and_deletes_the_session() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let gone = c.create(r#"{"user_id":150}"#, &[]);
    let kept = c.create(r#"{"user_id":150}"#, &[]);
    assert_eq!(destroy(&mut c, &gone.token), 1);
    assert!(!c.exists(&gone.token));
    assert_eq!(c.validate(&gone.token), None);
    assert_eq!(destroy(&mut c, &gone.token), 0, "second DESTROY");
    assert_eq!(c.smembers("user_id:150"), set_of(&[&kept.token]));
    assert!(c.validate(&kept.token).is_some(), "the other session lives");
}

#[test]
fn destroy_removes_the_token_from_every_index() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let both = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let same_user = c.create(r#"{"user_id":150}"#, &[]);
    let same_tenant = c.create(r#"{"tenant_id":"acme"}"#, &[]);
    assert_eq!(destroy(&mut c, &both.token), 1);
    assert_eq!(c.smembers("user_id:150"), set_of(&[&same_user.token]));
    assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&same_tenant.token]));
    // The only session of an index: its set goes with it.
    let alone = c.create(r#"{"user_id":7,"tenant_id":"solo"}"#, &[]);
    assert_eq!(destroy(&mut c, &alone.token), 1);
    assert!(!c.exists("user_id:7"));
    assert!(!c.exists("tenant_id:solo"));
    // Two sessions, their two index sets, and the secret.
    assert!(c.secret("").is_some(), "no session secret");
    assert_eq!(c.dbsize(), 5, "{:?}", c.keys());
}

#[test]
fn destroy_of_unknown_malformed_or_non_session_token_replies_0_and_touches_nothing() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let real = c.create(r#"{"user_id":150}"#, &[]);
    // What the npm library wrote: the data's properties as hash fields.
    let npm = hex_name(1);
    c.ok(&[
        "HSET",
        &npm,
        "user_id",
        "150",
        "createdAt",
        "2015-10-25 20:14:10",
    ]);
    c.ok(&["PEXPIRE", &npm, "100000"]);
    c.ok(&["SADD", "user_id:150", &npm]);
    let string = hex_name(2);
    c.ok(&["SET", &string, r#"{"user_id":150}"#]);
    let set = hex_name(3);
    c.ok(&["SADD", &set, "data", "ttl", "deadline"]);
    let upper = hex_name(10).to_uppercase();
    c.ok(&["SET", &upper, "x"]);
    // Layout-2 text under a name it is not tagged for, listed in the index as well.
    let (made_up, copied) = untagged_copies(&mut c, &real.token, 4);
    c.ok(&["SADD", "user_id:150", &made_up, &copied]);
    let before = snapshot(&mut c);
    for token in [
        UNKNOWN_TOKEN,
        "hello",
        "",
        upper.as_str(),
        "0123456789abcdef",
        npm.as_str(),
        string.as_str(),
        set.as_str(),
        made_up.as_str(),
        copied.as_str(),
    ] {
        assert_eq!(destroy(&mut c, token), 0, "DESTROY {token:?}");
    }
    assert_eq!(
        snapshot(&mut c),
        before,
        "a DESTROY replying 0 changed something"
    );
}

/// The replacement happens inside the transaction so that DESTROY meets the foreign key on
/// every server (with key events, a replacement outside one ends the session at once).
#[test]
fn destroy_leaves_an_index_key_of_another_type_alone_and_does_the_rest() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let other = c.create(r#"{"tenant_id":"acme"}"#, &[]);
    // Someone turned the user's index into a string by hand.
    let replies = c.transaction(&[
        &["DEL", "user_id:150"],
        &["SET", "user_id:150", "precious", "PX", "500000"],
        &["SESSION.DESTROY", &created.token],
    ]);
    assert_eq!(replies[2], Value::Int(1));
    assert!(!c.exists(&created.token));
    assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&other.token]));
    assert_eq!(c.string(&["GET", "user_id:150"]), "precious");
    assert!(c.pexpiretime("user_id:150") > 0);
    assert!(c.validate(&other.token).is_some());
}

#[test]
fn destroy_with_wrong_arity_is_an_error() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &[]);
    let arity = "ERR wrong number of arguments for 'session.destroy' command";
    assert_refused(&mut c, &["SESSION.DESTROY"], arity);
    assert_refused(&mut c, &["SESSION.DESTROY", &created.token, "x"], arity);
    assert!(c.validate(&created.token).is_some());
}

// ---------------------------------------------------------------------------------------
// SESSION.REVOKEINDEX

#[test]
fn revokeindex_logs_a_user_out_everywhere() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let mine: Vec<String> = (0..3)
        .map(|i| {
            c.create(&format!(r#"{{"user_id":150,"device":{i}}}"#), &[])
                .token
        })
        .collect();
    let others: Vec<String> = (0..2)
        .map(|_| c.create(r#"{"user_id":151}"#, &[]).token)
        .collect();
    let no_user = c.create(r#"{"foo":"bar"}"#, &[]);
    let others_index_before = c.smembers("user_id:151");
    assert_eq!(revoke(&mut c, "user_id", "150", None), 3);
    for t in &mine {
        assert!(!c.exists(t), "{t} still exists");
        assert_eq!(c.validate(t), None);
    }
    assert!(!c.exists("user_id:150"), "the emptied index remains");
    for t in &others {
        assert!(
            c.validate(t).is_some(),
            "another user's session {t} was revoked"
        );
    }
    assert!(c.validate(&no_user.token).is_some());
    assert_eq!(c.smembers("user_id:151"), others_index_before);
    assert_eq!(
        revoke(&mut c, "user_id", "150", None),
        0,
        "second REVOKEINDEX"
    );
}

#[test]
fn revokeindex_removes_revoked_tokens_from_their_other_indexes() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let acme = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let globex = c.create(r#"{"user_id":150,"tenant_id":"globex"}"#, &[]);
    let colleague = c.create(r#"{"user_id":151,"tenant_id":"acme"}"#, &[]);
    assert_eq!(revoke(&mut c, "user_id", "150", None), 2);
    assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&colleague.token]));
    assert!(
        !c.exists("tenant_id:globex"),
        "emptied tenant index remains"
    );
    assert!(!c.exists(&acme.token) && !c.exists(&globex.token));
    // And the other way round: revoking a tenant removes its tokens from the user indexes.
    let other_tenant = c.create(r#"{"user_id":151,"tenant_id":"initech"}"#, &[]);
    assert_eq!(revoke(&mut c, "tenant_id", "acme", None), 1);
    assert_eq!(c.smembers("user_id:151"), set_of(&[&other_tenant.token]));
    assert!(!c.exists("tenant_id:acme"));
    // One session, its two index sets, and the secret.
    assert!(c.secret("").is_some(), "no session secret");
    assert_eq!(c.dbsize(), 4, "{:?}", c.keys());
}

#[test]
fn revokeindex_except_keeps_the_current_session() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let laptop = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let phone = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let tablet = c.create(r#"{"user_id":150}"#, &[]);
    let kept_value = c.get_bytes(&phone.token).expect("session string");
    assert_eq!(revoke(&mut c, "user_id", "150", Some(&phone.token)), 2);
    assert_eq!(c.validate(&phone.token), Some(phone.data_text()));
    assert_eq!(
        c.get_bytes(&phone.token),
        Some(kept_value),
        "stored session changed"
    );
    assert_eq!(c.smembers("user_id:150"), set_of(&[&phone.token]));
    assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&phone.token]));
    assert!(!c.exists(&laptop.token) && !c.exists(&tablet.token));
    // An EXCEPT token not in the index spares nobody.
    let again = c.create(r#"{"user_id":150}"#, &[]);
    assert_eq!(revoke(&mut c, "user_id", "150", Some(UNKNOWN_TOKEN)), 2);
    assert!(!c.exists(&again.token) && !c.exists(&phone.token));
}

#[test]
fn revokeindex_except_keyword_is_case_insensitive() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    for keyword in ["except", "Except", "eXcEpT"] {
        let keep = c.create(r#"{"user_id":150}"#, &[]);
        c.create(r#"{"user_id":150}"#, &[]);
        let n = c.int(&[
            "SESSION.REVOKEINDEX",
            "user_id",
            "150",
            keyword,
            &keep.token,
        ]);
        assert_eq!(n, 1, "{keyword}");
        assert!(c.validate(&keep.token).is_some(), "{keyword}");
        assert_eq!(destroy(&mut c, &keep.token), 1);
    }
}

#[test]
fn revokeindex_of_unconfigured_property_is_an_error() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    c.create(r#"{"user_id":150,"email":"a@b.c"}"#, &[]);
    // An index set made by hand under an unconfigured name is not revoked either.
    c.ok(&["SADD", "email:a@b.c", "whatever"]);
    assert_refused(
        &mut c,
        &["SESSION.REVOKEINDEX", "email", "a@b.c"],
        NOT_AN_INDEX_EMAIL,
    );
    assert_refused(
        &mut c,
        &["SESSION.REVOKEINDEX", "USER_ID", "150"],
        "ERR property 'USER_ID' is not a configured index (see session.indexes)",
    );
}

#[test]
fn revokeindex_with_an_unknown_fourth_argument_is_an_error() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &[]);
    assert_refused(
        &mut c,
        &[
            "SESSION.REVOKEINDEX",
            "user_id",
            "150",
            "BUT",
            &created.token,
        ],
        "ERR unknown option 'BUT' (expected EXCEPT token)",
    );
}

#[test]
fn revokeindex_with_wrong_arity_is_an_error() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &[]);
    let t = created.token.as_str();
    let arity = "ERR wrong number of arguments for 'session.revokeindex' command";
    for args in [
        &["SESSION.REVOKEINDEX"][..],
        &["SESSION.REVOKEINDEX", "user_id"],
        &["SESSION.REVOKEINDEX", "user_id", "150", "EXCEPT"],
        &["SESSION.REVOKEINDEX", "user_id", "150", "EXCEPT", t, "x"],
        &[
            "SESSION.REVOKEINDEX",
            "user_id",
            "150",
            "EXCEPT",
            t,
            "EXCEPT",
            t,
        ],
    ] {
        assert_refused(&mut c, args, arity);
    }
    assert!(c.validate(t).is_some());
}

#[test]
fn revokeindex_of_a_missing_index_replies_0() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    c.create(r#"{"user_id":150}"#, &[]);
    let before = snapshot(&mut c);
    assert_eq!(revoke(&mut c, "user_id", "999", None), 0);
    assert_eq!(revoke(&mut c, "tenant_id", "150", None), 0);
    assert_eq!(snapshot(&mut c), before);
}

#[test]
fn revokeindex_of_an_index_key_of_another_type_is_wrongtype_and_leaves_it_alone() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let t = c.create(r#"{"tenant_id":"acme"}"#, &[]).token;
    c.ok(&["SET", "user_id:150", &t, "PX", "500000"]);
    c.ok(&["HSET", "user_id:151", &t, "1"]);
    c.ok(&["RPUSH", "user_id:152", &t]);
    let before = snapshot(&mut c);
    for value in ["150", "151", "152"] {
        for except in [None, Some(t.as_str())] {
            let mut args = vec!["SESSION.REVOKEINDEX", "user_id", value];
            if let Some(token) = except {
                args.extend_from_slice(&["EXCEPT", token]);
            }
            assert_eq!(
                c.err(&args),
                format!("WRONGTYPE index key 'user_id:{value}' holds a value that is not a set"),
                "user_id:{value}"
            );
        }
    }
    assert_eq!(snapshot(&mut c), before);
    assert!(
        c.validate(&t).is_some(),
        "the session named in those keys lives"
    );
}

#[test]
fn revokeindex_removes_stale_members_without_counting_them() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let live = c.create(r#"{"user_id":150}"#, &[]);
    let deleted = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let expired = c.create(r#"{"user_id":150}"#, &[]);
    c.ok(&["DEL", &deleted.token]);
    expire_now(&mut c, &expired.token);
    // A member naming a key that is not a session of ours stays, and so does that key:
    // also layout-2 text under a name it is not tagged for.
    let foreign = hex_name(9);
    c.ok(&["SET", &foreign, "not a session"]);
    c.ok(&["SADD", "user_id:150", &foreign]);
    let (made_up, copied) = untagged_copies(&mut c, &live.token, 4);
    c.ok(&["SADD", "user_id:150", &made_up, &copied]);
    let untagged = [
        (made_up.clone(), c.get_bytes(&made_up)),
        (copied.clone(), c.get_bytes(&copied)),
    ];
    assert_eq!(
        revoke(&mut c, "user_id", "150", None),
        1,
        "only the live one"
    );
    assert!(!c.exists(&live.token));
    assert_eq!(
        c.smembers("user_id:150"),
        set_of(&[&foreign, &made_up, &copied])
    );
    assert_eq!(c.string(&["GET", &foreign]), "not a session");
    for (key, value) in untagged {
        assert_eq!(c.get_bytes(&key), value, "{key} touched");
    }
}

#[test]
fn revokeindex_finds_indexes_by_their_value_text() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    for (json_value, text) in [
        ("150", "150"),
        ("1.5", "1.5"),
        ("1.0", "1.0"),
        ("true", "true"),
        (r#""alice""#, "alice"),
        (r#""Zoë""#, "Zoë"),
    ] {
        let created = c.create(&format!(r#"{{"user_id":{json_value}}}"#), &[]);
        assert_eq!(
            list_tokens(&mut c, "user_id", text),
            set_of(&[&created.token]),
            "LIST user_id {text}"
        );
        assert_eq!(revoke(&mut c, "user_id", text, None), 1, "user_id {text}");
        assert!(!c.exists(&created.token), "user_id {text}");
        assert!(!c.exists(format!("user_id:{text}")));
    }
    // The value is the index text, not JSON: 1.5 is not 1.50, "alice" is not "\"alice\"".
    let created = c.create(r#"{"user_id":1.5,"tenant_id":"alice"}"#, &[]);
    assert_eq!(revoke(&mut c, "user_id", "1.50", None), 0);
    assert_eq!(revoke(&mut c, "tenant_id", r#""alice""#, None), 0);
    assert!(c.validate(&created.token).is_some());
}

// ---------------------------------------------------------------------------------------
// SESSION.LIST

#[test]
fn list_replies_every_live_session_with_token_first() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = [
        c.create(
            r#"{"user_id":150,"device":"phone","prefs":{"lang":"en"}}"#,
            &[],
        ),
        c.create(
            r#"{"user_id":150,"tenant_id":"acme","roles":[]}"#,
            &["TTL", "60"],
        ),
        c.create(r#"{"user_id":150,"createdAt":"2015-10-25 20:14:10"}"#, &[]),
    ];
    c.create(r#"{"user_id":151}"#, &[]);
    let by_token: BTreeMap<&str, &str> = created
        .iter()
        .map(|s| (s.token.as_str(), s.raw.as_str()))
        .collect();
    let elements = list(&mut c, "user_id", "150");
    assert_eq!(elements.len(), 3, "{elements:?}");
    let mut seen = BTreeSet::new();
    for text in &elements {
        let mut m = parse_object(text);
        assert_eq!(keys_of(&m)[..2], ["token", "sessionId"], "{text}");
        let token = m["token"].as_str().unwrap().to_string();
        // The identifier (docs/security.md "Hashed tokens"): the token's SHA-256, never the token.
        let id = m.shift_remove("sessionId").unwrap();
        assert_eq!(id.as_str(), Some(session_id(&token).as_str()), "{text}");
        // Otherwise shaped like CREATE's reply: the same token, data and key order.
        let rest = serde_json::to_string(&m).unwrap();
        assert_eq!(
            normalize(&rest),
            normalize(by_token[token.as_str()]),
            "LIST element"
        );
        seen.insert(token);
    }
    let expected: BTreeSet<String> = by_token.keys().map(|t| t.to_string()).collect();
    assert_eq!(seen, expected);
    assert_eq!(
        list_tokens(&mut c, "tenant_id", "acme"),
        set_of(&[&created[1].token])
    );
}

#[test]
fn list_prolongs_nothing() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let a = c.create(r#"{"user_id":150}"#, &[]);
    let b = c.create(r#"{"user_id":150}"#, &["TTL", "100"]);
    for key in [a.token.as_str(), b.token.as_str(), "user_id:150"] {
        c.ok(&["PEXPIRE", key, "50000"]);
    }
    let before = snapshot(&mut c);
    assert_eq!(list(&mut c, "user_id", "150").len(), 2);
    assert_eq!(
        snapshot(&mut c),
        before,
        "LIST changed an expiry or a value"
    );
}

#[test]
fn list_prunes_a_session_deleted_by_hand() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let kept = c.create(r#"{"user_id":150}"#, &[]);
    let deleted = c.create(r#"{"user_id":150}"#, &[]);
    let expired = c.create(r#"{"user_id":150}"#, &[]);
    c.ok(&["DEL", &deleted.token]);
    expire_now(&mut c, &expired.token);
    let foreign = hex_name(9);
    c.ok(&["SADD", "user_id:150", &foreign]);
    c.ok(&["HSET", &foreign, "user_id", "150"]);
    // Layout-2 text copied from the live session's key is not listed either.
    let (_, copied) = untagged_copies(&mut c, &kept.token, 4);
    c.ok(&["SADD", "user_id:150", &copied]);
    let copied_value = c.get_bytes(&copied);
    assert_eq!(
        list_tokens(&mut c, "user_id", "150"),
        set_of(&[&kept.token])
    );
    assert_eq!(
        c.smembers("user_id:150"),
        set_of(&[&kept.token, &foreign, &copied]),
        "stale tokens remain, or a member naming a foreign key was removed"
    );
    assert_eq!(c.hgetall(&foreign).len(), 1, "foreign key touched");
    assert_eq!(c.get_bytes(&copied), copied_value, "copied key touched");
    // Every member stale: the set goes.
    c.ok(&["DEL", &kept.token]);
    c.ok(&["SREM", "user_id:150", &foreign, &copied]);
    assert!(list(&mut c, "user_id", "150").is_empty());
    assert!(!c.exists("user_id:150"));
}

#[test]
fn list_of_unconfigured_property_is_an_error() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let t = c.create(r#"{"user_id":150,"email":"a@b.c"}"#, &[]).token;
    c.ok(&["SADD", "email:a@b.c", &t]);
    assert_refused(
        &mut c,
        &["SESSION.LIST", "email", "a@b.c"],
        NOT_AN_INDEX_EMAIL,
    );
    let arity = "ERR wrong number of arguments for 'session.list' command";
    assert_refused(&mut c, &["SESSION.LIST", "user_id"], arity);
    assert_refused(&mut c, &["SESSION.LIST", "user_id", "150", "x"], arity);
}

#[test]
fn list_of_a_missing_index_is_an_empty_array() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    c.create(r#"{"user_id":150}"#, &[]);
    assert_eq!(
        c.cmd(&["SESSION.LIST", "user_id", "151"]),
        Value::Array(vec![])
    );
    // The session, its index and the secret: LIST made no set.
    assert!(!c.exists("user_id:151"));
    assert_eq!(c.dbsize(), 3, "{:?}", c.keys());
}

#[test]
fn list_of_an_index_key_of_another_type_is_wrongtype() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    c.ok(&["SET", "user_id:150", "precious", "PX", "500000"]);
    assert_refused(
        &mut c,
        &["SESSION.LIST", "user_id", "150"],
        "WRONGTYPE index key 'user_id:150' holds a value that is not a set",
    );
}

// ---------------------------------------------------------------------------------------
// Pruning on writes

/// Creates `n` sessions in `user_id:<user>`; returns their tokens.
fn create_in(c: &mut Conn, user: u32, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| c.create(&format!(r#"{{"user_id":{user}}}"#), &[]).token)
        .collect()
}

#[test]
fn create_prunes_a_session_deleted_by_hand_from_a_small_index() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let tokens = create_in(&mut c, 150, 10);
    c.ok(&["DEL", &tokens[3]]);
    expire_now(&mut c, &tokens[4]);
    let new = c.create(r#"{"user_id":150}"#, &[]);
    let members = c.smembers("user_id:150");
    assert_eq!(members.len(), 9, "{members:?}");
    assert!(!members.contains(&tokens[3]) && !members.contains(&tokens[4]));
    assert!(members.contains(&new.token));
}

#[test]
fn destroy_prunes_a_session_deleted_by_hand_from_its_indexes() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let tokens = create_in(&mut c, 150, 5);
    let in_tenant = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let tenant_stale = c.create(r#"{"tenant_id":"acme"}"#, &[]);
    c.ok(&["DEL", &tokens[0], &tenant_stale.token]);
    assert_eq!(destroy(&mut c, &tokens[1]), 1);
    let expected: BTreeSet<String> = tokens[2..]
        .iter()
        .cloned()
        .chain([in_tenant.token.clone()])
        .collect();
    assert_eq!(c.smembers("user_id:150"), expected);
    assert_eq!(destroy(&mut c, &in_tenant.token), 1);
    assert!(
        !c.exists("tenant_id:acme"),
        "stale {} left in tenant_id:acme",
        tenant_stale.token
    );
}

#[test]
fn update_moving_a_session_into_an_index_prunes_it() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let target = create_in(&mut c, 151, 4);
    let leaving = create_in(&mut c, 150, 3);
    c.ok(&["DEL", &target[0], &leaving[1]]);
    let mover = &leaving[0];
    assert!(update(&mut c, mover, r#"{"user_id":151}"#).is_some());
    let expected: BTreeSet<String> = target[1..].iter().chain([mover]).cloned().collect();
    assert_eq!(c.smembers("user_id:151"), expected, "index joined");
    assert_eq!(
        c.smembers("user_id:150"),
        set_of(&[&leaving[2]]),
        "index left"
    );
}

#[test]
fn validate_and_get_do_not_prune() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let tokens = create_in(&mut c, 150, 3);
    c.ok(&["DEL", &tokens[0]]);
    assert!(c.validate(&tokens[1]).is_some());
    assert!(c.get(&tokens[2]).is_some());
    // With key events the DEL itself took the token out of the index, exactly.
    let expected = if c.server_kind().key_events() { 2 } else { 3 };
    assert_eq!(c.smembers("user_id:150").len(), expected);
}

#[test]
fn one_create_prunes_part_of_a_big_index_and_list_prunes_the_rest() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let tokens = create_in(&mut c, 150, 200);
    let mut del = vec!["DEL"];
    del.extend(tokens[..150].iter().map(String::as_str));
    assert_eq!(c.int(&del), 150);
    let new = c.create(r#"{"user_id":150}"#, &[]);
    let after_create = c.smembers("user_id:150").len();
    if c.server_kind().key_events() {
        // Key events removed each token with its DEL: nothing is stale, nothing to prune.
        assert_eq!(after_create, 51);
    } else {
        // 201 members, 150 of them stale: a sample of them goes, but a write does not scan
        // the whole index (DESIGN-NOTES: SRANDMEMBER 16).
        assert!(after_create < 201, "CREATE pruned nothing");
        assert!(
            after_create > 51,
            "CREATE pruned every stale member: not a bounded sample"
        );
        assert!(201 - after_create <= 16, "pruned {}", 201 - after_create);
    }
    let listed = list_tokens(&mut c, "user_id", "150");
    let live: BTreeSet<String> = tokens[150..].iter().chain([&new.token]).cloned().collect();
    assert_eq!(listed, live);
    assert_eq!(c.smembers("user_id:150"), live, "LIST left stale members");
}

// ---------------------------------------------------------------------------------------
// SESSION.UPDATE

#[test]
fn update_applies_a_json_merge_patch() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(
        r#"{"a":1,"b":"x","nested":{"p":1,"q":2,"deep":{"z":0}},"list":[1,2,3],"gone":true}"#,
        &[],
    );
    let created_at = created.reply["createdAt"].as_str().unwrap().to_string();
    let patch = r#"{"a":2,"c":"new","gone":null,"nested":{"q":null,"r":3,"deep":{"y":[]}},"list":[9],"absent":null}"#;
    let got = update(&mut c, &created.token, patch).expect("UPDATE of a live session");
    let expected = format!(
        r#"{{"a":2,"b":"x","nested":{{"p":1,"deep":{{"z":0,"y":[]}},"r":3}},"list":[9],"createdAt":"{created_at}","c":"new"}}"#
    );
    assert_eq!(got, expected);
    assert_eq!(c.validate(&created.token), Some(got.clone()));
    let stored = c.stored(&created.token);
    assert_eq!(stored.layout, Layout::V2);
    assert_eq!(stored.data, got);
    // A property that is not an object is replaced by a patch object.
    let got = update(&mut c, &created.token, r#"{"b":{"k":null,"v":1}}"#).unwrap();
    assert_eq!(parse_object(&got)["b"].to_string(), r#"{"v":1}"#);
    // A patch 100 levels deep is fine.
    let got = update(&mut c, &created.token, &nested(100)).unwrap();
    assert!(got.starts_with(r#"{"a":{"a":{"#), "{got}");
    // An empty patch changes nothing.
    let before = c.validate(&created.token);
    assert_eq!(update(&mut c, &created.token, "{}"), before);
}

#[test]
fn update_of_an_unknown_token_replies_nil() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let real = c.create(r#"{"user_id":150}"#, &[]);
    let npm = hex_name(1);
    c.ok(&["HSET", &npm, "user_id", "150"]);
    let string = hex_name(2);
    c.ok(&["SET", &string, "{}"]);
    let (made_up, copied) = untagged_copies(&mut c, &real.token, 4);
    let deleted = c.create(r#"{"user_id":150}"#, &[]);
    c.ok(&["DEL", &deleted.token]);
    let before = snapshot(&mut c);
    for token in [
        UNKNOWN_TOKEN,
        "hello",
        &npm,
        &string,
        &made_up,
        &copied,
        &deleted.token,
    ] {
        assert_eq!(update(&mut c, token, r#"{"x":1}"#), None, "UPDATE {token}");
    }
    assert_eq!(snapshot(&mut c), before);
}

#[test]
fn update_checks_the_patch_even_for_an_unknown_token() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &[]);
    for token in [UNKNOWN_TOKEN, created.token.as_str()] {
        for (patch, expected) in [
            ("[1]", "ERR data must be a JSON object"),
            ("17", "ERR data must be a JSON object"),
            (
                r#"{"token":"x"}"#,
                "ERR data must not contain the reserved property 'token'",
            ),
            (
                r#"{"user_id":{"a":1}}"#,
                "ERR indexed property 'user_id' must be a string, number, boolean or null",
            ),
        ] {
            assert_refused(&mut c, &["SESSION.UPDATE", token, patch], expected);
        }
        assert_refused(
            &mut c,
            &["SESSION.UPDATE", token, &nested(101)],
            "ERR data is nested more than 100 levels deep",
        );
        let before = snapshot(&mut c);
        let e = c.err(&["SESSION.UPDATE", token, "not json"]);
        assert!(e.starts_with("ERR data is not valid JSON: "), "{e}");
        assert_eq!(snapshot(&mut c), before);
    }
    let arity = "ERR wrong number of arguments for 'session.update' command";
    assert_refused(&mut c, &["SESSION.UPDATE", &created.token], arity);
    assert_refused(
        &mut c,
        &["SESSION.UPDATE", &created.token, "{}", "x"],
        arity,
    );
}

#[test]
fn update_refuses_a_token_property_and_changes_nothing() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150,"a":1}"#, &[]);
    let reserved = "ERR data must not contain the reserved property 'token'";
    for patch in [
        r#"{"token":"x"}"#,
        r#"{"token":null}"#,
        r#"{"a":2,"token":{"b":1}}"#,
    ] {
        assert_refused(&mut c, &["SESSION.UPDATE", &created.token, patch], reserved);
    }
    assert_eq!(c.validate(&created.token), Some(created.data_text()));
}

#[test]
fn update_refuses_an_object_or_array_for_an_indexed_property_and_changes_nothing() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    for (patch, property) in [
        (r#"{"user_id":{"a":1}}"#, "user_id"),
        (r#"{"user_id":[150]}"#, "user_id"),
        (r#"{"tenant_id":[],"user_id":151}"#, "tenant_id"),
        (r#"{"user_id":151,"tenant_id":{}}"#, "tenant_id"),
    ] {
        let expected =
            format!("ERR indexed property '{property}' must be a string, number, boolean or null");
        assert_refused(
            &mut c,
            &["SESSION.UPDATE", &created.token, patch],
            &expected,
        );
    }
    assert_eq!(c.smembers("user_id:150"), set_of(&[&created.token]));
    assert!(!c.exists("user_id:151"));
}

#[test]
fn update_moves_the_token_between_index_sets_in_one_step() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let mover = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let stays = c.create(r#"{"user_id":150}"#, &[]);
    let reply = update(&mut c, &mover.token, r#"{"user_id":151}"#).unwrap();
    assert_eq!(parse_object(&reply)["user_id"].to_string(), "151");
    assert_eq!(c.smembers("user_id:150"), set_of(&[&stays.token]));
    assert_eq!(c.smembers("user_id:151"), set_of(&[&mover.token]));
    assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&mover.token]));
    assert_eq!(
        indexes_field(&mut c, &mover.token),
        set_of(&["user_id:151", "tenant_id:acme"])
    );
    // The new index is what REVOKEINDEX and LIST see.
    assert_eq!(
        list_tokens(&mut c, "user_id", "151"),
        set_of(&[&mover.token])
    );
    assert_eq!(
        list_tokens(&mut c, "user_id", "150"),
        set_of(&[&stays.token])
    );
    // A change of value type moves it too: 151 (number) to "151" (string) is the same key.
    update(&mut c, &mover.token, r#"{"user_id":"151"}"#).unwrap();
    assert_eq!(c.smembers("user_id:151"), set_of(&[&mover.token]));
    // The last member leaves: the set goes.
    update(&mut c, &mover.token, r#"{"user_id":"alice"}"#).unwrap();
    assert!(!c.exists("user_id:151"));
    assert_eq!(c.smembers("user_id:alice"), set_of(&[&mover.token]));
}

#[test]
fn update_removing_an_indexed_property_leaves_the_index() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150,"tenant_id":"acme","x":1}"#, &[]);
    let reply = update(&mut c, &created.token, r#"{"user_id":null}"#).unwrap();
    assert!(!parse_object(&reply).contains_key("user_id"));
    assert!(!c.exists("user_id:150"));
    assert_eq!(
        indexes_field(&mut c, &created.token),
        set_of(&["tenant_id:acme"])
    );
    update(&mut c, &created.token, r#"{"tenant_id":null}"#).unwrap();
    assert!(!c.exists("tenant_id:acme"));
    let stored = c.stored(&created.token);
    assert_eq!(stored.indexes, None, "index list kept: {stored:?}");
    // The list is left out with its space: `s2 <tag> <ttl> <deadline>`.
    let header = header_line(&mut c, &created.token);
    assert_eq!(header.split(' ').count(), 4, "{header:?}");
    // The session and the secret.
    assert_eq!(c.dbsize(), 2, "{:?}", c.keys());
    // And joins again.
    update(&mut c, &created.token, r#"{"tenant_id":"acme"}"#).unwrap();
    assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&created.token]));
    assert_eq!(
        indexes_field(&mut c, &created.token),
        set_of(&["tenant_id:acme"])
    );
}

#[test]
fn update_refuses_merged_data_larger_than_max_data_bytes() {
    let s = Server::builder()
        .module_args(&MODULE_ARGS)
        .directive("session.max-data-bytes 1024")
        .start();
    let mut c = s.conn();
    let half = "x".repeat(600);
    let created = c.create(&format!(r#"{{"user_id":150,"a":"{half}"}}"#), &[]);
    let patch = format!(r#"{{"b":"{half}","user_id":151}}"#);
    assert!(patch.len() < 1024);
    assert_refused(
        &mut c,
        &["SESSION.UPDATE", &created.token, &patch],
        "ERR data is larger than max-data-bytes (1024 bytes)",
    );
    // The patch alone is bounded too.
    let big = format!(r#"{{"b":"{}"}}"#, "y".repeat(1100));
    assert_refused(
        &mut c,
        &["SESSION.UPDATE", &created.token, &big],
        "ERR data is larger than max-data-bytes (1024 bytes)",
    );
    // Removing makes room.
    assert!(update(
        &mut c,
        &created.token,
        &format!(r#"{{"a":null,"b":"{half}"}}"#)
    )
    .is_some());
}

#[test]
fn update_prolongs_like_validate() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &["TTL", "1000"]);
    c.ok(&["PEXPIRE", &created.token, "5000"]);
    c.ok(&["PEXPIRE", "user_id:150", "5000"]);
    let t0 = c.time_ms();
    update(&mut c, &created.token, r#"{"x":1}"#).unwrap();
    let t1 = c.time_ms();
    let exp = c.pexpiretime(&created.token);
    assert!(
        (t0 + 1_000_000..=t1 + 1_000_000).contains(&exp),
        "expiry {exp} is not now + TTL ({t0}..{t1})"
    );
    assert!(c.pexpiretime("user_id:150") >= exp, "index not raised");
    // Capped by the max lifetime.
    let capped = c.create(r#"{"user_id":150}"#, &["TTL", "1000", "MAXLIFETIME", "10"]);
    let deadline = c.stored(&capped.token).deadline;
    assert!(deadline > 0);
    c.ok(&["PEXPIRE", &capped.token, "2000"]);
    update(&mut c, &capped.token, r#"{"x":1}"#).unwrap();
    assert_eq!(c.pexpiretime(&capped.token), deadline);
}

#[test]
fn update_gives_the_joined_index_an_expiry_at_least_the_sessions() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let key_events = c.server_kind().key_events();
    let short = c.create(r#"{"user_id":151}"#, &["TTL", "10"]);
    let long = c.create(r#"{"user_id":150}"#, &["TTL", "5000"]);
    if !key_events {
        assert!(c.pexpiretime("user_id:151") < c.pexpiretime(&long.token));
    }
    update(&mut c, &long.token, r#"{"user_id":151,"tenant_id":"new"}"#).unwrap();
    let exp = c.pexpiretime(&long.token);
    assert!(
        c.index_outlives("user_id:151", exp),
        "existing index not raised"
    );
    assert!(c.index_outlives("tenant_id:new", exp));
    if key_events {
        // Exact indexes carry no expiry of their own.
        assert_eq!(c.pexpiretime("tenant_id:new"), -1);
        assert_eq!(c.pexpiretime("user_id:151"), -1);
    } else {
        assert!(
            c.pexpiretime("tenant_id:new") > 0,
            "new index has no expiry"
        );
    }
    assert!(c.validate(&short.token).is_some());
}

#[test]
fn update_may_change_created_at_but_the_max_lifetime_counts_from_creation() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &["TTL", "1000", "MAXLIFETIME", "100"]);
    let deadline_ms = c.stored(&created.token).deadline;
    assert!(deadline_ms > 0);
    for patch in [
        r#"{"createdAt":"2000-01-01 00:00:00"}"#,
        r#"{"createdAt":"2999-01-01 00:00:00"}"#,
        r#"{"createdAt":null}"#,
    ] {
        c.ok(&["PEXPIRE", &created.token, "5000"]);
        let reply = update(&mut c, &created.token, patch).expect(patch);
        let data = parse_object(&reply);
        let patched = parse_object(patch)["createdAt"].clone();
        assert_eq!(
            data.get("createdAt")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            patched,
            "{patch}"
        );
        assert_eq!(c.validate(&created.token), Some(reply), "{patch}");
        assert_eq!(c.stored(&created.token).deadline, deadline_ms, "{patch}");
        assert_eq!(c.pexpiretime(&created.token), deadline_ms, "{patch}");
    }
}

#[test]
fn update_into_an_index_key_of_another_type_is_wrongtype_and_writes_nothing() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &[]);
    c.ok(&["SET", "user_id:151", "precious", "PX", "500000"]);
    c.ok(&["PEXPIRE", &created.token, "5000"]);
    assert_refused(
        &mut c,
        &["SESSION.UPDATE", &created.token, r#"{"user_id":151,"x":1}"#],
        "WRONGTYPE index key 'user_id:151' holds a value that is not a set",
    );
    // Also when another index it joins comes first.
    assert_refused(
        &mut c,
        &[
            "SESSION.UPDATE",
            &created.token,
            r#"{"tenant_id":"t","user_id":151}"#,
        ],
        "WRONGTYPE index key 'user_id:151' holds a value that is not a set",
    );
    assert!(!c.exists("tenant_id:t"));
}

/// UPDATE of a session whose index key was replaced by hand ends it (fail closed, SPEC
/// revision 4) and leaves the foreign key alone. Inside a transaction that replaces the key
/// first, servers with key events still see the session (their index work runs when the
/// transaction ends), and UPDATE moves it out of the foreign key without touching it.
#[test]
fn update_leaving_an_index_key_of_another_type_leaves_it_alone() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let key_events = c.server_kind().key_events();
    let created = c.create(r#"{"user_id":150}"#, &[]);
    c.ok(&["DEL", "user_id:150"]);
    c.ok(&["SET", "user_id:150", "precious", "PX", "500000"]);
    let exp = c.pexpiretime("user_id:150");
    assert_eq!(update(&mut c, &created.token, r#"{"user_id":151}"#), None);
    assert!(!c.exists(&created.token) && !c.exists("user_id:151"));
    assert_eq!(c.string(&["GET", "user_id:150"]), "precious");
    assert_eq!(c.pexpiretime("user_id:150"), exp);

    c.ok(&["DEL", "user_id:150"]);
    let moved = c.create(r#"{"user_id":150}"#, &[]);
    let replies = c.transaction(&[
        &["DEL", "user_id:150"],
        &["SET", "user_id:150", "precious", "PX", "500000"],
        &["SESSION.UPDATE", &moved.token, r#"{"user_id":151}"#],
    ]);
    assert_eq!(c.string(&["GET", "user_id:150"]), "precious");
    if key_events {
        assert!(matches!(replies[2], Value::BulkString(_)), "{replies:?}");
        assert_eq!(c.smembers("user_id:151"), set_of(&[&moved.token]));
        assert_eq!(
            indexes_field(&mut c, &moved.token),
            set_of(&["user_id:151"])
        );
    } else {
        assert_eq!(
            replies[2],
            Value::Nil,
            "7.0 sees the replaced key: fail closed"
        );
        assert!(!c.exists(&moved.token) && !c.exists("user_id:151"));
    }
}

#[test]
fn update_follows_the_indexes_setting_at_its_time() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":1,"tenant_id":"acme"}"#, &[]);
    c.ok(&["CONFIG", "SET", "session.indexes", "tenant_id"]);
    // Memberships are decided by CREATE and UPDATE: the session is still in user_id:1.
    assert_eq!(c.smembers("user_id:1"), set_of(&[&created.token]));
    update(&mut c, &created.token, "{}").unwrap();
    assert!(
        !c.exists("user_id:1"),
        "UPDATE kept an index no longer configured"
    );
    assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&created.token]));
    assert_eq!(
        indexes_field(&mut c, &created.token),
        set_of(&["tenant_id:acme"])
    );
}

#[test]
fn destroy_uses_the_indexes_the_session_joined_not_the_current_setting() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":1,"tenant_id":"acme"}"#, &[]);
    let other = c.create(r#"{"user_id":1}"#, &[]);
    c.ok(&["CONFIG", "SET", "session.indexes", "tenant_id"]);
    assert_eq!(destroy(&mut c, &created.token), 1);
    assert_eq!(c.smembers("user_id:1"), set_of(&[&other.token]));
    assert!(!c.exists("tenant_id:acme"));
    // user_id is no longer an index property: REVOKEINDEX and LIST refuse it.
    assert_refused(
        &mut c,
        &["SESSION.REVOKEINDEX", "user_id", "1"],
        "ERR property 'user_id' is not a configured index (see session.indexes)",
    );
    assert_refused(
        &mut c,
        &["SESSION.LIST", "user_id", "1"],
        "ERR property 'user_id' is not a configured index (see session.indexes)",
    );
}

// ---------------------------------------------------------------------------------------
// Prefixes and index expiry

#[test]
fn every_index_command_honours_key_prefix_and_index_prefix() {
    let s = Server::start(&[
        "indexes",
        "user_id,tenant_id",
        "key-prefix",
        "s:",
        "index-prefix",
        "i:",
    ]);
    let mut c = s.conn();
    let t: Vec<String> = (0..4)
        .map(|_| c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]).token)
        .collect();
    assert_eq!(c.smembers("i:user_id:150").len(), 4);
    // LIST with a member deleted by hand: pruned by the prefixed key, the rest listed.
    c.ok(&["DEL", &format!("s:{}", t[3])]);
    assert_eq!(
        list_tokens(&mut c, "user_id", "150"),
        set_of(&[&t[0], &t[1], &t[2]])
    );
    assert_eq!(c.smembers("i:user_id:150").len(), 3);
    // DESTROY takes the bare token and removes s:<token> from both prefixed indexes.
    assert_eq!(destroy(&mut c, &t[0]), 1);
    assert!(!c.exists(format!("s:{}", t[0])));
    assert_eq!(c.smembers("i:user_id:150"), set_of(&[&t[1], &t[2]]));
    assert!(!c.smembers("i:tenant_id:acme").contains(&t[0]));
    // UPDATE moves between prefixed indexes.
    update(&mut c, &t[1], r#"{"user_id":151}"#).unwrap();
    assert_eq!(c.smembers("i:user_id:151"), set_of(&[&t[1]]));
    assert_eq!(
        indexes_field(&mut c, &format!("s:{}", t[1])),
        set_of(&["i:user_id:151", "i:tenant_id:acme"])
    );
    // REVOKEINDEX finds i:user_id:150 and cleans i:tenant_id:acme.
    assert_eq!(revoke(&mut c, "user_id", "150", None), 1);
    assert!(!c.exists(format!("s:{}", t[2])));
    assert!(!c.exists("i:user_id:150"));
    assert_eq!(c.smembers("i:tenant_id:acme"), set_of(&[&t[1]]));
    assert_eq!(revoke(&mut c, "tenant_id", "acme", Some(&t[1])), 0);
    assert!(c.validate(&t[1]).is_some());
    let keys = c.keys();
    let mut expected: Vec<Vec<u8>> = vec![
        b"i:tenant_id:acme".to_vec(),
        b"i:user_id:151".to_vec(),
        format!("s:{}", t[1]).into_bytes(),
        b"s:session-secret".to_vec(),
    ];
    expected.sort();
    assert_eq!(keys, expected);
}

#[test]
fn index_expiry_is_never_earlier_than_any_of_its_sessions_with_mixed_ttls() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let long = c.create(r#"{"user_id":1,"tenant_id":"t"}"#, &["TTL", "5000"]);
    let short = c.create(r#"{"user_id":1,"tenant_id":"t"}"#, &["TTL", "100"]);
    let check = |c: &mut Conn, when: &str| {
        let most = c.pexpiretime(&long.token).max(c.pexpiretime(&short.token));
        for index in ["user_id:1", "tenant_id:t"] {
            assert!(
                c.index_outlives(index, most),
                "{when}: {index} expires before one of its sessions"
            );
        }
    };
    check(&mut c, "after CREATE");
    // Stand in for time passing: every key has 3 s left.
    for key in c.keys() {
        c.ok(&[b"PEXPIRE".as_slice(), &key, b"3000"]);
    }
    assert!(c.validate(&short.token).is_some());
    check(&mut c, "after VALIDATE of the short one");
    assert!(c.validate(&long.token).is_some());
    check(&mut c, "after VALIDATE of the long one");
    assert!(c.validate(&short.token).is_some());
    check(&mut c, "after VALIDATE of the short one again");
    update(&mut c, &short.token, r#"{"x":1}"#).unwrap();
    check(&mut c, "after UPDATE");
    destroy(&mut c, &short.token);
    check(&mut c, "after DESTROY");
    let long_ms = c.pexpiretime(&long.token);
    // The expiries set by hand above are kept (and raised) on every server.
    assert!(c.pexpiretime("user_id:1") >= long_ms);
}

// ---------------------------------------------------------------------------------------
// Replication: a replica without the module matches the primary

/// Sessions of two users and two tenants; returns their tokens.
fn create_sessions(c: &mut Conn) -> Vec<String> {
    vec![
        c.create(r#"{"user_id":150,"tenant_id":"acme","n":1.0}"#, &[])
            .token,
        c.create(r#"{"user_id":150,"tenant_id":"globex"}"#, &["TTL", "60"])
            .token,
        c.create(r#"{"user_id":150}"#, &["MAXLIFETIME", "100"])
            .token,
        c.create(r#"{"user_id":151,"tenant_id":"acme"}"#, &[]).token,
        c.create(r#"{"tenant_id":"Zoë","x":[]}"#, &["TTL", "600"])
            .token,
    ]
}

fn assert_same(primary: &mut Conn, replica: &Server, what: &str) {
    sync_replica(primary, replica);
    let p = snapshot(primary);
    let r = snapshot(&mut replica.conn());
    assert!(!p.is_empty(), "{what}: nothing to compare");
    assert_eq!(r, p, "{what}: replica differs from primary");
}

/// A primary with the module, a replica without it, and a connection to the primary.
fn primary_and_replica() -> (Server, Server, Conn) {
    let primary = Server::start(&MODULE_ARGS);
    let replica = Server::start_replica_without_module(&primary);
    let c = primary.conn();
    (primary, replica, c)
}

#[test]
fn replica_without_module_matches_primary_after_destroy() {
    let (_primary, replica, mut p) = primary_and_replica();
    let t = create_sessions(&mut p);
    assert_same(&mut p, &replica, "before DESTROY");
    // One destroyed with a stale member to prune in its index.
    p.ok(&["DEL", &t[2]]);
    assert_eq!(destroy(&mut p, &t[0]), 1);
    assert_eq!(p.smembers("user_id:150"), set_of(&[&t[1]]));
    assert_same(&mut p, &replica, "after DESTROY");
    assert_eq!(destroy(&mut p, &t[0]), 0);
    assert_same(&mut p, &replica, "after DESTROY of a gone token");
}

#[test]
fn replica_without_module_matches_primary_after_revokeindex_with_except() {
    let (_primary, replica, mut p) = primary_and_replica();
    let t = create_sessions(&mut p);
    let extra = p.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]).token;
    p.ok(&["DEL", &t[2]]);
    assert_eq!(revoke(&mut p, "user_id", "150", Some(&extra)), 2);
    assert_eq!(p.smembers("user_id:150"), set_of(&[&extra]));
    assert_same(&mut p, &replica, "after REVOKEINDEX EXCEPT");
    assert_eq!(revoke(&mut p, "tenant_id", "acme", None), 2);
    assert_same(&mut p, &replica, "after REVOKEINDEX");
}

#[test]
fn replica_without_module_matches_primary_after_list_with_pruning() {
    let (_primary, replica, mut p) = primary_and_replica();
    let t = create_sessions(&mut p);
    p.ok(&["DEL", &t[1], &t[2]]);
    assert_same(&mut p, &replica, "before LIST");
    assert_eq!(list_tokens(&mut p, "user_id", "150"), set_of(&[&t[0]]));
    assert_eq!(p.smembers("user_id:150"), set_of(&[&t[0]]));
    assert_same(&mut p, &replica, "after LIST");
}

#[test]
fn replica_without_module_matches_primary_after_update() {
    let (_primary, replica, mut p) = primary_and_replica();
    let t = create_sessions(&mut p);
    for key in p.keys() {
        p.ok(&[b"PEXPIRE".as_slice(), &key, b"10000"]);
    }
    assert_same(&mut p, &replica, "before UPDATE");
    update(
        &mut p,
        &t[0],
        r#"{"user_id":151,"tenant_id":"initech","n":null}"#,
    )
    .unwrap();
    assert_same(&mut p, &replica, "after UPDATE moving between indexes");
    update(&mut p, &t[2], r#"{"user_id":null}"#).unwrap();
    assert_eq!(p.stored(&t[2]).indexes, None);
    assert_same(&mut p, &replica, "after UPDATE leaving every index");
    update(&mut p, &t[4], r#"{"tenant_id":"acme","y":{"z":1}}"#).unwrap();
    assert_same(&mut p, &replica, "after UPDATE joining an index");
}

#[test]
fn aof_replay_without_module_reproduces_the_index_commands() {
    let primary = Server::builder()
        .module_args(&MODULE_ARGS)
        .directive("appendonly yes")
        .start();
    let mut p = primary.conn();
    let t = create_sessions(&mut p);
    let extra = p.create(r#"{"user_id":150}"#, &[]).token;
    update(&mut p, &t[0], r#"{"user_id":151}"#).unwrap();
    p.ok(&["DEL", &t[2]]);
    assert_eq!(list(&mut p, "user_id", "150").len(), 2);
    assert_eq!(revoke(&mut p, "user_id", "150", Some(&extra)), 1);
    assert_eq!(destroy(&mut p, &t[3]), 1);
    let expected = snapshot(&mut p);
    drop(p);
    let dir = primary.shutdown();
    let aof = read_aof(dir.path());
    assert!(
        !aof.to_lowercase().contains("session."),
        "AOF holds module commands:\n{aof}"
    );
    let replay = Server::builder()
        .without_module()
        .directive("appendonly yes")
        .in_dir(dir)
        .start();
    assert_eq!(snapshot(&mut replay.conn()), expected);
}

/// The text of every AOF file under `dir` (Redis 7 keeps them in `appendonlydir/`).
fn read_aof(dir: &std::path::Path) -> String {
    let aof_dir = dir.join("appendonlydir");
    let mut files: Vec<_> = std::fs::read_dir(&aof_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", aof_dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned())
        .collect()
}
