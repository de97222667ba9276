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
//! Under `allkeys-*` the session secret's key can be evicted as well: the module keeps the
//! secret in memory and its write commands put the key back, so sessions keep validating.
//! (`secret_evictions` counts it, from the `evicted` keyspace event; `allkeys-random`
//! typically evicts it a few times per run.) So that "nothing validates" cannot come from a
//! lost secret, each test also checks that the live sessions read (SESSION.GET) before the
//! revocation, that the secret is the same key after it, and that the new logins validate.
//!
//! Scaled from NOTES "Eviction" (30 MB, 120,000 CREATEs, 20,000 users) to 4 MB, 18,000
//! CREATEs and 3,000 users, so that the 14 tests run in parallel in seconds.
//!
//! Each test prints one `EVICTION server=... policy=...` line before asserting anything, so
//! `cargo test --test eviction -- --nocapture` shows the figures even when a check fails
//! (against an older module, say).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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

/// 40 bytes of padding, so that a session's string (header and data, some 110 bytes) is of
/// the size of real sessions, past the 44 bytes of an embedded string.
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
/// (thousands of keys): strings (sessions and the secret) and sets (indexes); any other type
/// fails the test. The keyspace must not change meanwhile: callers lift `maxmemory` first,
/// and no session expires within the test (TTLs are 600 s or more).
fn snapshot(c: &mut Conn) -> BTreeMap<String, KeyState> {
    let keys = c.keys();
    let replies = pipelined(c, &keys, |k| command(&[b"TYPE", k]));
    let mut texts = Vec::new();
    let mut sets = Vec::new();
    for (key, t) in keys.into_iter().zip(replies) {
        match as_string(&t).as_deref() {
            Some("string") => texts.push(key),
            Some("set") => sets.push(key),
            other => panic!(
                "unexpected type {other:?} at {}",
                String::from_utf8_lossy(&key)
            ),
        }
    }
    let mut out = BTreeMap::new();
    for (keys, is_string) in [(texts, true), (sets, false)] {
        let read: &[u8] = if is_string { b"GET" } else { b"SMEMBERS" };
        let values = pipelined(c, &keys, |k| command(&[read, k]));
        let expiries = pipelined(c, &keys, |k| command(&[b"PEXPIRETIME", k]));
        for ((key, value), exp) in keys.iter().zip(values).zip(&expiries) {
            let name = String::from_utf8_lossy(key).into_owned();
            let exp = int_reply(exp, "PEXPIRETIME");
            let state = if is_string {
                match value {
                    Value::BulkString(b) => KeyState::String(b, exp),
                    other => panic!("GET {name}: {other:?}"),
                }
            } else {
                KeyState::Set(strings(value, &name).into_iter().collect(), exp)
            };
            out.insert(name, state);
        }
    }
    out
}

/// The keyspace channel of the secret's key, and a channel that marks the end of a read.
const SECRET_CHANNEL: &str = "__keyspace@0__:session-secret";
const MARKER_CHANNEL: &str = "eviction-marker";

/// A RESP2 subscriber to [`SECRET_CHANNEL`] and [`MARKER_CHANNEL`], to count how often the
/// secret's key was evicted (`notify-keyspace-events Ke`).
struct SecretWatch(BufReader<TcpStream>);

impl SecretWatch {
    fn start(server: &Server) -> SecretWatch {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let req = format!(
            "*3\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{SECRET_CHANNEL}\r\n${}\r\n{MARKER_CHANNEL}\r\n",
            SECRET_CHANNEL.len(),
            MARKER_CHANNEL.len()
        );
        stream.write_all(req.as_bytes()).expect("SUBSCRIBE");
        let mut watch = SecretWatch(BufReader::new(stream));
        for _ in 0..2 {
            assert_eq!(watch.message()[0], "subscribe");
        }
        watch
    }

    /// One pushed array of bulk strings (none of them holds a line break).
    fn message(&mut self) -> Vec<String> {
        let mut line = || {
            let mut l = String::new();
            self.0.read_line(&mut l).expect("subscriber read");
            l.trim_end_matches("\r\n").to_string()
        };
        let head = line();
        let n: usize = head
            .strip_prefix('*')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not an array: {head:?}"));
        (0..n)
            .map(|_| {
                let kind = line();
                if kind.starts_with('$') {
                    line()
                } else {
                    kind[1..].to_string()
                }
            })
            .collect()
    }

    /// How many times the secret's key was evicted since the last call.
    fn evictions(&mut self, c: &mut Conn) -> usize {
        assert!(c.int(&["PUBLISH", MARKER_CHANNEL, "end"]) >= 1);
        let mut evicted = 0;
        loop {
            let m = self.message();
            assert_eq!(m[0], "message", "{m:?}");
            if m[1] == MARKER_CHANNEL {
                return evicted;
            }
            if m[2] == "evicted" {
                evicted += 1;
            }
        }
    }
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
    /// Live sessions that SESSION.GET (which writes nothing) reads before the revocation.
    readable_before: usize,
    /// How many times the secret's key was evicted during the CREATEs.
    secret_evictions: usize,
    /// The secret's key once the CREATEs were done (an `allkeys-*` policy may evict it; the
    /// next write command puts it back), and after the revocation.
    secret_before: Option<String>,
    secret_after: Option<String>,
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
    /// The new logins (one per user, `Relogin::Yes` only) that validate.
    relogins_validated: usize,
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
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", "Ke"]);
    let mut watch = SecretWatch::start(&primary);

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
    let secret_before = c.secret("");
    let secret_evictions = watch.evictions(&mut c);

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
    // The positive control for the revocation below: the live sessions are still told
    // apart with the dataset's secret (evicted or not) and read.
    let readable_before = pipelined(&mut c, &live_list, |(t, _)| {
        command(&[b"SESSION.GET", t.as_bytes()])
    })
    .into_iter()
    .zip(&live_list)
    .filter(|(v, (t, _))| match v {
        Value::Nil => false,
        Value::BulkString(_) => true,
        other => panic!("SESSION.GET {t}: {other:?}"),
    })
    .count();

    let replica_mismatch_before = replica_mismatch(&mut c, &replica, "before revoke");

    let revoked = pipelined(&mut c, &users, |u| {
        command(&[b"SESSION.REVOKEINDEX", b"user_id", u.to_string().as_bytes()])
    });
    for (u, r) in users.iter().zip(&revoked) {
        int_reply(r, &format!("SESSION.REVOKEINDEX user_id {u}"));
    }
    let mut relogins = Vec::new();
    if relogin == Relogin::Yes {
        let again: Vec<(u64, u64)> = users.iter().map(|u| (*u, 600)).collect();
        let (made, refused) = create_sessions(&mut c, &again);
        assert_eq!(refused, 0, "OOM with maxmemory lifted");
        relogins = made;
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
    let relogins_validated = pipelined(&mut c, &relogins, |(t, _)| {
        command(&[b"SESSION.VALIDATE", t.as_bytes()])
    })
    .into_iter()
    .filter(|v| matches!(v, Value::BulkString(_)))
    .count();
    let secret_after = c.secret("");

    let replica_mismatch_after = replica_mismatch(&mut c, &replica, "after revoke");

    Figures {
        server,
        created: issued.len(),
        create_secs,
        oom,
        evicted,
        live_before: live.len(),
        readable_before,
        secret_evictions,
        secret_before,
        secret_after,
        missing_from_index,
        stale_in_index,
        index_expiring_early,
        persistent_indexes,
        indexes: indexes.len(),
        replica_mismatch_before,
        validated,
        relogins_validated,
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
         readable_before={} secret_evictions={} secret_after_creates={} \
         missing_from_index={} stale_in_index={} index_expiring_early={} \
         persistent_indexes={}/{} replica_mismatch={}/{} {after}={} relogins_validated={} \
         create_secs={:.2}",
        f.server,
        f.created,
        f.oom,
        f.evicted,
        f.live_before,
        f.readable_before,
        f.secret_evictions,
        f.secret_before.is_some(),
        f.missing_from_index,
        f.stale_in_index,
        f.index_expiring_early,
        f.persistent_indexes,
        f.indexes,
        f.replica_mismatch_before,
        f.replica_mismatch_after,
        f.validated,
        f.relogins_validated,
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
    // Every live session its index holds reads before the revocation (with key events that
    // is every live one), so that nothing validating after it is not for want of a secret.
    assert_eq!(
        f.readable_before,
        f.live_before - f.missing_from_index,
        "live sessions in their index that SESSION.GET does not read"
    );
    assert!(f.readable_before > 0, "no live session to revoke");
    // The write commands leave the secret's key in place, written back if it was evicted,
    // and it is the same secret throughout.
    let after = f
        .secret_after
        .as_deref()
        .expect("no secret key after the revocation");
    assert!(
        after.len() == 32 && common::is_lower_hex(after),
        "secret {after:?}"
    );
    if let Some(before) = &f.secret_before {
        assert_eq!(before, after, "the secret changed");
    }
    // The secret has no expiry, so only an `allkeys-*` policy may evict it.
    if policy.starts_with("volatile-") {
        assert_eq!(f.secret_evictions, 0, "{policy} evicted the secret");
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
    if relogin == Relogin::Yes {
        assert_eq!(
            f.relogins_validated, USERS as usize,
            "the new logins after the revocation validate"
        );
    }
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
