//! Eviction: under every `maxmemory-policy` that evicts, filling memory with sessions never
//! leaves a session that `SESSION.REVOKEINDEX` cannot end (SPEC "Storage", on revocation).
//! With key events (Redis 7.2+, Valkey 8) the indexes hold exactly the live sessions after
//! thousands of evictions, and nothing validates after every user is revoked, even once the
//! users log in again. On 7.0 sessions go missing from their index sets (printed as
//! `missing_from_index`), yet nothing validates after the revocation either, with or
//! without a new login: VALIDATE ends a session whose index set is gone or, on a server that
//! evicts, no longer holds its token. A replica without the module ends up with the
//! primary's keyspace, evictions included.
//!
//! Scaled from NOTES "Eviction" (30 MB, 120,000 CREATEs, 20,000 users) to 4 MB, 18,000
//! CREATEs and 3,000 users, so that the 14 tests run in parallel in seconds.
//!
//! Each test prints one `EVICTION server=... policy=...` line before asserting anything, so
//! `cargo test --test eviction -- --nocapture` shows the figures even when a check fails
//! (against an older module, say).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use redis::Value;

use common::{as_string, error_text, sync_replica, Conn, KeyState, Rng, Server, ServerKind};

/// Distinct users; the index key of user `u` is `user_id:u`.
const USERS: u64 = 3_000;

/// CREATEs sent; six logins per user on average.
const CREATES: usize = 18_000;

/// Commands per pipeline.
const BATCH: usize = 500;

/// About 1 MB is in use when the server starts; 4 MB holds some 3,000 to 5,000 sessions of
/// this shape depending on the server, so most of the 18,000 are evicted.
const MAXMEMORY: &str = "4mb";

/// The least `evicted_keys` for the run to count as an eviction scenario at all.
const MIN_EVICTED: i64 = 5_000;

/// 40 bytes of padding: the session data is then past `hash-max-listpack-value` (64 bytes),
/// as real session data usually is.
const PAD: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// Whether the users log in again between the revocation and the validation of their old
/// tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Relogin {
    No,
    Yes,
}

fn command(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn index_key(user: u64) -> String {
    format!("user_id:{user}")
}

/// A numeric field of an INFO section.
fn info_number(c: &mut Conn, section: &str, field: &str) -> i64 {
    c.info_field(section, field)
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .parse()
        .unwrap_or_else(|e| panic!("{field} in INFO {section}: {e}"))
}

/// One login per entry of `users`, pipelined. Returns the tokens issued (with their user)
/// and how many CREATEs were refused with OOM; any other error fails the test.
fn create_sessions(c: &mut Conn, users: &[(u64, u64)]) -> (Vec<(String, u64)>, usize) {
    let mut issued = Vec::with_capacity(users.len());
    let mut oom = 0;
    for chunk in users.chunks(BATCH) {
        let commands: Vec<Vec<Vec<u8>>> = chunk
            .iter()
            .map(|(user, ttl)| {
                let data = format!(r#"{{"user_id":{user},"pad":"{PAD}"}}"#);
                let ttl = ttl.to_string();
                command(&[b"SESSION.CREATE", data.as_bytes(), b"TTL", ttl.as_bytes()])
            })
            .collect();
        for ((user, _), reply) in chunk.iter().zip(c.pipeline(&commands)) {
            match reply {
                Value::BulkString(b) => {
                    let text = String::from_utf8(b).expect("CREATE reply is UTF-8");
                    let token = match common::parse_object(&text).get("token") {
                        Some(serde_json::Value::String(t)) => t.clone(),
                        other => panic!("CREATE reply without a token: {other:?} in {text}"),
                    };
                    issued.push((token, *user));
                }
                other => match error_text(&other) {
                    Some(e) if e.starts_with("OOM") => oom += 1,
                    _ => panic!("SESSION.CREATE for user {user}: {other:?}"),
                },
            }
        }
    }
    (issued, oom)
}

/// Sends one command per item, pipelined in batches; returns the replies in order.
fn pipelined<T>(c: &mut Conn, items: &[T], make: impl Fn(&T) -> Vec<Vec<u8>>) -> Vec<Value> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(BATCH) {
        let commands: Vec<Vec<Vec<u8>>> = chunk.iter().map(&make).collect();
        out.extend(c.pipeline(&commands));
    }
    out
}

fn int_reply(v: &Value, what: &str) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("{what}: expected an integer, got {other:?}"),
    }
}

fn strings(v: Value, what: &str) -> Vec<String> {
    let items = match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => panic!("{what}: expected an array, got {other:?}"),
    };
    items
        .iter()
        .map(|m| as_string(m).unwrap_or_else(|| panic!("{what}: item {m:?}")))
        .collect()
}

/// Every key with its type, value and PEXPIRETIME, like `common::snapshot` but pipelined
/// (thousands of keys). The keyspace must not change meanwhile: callers lift `maxmemory`
/// first, and no session expires within the test (TTLs are 600 s or more).
fn snapshot(c: &mut Conn) -> BTreeMap<String, KeyState> {
    let keys = c.keys();
    let replies = pipelined(c, &keys, |k| command(&[b"TYPE", k]));
    let mut hashes = Vec::new();
    let mut sets = Vec::new();
    for (key, t) in keys.into_iter().zip(replies) {
        match as_string(&t).as_deref() {
            Some("hash") => hashes.push(key),
            Some("set") => sets.push(key),
            other => panic!(
                "unexpected type {other:?} at {}",
                String::from_utf8_lossy(&key)
            ),
        }
    }
    let mut out = BTreeMap::new();
    for (keys, is_hash) in [(hashes, true), (sets, false)] {
        let read: &[u8] = if is_hash { b"HGETALL" } else { b"SMEMBERS" };
        let values = pipelined(c, &keys, |k| command(&[read, k]));
        let expiries = pipelined(c, &keys, |k| command(&[b"PEXPIRETIME", k]));
        for ((key, value), exp) in keys.iter().zip(values).zip(&expiries) {
            let name = String::from_utf8_lossy(key).into_owned();
            let exp = int_reply(exp, "PEXPIRETIME");
            let items = strings(value, &name);
            let state = if is_hash {
                assert!(items.len().is_multiple_of(2), "HGETALL {name}: odd length");
                let fields = items
                    .chunks(2)
                    .map(|kv| (kv[0].clone(), kv[1].clone()))
                    .collect();
                KeyState::Hash(fields, exp)
            } else {
                KeyState::Set(items.into_iter().collect(), exp)
            };
            out.insert(name, state);
        }
    }
    out
}

/// Syncs the replica, then compares it with the primary; returns the number of differing
/// keys and prints a few of them.
fn replica_mismatch(primary: &mut Conn, replica: &Server, when: &str) -> usize {
    sync_replica(primary, replica);
    let p = snapshot(primary);
    let r = snapshot(&mut replica.conn());
    let names: BTreeSet<&String> = p.keys().chain(r.keys()).collect();
    let differing: Vec<&String> = names
        .into_iter()
        .filter(|k| p.get(*k) != r.get(*k))
        .collect();
    for k in differing.iter().take(5) {
        println!(
            "REPLICA MISMATCH {when} key={k} primary={:?} replica={:?}",
            p.get(*k),
            r.get(*k)
        );
    }
    differing.len()
}

/// The figures of one run.
struct Figures {
    server: ServerKind,
    created: usize,
    /// How long the CREATEs took: LRU's clock ticks once a second.
    create_secs: f64,
    oom: usize,
    evicted: i64,
    live_before: usize,
    /// Live sessions that their user's index set does not hold.
    missing_from_index: usize,
    /// Index members that are not live sessions.
    stale_in_index: usize,
    /// Index sets that hold a live session and expire before it.
    index_expiring_early: usize,
    /// Index sets without an expiry (expected on key-event servers only).
    persistent_indexes: usize,
    indexes: usize,
    replica_mismatch_before: usize,
    validated: usize,
    replica_mismatch_after: usize,
}

fn run(policy: &str, relogin: Relogin) -> Figures {
    let primary = Server::builder()
        .module_args(&["indexes", "user_id"])
        .directive(&format!("maxmemory {MAXMEMORY}"))
        .directive(&format!("maxmemory-policy {policy}"))
        // The replication backlog counts against `maxmemory`. Valkey 8 raised its default
        // from 1 MB to 10 MB, which under a 4 MB limit evicts every session and then
        // refuses every CREATE: keep Redis's 1 MB everywhere.
        .directive("repl-backlog-size 1mb")
        .start();
    let replica = Server::start_replica_without_module(&primary);
    let mut c = primary.conn();
    let server = c.server_kind();

    // Users picked at random, so that how long ago a user last logged in varies: that is
    // what lets an index set become a better eviction candidate than its sessions.
    // Deterministic workload: the same users and TTLs on every run, so that runs differ
    // only by what the server's eviction sampling picks.
    let mut rng = Rng(0x5e55_1011);
    let logins: Vec<(u64, u64)> = (0..CREATES)
        .map(|_| {
            (
                rng.below(USERS as usize) as u64,
                600 + rng.below(3_001) as u64,
            )
        })
        .collect();
    let started = Instant::now();
    let (issued, oom) = create_sessions(&mut c, &logins);
    let create_secs = started.elapsed().as_secs_f64();
    let evicted = info_number(&mut c, "stats", "evicted_keys");

    // Eviction made the state; lifting the limit now freezes it, so that the reads below
    // see one state and the figures depend on it alone. More evictions during the
    // revocation could only remove sessions, never make one validate, so this is the
    // strict variant.
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);

    let exists = pipelined(&mut c, &issued, |(t, _)| {
        command(&[b"EXISTS", t.as_bytes()])
    });
    let live: HashMap<&str, u64> = issued
        .iter()
        .zip(&exists)
        .filter(|(_, e)| int_reply(e, "EXISTS") == 1)
        .map(|((t, u), _)| (t.as_str(), *u))
        .collect();
    let users: Vec<u64> = (0..USERS).collect();
    let members: Vec<HashSet<String>> = pipelined(&mut c, &users, |u| {
        command(&[b"SMEMBERS", index_key(*u).as_bytes()])
    })
    .into_iter()
    .map(|v| strings(v, "SMEMBERS").into_iter().collect())
    .collect();
    let missing_from_index = live
        .iter()
        .filter(|(t, u)| !members[**u as usize].contains(**t))
        .count();
    let stale_in_index = members
        .iter()
        .flatten()
        .filter(|m| !live.contains_key(m.as_str()))
        .count();

    let indexes: Vec<u64> = users
        .iter()
        .copied()
        .filter(|u| !members[*u as usize].is_empty())
        .collect();
    let index_exp: HashMap<u64, i64> = indexes
        .iter()
        .copied()
        .zip(pipelined(&mut c, &indexes, |u| {
            command(&[b"PEXPIRETIME", index_key(*u).as_bytes()])
        }))
        .map(|(u, e)| (u, int_reply(&e, "PEXPIRETIME")))
        .collect();
    let live_list: Vec<(&str, u64)> = live.iter().map(|(t, u)| (*t, *u)).collect();
    let session_exp = pipelined(&mut c, &live_list, |(t, _)| {
        command(&[b"PEXPIRETIME", t.as_bytes()])
    });
    let index_expiring_early = live_list
        .iter()
        .zip(&session_exp)
        .filter(|((t, u), e)| {
            let index = index_exp.get(u).copied().unwrap_or(-2);
            members[*u as usize].contains(*t) && index != -1 && index < int_reply(e, "PEXPIRETIME")
        })
        .map(|((_, u), _)| *u)
        .collect::<HashSet<u64>>()
        .len();
    let persistent_indexes = index_exp.values().filter(|e| **e == -1).count();

    let replica_mismatch_before = replica_mismatch(&mut c, &replica, "before revoke");

    let revoked = pipelined(&mut c, &users, |u| {
        command(&[b"SESSION.REVOKEINDEX", b"user_id", u.to_string().as_bytes()])
    });
    for (u, r) in users.iter().zip(&revoked) {
        int_reply(r, &format!("SESSION.REVOKEINDEX user_id {u}"));
    }
    if relogin == Relogin::Yes {
        let again: Vec<(u64, u64)> = users.iter().map(|u| (*u, 600)).collect();
        let (_, refused) = create_sessions(&mut c, &again);
        assert_eq!(refused, 0, "OOM with maxmemory lifted");
    }
    let validated = pipelined(&mut c, &issued, |(t, _)| {
        command(&[b"SESSION.VALIDATE", t.as_bytes()])
    })
    .into_iter()
    .zip(&issued)
    .filter(|(v, (t, _))| match v {
        Value::Nil => false,
        Value::BulkString(_) => true,
        other => panic!("SESSION.VALIDATE {t}: {other:?}"),
    })
    .count();

    let replica_mismatch_after = replica_mismatch(&mut c, &replica, "after revoke");

    Figures {
        server,
        created: issued.len(),
        create_secs,
        oom,
        evicted,
        live_before: live.len(),
        missing_from_index,
        stale_in_index,
        index_expiring_early,
        persistent_indexes,
        indexes: indexes.len(),
        replica_mismatch_before,
        validated,
        replica_mismatch_after,
    }
}

fn check(policy: &str, relogin: Relogin) {
    let f = run(policy, relogin);
    let after = match relogin {
        Relogin::No => "validated_after_revoke",
        Relogin::Yes => "validated_after_revoke_and_relogin",
    };
    println!(
        "EVICTION server={} policy={policy} created={} oom={} evicted={} live_before={} \
         missing_from_index={} stale_in_index={} index_expiring_early={} \
         persistent_indexes={}/{} replica_mismatch={}/{} {after}={} create_secs={:.2}",
        f.server,
        f.created,
        f.oom,
        f.evicted,
        f.live_before,
        f.missing_from_index,
        f.stale_in_index,
        f.index_expiring_early,
        f.persistent_indexes,
        f.indexes,
        f.replica_mismatch_before,
        f.replica_mismatch_after,
        f.validated,
        f.create_secs,
    );

    assert!(
        f.evicted >= MIN_EVICTED,
        "only {} keys evicted: no eviction scenario",
        f.evicted
    );
    assert_eq!(
        f.index_expiring_early, 0,
        "index sets expiring before a session they hold"
    );
    if f.server.key_events() {
        assert_eq!(
            f.missing_from_index, 0,
            "live sessions missing from their index"
        );
        assert_eq!(
            f.stale_in_index, 0,
            "index members that are not live sessions"
        );
        assert_eq!(f.persistent_indexes, f.indexes, "index sets with an expiry");
    }
    assert_eq!(
        f.replica_mismatch_before, 0,
        "replica differs from primary before revoke"
    );
    assert_eq!(
        f.replica_mismatch_after, 0,
        "replica differs from primary after revoke"
    );
    // Key events end every session whose index set leaves. On 7.0 the revocation deletes
    // every index set, and VALIDATE ends a session whose index set is gone or, since this
    // server evicts, does not hold its token (a set made again by the new login).
    assert_eq!(f.validated, 0, "revoked sessions still validate");
}

macro_rules! policy_tests {
    ($($policy:literal => $revoked:ident, $relogged:ident;)*) => {$(
        /// Fill memory under this policy, revoke every user, validate every old token.
        #[test]
        fn $revoked() {
            check($policy, Relogin::No);
        }

        /// The same, with every user logging in once more before the old tokens are tried,
        /// which makes the evicted index sets again without the sessions they had lost.
        #[test]
        fn $relogged() {
            check($policy, Relogin::Yes);
        }
    )*};
}

policy_tests! {
    "allkeys-lru" => allkeys_lru_eviction_never_keeps_a_revoked_session,
        allkeys_lru_eviction_then_a_new_login_revives_no_revoked_session;
    "allkeys-lfu" => allkeys_lfu_eviction_never_keeps_a_revoked_session,
        allkeys_lfu_eviction_then_a_new_login_revives_no_revoked_session;
    "allkeys-random" => allkeys_random_eviction_never_keeps_a_revoked_session,
        allkeys_random_eviction_then_a_new_login_revives_no_revoked_session;
    "volatile-lru" => volatile_lru_eviction_never_keeps_a_revoked_session,
        volatile_lru_eviction_then_a_new_login_revives_no_revoked_session;
    "volatile-lfu" => volatile_lfu_eviction_never_keeps_a_revoked_session,
        volatile_lfu_eviction_then_a_new_login_revives_no_revoked_session;
    "volatile-random" => volatile_random_eviction_never_keeps_a_revoked_session,
        volatile_random_eviction_then_a_new_login_revives_no_revoked_session;
    "volatile-ttl" => volatile_ttl_eviction_never_keeps_a_revoked_session,
        volatile_ttl_eviction_then_a_new_login_revives_no_revoked_session;
}
