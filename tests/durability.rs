//! Durability (issue 4): what the module writes survives an AOF replay (with a rewrite in the
//! middle), an RDB save and load, and replication to a replica, each reproducing every key's
//! type, value and absolute expiry exactly, with or without the module loaded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::Value;

use common::{snapshot, sync_replica, Conn, KeyState, Server, StoredSession};

const MODULE_ARGS: [&str; 2] = ["indexes", "user_id,tenant_id"];

/// How long a background AOF rewrite may take.
const REWRITE_DEADLINE: Duration = Duration::from_secs(10);

/// The session secret's key (no key prefix here).
const SECRET_KEY: &str = "session-secret";

/// The sessions of a snapshot: key and stored data. Every string but the secret must be a
/// layout-2 session; the module writes no hash.
fn sessions(snap: &BTreeMap<String, KeyState>) -> Vec<(String, String)> {
    snap.iter()
        .filter_map(|(k, v)| match v {
            KeyState::String(_, _) if k == SECRET_KEY => None,
            KeyState::String(value, _) => {
                let s = StoredSession::parse_v2(value).unwrap_or_else(|| {
                    panic!(
                        "{k} is not a layout-2 session: {:?}",
                        String::from_utf8_lossy(value)
                    )
                });
                Some((k.clone(), s.data))
            }
            KeyState::Hash(..) => panic!("{k}: the module wrote a hash"),
            KeyState::Set(..) => None,
        })
        .collect()
}

/// Checks the snapshot holds sessions (layout-2 strings), each with an expiry, the secret
/// (32 hex digits, no expiry), and indexes: with an expiry on servers without key events,
/// without one where key events keep them exact (`key_events`).
fn assert_plausible(snap: &BTreeMap<String, KeyState>, min_sessions: usize, key_events: bool) {
    let sessions = sessions(snap).len();
    let sets = snap
        .values()
        .filter(|v| matches!(v, KeyState::Set(..)))
        .count();
    assert!(sessions >= min_sessions, "{sessions} sessions: {snap:#?}");
    assert!(sets >= 2, "{sets} index sets: {snap:#?}");
    assert_eq!(
        snap.len(),
        sessions + sets + 1,
        "sessions, index sets and the secret only: {snap:#?}"
    );
    match snap.get(SECRET_KEY) {
        Some(KeyState::String(hex, -1)) => assert!(
            hex.len() == 32 && common::is_lower_hex(&String::from_utf8_lossy(hex)),
            "secret {hex:?}"
        ),
        other => panic!("the secret is a persistent string, got {other:?}"),
    }
    for (k, v) in snap {
        match v {
            KeyState::String(..) if k == SECRET_KEY => {}
            KeyState::Set(_, exp) if key_events => {
                assert_eq!(*exp, -1, "{k}: an exact index has no expiry of its own")
            }
            KeyState::String(_, exp) | KeyState::Hash(_, exp) | KeyState::Set(_, exp) => {
                assert!(*exp > 0, "{k} has no expiry ({exp})")
            }
        }
    }
}

/// Every session of `expected` validates on `c` and replies its stored data.
fn assert_sessions_validate(c: &mut Conn, expected: &BTreeMap<String, KeyState>) {
    let all = sessions(expected);
    assert!(!all.is_empty());
    for (token, data) in all {
        assert_eq!(c.validate(&token), Some(data), "VALIDATE {token}");
    }
}

fn list_tokens(c: &mut Conn, property: &str, value: &str) -> BTreeSet<String> {
    match c.ok(&["SESSION.LIST", property, value]) {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let text = common::as_string(i).expect("LIST element");
                common::parse_object(&text)["token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect(),
        other => panic!("SESSION.LIST {property} {value}: {other:?}"),
    }
}

/// A numeric field of `INFO persistence`.
fn persistence_field(c: &mut Conn, field: &str) -> i64 {
    let info = c.string(&["INFO", "persistence"]);
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {field} in INFO persistence:\n{info}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{field}: {e}"))
}

/// Runs `BGREWRITEAOF` and waits until the rewrite is done.
fn rewrite_aof(c: &mut Conn, server: &Server) {
    let before = persistence_field(c, "aof_rewrites");
    c.ok(&["BGREWRITEAOF"]);
    let deadline = Instant::now() + REWRITE_DEADLINE;
    loop {
        let done = persistence_field(c, "aof_rewrites") > before
            && persistence_field(c, "aof_rewrite_in_progress") == 0
            && persistence_field(c, "aof_rewrite_scheduled") == 0;
        if done {
            let status = c.string(&["INFO", "persistence"]);
            assert!(
                status.contains("aof_last_bgrewrite_status:ok"),
                "rewrite failed:\n{status}\nlog:\n{}",
                server.log()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "AOF rewrite not done; log:\n{}",
            server.log()
        );
        sleep(Duration::from_millis(10));
    }
}

/// The names of the files of the AOF (Redis 7 keeps them in `appendonlydir/`).
fn aof_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The text of the incremental AOF files (the commands written since the last rewrite).
fn aof_incr_text(dir: &Path) -> String {
    let mut text = String::new();
    for name in aof_files(dir) {
        if name.contains(".incr.") {
            let bytes = std::fs::read(dir.join("appendonlydir").join(name)).unwrap();
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

/// The first half of the AOF workload: every write command, before the rewrite.
fn work_before_rewrite(c: &mut Conn) -> BTreeMap<&'static str, String> {
    let mut t = BTreeMap::new();
    t.insert(
        "a",
        c.create(r#"{"user_id":1,"tenant_id":"acme","n":1.0}"#, &[])
            .token,
    );
    t.insert(
        "b",
        c.create(r#"{"user_id":1,"x":[],"s":"Zoë"}"#, &["TTL", "600"])
            .token,
    );
    t.insert(
        "c",
        c.create(
            r#"{"tenant_id":"acme","big":123456789012345678901234567890}"#,
            &["TTL", "900", "MAXLIFETIME", "3000"],
        )
        .token,
    );
    t.insert(
        "d",
        c.create(r#"{"user_id":2}"#, &["MAXLIFETIME", "0"]).token,
    );
    t.insert("e", c.create(r#"{"user_id":3}"#, &[]).token);
    t.insert("f", c.create(r#"{"user_id":3}"#, &[]).token);
    assert!(c.validate(&t["a"]).is_some());
    assert!(c.validate(&t["c"]).is_some());
    // UPDATE moves b from user_id:1 to user_id:2.
    assert!(c
        .opt_string(&["SESSION.UPDATE", &t["b"], r#"{"user_id":2,"y":true}"#])
        .is_some());
    assert_eq!(c.int(&["SESSION.DESTROY", &t["d"]]), 1);
    assert_eq!(
        c.int(&["SESSION.REVOKEINDEX", "user_id", "3", "EXCEPT", &t["e"]]),
        1
    );
    // LIST prunes a session deleted by hand.
    let g = c.create(r#"{"user_id":4}"#, &[]).token;
    let h = c.create(r#"{"user_id":4}"#, &[]).token;
    assert_eq!(c.int(&["DEL", &g]), 1);
    assert_eq!(list_tokens(c, "user_id", "4"), BTreeSet::from([h.clone()]));
    assert_eq!(c.smembers("user_id:4"), BTreeSet::from([h.clone()]));
    t.insert("h", h);
    assert!(c.get(&t["e"]).is_some());
    t
}

/// The second half: every write command again, after the rewrite.
fn work_after_rewrite(c: &mut Conn, t: &mut BTreeMap<&'static str, String>) {
    t.insert(
        "i",
        c.create(r#"{"user_id":1,"tenant_id":"beta"}"#, &["TTL", "120"])
            .token,
    );
    assert!(c.validate(&t["b"]).is_some());
    // UPDATE moves a from tenant_id:acme to tenant_id:beta and drops a property.
    assert!(c
        .opt_string(&[
            "SESSION.UPDATE",
            &t["a"],
            r#"{"n":null,"tenant_id":"beta"}"#
        ])
        .is_some());
    assert_eq!(c.int(&["SESSION.DESTROY", &t["c"]]), 1);
    let j = c.create(r#"{"user_id":5}"#, &[]).token;
    let k = c.create(r#"{"user_id":5,"tenant_id":"beta"}"#, &[]).token;
    assert_eq!(
        c.int(&["SESSION.REVOKEINDEX", "user_id", "5", "EXCEPT", &k]),
        1
    );
    assert!(c.validate(&j).is_none());
    t.insert("k", k);
    let l = c.create(r#"{"user_id":6}"#, &[]).token;
    assert_eq!(c.int(&["DEL", &l]), 1);
    let m = c.create(r#"{"user_id":6}"#, &["MAXLIFETIME", "5000"]).token;
    assert_eq!(list_tokens(c, "user_id", "6"), BTreeSet::from([m.clone()]));
    t.insert("m", m);
    assert!(c.validate(&t["e"]).is_some());
}

#[test]
fn aof_with_rewrite_replays_without_and_with_the_module() {
    let server = Server::builder()
        .module_args(&MODULE_ARGS)
        .directive("appendonly yes")
        .directive("appendfsync always")
        .start();
    let mut c = server.conn();
    let mut tokens = work_before_rewrite(&mut c);
    rewrite_aof(&mut c, &server);
    work_after_rewrite(&mut c, &mut tokens);
    let expected = snapshot(&mut c);
    assert_plausible(&expected, 6, c.server_kind().key_events());
    // Sessions that must have survived, and those that must not.
    for name in ["a", "b", "e", "h", "i", "k", "m"] {
        assert!(
            expected.contains_key(&tokens[name]),
            "session {name} missing"
        );
    }
    // user_id 1 to 6 and tenant_id:beta; tenant_id:acme emptied and gone.
    assert_eq!(
        expected.len(),
        7 + 7 + 1,
        "7 sessions, 7 index sets, the secret: {expected:#?}"
    );
    drop(c);
    let dir = server.shutdown();

    // The AOF holds plain commands only, with absolute expiry times.
    let files = aof_files(dir.path());
    assert!(
        files.iter().any(|f| f.contains(".base.")) && files.iter().any(|f| f.contains(".incr.")),
        "AOF files: {files:?}"
    );
    let incr = aof_incr_text(dir.path());
    assert!(
        !incr.to_lowercase().contains("session."),
        "AOF holds SESSION.* commands:\n{incr}"
    );
    // VALIDATE writes PEXPIREAT; CREATE and UPDATE write `SET key value PXAT ms`.
    assert!(
        incr.contains("PEXPIREAT"),
        "no PEXPIREAT in the AOF:\n{incr}"
    );
    assert!(
        incr.contains("\r\nPXAT\r\n"),
        "no SET ... PXAT in the AOF:\n{incr}"
    );
    for relative in [
        "\r\nEXPIRE\r\n",
        "\r\nPEXPIRE\r\n",
        "\r\nEX\r\n",
        "\r\nPX\r\n",
    ] {
        assert!(
            !incr.contains(relative),
            "relative expiry in the AOF:\n{incr}"
        );
    }

    // Without the module: the same keys, values and expiries.
    let plain = Server::builder()
        .without_module()
        .directive("appendonly yes")
        .in_dir(dir)
        .start();
    let mut c = plain.conn();
    assert_eq!(c.cmd(&["MODULE", "LIST"]), Value::Array(vec![]));
    assert_eq!(snapshot(&mut c), expected, "AOF replay without the module");
    drop(c);
    let dir = plain.shutdown();

    // With the module again: the same keys, and every session validates.
    let again = Server::builder()
        .module_args(&MODULE_ARGS)
        .directive("appendonly yes")
        .in_dir(dir)
        .start();
    let mut c = again.conn();
    assert_eq!(snapshot(&mut c), expected, "AOF replay with the module");
    assert_sessions_validate(&mut c, &expected);
    assert_eq!(
        list_tokens(&mut c, "tenant_id", "beta"),
        BTreeSet::from([
            tokens["a"].clone(),
            tokens["i"].clone(),
            tokens["k"].clone()
        ])
    );
    assert_eq!(
        list_tokens(&mut c, "user_id", "2"),
        BTreeSet::from([tokens["b"].clone()])
    );
}

#[test]
fn rdb_save_and_load_keeps_sessions_and_expiries() {
    let server = Server::start(&MODULE_ARGS);
    let mut c = server.conn();
    let a = c
        .create(r#"{"user_id":1,"tenant_id":"acme","u":"Zoë 😀"}"#, &[])
        .token;
    let b = c
        .create(r#"{"user_id":1,"f":1.50,"arr":[]}"#, &["TTL", "600"])
        .token;
    let d = c
        .create(
            r#"{"tenant_id":"acme"}"#,
            &["TTL", "900", "MAXLIFETIME", "1200"],
        )
        .token;
    let gone = c.create(r#"{"user_id":2}"#, &[]).token;
    assert!(c.validate(&b).is_some());
    assert!(c
        .opt_string(&["SESSION.UPDATE", &d, r#"{"user_id":3}"#])
        .is_some());
    assert_eq!(c.int(&["SESSION.DESTROY", &gone]), 1);
    let expected = snapshot(&mut c);
    assert_plausible(&expected, 3, c.server_kind().key_events());
    assert_eq!(c.ok(&["SAVE"]), Value::Okay);
    drop(c);
    let dir = server.shutdown();
    assert!(dir.path().join("dump.rdb").exists(), "no dump.rdb");

    let loaded = Server::builder()
        .module_args(&MODULE_ARGS)
        .in_dir(dir)
        .start();
    let mut c = loaded.conn();
    assert_eq!(c.config_get("appendonly"), "no");
    assert_eq!(snapshot(&mut c), expected, "after RDB load");
    for key in ["user_id:1", "tenant_id:acme", "user_id:3"] {
        let KeyState::Set(_, exp) = &expected[key] else {
            panic!("{key} is not a set");
        };
        assert_eq!(c.pexpiretime(key), *exp, "{key} expiry");
    }
    for t in [&a, &b, &d] {
        let KeyState::String(_, exp) = &expected[t.as_str()] else {
            panic!("{t} is not a string");
        };
        assert_eq!(c.pexpiretime(t), *exp, "session {t} expiry");
    }
    assert_sessions_validate(&mut c, &expected);
    assert!(c.validate(&gone).is_none());
    assert_eq!(
        list_tokens(&mut c, "user_id", "1"),
        BTreeSet::from([a.clone(), b.clone()])
    );
}

#[test]
fn replica_without_module_matches_after_all_seven_commands() {
    let primary = Server::start(&MODULE_ARGS);
    let replica = Server::start_replica_without_module(&primary);
    let mut p = primary.conn();
    let mut tokens = work_before_rewrite(&mut p);
    sync_replica(&mut p, &replica);
    let mut r = replica.conn();
    let mid = snapshot(&mut p);
    assert_plausible(&mid, 5, p.server_kind().key_events());
    assert_eq!(snapshot(&mut r), mid, "replica after the first half");

    work_after_rewrite(&mut p, &mut tokens);
    // GET and VALIDATE of unknown tokens write nothing; a no-op DESTROY neither.
    assert!(p.get(&tokens["a"]).is_some());
    assert!(p.validate(common::UNKNOWN_TOKEN).is_none());
    assert_eq!(p.int(&["SESSION.DESTROY", common::UNKNOWN_TOKEN]), 0);
    sync_replica(&mut p, &replica);
    let end = snapshot(&mut p);
    assert_plausible(&end, 6, p.server_kind().key_events());
    assert_eq!(snapshot(&mut r), end, "replica after the whole workload");
    assert_eq!(r.cmd(&["MODULE", "LIST"]), Value::Array(vec![]));
}
