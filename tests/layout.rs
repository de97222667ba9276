//! Storage layout 2 as docs/storage.md documents it (one string per session, tagged with the
//! dataset's secret), the secret's key, and 0.1.0 sessions (hashes written by plain
//! commands here, as 0.1.0 wrote them) going through every command.

mod common;

use common::{sync_replica, tag_v2, Layout, Server, StoredSession};
use redis::Value;

const DATA: &str = r#"{"user_id":150,"roles":["admin","editor"],"profile":{"name":"Zoë"}}"#;

/// The text of docs/storage.md, byte for byte: `s2 <tag> <ttl> <deadline> <indexes>\n<data>`, the tag
/// being SipHash-2-4 of the key name keyed by the secret, computed here independently.
#[test]
fn create_writes_the_documented_string() {
    let s = Server::start(&["indexes", "user_id,tenant"]);
    let mut c = s.conn();
    let t = c.create(DATA, &["TTL", "600", "MAXLIFETIME", "3600"]);
    assert_eq!(c.key_type(&t.token), "string");
    let secret = c.secret("").expect("the first CREATE makes the secret");
    assert_eq!(secret.len(), 32);
    assert!(common::is_lower_hex(&secret), "{secret}");
    assert_eq!(
        c.pexpiretime("session-secret"),
        -1,
        "the secret never expires"
    );
    let stored = c.stored(&t.token);
    let value = c.get_bytes(&t.token).unwrap();
    let expected = format!(
        "s2 {} 600 {} [\"user_id:150\"]\n{}",
        tag_v2(&secret, t.token.as_bytes()),
        stored.deadline,
        t.data_text()
    );
    assert_eq!(String::from_utf8(value).unwrap(), expected);
    let now = c.time_ms();
    assert!(
        (now + 3_590_000..=now + 3_600_000).contains(&stored.deadline),
        "deadline {} is creation + 3600 s",
        stored.deadline
    );
    // No index: no list, and no space before the newline.
    let plain = c.create(r#"{"a":1}"#, &[]);
    let value = String::from_utf8(c.get_bytes(&plain.token).unwrap()).unwrap();
    assert_eq!(
        value,
        format!(
            "s2 {} 7200 0\n{}",
            tag_v2(&secret, plain.token.as_bytes()),
            plain.data_text()
        )
    );
    // One secret per dataset: the second CREATE reused it.
    assert_eq!(c.secret("").unwrap(), secret);
}

/// With a key prefix the secret sits beside the sessions and the tag covers the whole name.
#[test]
fn a_key_prefix_prefixes_the_secret_and_is_tagged() {
    let s = Server::start(&["key-prefix", "sess:"]);
    let mut c = s.conn();
    let t = c.create(r#"{"a":1}"#, &[]).token;
    let key = format!("sess:{t}");
    assert!(c.secret("").is_none());
    let secret = c.secret("sess:").expect("sess:session-secret");
    let stored = c.stored(&key);
    assert_eq!(stored.tag.unwrap(), tag_v2(&secret, key.as_bytes()));
}

/// docs/storage.md describes the layout completely: a session written from it with plain
/// commands (and the secret read from its key) is one.
#[test]
fn a_string_written_as_documented_is_a_session() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    c.create(r#"{"user_id":1}"#, &[]);
    let token = "ab".repeat(24);
    let session = StoredSession {
        layout: Layout::V2,
        tag: None,
        data: r#"{"user_id":7,"x":[]}"#.into(),
        ttl: 100,
        deadline: 0,
        indexes: Some(vec!["user_id:7".into()]),
    };
    let at = c.time_ms() + 50_000;
    c.write_v2(&token, "", &session, at);
    c.ok(&["SADD", "user_id:7", &token]);
    assert_eq!(c.get(&token).as_deref(), Some(session.data.as_str()));
    let before = c.time_ms();
    assert_eq!(c.validate(&token).as_deref(), Some(session.data.as_str()));
    assert!(
        c.pexpiretime(&token) >= before + 100_000,
        "slid by its own TTL"
    );
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "7"]), 1);
    assert!(!c.exists(&token));
}

/// The tag binds the secret: a session tagged with any other secret is unknown, and a CREATE
/// refuses to run while the secret's key holds something that is not a secret.
#[test]
fn the_secret_decides_and_a_broken_secret_key_refuses_writes() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let t = c.create(r#"{"a":1}"#, &[]).token;
    let value = c.get_bytes(&t).unwrap();
    let other = "0f".repeat(16);
    c.ok(&["SET", "session-secret", &other]);
    assert_eq!(c.get(&t), None, "tagged with another secret");
    assert_eq!(c.validate(&t), None);
    assert_eq!(c.get_bytes(&t).unwrap(), value, "left as it was");
    c.ok(&["SET", "session-secret", "not a secret"]);
    let keys = c.dbsize();
    let e = c.err(&["SESSION.CREATE", r#"{"a":2}"#]);
    assert!(e.contains("session-secret"), "{e}");
    assert_eq!(c.dbsize(), keys, "a refused CREATE writes nothing");
    assert_eq!(c.string(&["GET", "session-secret"]), "not a secret");
}

/// The secret's key deleted (by hand, or evicted under an allkeys policy): commands go on with
/// the secret the module remembers, and the next write command puts the key back, the same.
#[test]
fn a_lost_secret_key_is_remembered_and_written_back() {
    let primary = Server::start(&["indexes", "user_id"]);
    let replica = Server::start_replica_without_module(&primary);
    let mut c = primary.conn();
    let t = c.create(r#"{"user_id":1}"#, &[]).token;
    let secret = c.secret("").unwrap();
    c.ok(&["DEL", "session-secret"]);
    assert!(c.get(&t).is_some(), "GET reads with the remembered secret");
    assert!(!c.exists("session-secret"), "GET writes nothing");
    assert!(c.validate(&t).is_some());
    assert_eq!(
        c.secret("").as_deref(),
        Some(secret.as_str()),
        "written back"
    );
    sync_replica(&mut c, &replica);
    assert_eq!(replica.conn().secret("").as_deref(), Some(secret.as_str()));
    // A CREATE after a loss also uses the remembered secret, not a new one.
    c.ok(&["DEL", "session-secret"]);
    let t2 = c.create(r#"{"user_id":2}"#, &[]).token;
    assert_eq!(c.secret("").as_deref(), Some(secret.as_str()));
    assert!(c.validate(&t).is_some() && c.validate(&t2).is_some());
}

/// The secret persists like any key: after a restart from the RDB file every session
/// validates.
#[test]
fn the_secret_survives_a_restart() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let t = c.create(r#"{"user_id":1}"#, &[]).token;
    let secret = c.secret("").unwrap();
    c.ok(&["SAVE"]);
    let dir = s.shutdown();
    let s = Server::builder()
        .module_args(&["indexes", "user_id"])
        .in_dir(dir)
        .start();
    let mut c = s.conn();
    assert_eq!(c.secret("").as_deref(), Some(secret.as_str()));
    assert!(c.validate(&t).is_some());
}

/// 0.1.0 sessions, written as 0.1.0 wrote them, go through every command: VALIDATE and GET
/// serve them as they are, LIST lists them, DESTROY and REVOKEINDEX end them and clean their
/// indexes, and UPDATE moves them to layout 2 with their TTL, deadline and indexes kept.
#[test]
fn sessions_of_0_1_0_keep_working() {
    let primary = Server::start(&["indexes", "user_id,tenant"]);
    let replica = Server::start_replica_without_module(&primary);
    let mut c = primary.conn();
    // The dataset already has layout-2 sessions too.
    let new = c.create(r#"{"user_id":150,"tenant":"acme"}"#, &[]).token;
    let now = c.time_ms();
    let deadline = now + 3_000_000;
    let (a, b, d) = ("a1".repeat(24), "b2".repeat(24), "d4".repeat(24));
    let data_a = r#"{"user_id":150,"tenant":"acme","createdAt":"2026-01-01 00:00:00"}"#;
    let data_b = r#"{"user_id":150,"n":1.50}"#;
    c.write_v010(
        &a,
        data_a,
        600,
        deadline,
        &["user_id:150", "tenant:acme"],
        now + 500_000,
    );
    c.write_v010(&b, data_b, 600, 0, &["user_id:150"], now + 500_000);
    c.write_v010(&d, r#"{"z":true}"#, 600, 0, &[], now + 500_000);

    assert_eq!(c.get(&a).as_deref(), Some(data_a));
    let before = c.time_ms();
    assert_eq!(c.validate(&b).as_deref(), Some(data_b));
    assert!(c.pexpiretime(&b) >= before + 600_000, "slid by its own TTL");
    assert_eq!(
        c.key_type(&b),
        "hash",
        "VALIDATE leaves the layout as it is"
    );
    assert_eq!(c.validate(&d).as_deref(), Some(r#"{"z":true}"#));

    let mut listed: Vec<String> = match c.cmd(&["SESSION.LIST", "user_id", "150"]) {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let o = common::parse_object(&common::as_string(i).unwrap());
                o["token"].as_str().unwrap().to_string()
            })
            .collect(),
        other => panic!("LIST: {other:?}"),
    };
    listed.sort();
    let mut expected = vec![a.clone(), b.clone(), new.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    // UPDATE moves `a` to layout 2: same lifetime, indexes following the patch.
    let updated = c.string(&["SESSION.UPDATE", &a, r#"{"tenant":"other","x":1}"#]);
    assert_eq!(
        updated,
        r#"{"user_id":150,"tenant":"other","createdAt":"2026-01-01 00:00:00","x":1}"#
    );
    let stored = c.stored(&a);
    assert_eq!(stored.layout, Layout::V2);
    assert_eq!((stored.ttl, stored.deadline), (600, deadline));
    assert_eq!(stored.data, updated);
    assert_eq!(
        stored.index_keys(),
        vec!["user_id:150".to_string(), "tenant:other".to_string()]
    );
    assert!(!c.smembers("tenant:acme").contains(&a));
    assert!(c.smembers("tenant:other").contains(&a));
    assert_eq!(c.validate(&a).as_deref(), Some(updated.as_str()));

    assert_eq!(c.int(&["SESSION.DESTROY", &d]), 1);
    assert!(!c.exists(&d));
    // `b` (0.1.0), `a` (moved) and `new` (layout 2) all go.
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "150"]), 3);
    for t in [&a, &b, &new] {
        assert_eq!(c.validate(t), None);
        assert!(!c.exists(t));
    }
    assert!(!c.exists("user_id:150"));
    assert!(!c.smembers("tenant:other").contains(&a));

    // The replica, without the module, holds exactly what the primary holds.
    sync_replica(&mut c, &replica);
    let mut r = replica.conn();
    assert_eq!(common::snapshot(&mut c), common::snapshot(&mut r));
}

/// UPDATE of a 0.1.0 session reaches replicas as one `SET ... PXAT` that overwrites the
/// hash: the replica, without the module, holds the same string with the same expiry.
#[test]
fn the_move_of_a_0_1_0_session_replicates_exactly() {
    let primary = Server::start(&["indexes", "user_id"]);
    let replica = Server::start_replica_without_module(&primary);
    let mut c = primary.conn();
    c.create(r#"{"user_id":1}"#, &[]);
    let t = "c3".repeat(24);
    let now = c.time_ms();
    c.write_v010(
        &t,
        r#"{"user_id":9}"#,
        900,
        0,
        &["user_id:9"],
        now + 100_000,
    );
    sync_replica(&mut c, &replica);
    let mut r = replica.conn();
    assert_eq!(r.key_type(&t), "hash");
    c.string(&["SESSION.UPDATE", &t, r#"{"k":"v"}"#]);
    sync_replica(&mut c, &replica);
    assert_eq!(r.key_type(&t), "string");
    assert_eq!(r.get_bytes(&t), c.get_bytes(&t));
    assert_eq!(r.pexpiretime(&t), c.pexpiretime(&t));
    assert!(c.pexpiretime(&t) >= now + 900_000);
}
