//! Index joining on SESSION.CREATE: index key names and value text, what is not indexed,
//! index expiry, prefixes, and an index key that already holds another type. Besides the
//! sessions and index sets, the keyspace holds the dataset's session secret
//! (`<key-prefix>session-secret`), written by the first CREATE.

mod common;

use std::collections::BTreeSet;

use common::{Layout, Server};

#[test]
fn create_joins_every_configured_index() {
    let s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();
    let a = c.create(r#"{"user_id":150,"tenant_id":"acme","foo":"bar"}"#, &[]);
    let b = c.create(r#"{"user_id":150}"#, &[]);
    assert_eq!(
        c.smembers("user_id:150"),
        BTreeSet::from([a.token.clone(), b.token.clone()])
    );
    assert_eq!(
        c.smembers("tenant_id:acme"),
        BTreeSet::from([a.token.clone()])
    );
    assert_eq!(c.key_type("user_id:150"), "set");
    // Two sessions, two index sets and the secret: nothing else was written.
    assert!(c.secret("").is_some(), "no session secret");
    assert_eq!(c.dbsize(), 5, "{:?}", c.keys());
}

#[test]
fn index_value_text_is_compact_json_or_raw_string() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    for (json_value, key) in [
        ("150", "user_id:150"),
        ("-7", "user_id:-7"),
        ("1.5", "user_id:1.5"),
        ("1.0", "user_id:1.0"),
        ("12345678901234567890123", "user_id:12345678901234567890123"),
        ("true", "user_id:true"),
        ("false", "user_id:false"),
        (r#""alice""#, "user_id:alice"),
        (r#""Zoë""#, "user_id:Zoë"),
        (r#""Zo\u00eb 😀""#, "user_id:Zoë 😀"),
        (r#""say \"hi\"\\""#, r#"user_id:say "hi"\"#),
        (r#""a/b""#, "user_id:a/b"),
        (r#""""#, "user_id:"),
    ] {
        let created = c.create(&format!(r#"{{"user_id":{json_value}}}"#), &[]);
        assert_eq!(
            c.smembers(key),
            BTreeSet::from([created.token.clone()]),
            "user_id {json_value} should be indexed at {key:?}"
        );
        let stored = c.stored(&created.token);
        assert_eq!(stored.layout, Layout::V2);
        assert_eq!(
            stored.indexes,
            Some(vec![key.to_string()]),
            "index list for {json_value}"
        );
    }
}

#[test]
fn null_indexed_property_is_not_indexed() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":null}"#, &[]);
    assert!(c.secret("").is_some(), "no session secret");
    assert_eq!(
        c.dbsize(),
        2,
        "only the session and the secret: {:?}",
        c.keys()
    );
    assert!(!c.exists("user_id:null"));
    assert_eq!(
        c.stored(&created.token).indexes,
        None,
        "an index list was written"
    );
}

#[test]
fn absent_indexed_property_is_not_indexed() {
    let s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"other":150,"nested":{"user_id":150}}"#, &[]);
    assert!(c.secret("").is_some(), "no session secret");
    assert_eq!(
        c.dbsize(),
        2,
        "only the session and the secret: {:?}",
        c.keys()
    );
    assert_eq!(
        c.stored(&created.token).indexes,
        None,
        "an index list was written"
    );
    // Only the present one of two indexed properties is indexed.
    let partial = c.create(r#"{"tenant_id":9}"#, &[]);
    assert_eq!(
        c.stored(&partial.token).indexes,
        Some(vec!["tenant_id:9".to_string()])
    );
    assert_eq!(c.smembers("tenant_id:9"), BTreeSet::from([partial.token]));
    assert_eq!(c.dbsize(), 4, "{:?}", c.keys());
}

#[test]
fn index_key_expiry_is_never_earlier_than_its_sessions() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let key_events = c.server_kind().key_events();
    let short = c.create(r#"{"user_id":1}"#, &["TTL", "100"]);
    if key_events {
        // Exact indexes end with their last session: no expiry of their own.
        assert_eq!(c.pexpiretime("user_id:1"), -1);
    } else {
        assert!(c.pexpiretime("user_id:1") >= c.pexpiretime(&short.token));
    }
    let long = c.create(r#"{"user_id":1}"#, &["TTL", "1000"]);
    let long_exp = c.pexpiretime(&long.token);
    assert!(c.index_outlives("user_id:1", long_exp), "index not raised");
    // A shorter session does not lower it.
    c.create(r#"{"user_id":1}"#, &["TTL", "10"]);
    assert!(c.index_outlives("user_id:1", long_exp), "index lowered");
    assert_eq!(c.pexpiretime("user_id:1") == -1, key_events);
}

#[test]
fn create_raises_earlier_expiry_of_existing_index() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let first = c.create(r#"{"user_id":1}"#, &[]);
    c.ok(&["PEXPIRE", "user_id:1", "5000"]);
    let second = c.create(r#"{"user_id":1}"#, &[]);
    let exp = c.pexpiretime(&second.token);
    assert!(c.pexpiretime("user_id:1") >= exp);
    assert_eq!(
        c.smembers("user_id:1"),
        BTreeSet::from([first.token, second.token])
    );
}

#[test]
fn create_leaves_existing_persistent_index_without_expiry() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    c.ok(&["SADD", "user_id:1", "someone"]);
    let created = c.create(r#"{"user_id":1}"#, &[]);
    assert_eq!(c.pexpiretime("user_id:1"), -1);
    assert!(c.smembers("user_id:1").contains(&created.token));
}

#[test]
fn key_prefix_and_index_prefix_name_the_keys() {
    let s = Server::start(&[
        "indexes",
        "user_id",
        "key-prefix",
        "sess:",
        "index-prefix",
        "idx:",
    ]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &[]);
    let key = format!("sess:{}", created.token);
    assert_eq!(c.key_type(&key), "string");
    let stored = c.stored(&key);
    assert_eq!(stored.layout, Layout::V2);
    assert_eq!(
        c.smembers("idx:user_id:150"),
        BTreeSet::from([created.token.clone()]),
        "index members are bare tokens"
    );
    // The secret takes the key prefix (not the index prefix), and the tag is of the key name.
    let secret = c.secret("sess:").expect("sess:session-secret");
    assert_eq!(
        stored.tag.as_deref(),
        Some(common::tag_v2(&secret, key.as_bytes()).as_str()),
        "tag of the prefixed key"
    );
    assert!(!c.exists("session-secret") && !c.exists("idx:session-secret"));
    assert_eq!(c.dbsize(), 3, "{:?}", c.keys());
    assert_eq!(stored.indexes, Some(vec!["idx:user_id:150".to_string()]));
    let session_ms = c.pexpiretime(&key);
    assert!(c.index_outlives("idx:user_id:150", session_ms));
    let key_events = c.server_kind().key_events();
    assert_eq!(c.pexpiretime("idx:user_id:150") == -1, key_events);
    assert!(
        c.validate(&created.token).is_some(),
        "validate takes the bare token"
    );
}

#[test]
fn index_key_of_another_type_fails_create_with_wrongtype() {
    let s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();
    c.ok(&["SET", "user_id:150", "precious"]);
    c.ok(&["PEXPIRE", "user_id:150", "500000"]);
    let exp = c.pexpiretime("user_id:150");
    let before = c.dbsize();
    let e = c.err(&["SESSION.CREATE", r#"{"user_id":150}"#]);
    assert_eq!(
        e,
        "WRONGTYPE index key 'user_id:150' holds a value that is not a set"
    );
    // Also when another index comes first and would have been written.
    let e = c.err(&["SESSION.CREATE", r#"{"tenant_id":"acme","user_id":150}"#]);
    assert!(e.starts_with("WRONGTYPE index key 'user_id:150'"), "{e}");
    assert_eq!(c.dbsize(), before, "{:?}", c.keys());
    assert!(!c.exists("tenant_id:acme"));
    assert_eq!(c.string(&["GET", "user_id:150"]), "precious");
    assert_eq!(c.pexpiretime("user_id:150"), exp);
}

#[test]
fn index_key_of_another_type_with_prefix_fails_create() {
    let s = Server::start(&["indexes", "user_id", "index-prefix", "idx:"]);
    let mut c = s.conn();
    c.ok(&["RPUSH", "idx:user_id:1", "x"]);
    let e = c.err(&["SESSION.CREATE", r#"{"user_id":1}"#]);
    assert_eq!(
        e,
        "WRONGTYPE index key 'idx:user_id:1' holds a value that is not a set"
    );
    // Only the list: a refused first CREATE writes no secret either.
    assert_eq!(c.dbsize(), 1, "{:?}", c.keys());
    assert_eq!(c.key_type("idx:user_id:1"), "list");
}
