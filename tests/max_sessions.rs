//! `SESSION.CREATE ... MAXSESSIONS n [DENY]`: at most n live sessions per value of the
//! primary index, the soonest-expiring ended first (or, with DENY, the CREATE refused), in
//! the same atomic step, so that concurrent logins never overshoot.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{snapshot, sync_replica, Conn, Server};

const ARGS: [&str; 2] = ["indexes", "user_id,tenant"];

fn info(c: &mut Conn, field: &str) -> i64 {
    c.info_field("session", field)
        .unwrap_or_else(|| panic!("INFO session has no {field}"))
        .parse()
        .unwrap()
}

/// A raw RESP2 connection subscribed to one channel; [`Events::next`] gives each payload.
struct Events(BufReader<TcpStream>);

impl Events {
    fn subscribe(s: &Server, channel: &str) -> Events {
        let mut stream = TcpStream::connect(("127.0.0.1", s.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let cmd = format!(
            "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
            channel.len()
        );
        stream.write_all(cmd.as_bytes()).expect("SUBSCRIBE");
        let mut events = Events(BufReader::new(stream));
        assert_eq!(events.array()[0], "subscribe");
        events
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.0.read_line(&mut line).expect("read");
        line.trim_end().to_string()
    }

    /// One array of bulk strings and integers, as texts.
    fn array(&mut self) -> Vec<String> {
        let head = self.line();
        let n: usize = head.strip_prefix('*').expect("an array").parse().unwrap();
        (0..n)
            .map(|_| {
                let item = self.line();
                match item.split_at(1) {
                    ("$", len) => {
                        let mut buf = vec![0u8; len.parse::<usize>().unwrap() + 2];
                        self.0.read_exact(&mut buf).expect("bulk");
                        String::from_utf8_lossy(&buf[..buf.len() - 2]).into_owned()
                    }
                    (_, rest) => rest.to_string(),
                }
            })
            .collect()
    }

    /// The payload (the key) of the next message.
    fn next(&mut self) -> String {
        let m = self.array();
        assert_eq!(m[0], "message", "{m:?}");
        m[2].clone()
    }
}

/// The live sessions of user 150's index: members whose session GET finds.
fn live_members(c: &mut Conn, index: &str) -> BTreeSet<String> {
    c.smembers(index)
        .into_iter()
        .filter(|t| c.get(t).is_some())
        .collect()
}

/// The fourth login with `MAXSESSIONS 3` ends exactly the session with the least time left
/// (not the oldest), which leaves every index it was in, raises `session.destroy` and counts
/// in `sessions_ended_by_maxsessions`, not in `destroyed`.
#[test]
fn the_session_nearest_its_end_makes_room() {
    let s = Server::start(&ARGS);
    let mut c = s.conn();
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", "KEd"]);
    let mut events = Events::subscribe(&s, "__keyevent@0__:session.destroy");
    let a = c
        .create(r#"{"user_id":150,"tenant":"acme"}"#, &["TTL", "100"])
        .token;
    let b = c.create(r#"{"user_id":150}"#, &["TTL", "50"]).token;
    let d = c.create(r#"{"user_id":150}"#, &["TTL", "200"]).token;
    let e = c
        .create(r#"{"user_id":150}"#, &["MAXSESSIONS", "3", "TTL", "300"])
        .token;
    assert_eq!(c.validate(&b), None, "the soonest to expire is ended");
    assert!(!c.exists(&b));
    for t in [&a, &d, &e] {
        assert!(c.get(t).is_some(), "{t} lives");
    }
    assert_eq!(
        c.smembers("user_id:150"),
        BTreeSet::from([a.clone(), d.clone(), e.clone()])
    );
    assert_eq!(info(&mut c, "session_sessions_ended_by_maxsessions"), 1);
    assert_eq!(info(&mut c, "session_destroyed"), 0);
    // The next one ends `a`, now the nearest its end, and `a` leaves `tenant:acme` too.
    let f = c.create(r#"{"user_id":150}"#, &["maxsessions", "3"]).token;
    assert_eq!(c.get(&a), None);
    assert!(!c.exists("tenant:acme") || !c.smembers("tenant:acme").contains(&a));
    assert_eq!(
        live_members(&mut c, "user_id:150"),
        BTreeSet::from([d.clone(), e.clone(), f.clone()])
    );
    assert_eq!(info(&mut c, "session_sessions_ended_by_maxsessions"), 2);
    // The events name the ended sessions' keys, in order.
    assert_eq!(
        vec![events.next(), events.next()],
        vec![b.clone(), a.clone()]
    );
}

/// A limit below the current count ends all but `n - 1` of them (the soonest first), so that
/// with the new session `n` remain; other users and other values are untouched.
#[test]
fn a_lower_limit_ends_the_excess_and_nothing_else() {
    let s = Server::start(&ARGS);
    let mut c = s.conn();
    let mine: Vec<String> = (1..=5)
        .map(|i| {
            let ttl = (100 * i).to_string();
            c.create(r#"{"user_id":150}"#, &["TTL", &ttl]).token
        })
        .collect();
    let other = c.create(r#"{"user_id":151}"#, &["TTL", "10"]).token;
    let same_tenant = c.create(r#"{"tenant":"acme"}"#, &["TTL", "10"]).token;
    let new = c
        .create(r#"{"user_id":150,"tenant":"acme"}"#, &["MAXSESSIONS", "2"])
        .token;
    for t in &mine[..4] {
        assert_eq!(c.get(t), None, "{t} ended");
    }
    assert!(c.get(&mine[4]).is_some(), "the latest to expire stays");
    assert_eq!(
        live_members(&mut c, "user_id:150"),
        BTreeSet::from([mine[4].clone(), new.clone()])
    );
    assert!(c.get(&other).is_some(), "another user is untouched");
    assert!(
        c.get(&same_tenant).is_some(),
        "the primary index is user_id: tenant counts nothing"
    );
    assert_eq!(info(&mut c, "session_sessions_ended_by_maxsessions"), 4);
}

/// `DENY` at the limit refuses the CREATE with the documented error and writes nothing at
/// all; below the limit it creates. Stale members (deleted by hand, expired) do not count.
#[test]
fn deny_refuses_at_the_limit_and_writes_nothing() {
    let s = Server::start(&ARGS);
    let mut c = s.conn();
    let live: Vec<String> = (0..2)
        .map(|_| c.create(r#"{"user_id":150}"#, &[]).token)
        .collect();
    let deleted = c.create(r#"{"user_id":150}"#, &[]).token;
    let expired = c.create(r#"{"user_id":150}"#, &[]).token;
    c.ok(&["DEL", &deleted]);
    c.ok(&["PEXPIRE", &expired, "1"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // The GET expires it lazily. Then 2 live, 2 stale: DENY with 3 still creates.
    c.get(&expired);
    let third = c
        .create(r#"{"user_id":150}"#, &["MAXSESSIONS", "3", "DENY"])
        .token;
    assert!(c.get(&third).is_some());
    let before = snapshot(&mut c);
    let e = c.err(&[
        "SESSION.CREATE",
        r#"{"user_id":150}"#,
        "MAXSESSIONS",
        "3",
        "deny",
    ]);
    assert_eq!(
        e,
        "ERR MAXSESSIONS 3 DENY: index 'user_id:150' already has 3 live sessions; nothing was written"
    );
    assert_eq!(snapshot(&mut c), before, "a refused CREATE wrote something");
    for t in live.iter().chain([&third]) {
        assert!(c.get(t).is_some());
    }
    assert_eq!(info(&mut c, "session_sessions_ended_by_maxsessions"), 0);
    assert_eq!(info(&mut c, "session_created"), 5);
}

/// Twenty clients logging the same user in at once, 25 times each, with `MAXSESSIONS 3`:
/// at every moment a sampler looks, and at the end, at most 3 live sessions, and the index
/// holds exactly the live ones at the end.
#[test]
fn concurrent_logins_never_overshoot() {
    let s = Server::start(&ARGS);
    let mut c = s.conn();
    c.create(r#"{"user_id":1}"#, &[]); // the secret exists before the race
    let done = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..20)
        .map(|w| {
            let mut conn = s.conn();
            let created = Arc::clone(&created);
            thread::spawn(move || {
                for i in 0..25 {
                    let ttl = (1000 + (w * 37 + i * 11) % 1000).to_string();
                    conn.create(r#"{"user_id":150}"#, &["TTL", &ttl, "MAXSESSIONS", "3"]);
                    created.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let sampler = {
        let mut conn = s.conn();
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut samples = 0;
            let script = r#"
                local n = 0
                for _, t in ipairs(redis.call('SMEMBERS', KEYS[1])) do
                    if redis.call('EXISTS', t) == 1 then n = n + 1 end
                end
                return n
            "#;
            while !done.load(Ordering::Relaxed) {
                let live = conn.int(&["EVAL", script, "1", "user_id:150"]);
                assert!(live <= 3, "{live} live sessions seen at once");
                samples += 1;
            }
            samples
        })
    };
    for w in workers {
        w.join().expect("a login thread failed");
    }
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().expect("the sampler saw more than 3");
    assert!(samples > 0);
    assert_eq!(created.load(Ordering::Relaxed), 500);
    let members = c.smembers("user_id:150");
    assert_eq!(members.len(), 3, "{members:?}");
    assert_eq!(live_members(&mut c, "user_id:150"), members);
    assert_eq!(info(&mut c, "session_sessions_ended_by_maxsessions"), 497);
    // Exactly those three session keys exist for the user (plus user 1's and the secret).
    assert_eq!(
        c.dbsize(),
        3 + 1 + 1 + 1 + 1,
        "sessions, user 1's index, secret"
    );
}

/// The endings reach a replica without the module as plain commands: it holds exactly what
/// the primary holds.
#[test]
fn a_replica_without_the_module_follows() {
    let primary = Server::start(&ARGS);
    let replica = Server::start_replica_without_module(&primary);
    let mut c = primary.conn();
    for i in 0..6 {
        let ttl = (600 - i * 10).to_string();
        c.create(
            r#"{"user_id":150,"tenant":"acme"}"#,
            &["TTL", &ttl, "MAXSESSIONS", "2"],
        );
    }
    sync_replica(&mut c, &replica);
    assert_eq!(snapshot(&mut c), snapshot(&mut replica.conn()));
    assert_eq!(c.smembers("user_id:150").len(), 2);
}

/// Sessions written by 0.1.0 count as live and are ended like any other.
#[test]
fn sessions_of_0_1_0_count_and_end() {
    let s = Server::start(&ARGS);
    let mut c = s.conn();
    c.create(r#"{"user_id":1}"#, &[]);
    let now = c.time_ms();
    let old = "ab".repeat(24);
    c.write_v010(
        &old,
        r#"{"user_id":150}"#,
        600,
        0,
        &["user_id:150"],
        now + 10_000,
    );
    let new = c.create(r#"{"user_id":150}"#, &[]).token;
    let e = c.err(&[
        "SESSION.CREATE",
        r#"{"user_id":150}"#,
        "MAXSESSIONS",
        "2",
        "DENY",
    ]);
    assert!(e.contains("already has 2 live sessions"), "{e}");
    c.create(r#"{"user_id":150}"#, &["MAXSESSIONS", "2"]);
    assert!(!c.exists(&old), "the 0.1.0 session expired soonest");
    assert!(c.get(&new).is_some());
}

/// Every bad MAXSESSIONS argument gets its ERR and writes nothing.
#[test]
fn bad_arguments_are_refused_and_write_nothing() {
    let s = Server::start(&ARGS);
    let mut c = s.conn();
    c.create(r#"{"user_id":150}"#, &[]);
    let bad_limit = "ERR MAXSESSIONS must be a whole number from 1 to 1000000";
    let before = snapshot(&mut c);
    let data = r#"{"user_id":150}"#;
    let cases: Vec<(Vec<&[u8]>, String)> = vec![
        (vec![b"MAXSESSIONS", b"0"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"1000001"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"-1"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"abc"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"1.5"], bad_limit.into()),
        (vec![b"MAXSESSIONS"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"DENY"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"\x00"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"3\x00"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"  3"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"+3"], bad_limit.into()),
        (vec![b"MAXSESSIONS", b"0x3"], bad_limit.into()),
        (
            vec![b"MAXSESSIONS", b"99999999999999999999"],
            bad_limit.into(),
        ),
        (
            vec![b"MAXSESSIONS", b"3", b"MAXSESSIONS", b"4"],
            "ERR option 'MAXSESSIONS' given twice".into(),
        ),
        (
            vec![b"DENY"],
            "ERR unknown option 'DENY' (expected TTL, MAXLIFETIME, MAXSESSIONS or ROUTE)".into(),
        ),
        (
            vec![b"MAXSESSIONS", b"3", b"DENY", b"DENY"],
            "ERR unknown option 'DENY' (expected TTL, MAXLIFETIME, MAXSESSIONS or ROUTE)".into(),
        ),
    ];
    for (options, want) in cases {
        let mut args: Vec<&[u8]> = vec![b"SESSION.CREATE", data.as_bytes()];
        args.extend(options.iter().copied());
        let got = c.cmd(&args);
        assert_eq!(
            common::error_text(&got).as_deref(),
            Some(want.as_str()),
            "{:?}",
            options
                .iter()
                .map(|o| String::from_utf8_lossy(o))
                .collect::<Vec<_>>()
        );
        assert_eq!(snapshot(&mut c), before);
    }
    for data in [r#"{"x":1}"#, r#"{"user_id":null}"#] {
        assert_eq!(
            c.err(&["SESSION.CREATE", data, "MAXSESSIONS", "1"]),
            "ERR MAXSESSIONS needs a value of an index: data has none of the properties in session.indexes"
        );
        assert_eq!(snapshot(&mut c), before);
    }
}
