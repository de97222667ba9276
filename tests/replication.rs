//! Replicas and the AOF get the module's effects as plain commands with absolute expiry
//! times: a replica or AOF replay WITHOUT the module reproduces the primary exactly.

mod common;

use std::collections::BTreeMap;

use common::{repl_offset, sync_replica, Conn, Server};

/// Everything about a key that must match: type, value and absolute expiry. The module
/// writes strings (sessions and the secret) and sets (indexes); a hash would be a 0.1.0
/// session, which it no longer writes.
#[derive(Debug, PartialEq)]
enum KeyState {
    String(Vec<u8>, i64),
    Set(Vec<String>, i64),
}

/// Every key of the database with its type, value and PEXPIRETIME.
fn snapshot(c: &mut Conn) -> BTreeMap<Vec<u8>, KeyState> {
    let mut out = BTreeMap::new();
    for key in c.keys() {
        let exp = c.pexpiretime(&key);
        let state = match c.key_type(&key).as_str() {
            "string" => KeyState::String(c.get_bytes(&key).expect("GET"), exp),
            "set" => KeyState::Set(c.smembers(&key).into_iter().collect(), exp),
            other => panic!(
                "unexpected type {other} at {}",
                String::from_utf8_lossy(&key)
            ),
        };
        out.insert(key, state);
    }
    out
}

const MODULE_ARGS: [&str; 2] = ["indexes", "user_id,tenant_id"];

/// Creates sessions of several shapes; returns their tokens.
fn create_sessions(c: &mut Conn) -> Vec<String> {
    vec![
        c.create(r#"{"user_id":150,"tenant_id":"acme","n":1.0}"#, &[])
            .token,
        c.create(
            r#"{"user_id":150,"big":123456789012345678901234567890}"#,
            &["TTL", "60"],
        )
        .token,
        c.create(
            r#"{"tenant_id":"Zoë","x":[]}"#,
            &["TTL", "600", "MAXLIFETIME", "100"],
        )
        .token,
        c.create(r#"{"none":null}"#, &["MAXLIFETIME", "0"]).token,
    ]
}

fn assert_same(primary: &mut Conn, replica: &mut Conn, what: &str) {
    let p = snapshot(primary);
    let r = snapshot(replica);
    assert!(!p.is_empty());
    assert_eq!(r, p, "{what}: replica differs from primary");
}

#[test]
fn replica_without_module_matches_primary_after_create() {
    let primary = Server::start(&MODULE_ARGS);
    let replica = Server::start_replica_without_module(&primary);
    let mut p = primary.conn();
    let tokens = create_sessions(&mut p);
    sync_replica(&mut p, &replica);
    let mut r = replica.conn();
    assert_same(&mut p, &mut r, "after CREATE");
    // 4 sessions, user_id:150, tenant_id:acme, tenant_id:Zoë, the secret.
    assert_eq!(r.dbsize(), 8);
    assert!(r.smembers("user_id:150").contains(&tokens[0]));
    assert!(r.pexpiretime(&tokens[1]) > 0);
    // The replica holds each session as a layout-2 string tagged with the secret it got.
    let secret = r.secret("").expect("the secret reached the replica");
    assert_eq!(
        r.pexpiretime("session-secret"),
        -1,
        "the secret never expires"
    );
    for t in &tokens {
        let s = r.stored(t);
        assert_eq!(s.layout, common::Layout::V2, "{t}");
        assert_eq!(s.tag, Some(common::tag_v2(&secret, t.as_bytes())), "{t}");
        assert_eq!(Some(s.data), p.get(t), "{t}: the replica's data");
    }
    let modules = r.cmd(&["MODULE", "LIST"]);
    assert_eq!(
        modules,
        redis::Value::Array(vec![]),
        "replica must run without the module"
    );
}

#[test]
fn replica_without_module_matches_primary_after_validate() {
    let primary = Server::start(&MODULE_ARGS);
    let replica = Server::start_replica_without_module(&primary);
    let mut p = primary.conn();
    let tokens = create_sessions(&mut p);
    // Stand in for time passing: every session and index has 10 s left (replicated as
    // PEXPIREAT). The secret has no expiry and keeps none.
    for key in p.keys() {
        if key != b"session-secret" {
            p.ok(&[b"PEXPIRE".as_slice(), &key, b"10000"]);
        }
    }
    sync_replica(&mut p, &replica);
    let mut r = replica.conn();
    assert_same(&mut p, &mut r, "before VALIDATE");
    let before: Vec<i64> = tokens.iter().map(|t| p.pexpiretime(t)).collect();
    let idx_before = p.pexpiretime("user_id:150");
    for t in &tokens {
        assert!(p.validate(t).is_some());
    }
    sync_replica(&mut p, &replica);
    for (t, b) in tokens.iter().zip(&before) {
        assert!(
            p.pexpiretime(t) > *b,
            "VALIDATE did not move the expiry of {t}"
        );
    }
    assert!(
        p.pexpiretime("user_id:150") > idx_before,
        "index expiry not raised"
    );
    assert_same(&mut p, &mut r, "after VALIDATE");
}

#[test]
fn replica_started_later_gets_sessions_by_full_sync() {
    let primary = Server::start(&MODULE_ARGS);
    let mut p = primary.conn();
    create_sessions(&mut p);
    let replica = Server::start_replica_without_module(&primary);
    sync_replica(&mut p, &replica);
    assert_same(&mut p, &mut replica.conn(), "after full sync");
}

#[test]
fn get_sends_nothing_to_replicas() {
    let primary = Server::start(&MODULE_ARGS);
    let replica = Server::start_replica_without_module(&primary);
    let mut p = primary.conn();
    let tokens = create_sessions(&mut p);
    sync_replica(&mut p, &replica);
    let before = repl_offset(&mut p, "master_repl_offset");
    for t in &tokens {
        assert!(p.get(t).is_some());
    }
    assert_eq!(
        repl_offset(&mut p, "master_repl_offset"),
        before,
        "GET wrote to the replication stream"
    );
}

#[test]
fn aof_replay_without_module_reproduces_sessions() {
    let primary = Server::builder()
        .module_args(&MODULE_ARGS)
        .directive("appendonly yes")
        .start();
    let mut p = primary.conn();
    let tokens = create_sessions(&mut p);
    // A VALIDATE in the same millisecond as the CREATE moves no expiry and writes nothing;
    // a later one writes PEXPIREAT.
    std::thread::sleep(std::time::Duration::from_millis(5));
    for t in &tokens {
        assert!(p.validate(t).is_some());
    }
    let expected = snapshot(&mut p);
    drop(p);
    let dir = primary.shutdown();
    let aof = read_aof(dir.path());
    assert!(
        !aof.to_lowercase().contains("session."),
        "AOF holds module commands:\n{aof}"
    );
    assert!(
        aof.contains("PEXPIREAT") || aof.contains("pexpireat"),
        "no PEXPIREAT in AOF:\n{aof}"
    );
    // CREATE writes `SET key value PXAT ms`: an absolute time, never EX or PX.
    assert!(
        aof.contains("\r\nPXAT\r\n"),
        "no SET ... PXAT in AOF:\n{aof}"
    );
    for relative in [
        "\r\nEX\r\n",
        "\r\nPX\r\n",
        "\r\nPEXPIRE\r\n",
        "\r\nEXPIRE\r\n",
    ] {
        assert!(!aof.contains(relative), "relative expiry in AOF:\n{aof}");
    }
    let replay = Server::builder()
        .without_module()
        .directive("appendonly yes")
        .in_dir(dir)
        .start();
    let got = snapshot(&mut replay.conn());
    assert_eq!(got, expected);
}

/// The text of every AOF file under `dir` (Redis 7 keeps them in `appendonlydir/`).
fn read_aof(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let aof_dir = dir.join("appendonlydir");
    let mut files: Vec<_> = std::fs::read_dir(&aof_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", aof_dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        text.push_str(&String::from_utf8_lossy(&std::fs::read(&f).unwrap()));
    }
    text
}
