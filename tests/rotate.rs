//! SESSION.ROTATE token [GRACE seconds] against a real server: the new token's reply, key,
//! lifetime and index memberships; the old token ending at once, or reading read-only as the
//! new session for its grace window (never past the session's expiry); DESTROY and
//! REVOKEINDEX during that window; 0.1.0 sessions; replicas without the module; the
//! `session_rotated` counter and the `session.rotate` event; and refused input (bad GRACE
//! values, unknown options, malformed tokens, forged grace records, index keys of another
//! type), each of which writes nothing. Grace windows run in real time and are kept short.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{
    is_lower_hex, keys_of, normalize, parse_object, snapshot, sync_replica, tag_v2, Conn, Layout,
    Server, UNKNOWN_TOKEN,
};
use redis::Value;

const MODULE_ARGS: [&str; 2] = ["indexes", "user_id,tenant"];

const DATA: &str = r#"{"user_id":150,"tenant":"acme","role":"user","n":1.50,"name":"Zoë"}"#;

const INDEXES: [&str; 2] = ["user_id:150", "tenant:acme"];

const BAD_GRACE: &str = "ERR GRACE must be a whole number from 0 to 300";

/// Slack for comparing the module's clock with `TIME` read just before and after a command.
const CLOCK_SLACK_MS: i64 = 5;

// ---------------------------------------------------------------------------------------
// Helpers

/// `SESSION.ROTATE token [options...]`: the reply text, or `None` for nil.
fn rotate_raw(c: &mut Conn, token: &str, options: &[&str]) -> Option<String> {
    let mut args = vec!["SESSION.ROTATE", token];
    args.extend_from_slice(options);
    match c.cmd(&args) {
        Value::Nil => None,
        Value::BulkString(b) => Some(String::from_utf8(b).expect("ROTATE reply is UTF-8")),
        other => panic!(
            "SESSION.ROTATE {token} {options:?}: expected a bulk string or nil, got {other:?}"
        ),
    }
}

/// A rotation's reply taken apart: the new token and the rest of the object, compact.
struct Rotated {
    token: String,
    data: String,
}

/// `SESSION.ROTATE`, which must succeed; checks the reply's shape (the token first, 48
/// lowercase hex digits).
fn rotate(c: &mut Conn, token: &str, options: &[&str]) -> Rotated {
    let raw = rotate_raw(c, token, options)
        .unwrap_or_else(|| panic!("SESSION.ROTATE {token} {options:?} replied nil"));
    let mut reply = parse_object(&raw);
    assert_eq!(
        keys_of(&reply).first().copied(),
        Some("token"),
        "the token comes first: {raw}"
    );
    let new = match reply.shift_remove("token") {
        Some(serde_json::Value::String(t)) => t,
        other => panic!("token is no string: {other:?} in {raw}"),
    };
    assert_eq!(new.len(), 48, "{new}");
    assert!(is_lower_hex(&new), "{new}");
    Rotated {
        token: new,
        data: serde_json::to_string(&reply).unwrap(),
    }
}

fn update(c: &mut Conn, token: &str, data: &str) -> Option<String> {
    c.opt_string(&["SESSION.UPDATE", token, data])
}

fn destroy(c: &mut Conn, token: &str) -> i64 {
    c.int(&["SESSION.DESTROY", token])
}

fn rotated_count(c: &mut Conn) -> i64 {
    c.info_field("session", "session_rotated")
        .expect("session_rotated in INFO session")
        .parse()
        .expect("session_rotated is a number")
}

/// Asserts that `token` is no session to any command: VALIDATE, GET, UPDATE and ROTATE reply
/// nil, DESTROY 0.
fn assert_dead(c: &mut Conn, token: &str, what: &str) {
    assert_eq!(c.validate(token), None, "VALIDATE of {what}");
    assert_eq!(c.get(token), None, "GET of {what}");
    assert_eq!(update(c, token, r#"{"x":1}"#), None, "UPDATE of {what}");
    assert_eq!(rotate_raw(c, token, &[]), None, "ROTATE of {what}");
    assert_eq!(destroy(c, token), 0, "DESTROY of {what}");
}

/// Asserts that `member` is in (or, with `false`, out of) every index of `INDEXES`.
fn assert_in_indexes(c: &mut Conn, member: &str, inside: bool, what: &str) {
    for index in INDEXES {
        assert_eq!(
            c.smembers(index).contains(member),
            inside,
            "{what} in {index}: {:?}",
            c.smembers(index)
        );
    }
}

/// Sleeps until the server's clock is past `at_ms` (plus a margin).
fn sleep_past(c: &mut Conn, at_ms: i64) {
    let wait = at_ms - c.time_ms() + 150;
    if wait > 0 {
        sleep(Duration::from_millis(wait as u64));
    }
}

/// A RESP2 connection that only reads pub/sub messages.
struct Subscriber {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

const MARKER: &str = "rotate-marker";

impl Subscriber {
    /// Subscribed to every keyspace and keyevent channel of db 0, and to the marker.
    fn connect(s: &Server) -> Subscriber {
        let stream = TcpStream::connect(("127.0.0.1", s.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut sub = Subscriber { stream, reader };
        sub.send(&["PSUBSCRIBE", "__keyspace@0__:*", "__keyevent@0__:*"]);
        sub.send(&["SUBSCRIBE", MARKER]);
        for _ in 0..3 {
            let m = sub.read();
            assert!(
                m[0] == "psubscribe" || m[0] == "subscribe",
                "confirmation {m:?}"
            );
        }
        sub
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.stream.write_all(out.as_bytes()).expect("write");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        line.trim_end_matches("\r\n").to_string()
    }

    /// One RESP2 value, flattened to its texts.
    fn read(&mut self) -> Vec<String> {
        let head = self.line();
        let (kind, rest) = head.split_at(1);
        match kind {
            "$" => {
                let len: i64 = rest.parse().expect("length");
                if len < 0 {
                    return vec![];
                }
                let mut buf = vec![0u8; len as usize + 2];
                self.reader.read_exact(&mut buf).expect("bulk");
                vec![String::from_utf8_lossy(&buf[..len as usize]).into_owned()]
            }
            "*" => {
                let n: usize = rest.parse().expect("count");
                (0..n).flat_map(|_| self.read()).collect()
            }
            ":" | "+" => vec![rest.to_string()],
            other => panic!("unexpected RESP type {other}: {head}"),
        }
    }

    /// (channel, payload) of every message until the marker published on `c` arrives.
    fn until_marker(&mut self, c: &mut Conn) -> Vec<(String, String)> {
        assert!(c.int(&["PUBLISH", MARKER, "end"]) >= 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no marker; got {got:?}");
            let m = self.read();
            let (channel, payload) = match m[0].as_str() {
                "message" => (m[1].clone(), m[2].clone()),
                "pmessage" => (m[2].clone(), m[3].clone()),
                other => panic!("unexpected {other}: {m:?}"),
            };
            if channel == MARKER {
                return got;
            }
            got.push((channel, payload));
        }
    }
}

/// The keyspace and keyevent messages of one module event on `key`.
fn event(name: &str, key: &str) -> [(String, String); 2] {
    [
        (format!("__keyspace@0__:{key}"), name.to_string()),
        (format!("__keyevent@0__:{name}"), key.to_string()),
    ]
}

// ---------------------------------------------------------------------------------------
// Rotation without a grace window

/// Without GRACE the new token carries everything (data with `createdAt`, TTL, deadline,
/// index list) and the expiry a VALIDATE would give it now; the old token is gone from every
/// command, the keyspace and both indexes; INFO counts the rotation and the `session.rotate`
/// event is raised on the new key only.
#[test]
fn rotation_without_grace_moves_the_session_to_a_new_token() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", "KEd"]);
    let mut sub = Subscriber::connect(&s);
    let old = c.create(DATA, &["TTL", "600"]).token;
    let validated = c.validate(&old).expect("a fresh session validates");
    assert!(
        parse_object(&validated).contains_key("createdAt"),
        "{validated}"
    );
    let stored_old = c.stored(&old);
    let old_expiry = c.pexpiretime(&old);
    let count = rotated_count(&mut c);
    // A rotation that copied the old key's expiry would be a second or more behind.
    sleep(Duration::from_millis(1100));

    let before = c.time_ms();
    let new = rotate(&mut c, &old, &[]);
    let after = c.time_ms();
    assert_ne!(new.token, old);
    assert_eq!(new.data, normalize(&validated), "the data VALIDATE gave");

    // The old token: nowhere.
    assert!(!c.exists(&old), "the old key is deleted");
    assert_in_indexes(&mut c, &old, false, "the old token");
    assert_dead(&mut c, &old, "the rotated token");

    // The new token: the same session.
    let stored_new = c.stored(&new.token);
    assert_eq!(stored_new.layout, Layout::V2);
    assert_eq!(stored_new.ttl, stored_old.ttl);
    assert_eq!(stored_new.ttl, 600);
    assert_eq!(stored_new.deadline, stored_old.deadline);
    assert_eq!(stored_new.indexes, stored_old.indexes);
    assert_eq!(stored_new.index_keys(), INDEXES.map(String::from).to_vec());
    assert_eq!(normalize(&stored_new.data), normalize(&validated));
    let secret = c.secret("").unwrap();
    assert_eq!(
        stored_new.tag.as_deref(),
        Some(tag_v2(&secret, new.token.as_bytes()).as_str()),
        "tagged for its own name"
    );
    let expiry = c.pexpiretime(&new.token);
    assert!(
        (before + 600_000 - CLOCK_SLACK_MS..=after + 600_000).contains(&expiry),
        "expiry {expiry} is now + TTL (TIME was {before} .. {after})"
    );
    assert!(expiry > old_expiry + 1000, "not the old key's expiry");
    assert_in_indexes(&mut c, &new.token, true, "the new token");
    for index in INDEXES {
        assert!(
            c.index_outlives(index, expiry),
            "{index} outlives the session"
        );
    }
    assert_eq!(rotated_count(&mut c), count + 1, "session_rotated");
    assert_eq!(
        c.get(&new.token).map(|d| normalize(&d)),
        Some(new.data.clone())
    );
    assert_eq!(
        c.validate(&new.token).map(|d| normalize(&d)),
        Some(new.data.clone())
    );

    let got = sub.until_marker(&mut c);
    let want: Vec<(String, String)> = event("session.create", &old)
        .into_iter()
        .chain(event("session.rotate", &new.token))
        .collect();
    assert_eq!(got, want, "module events (class d only)");
}

/// `GRACE 0` is the same as no GRACE, and a session with no indexed property rotates to a
/// session with no index list.
#[test]
fn grace_zero_ends_the_old_token_at_once_and_no_index_stays_none() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let old = c.create(r#"{"role":"guest"}"#, &["TTL", "900"]).token;
    let data = c.get(&old).unwrap();
    let keys = c.dbsize();
    let new = rotate(&mut c, &old, &["GRACE", "0"]);
    assert_eq!(new.data, normalize(&data));
    assert!(!c.exists(&old), "GRACE 0 deletes the old key");
    assert_dead(&mut c, &old, "the token rotated with GRACE 0");
    let stored = c.stored(&new.token);
    assert_eq!((stored.ttl, stored.deadline), (900, 0));
    assert_eq!(stored.indexes, None, "no index list");
    assert_eq!(c.dbsize(), keys, "one session key for another");
    // Rotating the new one again works, and the counter counts both.
    let third = rotate(&mut c, &new.token, &[]);
    assert_eq!(third.data, new.data);
    assert_ne!(third.token, new.token);
    assert_eq!(rotated_count(&mut c), 2);
}

/// A session with a max lifetime keeps its deadline, and its new expiry is capped at it.
#[test]
fn rotation_keeps_the_max_lifetime_deadline() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let old = c.create(DATA, &["TTL", "600", "MAXLIFETIME", "30"]).token;
    let deadline = c.stored(&old).deadline;
    assert!(deadline > 0);
    assert_eq!(c.pexpiretime(&old), deadline, "capped at creation");
    let new = rotate(&mut c, &old, &[]);
    let stored = c.stored(&new.token);
    assert_eq!(stored.deadline, deadline, "the same deadline");
    assert_eq!(stored.ttl, 600);
    assert_eq!(
        c.pexpiretime(&new.token),
        deadline,
        "now + TTL is past the deadline: capped"
    );

    // A deadline further than now + TTL: the expiry is now + TTL, the deadline kept.
    let far = c.create(DATA, &["TTL", "60", "MAXLIFETIME", "3600"]).token;
    let far_deadline = c.stored(&far).deadline;
    let before = c.time_ms();
    let rotated = rotate(&mut c, &far, &["GRACE", "1"]);
    let after = c.time_ms();
    assert_eq!(c.stored(&rotated.token).deadline, far_deadline);
    let expiry = c.pexpiretime(&rotated.token);
    assert!(
        (before + 60_000 - CLOCK_SLACK_MS..=after + 60_000).contains(&expiry),
        "expiry {expiry} is now + TTL ({before} .. {after})"
    );
}

// ---------------------------------------------------------------------------------------
// Grace windows

/// During its grace window the old key holds `r2 <tag> <new token>` expiring at the window's
/// end; the old token reads the new session's current data, read-only (no expiry moves,
/// UPDATE and ROTATE of it reply nil and write nothing) and in no index; after the window it
/// is gone, and the new session lives on.
#[test]
fn the_old_token_reads_the_new_session_during_its_grace_window() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let old = c.create(DATA, &["TTL", "600"]).token;
    let data = normalize(&c.get(&old).unwrap());
    let before = c.time_ms();
    let new = rotate(&mut c, &old, &["GRACE", "2"]);
    let after = c.time_ms();
    assert_eq!(new.data, data);

    // The grace record, as documented.
    let secret = c.secret("").unwrap();
    let record = String::from_utf8(c.get_bytes(&old).expect("the old key holds a record"))
        .expect("the record is text");
    assert_eq!(
        record,
        format!("r2 {} {}", tag_v2(&secret, old.as_bytes()), new.token)
    );
    let record_expiry = c.pexpiretime(&old);
    assert!(
        (before + 2000 - CLOCK_SLACK_MS..=after + 2000).contains(&record_expiry),
        "record expiry {record_expiry} is now + 2 s ({before} .. {after})"
    );
    let new_expiry = c.pexpiretime(&new.token);
    assert!(
        (before + 600_000 - CLOCK_SLACK_MS..=after + 600_000).contains(&new_expiry),
        "new expiry {new_expiry}"
    );
    assert_in_indexes(&mut c, &old, false, "the old token in its grace window");
    assert_in_indexes(&mut c, &new.token, true, "the new token");
    assert_eq!(rotated_count(&mut c), 1);

    // Reads of the old token: the new session's data, and nothing prolonged. (A VALIDATE that
    // slid either key would move it by the time slept.)
    sleep(Duration::from_millis(150));
    assert_eq!(c.validate(&old).map(|d| normalize(&d)), Some(data.clone()));
    assert_eq!(c.get(&old).map(|d| normalize(&d)), Some(data.clone()));
    assert_eq!(
        c.pexpiretime(&old),
        record_expiry,
        "the record's expiry stays"
    );
    assert_eq!(
        c.pexpiretime(&new.token),
        new_expiry,
        "the new key's expiry stays"
    );
    assert_eq!(
        c.get_bytes(&old).unwrap(),
        record.as_bytes(),
        "the record stays"
    );

    // The old token follows the new session's data.
    let updated =
        update(&mut c, &new.token, r#"{"role":"admin"}"#).expect("UPDATE of the new token");
    let current = normalize(&c.get(&new.token).unwrap());
    assert_eq!(normalize(&updated), current);
    assert_ne!(current, data, "the UPDATE changed the data");
    assert_eq!(parse_object(&current)["role"], "admin");
    let new_expiry = c.pexpiretime(&new.token);
    sleep(Duration::from_millis(50));
    assert_eq!(
        c.validate(&old).map(|d| normalize(&d)),
        Some(current.clone())
    );
    assert_eq!(c.get(&old).map(|d| normalize(&d)), Some(current.clone()));
    assert_eq!(c.pexpiretime(&old), record_expiry);
    assert_eq!(c.pexpiretime(&new.token), new_expiry);

    // Writes through the old token: nil, nothing written.
    let keyspace = snapshot(&mut c);
    assert_eq!(
        update(&mut c, &old, r#"{"role":"root"}"#),
        None,
        "UPDATE of the old token"
    );
    assert_eq!(
        rotate_raw(&mut c, &old, &[]),
        None,
        "ROTATE of the old token"
    );
    assert_eq!(
        rotate_raw(&mut c, &old, &["GRACE", "1"]),
        None,
        "ROTATE .. GRACE of it"
    );
    assert_eq!(snapshot(&mut c), keyspace, "nothing written");
    assert_eq!(rotated_count(&mut c), 1, "no rotation counted");
    assert_eq!(
        c.get(&new.token).map(|d| normalize(&d)),
        Some(current.clone())
    );

    // After the window: the old token is gone, the new session is not.
    sleep_past(&mut c, record_expiry);
    assert_eq!(c.validate(&old), None, "VALIDATE after the window");
    assert_eq!(c.get(&old), None, "GET after the window");
    assert!(!c.exists(&old), "the record expired");
    assert_dead(&mut c, &old, "the old token after its window");
    assert_eq!(c.validate(&new.token).map(|d| normalize(&d)), Some(current));
    assert_in_indexes(&mut c, &new.token, true, "the new token after the window");
}

/// The grace window never outlasts the session: a session with little time left (TTL 2, or a
/// deadline 2 s away) rotated with GRACE 300 gets a record expiring no later than the new
/// session, and both tokens end together.
#[test]
fn the_grace_window_ends_with_the_session() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let short = c.create(DATA, &["TTL", "2"]).token;
    let capped = c.create(DATA, &["TTL", "600", "MAXLIFETIME", "2"]).token;
    let mut pairs = Vec::new();
    for old in [&short, &capped] {
        let new = rotate(&mut c, old, &["GRACE", "300"]);
        let session_expiry = c.pexpiretime(&new.token);
        let record_expiry = c.pexpiretime(old);
        assert!(record_expiry > 0, "the record of {old} expires");
        assert!(
            record_expiry <= session_expiry,
            "record expiry {record_expiry} is past the session's {session_expiry}"
        );
        assert!(
            session_expiry <= c.time_ms() + 2000,
            "the session has at most 2 s left"
        );
        assert!(c.validate(old).is_some(), "the old token reads meanwhile");
        pairs.push((old.clone(), new.token, session_expiry));
    }
    for (old, new, at) in pairs {
        sleep_past(&mut c, at);
        assert_eq!(c.validate(&old), None, "old token after the session's end");
        assert_eq!(c.get(&old), None);
        assert_eq!(c.validate(&new), None, "new token after its end");
        assert!(!c.exists(&old) && !c.exists(&new), "both keys expired");
    }
}

/// DESTROY of the new token, REVOKEINDEX of the user, and DESTROY of the old token during its
/// grace window each end the session for both tokens (and take the new one out of its
/// indexes); each counts the session once.
#[test]
fn the_session_ends_for_both_tokens_during_the_grace_window() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();

    // DESTROY of the new token.
    let old = c.create(DATA, &[]).token;
    let new = rotate(&mut c, &old, &["GRACE", "2"]).token;
    assert!(c.validate(&old).is_some());
    assert_eq!(destroy(&mut c, &new), 1, "DESTROY of the new token");
    assert!(!c.exists(&new));
    assert_in_indexes(&mut c, &new, false, "the destroyed new token");
    assert_dead(&mut c, &new, "the destroyed new token");
    assert_dead(&mut c, &old, "the old token after DESTROY of the new");

    // REVOKEINDEX of the user: one session, not two.
    let old = c.create(DATA, &[]).token;
    let new = rotate(&mut c, &old, &["GRACE", "2"]).token;
    assert!(c.validate(&old).is_some());
    assert_eq!(
        c.int(&["SESSION.REVOKEINDEX", "user_id", "150"]),
        1,
        "one session revoked"
    );
    assert!(!c.exists(&new));
    assert_in_indexes(&mut c, &new, false, "the revoked new token");
    assert_dead(&mut c, &new, "the revoked new token");
    assert_dead(&mut c, &old, "the old token after REVOKEINDEX");

    // DESTROY of the old token: the logout sent with the old cookie.
    let old = c.create(DATA, &[]).token;
    let new = rotate(&mut c, &old, &["GRACE", "2"]).token;
    assert!(c.validate(&old).is_some());
    assert_eq!(
        destroy(&mut c, &old),
        1,
        "DESTROY of the old token in its window"
    );
    assert!(!c.exists(&old), "the grace record is gone");
    assert!(!c.exists(&new), "the new token's session is gone");
    assert_in_indexes(
        &mut c,
        &new,
        false,
        "the new token after DESTROY of the old",
    );
    assert_dead(&mut c, &old, "the destroyed old token");
    assert_dead(&mut c, &new, "the new token after DESTROY of the old");

    // Every index is empty now (and so gone).
    for index in INDEXES {
        assert!(c.smembers(index).is_empty(), "{index}");
        assert!(!c.exists(index), "{index}");
    }
}

// ---------------------------------------------------------------------------------------
// 0.1.0 sessions

/// A 0.1.0 session (a hash) rotates to a layout-2 string with the same TTL, deadline, data
/// and indexes; the hash is gone (without GRACE) or replaced by a grace record (with it).
#[test]
fn a_v010_session_rotates_to_layout_2() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    c.create(r#"{"user_id":1}"#, &[]);
    let now = c.time_ms();
    let deadline = now + 3_000_000;
    let data = r#"{"user_id":150,"tenant":"acme","createdAt":"2026-01-01 00:00:00"}"#;
    let (a, b) = ("a1".repeat(24), "b2".repeat(24));
    for t in [&a, &b] {
        c.write_v010(t, data, 600, deadline, &INDEXES, now + 500_000);
        assert_eq!(c.key_type(t), "hash");
    }

    let before = c.time_ms();
    let new = rotate(&mut c, &a, &[]);
    let after = c.time_ms();
    assert_eq!(new.data, normalize(data));
    assert!(!c.exists(&a), "the hash is gone");
    let stored = c.stored(&new.token);
    assert_eq!(stored.layout, Layout::V2);
    assert_eq!((stored.ttl, stored.deadline), (600, deadline));
    assert_eq!(stored.index_keys(), INDEXES.map(String::from).to_vec());
    assert_eq!(normalize(&stored.data), normalize(data));
    let expiry = c.pexpiretime(&new.token);
    assert!(
        (before + 600_000 - CLOCK_SLACK_MS..=after + 600_000).contains(&expiry),
        "expiry {expiry}"
    );
    assert_in_indexes(&mut c, &a, false, "the rotated 0.1.0 token");
    assert_in_indexes(&mut c, &new.token, true, "its new token");
    assert_dead(&mut c, &a, "the rotated 0.1.0 token");

    // With a grace window the hash becomes a record.
    let new_b = rotate(&mut c, &b, &["GRACE", "2"]);
    assert_eq!(c.key_type(&b), "string", "the hash became a grace record");
    let secret = c.secret("").unwrap();
    assert_eq!(
        c.get_bytes(&b).unwrap(),
        format!("r2 {} {}", tag_v2(&secret, b.as_bytes()), new_b.token).into_bytes()
    );
    assert_eq!(c.validate(&b).map(|d| normalize(&d)), Some(normalize(data)));
    assert_eq!(c.stored(&new_b.token).layout, Layout::V2);
    assert_in_indexes(&mut c, &b, false, "the 0.1.0 token in its window");
    assert_in_indexes(&mut c, &new_b.token, true, "its new token");
}

// ---------------------------------------------------------------------------------------
// Replication

/// A replica without the module ends up with the primary's keyspace, value for value and
/// expiry for expiry, after rotations without and with a grace window, during the window
/// (reads and an UPDATE through it), and after it.
#[test]
fn a_replica_without_the_module_follows_rotations() {
    let primary = Server::start(&MODULE_ARGS);
    let replica = Server::start_replica_without_module(&primary);
    let mut c = primary.conn();
    let mut r = replica.conn();
    let a = c.create(DATA, &["TTL", "600"]).token;
    let b = c.create(DATA, &["TTL", "600", "MAXLIFETIME", "3600"]).token;
    let v = "c3".repeat(24);
    let now = c.time_ms();
    c.write_v010(&v, DATA, 600, 0, &INDEXES, now + 500_000);
    sync_replica(&mut c, &replica);
    assert_eq!(snapshot(&mut r), snapshot(&mut c), "before any rotation");

    let new_a = rotate(&mut c, &a, &[]).token;
    let new_b = rotate(&mut c, &b, &["GRACE", "2"]).token;
    let new_v = rotate(&mut c, &v, &["GRACE", "2"]).token;
    sync_replica(&mut c, &replica);
    let primary_keys = snapshot(&mut c);
    assert_eq!(
        snapshot(&mut r),
        primary_keys,
        "after the rotations, in the window"
    );
    assert!(!primary_keys.contains_key(&a));
    assert!(primary_keys.contains_key(&b) && primary_keys.contains_key(&v));
    assert!(primary_keys.contains_key(&new_a) && primary_keys.contains_key(&new_b));
    assert!(primary_keys.contains_key(&new_v));

    assert!(c.validate(&b).is_some());
    assert!(c.get(&v).is_some());
    update(&mut c, &new_b, r#"{"role":"admin"}"#).expect("UPDATE of the new token");
    assert!(c.validate(&new_a).is_some());
    sync_replica(&mut c, &replica);
    assert_eq!(
        snapshot(&mut r),
        snapshot(&mut c),
        "reads and an UPDATE in the window"
    );

    let window_end = c.pexpiretime(&b).max(c.pexpiretime(&v));
    sleep_past(&mut c, window_end);
    // Reading the expired records makes the primary delete them (and send the DELs).
    assert_eq!(c.validate(&b), None);
    assert_eq!(c.get(&v), None);
    sync_replica(&mut c, &replica);
    let primary_keys = snapshot(&mut c);
    assert_eq!(snapshot(&mut r), primary_keys, "after the window");
    assert!(!primary_keys.contains_key(&b) && !primary_keys.contains_key(&v));
    assert_eq!(r.get_bytes(&new_b), c.get_bytes(&new_b));
}

// ---------------------------------------------------------------------------------------
// Refused input

/// Each bad GRACE value, an unknown option and a missing token are refused with their exact
/// error, for a real token and an unknown one, writing nothing and counting nothing.
#[test]
fn bad_options_are_refused_and_write_nothing() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let token = c.create(DATA, &[]).token;
    let keyspace = snapshot(&mut c);
    let bad: [&[&str]; 10] = [
        &["GRACE", "301"],
        &["GRACE", "-1"],
        &["GRACE", "1.5"],
        &["GRACE", "abc"],
        &["GRACE", ""],
        &["GRACE", "\x00"],
        &["GRACE", "1\x00"],
        &["GRACE", "99999999999999999999999"],
        &["GRACE"],
        &["GRACE", "1", "x"],
    ];
    for t in [token.as_str(), UNKNOWN_TOKEN] {
        for options in bad {
            let mut args = vec!["SESSION.ROTATE", t];
            args.extend_from_slice(options);
            assert_eq!(c.err(&args), BAD_GRACE, "{options:?}");
        }
        for (option, shown) in [
            (&["TTL", "5"][..], "TTL"),
            (&["EXCEPT", "x"][..], "EXCEPT"),
            (&["x"][..], "x"),
            (&["GRACEX", "1"][..], "GRACEX"),
        ] {
            let mut args = vec!["SESSION.ROTATE", t];
            args.extend_from_slice(option);
            assert_eq!(
                c.err(&args),
                format!("ERR unknown option '{shown}' (expected GRACE seconds)"),
                "{option:?}"
            );
        }
    }
    assert_eq!(
        c.err(&["SESSION.ROTATE"]),
        "ERR wrong number of arguments for 'session.rotate' command"
    );
    assert_eq!(snapshot(&mut c), keyspace, "nothing written");
    assert_eq!(rotated_count(&mut c), 0);
    // Limits and spellings that are accepted.
    let t1 = rotate(&mut c, &token, &["GRACE", "300"]).token;
    assert!(
        c.validate(&token).is_some(),
        "GRACE 300: the old token reads"
    );
    assert!(c.pexpiretime(&token) > c.time_ms() + 290_000, "for 300 s");
    let t2 = rotate(&mut c, &t1, &["grace", "00001"]).token;
    assert!(c.validate(&t2).is_some());
    assert!(
        c.validate(&t1).is_some(),
        "grace 00001: the old token reads"
    );
    assert!(c.pexpiretime(&t1) <= c.time_ms() + 1000, "for 1 s");
    assert_eq!(rotated_count(&mut c), 2);
}

/// Malformed tokens are unknown: nil, nothing written.
#[test]
fn malformed_tokens_rotate_to_nil() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let token = c.create(DATA, &[]).token;
    let keyspace = snapshot(&mut c);
    let with_x = format!("{token}x");
    let upper = token.to_ascii_uppercase();
    let non_hex = "zz".repeat(24);
    let short = &token[..47];
    for bad in [
        "",
        "abc",
        short,
        upper.as_str(),
        non_hex.as_str(),
        with_x.as_str(),
        UNKNOWN_TOKEN,
        "session-secret",
        "user_id:150",
    ] {
        assert_eq!(rotate_raw(&mut c, bad, &[]), None, "ROTATE {bad:?}");
        assert_eq!(
            rotate_raw(&mut c, bad, &["GRACE", "5"]),
            None,
            "ROTATE {bad:?} GRACE 5"
        );
    }
    assert_eq!(snapshot(&mut c), keyspace, "nothing written");
    assert_eq!(rotated_count(&mut c), 0);
}

/// A string that imitates a grace record (`r2 <tag> <real token>` placed by hand at a
/// token-shaped name) with a wrong tag is no record: ROTATE, VALIDATE and GET of that name
/// reply nil, DESTROY 0, and neither it nor the real session changes. The same record with
/// the right tag does forward (so the tag is what refused it), but a record forwarding to
/// itself does not.
#[test]
fn a_forged_grace_record_is_refused() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let real = c.create(DATA, &[]).token;
    let data = normalize(&c.get(&real).unwrap());
    let secret = c.secret("").unwrap();
    let forged = "e5".repeat(24);
    let at = (c.time_ms() + 100_000).to_string();
    for tag in ["0000000000000000", "ffffffffffffffff"] {
        let value = format!("r2 {tag} {real}");
        c.ok(&["SET", &forged, &value, "PXAT", &at]);
        let keyspace = snapshot(&mut c);
        assert_eq!(rotate_raw(&mut c, &forged, &[]), None, "ROTATE, tag {tag}");
        assert_eq!(rotate_raw(&mut c, &forged, &["GRACE", "5"]), None);
        assert_eq!(c.validate(&forged), None, "VALIDATE, tag {tag}");
        assert_eq!(c.get(&forged), None, "GET, tag {tag}");
        assert_eq!(
            update(&mut c, &forged, r#"{"x":1}"#),
            None,
            "UPDATE, tag {tag}"
        );
        assert_eq!(destroy(&mut c, &forged), 0, "DESTROY, tag {tag}");
        assert_eq!(snapshot(&mut c), keyspace, "nothing written (tag {tag})");
        assert_eq!(c.get_bytes(&forged).unwrap(), value.as_bytes());
    }

    // Control: the right tag makes it a record of the real session.
    let value = format!("r2 {} {real}", tag_v2(&secret, forged.as_bytes()));
    c.ok(&["SET", &forged, &value, "PXAT", &at]);
    assert_eq!(c.get(&forged).map(|d| normalize(&d)), Some(data.clone()));
    assert_eq!(
        rotate_raw(&mut c, &forged, &[]),
        None,
        "a record does not rotate"
    );

    // A (rightly tagged) record forwarding to itself reads as nothing.
    let own = "f6".repeat(24);
    let value = format!("r2 {} {own}", tag_v2(&secret, own.as_bytes()));
    c.ok(&["SET", &own, &value, "PXAT", &at]);
    let keyspace = snapshot(&mut c);
    assert_eq!(c.validate(&own), None);
    assert_eq!(c.get(&own), None);
    assert_eq!(rotate_raw(&mut c, &own, &[]), None);
    assert_eq!(destroy(&mut c, &own), 0);
    assert_eq!(snapshot(&mut c), keyspace, "nothing written");
    assert_eq!(c.get(&real).map(|d| normalize(&d)), Some(data));
    assert_eq!(rotated_count(&mut c), 0);
}

/// An index key of the session replaced by another type, inside a transaction that replaces
/// it first. On 7.2+ the key-event work that ends such a session waits for EXEC, so ROTATE
/// meets the foreign key and fails with WRONGTYPE, with or without GRACE, writing nothing
/// (the replies of the reads around it show it). On 7.0, which has no key events, ROTATE is
/// the first read that finds the index set gone and ends the session (fail closed, as VALIDATE
/// and UPDATE do there: docs/storage.md, "Indexes under expiry, deletion and eviction"): nil, no new
/// session, and the foreign key left alone either way.
#[test]
fn an_index_key_of_another_type_refuses_the_rotation() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let key_events = c.server_kind().key_events();
    let token = c.create(DATA, &[]).token;
    let wrongtype = "WRONGTYPE index key 'tenant:acme' holds a value that is not a set";
    let reads: [&[&str]; 5] = [
        &["DBSIZE"],
        &["GET", &token],
        &["PEXPIRETIME", &token],
        &["SMEMBERS", "user_id:150"],
        &["GET", "tenant:acme"],
    ];
    let rotate_plain = ["SESSION.ROTATE", token.as_str()];
    let rotate_grace = ["SESSION.ROTATE", token.as_str(), "GRACE", "5"];
    let mut commands: Vec<&[&str]> = vec![&["DEL", "tenant:acme"], &["SET", "tenant:acme", "x"]];
    commands.extend(reads);
    commands.push(&rotate_plain);
    commands.extend(reads);
    commands.push(&rotate_grace);
    commands.extend(reads);
    commands.push(&["INFO", "session"]);
    let replies = c.transaction(&commands);
    let info = common::as_string(&replies[19]).unwrap();
    assert!(info.contains("session_rotated:0"), "{info}");
    assert_eq!(
        c.string(&["GET", "tenant:acme"]),
        "x",
        "the foreign key is left alone"
    );
    if !key_events {
        assert_eq!(replies[7], Value::Nil, "7.0: ROTATE ends the session");
        assert_eq!(replies[13], Value::Nil, "7.0: and then knows no session");
        assert!(
            info.contains("session_sessions_ended_by_lost_index:1"),
            "{info}"
        );
        assert_eq!(c.validate(&token), None);
        assert!(!c.exists(&token));
        assert!(!c.smembers("user_id:150").contains(&token));
        return;
    }
    let first = &replies[2..7];
    assert_eq!(
        common::error_text(&replies[7]).as_deref(),
        Some(wrongtype),
        "ROTATE: {:?}",
        replies[7]
    );
    assert_eq!(&replies[8..13], first, "nothing written by ROTATE");
    assert_eq!(
        common::error_text(&replies[13]).as_deref(),
        Some(wrongtype),
        "ROTATE .. GRACE 5: {:?}",
        replies[13]
    );
    assert_eq!(
        &replies[14..19],
        first,
        "nothing written by ROTATE .. GRACE 5"
    );
}

/// Outside a transaction a session whose index key was replaced by another type can no
/// longer be revoked by value, so it ends (fail closed: at once with key events, at its next
/// read on 7.0): ROTATE replies nil, makes no new session, and leaves the foreign key alone.
#[test]
fn a_session_that_lost_an_index_key_to_another_type_does_not_rotate() {
    let s = Server::start(&MODULE_ARGS);
    let mut c = s.conn();
    let token = c.create(DATA, &[]).token;
    c.ok(&["SET", "tenant:acme", "x"]);
    assert_eq!(rotate_raw(&mut c, &token, &["GRACE", "5"]), None);
    assert_eq!(rotate_raw(&mut c, &token, &[]), None);
    assert_eq!(rotated_count(&mut c), 0);
    let keys: Vec<String> = c
        .keys()
        .into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect();
    assert_eq!(
        keys,
        ["session-secret", "tenant:acme"],
        "no session left or made"
    );
    assert_eq!(
        c.string(&["GET", "tenant:acme"]),
        "x",
        "the foreign key is left alone"
    );
}
