//! Replicas and the AOF get the module's effects as plain commands with absolute expiry
//! times: a replica or AOF replay WITHOUT the module reproduces the primary exactly.

mod common;

use std::collections::BTreeMap;

use common::{repl_offset, sync_replica, Conn, Server};

/// Everything about a key that must match: type, value and absolute expiry.
#[derive(Debug, PartialEq)]
enum KeyState {
    Hash(BTreeMap<String, String>, i64),
    Set(Vec<String>, i64),
}

/// Every key of the database with its type, value and PEXPIRETIME.
fn snapshot(c: &mut Conn) -> BTreeMap<Vec<u8>, KeyState> {
    let mut out = BTreeMap::new();
    for key in c.keys() {
        let exp = c.pexpiretime(&key);
        let state = match c.key_type(&key).as_str() {
            "hash" => KeyState::Hash(c.hgetall(&key), exp),
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
    // 4 sessions, user_id:150, tenant_id:acme, tenant_id:Zoë.
    assert_eq!(r.dbsize(), 7);
    assert!(r.smembers("user_id:150").contains(&tokens[0]));
    assert!(r.pexpiretime(&tokens[1]) > 0);
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
    // Stand in for time passing: every key has 10 s left (replicated as PEXPIREAT).
    for key in p.keys() {
        p.ok(&[b"PEXPIRE".as_slice(), &key, b"10000"]);
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
