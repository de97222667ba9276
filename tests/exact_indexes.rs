//! Indexes that hold exactly the live sessions, on servers with key events (Redis 7.2+,
//! Valkey 8), and what each server does when a key leaves behind the module's back: sessions
//! that expire (actively or lazily), are deleted or overwritten by hand leave their indexes in
//! the same step; an index set deleted or overwritten by hand takes its sessions with it (fail
//! closed), at once with key events and at the session's next VALIDATE on 7.0. A replica
//! without the module stays identical throughout. Tests that only hold with key events say
//! so and return early elsewhere.

mod common;

use std::collections::BTreeSet;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{snapshot, sync_replica, Conn, Server};

const MODULE_ARGS: [&str; 2] = ["indexes", "user_id,tenant_id"];

/// True (and says why the test stops) when the server has no key events.
fn without_key_events(c: &mut Conn, test: &str) -> bool {
    let kind = c.server_kind();
    if kind.key_events() {
        return false;
    }
    println!("{test}: skipped on {kind}, which has no key events (sampled indexes)");
    true
}

/// The `createdAt` text of a session's data.
fn parse_created_at_field(data: &str) -> String {
    let m = common::parse_object(data);
    m["createdAt"].as_str().expect("createdAt").to_string()
}

fn set_of<S: AsRef<str>>(items: &[S]) -> BTreeSet<String> {
    items.iter().map(|s| s.as_ref().to_string()).collect()
}

/// Polls until `done` holds, failing after `limit`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not after {limit:?}");
        sleep(Duration::from_millis(20));
    }
}

/// Every token and index key the module wrote, as (token -> its user) for `users` users with
/// `per_user` sessions of `ttl` seconds each.
fn create_many(c: &mut Conn, users: u32, per_user: u32, ttl: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for user in 0..users {
        for _ in 0..per_user {
            let data = format!(r#"{{"user_id":{user},"tenant_id":"t{}"}}"#, user % 3);
            out.push((c.create(&data, &["TTL", ttl]).token, user));
        }
    }
    out
}

#[test]
fn sessions_that_expire_leave_every_index_at_once() {
    let primary = Server::start(&MODULE_ARGS);
    let mut c = primary.conn();
    if without_key_events(&mut c, "sessions_that_expire_leave_every_index_at_once") {
        return;
    }
    let replica = Server::start_replica_without_module(&primary);
    let long = create_many(&mut c, 20, 2, "300");
    let short = create_many(&mut c, 30, 3, "1");
    // Active expiry reaps the 90 short sessions within a few cycles; once they are gone, so
    // are their index entries, and the users who had only short sessions have no index.
    // (The keyspace also holds the session secret, which never expires.)
    wait_until(Duration::from_secs(10), "short sessions expired", || {
        short.iter().all(|(t, _)| !c.exists(t)) && c.dbsize() < 40 + 40 + 1
    });
    for user in 0..30 {
        let want: Vec<&str> = long
            .iter()
            .filter(|(_, u)| *u == user)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(
            c.smembers(format!("user_id:{user}")),
            set_of(&want),
            "user {user}"
        );
    }
    for tenant in 0..3 {
        let want: Vec<&str> = long
            .iter()
            .filter(|(_, u)| u % 3 == tenant)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(c.smembers(format!("tenant_id:t{tenant}")), set_of(&want));
    }
    let removed: u64 = c
        .info_field("session", "session_index_entries_removed_by_key_events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(removed, 90 * 2, "one removal per short session and index");
    assert!(c.secret("").is_some(), "no session secret");
    assert_eq!(
        c.dbsize(),
        40 + 20 + 3 + 1,
        "long sessions, their users and tenants, and the secret"
    );
    sync_replica(&mut c, &replica);
    assert_eq!(snapshot(&mut replica.conn()), snapshot(&mut c));
}

#[test]
fn sessions_expired_lazily_leave_their_index_in_the_same_command() {
    let s = Server::builder()
        .module_args(&MODULE_ARGS)
        .directive("enable-debug-command yes")
        .start();
    let mut c = s.conn();
    if without_key_events(&mut c, "sessions_expired_lazily_leave_their_index") {
        return;
    }
    let replica = Server::start_replica_without_module(&s);
    // Only lazy expiry from here on: a key goes when a command looks it up.
    c.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let keep = c.create(r#"{"user_id":1}"#, &["TTL", "300"]).token;
    let short: Vec<String> = (0..5)
        .map(|_| c.create(r#"{"user_id":1}"#, &["TTL", "1"]).token)
        .collect();
    sleep(Duration::from_millis(1200));
    assert_eq!(
        c.smembers("user_id:1").len(),
        6,
        "nothing looked the keys up yet"
    );
    for (i, token) in short.iter().enumerate() {
        // Each lookup, by a plain command or the module's, reaps one key and its entry.
        if i % 2 == 0 {
            assert!(!c.exists(token));
        } else {
            assert_eq!(c.validate(token), None);
        }
        assert!(!c.smembers("user_id:1").contains(token), "{i}");
    }
    assert_eq!(c.smembers("user_id:1"), set_of(&[&keep]));
    sync_replica(&mut c, &replica);
    assert_eq!(snapshot(&mut replica.conn()), snapshot(&mut c));
}

#[test]
fn sessions_deleted_or_overwritten_by_hand_leave_their_indexes() {
    let primary = Server::start(&MODULE_ARGS);
    let mut c = primary.conn();
    if without_key_events(&mut c, "sessions_deleted_or_overwritten_by_hand") {
        return;
    }
    let replica = Server::start_replica_without_module(&primary);
    let t: Vec<String> = (0..5)
        .map(|_| c.create(r#"{"user_id":5,"tenant_id":"a"}"#, &[]).token)
        .collect();
    // And a 0.1.0 hash session in the same indexes.
    let old = format!("{:048x}", 0x0105u64);
    let now = c.time_ms();
    c.write_v010(
        &old,
        r#"{"user_id":5,"tenant_id":"a"}"#,
        3600,
        0,
        &["user_id:5", "tenant_id:a"],
        now + 3_600_000,
    );
    assert_eq!(c.smembers("user_id:5").len(), 6);
    assert_eq!(c.int(&["DEL", &t[0]]), 1);
    assert_eq!(c.int(&["UNLINK", &t[1]]), 1);
    c.ok(&["SET", &t[2], "over"]);
    // A write in place is not an overwrite: still a session, still indexed. For layout 2,
    // SETRANGE over part of the data (here createdAt, to a text of the same length) ...
    let value = c.get_bytes(&t[3]).expect("session string");
    let data_at = value.iter().position(|&b| b == b'\n').expect("header line") + 1;
    let stored = c.stored(&t[3]);
    let created_at = parse_created_at_field(&stored.data);
    let new_data = stored.data.replace(&created_at, "2000-01-01 00:00:00");
    assert_ne!(new_data, stored.data);
    c.ok(&["SETRANGE", &t[3], &data_at.to_string(), &new_data]);
    assert_eq!(c.stored(&t[3]).data, new_data);
    assert_eq!(c.get(&t[3]), Some(new_data), "the module still reads it");
    // ... and for a 0.1.0 hash, a field write.
    c.ok(&["HSET", &old, "data", "{}"]);
    assert_eq!(c.smembers("user_id:5"), set_of(&[&t[3], &t[4], &old]));
    assert_eq!(c.smembers("tenant_id:a"), set_of(&[&t[3], &t[4], &old]));
    assert_eq!(
        c.string(&["GET", &t[2]]),
        "over",
        "the new value is left alone"
    );
    // RESTORE ... REPLACE over a session overwrites it too.
    let dump = c.cmd(&["DUMP", &t[2]]);
    let redis::Value::BulkString(dump) = dump else {
        panic!("DUMP: {dump:?}")
    };
    c.ok(&[
        b"RESTORE".as_slice(),
        t[4].as_bytes(),
        b"0",
        dump.as_slice(),
        b"REPLACE",
    ]);
    assert_eq!(c.smembers("user_id:5"), set_of(&[&t[3], &old]));
    // An overwrite of the 0.1.0 hash leaves its indexes too.
    c.ok(&["SET", &old, "over"]);
    assert_eq!(c.smembers("user_id:5"), set_of(&[&t[3]]));
    assert_eq!(c.smembers("tenant_id:a"), set_of(&[&t[3]]));
    sync_replica(&mut c, &replica);
    let mut r = replica.conn();
    for key in ["user_id:5", "tenant_id:a"] {
        assert_eq!(r.smembers(key), c.smembers(key), "{key} on the replica");
    }
}

#[test]
fn an_index_deleted_by_hand_takes_its_sessions_with_it() {
    let primary = Server::start(&MODULE_ARGS);
    let mut c = primary.conn();
    let key_events = c.server_kind().key_events();
    let replica = Server::start_replica_without_module(&primary);
    let user: Vec<String> = (0..3)
        .map(|_| c.create(r#"{"user_id":9,"tenant_id":"acme"}"#, &[]).token)
        .collect();
    let colleague = c.create(r#"{"user_id":10,"tenant_id":"acme"}"#, &[]).token;
    assert_eq!(c.int(&["DEL", "user_id:9"]), 1);
    if key_events {
        // In the DEL's own step: the sessions and their other index entries are gone.
        for t in &user {
            assert!(!c.exists(t), "{t} outlived its index");
        }
        assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&colleague]));
    }
    // On every server: none of them validates or reads, and a revocation finds nothing.
    for t in &user {
        assert_eq!(c.get(t), None);
        assert_eq!(c.validate(t), None);
        assert!(!c.exists(t));
    }
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "9"]), 0);
    assert_eq!(c.smembers("tenant_id:acme"), set_of(&[&colleague]));
    assert!(c.validate(&colleague).is_some());
    let ended: u64 = c
        .info_field("session", "session_sessions_ended_by_lost_index")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(ended, 3);
    sync_replica(&mut c, &replica);
    assert_eq!(snapshot(&mut replica.conn()), snapshot(&mut c));
}

#[test]
fn an_index_overwritten_by_hand_takes_its_sessions_and_keeps_the_new_value() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let t = c.create(r#"{"user_id":3}"#, &[]).token;
    c.ok(&["SET", "user_id:3", "mine"]);
    assert_eq!(c.validate(&t), None, "fail closed");
    assert!(!c.exists(&t));
    assert_eq!(c.string(&["GET", "user_id:3"]), "mine");
    assert_eq!(c.pexpiretime("user_id:3"), -1);
}

#[test]
fn exact_indexes_have_no_expiry_and_end_with_their_last_session() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    if without_key_events(&mut c, "exact_indexes_have_no_expiry") {
        return;
    }
    let a = c
        .create(r#"{"user_id":1,"tenant_id":"x"}"#, &["TTL", "60"])
        .token;
    let b = c.create(r#"{"user_id":1}"#, &["TTL", "1"]).token;
    assert_eq!(c.pexpiretime("user_id:1"), -1);
    assert_eq!(c.pexpiretime("tenant_id:x"), -1);
    assert!(c.validate(&a).is_some());
    assert_eq!(c.pexpiretime("user_id:1"), -1, "VALIDATE sets none either");
    wait_until(Duration::from_secs(5), "b expired", || !c.exists(&b));
    assert_eq!(c.smembers("user_id:1"), set_of(&[&a]));
    assert_eq!(c.int(&["SESSION.DESTROY", &a]), 1);
    assert!(!c.exists("user_id:1") && !c.exists("tenant_id:x"));
    // Nothing is left but the session secret.
    assert_eq!(c.keys(), vec![b"session-secret".to_vec()]);
}

#[test]
fn info_says_which_mechanisms_this_server_gave_the_module() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let kind = c.server_kind();
    let yes_no = |on: bool| if on { "yes" } else { "no" }.to_string();
    assert_eq!(
        c.info_field("session", "session_key_events"),
        Some(yes_no(kind.key_events())),
        "{kind}"
    );
    assert_eq!(
        c.info_field("session", "session_slot_functions"),
        Some(yes_no(kind.slot_functions())),
        "{kind}"
    );
    let mode = if kind.key_events() {
        "exact"
    } else {
        "sampled"
    };
    assert_eq!(
        c.info_field("session", "session_index_mode").as_deref(),
        Some(mode)
    );
}

/// An RDB load on a primary drops the sessions that expired meanwhile without any key event,
/// so even with key events a stale token can be left in an index; the write sample prunes it.
#[test]
fn tokens_of_sessions_dropped_by_an_rdb_load_are_pruned_by_the_next_write() {
    let s = Server::builder()
        .module_args(&MODULE_ARGS)
        .directive("enable-debug-command yes")
        .start();
    let mut c = s.conn();
    c.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let short = c.create(r#"{"user_id":150}"#, &["TTL", "1"]).token;
    let long = c.create(r#"{"user_id":150}"#, &["TTL", "600"]).token;
    sleep(Duration::from_millis(1200));
    // Saves and loads the RDB: the expired session is skipped on load, silently.
    c.ok(&["DEBUG", "RELOAD"]);
    assert!(!c.exists(&short));
    let stale_kept = c.smembers("user_id:150").contains(&short);
    println!("stale token kept by the load: {stale_kept}");
    let newer = c.create(r#"{"user_id":150}"#, &[]).token;
    assert_eq!(c.smembers("user_id:150"), set_of(&[&long, &newer]));
}
