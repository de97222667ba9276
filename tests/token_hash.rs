//! `token-hash sha256` and SESSION.REVOKEID against real servers: sessions stored under the
//! hash of their token (slot tag kept), index sets and grace records holding hashes; no
//! `dump.rdb`, AOF file, replica's MONITOR or primary's MONITOR showing a token issued after
//! a workload of every command; a hash presented as a token naming nothing; switching the
//! setting both ways (and across a restart) losing no session; LIST's `sessionId` and ending
//! one session by it; `sessionId` reserved in data; hostile REVOKEID arguments.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    keys_of, parse_object, session_id, snapshot, sync_replica, tag_v2, tag_v2_hashed, Conn, Layout,
    Server, UNKNOWN_TOKEN,
};
use redis::Value;

const HASHED: [&str; 4] = ["indexes", "user_id,tenant", "token-hash", "sha256"];
const PLAIN: [&str; 2] = ["indexes", "user_id,tenant"];

fn list(
    c: &mut Conn,
    property: &str,
    value: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    match c.cmd(&["SESSION.LIST", property, value]) {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::BulkString(b) => parse_object(std::str::from_utf8(b).unwrap()),
                other => panic!("LIST element {other:?}"),
            })
            .collect(),
        other => panic!("LIST {property} {value}: {other:?}"),
    }
}

/// The identifiers of LIST's elements; asserts whether each shows a token.
fn listed_ids(c: &mut Conn, property: &str, value: &str, tokens_shown: bool) -> BTreeSet<String> {
    list(c, property, value)
        .iter()
        .map(|m| {
            assert_eq!(m.contains_key("token"), tokens_shown, "{m:?}");
            let id = m["sessionId"].as_str().expect("sessionId").to_string();
            if let Some(token) = m.get("token") {
                assert_eq!(session_id(token.as_str().unwrap()), id);
            }
            id
        })
        .collect()
}

fn revoke_id(c: &mut Conn, property: &str, value: &str, id: &str) -> i64 {
    c.int(&["SESSION.REVOKEID", property, value, id])
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sessions_and_index_members_are_stored_under_the_tokens_hash() {
    let s = Server::start(&HASHED);
    let mut c = s.conn();
    assert_eq!(c.config_get("session.token-hash"), "sha256");
    let created = c.create(r#"{"user_id":150,"tenant":"acme","n":1}"#, &[]);
    let t = created.token.as_str();
    let id = session_id(t);
    assert_eq!(t.len(), 48);
    assert!(c.exists(&id), "no session at the token's hash");
    assert!(!c.exists(t), "a key named by the token");
    assert_eq!(c.smembers("user_id:150"), set(&[&id]));
    assert_eq!(c.smembers("tenant:acme"), set(&[&id]));
    // Every key name and member of the dataset: none is the token.
    for key in c.keys() {
        let key = String::from_utf8(key).unwrap();
        assert!(!key.contains(t), "key {key}");
        if c.key_type(&key) == "set" {
            assert!(!c.smembers(&key).iter().any(|m| m.contains(t)), "{key}");
        }
    }
    // Layout 2 as documented, with a tag that is not the plain one for its name.
    let stored = c.stored(&id);
    assert_eq!(stored.layout, Layout::V2);
    let secret = c.secret("").expect("secret");
    assert_ne!(stored.tag, Some(tag_v2(&secret, id.as_bytes())));
    assert_eq!(stored.tag, Some(tag_v2_hashed(&secret, id.as_bytes())));

    // Commands take the token.
    let data = c.validate(t).expect("VALIDATE by token");
    assert_eq!(parse_object(&data)["n"], 1);
    assert!(c.get(t).is_some());
    let patched = c.string(&["SESSION.UPDATE", t, r#"{"n":2}"#]);
    assert_eq!(parse_object(&patched)["n"], 2);
    // The hash, presented as a token, names nothing.
    assert_eq!(c.validate(&id), None);
    assert_eq!(c.get(&id), None);
    assert_eq!(c.cmd(&["SESSION.UPDATE", &id, "{}"]), Value::Nil);
    assert_eq!(c.cmd(&["SESSION.ROTATE", &id]), Value::Nil);
    assert_eq!(c.int(&["SESSION.DESTROY", &id]), 0);
    assert_eq!(
        c.int(&["SESSION.REVOKEINDEX", "user_id", "150", "EXCEPT", &id]),
        1
    );
    assert_eq!(c.validate(t), None, "EXCEPT by the hash spares nothing");
}

#[test]
fn a_hash_is_no_token_and_except_takes_the_token() {
    let s = Server::start(&HASHED);
    let mut c = s.conn();
    let a = c.create(r#"{"user_id":150}"#, &[]).token;
    let b = c.create(r#"{"user_id":150}"#, &[]).token;
    let before = snapshot(&mut c);
    for id in [session_id(&a), session_id(&b)] {
        assert_eq!(c.validate(&id), None);
        assert_eq!(c.int(&["SESSION.DESTROY", &id]), 0);
    }
    // Nothing changed but the secret's recency.
    assert_eq!(snapshot(&mut c), before);
    assert_eq!(
        c.int(&["SESSION.REVOKEINDEX", "user_id", "150", "EXCEPT", &a]),
        1
    );
    assert!(c.validate(&a).is_some());
    assert_eq!(c.validate(&b), None);
    assert_eq!(c.smembers("user_id:150"), set(&[&session_id(&a)]));
    assert_eq!(c.int(&["SESSION.DESTROY", &a]), 1);
    assert!(!c.exists("user_id:150"));
}

/// Reads MONITOR lines until one contains `marker`.
struct Monitor {
    reader: BufReader<TcpStream>,
}

impl Monitor {
    fn start(server: &Server) -> Monitor {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"*1\r\n$7\r\nMONITOR\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "+OK\r\n");
        Monitor { reader }
    }

    fn until(&mut self, marker: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no {marker} in MONITOR");
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("MONITOR line");
            if line.contains(marker) {
                return lines;
            }
            lines.push(line);
        }
    }
}

/// Every file under `dir`, recursively, as bytes, by path.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every command, with tokens collected as they are issued: CREATE (with and without
/// indexes, with MAXSESSIONS), VALIDATE, GET, UPDATE (changing an index), ROTATE (at once
/// and with a grace window, then reading and destroying through the old token), DESTROY,
/// REVOKEINDEX (with EXCEPT), LIST and REVOKEID. Returns every token issued and the ones
/// still live.
fn workload(c: &mut Conn) -> (Vec<String>, Vec<String>) {
    let mut issued = Vec::new();
    let new = |c: &mut Conn, data: &str, options: &[&str], issued: &mut Vec<String>| {
        let t = c.create(data, options).token;
        issued.push(t.clone());
        t
    };
    let a = new(
        c,
        r#"{"user_id":150,"tenant":"acme","device":"phone"}"#,
        &[],
        &mut issued,
    );
    let b = new(
        c,
        r#"{"user_id":150,"device":"laptop"}"#,
        &["TTL", "600"],
        &mut issued,
    );
    let loose = new(c, r#"{"device":"kiosk"}"#, &[], &mut issued);
    assert!(c.validate(&a).is_some());
    assert!(c.get(&b).is_some());
    assert!(c.validate(&loose).is_some());
    c.string(&["SESSION.UPDATE", &b, r#"{"tenant":"beta"}"#]);
    let rotated = parse_object(&c.string(&["SESSION.ROTATE", &a]))["token"]
        .as_str()
        .unwrap()
        .to_string();
    issued.push(rotated.clone());
    let graced = parse_object(&c.string(&["SESSION.ROTATE", &b, "GRACE", "30"]))["token"]
        .as_str()
        .unwrap()
        .to_string();
    issued.push(graced.clone());
    assert!(
        c.validate(&b).is_some(),
        "the old token reads in its grace window"
    );
    assert!(c.validate(&graced).is_some());
    let limited: Vec<String> = (0..4)
        .map(|i| {
            new(
                c,
                &format!(r#"{{"user_id":151,"i":{i}}}"#),
                &["MAXSESSIONS", "2"],
                &mut issued,
            )
        })
        .collect();
    assert_eq!(list(c, "user_id", "151").len(), 2);
    // The two left (sessions made in the same millisecond tie on expiry, and the tie goes by
    // member order, so which two is not known here): one is ended by its identifier.
    let ids = listed_ids(c, "user_id", "151", false);
    let left: Vec<&String> = limited
        .iter()
        .filter(|t| ids.contains(&session_id(t)))
        .collect();
    assert_eq!(left.len(), 2, "{ids:?}");
    assert_eq!(revoke_id(c, "user_id", "151", &session_id(left[0])), 1);
    let survivor = left[1].clone();
    let doomed = new(c, r#"{"user_id":152}"#, &[], &mut issued);
    let kept = new(c, r#"{"user_id":152}"#, &[], &mut issued);
    assert_eq!(
        c.int(&["SESSION.REVOKEINDEX", "user_id", "152", "EXCEPT", &kept]),
        1
    );
    assert_eq!(c.validate(&doomed), None);
    assert_eq!(c.int(&["SESSION.DESTROY", &loose]), 1);
    // The old token of the grace window ends the new session with it.
    assert_eq!(c.int(&["SESSION.DESTROY", &b]), 1);
    assert_eq!(c.validate(&graced), None);
    let live = vec![rotated, survivor, kept];
    for t in &live {
        assert!(c.validate(t).is_some(), "{t}");
    }
    (issued, live)
}

#[test]
fn no_file_replica_or_monitor_shows_a_token() {
    let primary = Server::builder()
        .module_args(&HASHED)
        .directive("appendonly yes")
        .directive("appendfsync always")
        .start();
    let replica = Server::builder()
        .module_args(&HASHED)
        .replica_of(&primary)
        .start();
    replica.wait_link_up();
    let mut on_primary = Monitor::start(&primary);
    let mut on_replica = Monitor::start(&replica);
    let mut c = primary.conn();
    let (issued, live) = workload(&mut c);
    c.ok(&["SET", "hash-test-marker", "1"]);
    sync_replica(&mut c, &replica);
    let mut r = replica.conn();
    r.ok(&["ECHO", "hash-test-replica-end"]);
    let seen_primary = on_primary.until("hash-test-marker");
    let seen_replica = on_replica.until("hash-test-marker");
    // The replica applied the module's effects (its MONITOR shows the stream).
    assert!(
        seen_replica
            .iter()
            .any(|l| l.contains(&session_id(&live[0]))),
        "the replica's MONITOR shows no session write: {seen_replica:#?}"
    );
    assert_eq!(snapshot(&mut c), snapshot(&mut r), "replica differs");
    for t in &live {
        assert!(r.get(t).is_some(), "the replica does not read {t}");
    }

    c.ok(&["SAVE"]);
    r.ok(&["SAVE"]);
    c.ok(&["BGREWRITEAOF"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c
        .info_field("persistence", "aof_rewrite_in_progress")
        .as_deref()
        != Some("0")
        || c.info_field("persistence", "aof_rewrite_scheduled")
            .as_deref()
            != Some("0")
    {
        assert!(Instant::now() < deadline, "AOF rewrite did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Written after the rewrite too (the incremental AOF file).
    let after = c.create(r#"{"user_id":160}"#, &[]).token;
    let mut issued = issued;
    issued.push(after.clone());
    c.ok(&["SAVE"]);

    let mut stored = files(primary.dir());
    stored.extend(files(replica.dir()));
    let names: Vec<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.iter().any(|n| n.ends_with("dump.rdb")), "{names:?}");
    assert!(names.iter().any(|n| n.contains(".aof")), "{names:?}");
    // The files do hold the sessions, by their hashes (the search can find what it looks for).
    let all: Vec<u8> = stored.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(contains(&all, &session_id(&after)));
    assert!(contains(&all, &session_id(&live[0])));
    for t in &issued {
        for (name, bytes) in &stored {
            assert!(!contains(bytes, t), "{name} holds the token {t}");
        }
        for line in seen_primary.iter().chain(&seen_replica) {
            assert!(!line.contains(t.as_str()), "MONITOR shows {t}: {line}");
        }
    }
}

#[test]
fn switching_token_hash_either_way_loses_no_session() {
    let s = Server::builder()
        .module_args(&PLAIN)
        .directive("appendonly yes")
        .start();
    let mut c = s.conn();
    let plain = c.create(r#"{"user_id":150,"k":"plain"}"#, &[]).token;
    assert!(c.exists(&plain));
    c.ok(&["CONFIG", "SET", "session.token-hash", "sha256"]);
    let hashed = c.create(r#"{"user_id":150,"k":"hashed"}"#, &[]).token;
    assert!(c.exists(session_id(&hashed)) && !c.exists(&hashed));
    assert_eq!(
        c.smembers("user_id:150"),
        set(&[&plain, &session_id(&hashed)])
    );
    for t in [&plain, &hashed] {
        assert!(c.validate(t).is_some(), "{t} after the switch to sha256");
        assert!(c.get(t).is_some());
        c.string(&["SESSION.UPDATE", t, r#"{"u":1}"#]);
    }
    // In sha256 mode LIST shows no token at all, not even the plain session's.
    assert_eq!(
        listed_ids(&mut c, "user_id", "150", false),
        set(&[&session_id(&plain), &session_id(&hashed)])
    );
    // An UPDATE left each where it was.
    assert!(c.exists(&plain) && c.exists(session_id(&hashed)));

    c.ok(&["CONFIG", "SET", "session.token-hash", "none"]);
    let plain2 = c.create(r#"{"user_id":150,"k":"plain2"}"#, &[]).token;
    assert!(c.exists(&plain2));
    for t in [&plain, &hashed, &plain2] {
        assert!(c.validate(t).is_some(), "{t} after the switch back");
    }
    // In none mode, the plain sessions show their tokens; the hashed one has none to show.
    let elements = list(&mut c, "user_id", "150");
    assert_eq!(elements.len(), 3);
    let shown: BTreeSet<String> = elements
        .iter()
        .filter_map(|m| m.get("token").map(|t| t.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(shown, set(&[&plain, &plain2]));

    // A restart with the other value at load (the AOF replays the keys as they are).
    let dir = s.shutdown();
    let s = Server::builder()
        .module_args(&HASHED)
        .directive("appendonly yes")
        .in_dir(dir)
        .start();
    let mut c = s.conn();
    for t in [&plain, &hashed, &plain2] {
        assert!(c.validate(t).is_some(), "{t} after the restart with sha256");
    }
    // ROTATE stores the new token as the setting says now.
    let rotated = parse_object(&c.string(&["SESSION.ROTATE", &plain]))["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(c.exists(session_id(&rotated)) && !c.exists(&rotated) && !c.exists(&plain));
    // MAXSESSIONS counts both kinds; REVOKEINDEX ends both kinds.
    c.create(r#"{"user_id":150}"#, &["MAXSESSIONS", "4"]);
    assert_eq!(list(&mut c, "user_id", "150").len(), 4);
    let e = c.err(&[
        "SESSION.CREATE",
        r#"{"user_id":150}"#,
        "MAXSESSIONS",
        "4",
        "DENY",
    ]);
    assert!(e.contains("4"), "{e}");
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "150"]), 4);
    for t in [&rotated, &hashed, &plain2] {
        assert_eq!(c.validate(t), None);
    }
    assert!(!c.exists("user_id:150"));
}

#[test]
fn revokeid_ends_the_one_session_list_showed() {
    for (args, tokens_shown) in [(&HASHED[..], false), (&PLAIN[..], true)] {
        let primary = Server::start(args);
        let replica = Server::builder()
            .module_args(args)
            .replica_of(&primary)
            .start();
        replica.wait_link_up();
        let mut c = primary.conn();
        c.ok(&["CONFIG", "SET", "notify-keyspace-events", "Ed"]);
        let mut events = TcpStream::connect(("127.0.0.1", primary.port())).unwrap();
        events
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        events
            .write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$29\r\n__keyevent@0__:session.revoke\r\n")
            .unwrap();
        let mut events = BufReader::new(events);
        let mut subscribed = Vec::new();
        for _ in 0..6 {
            let mut line = String::new();
            events.read_line(&mut line).unwrap();
            subscribed.push(line);
        }
        let tokens: Vec<String> = (0..3)
            .map(|i| {
                c.create(
                    &format!(r#"{{"user_id":150,"tenant":"t{i}","i":{i}}}"#),
                    &[],
                )
                .token
            })
            .collect();
        let other = c.create(r#"{"user_id":151}"#, &[]).token;
        let ids = listed_ids(&mut c, "user_id", "150", tokens_shown);
        let want: BTreeSet<String> = tokens.iter().map(|t| session_id(t)).collect();
        assert_eq!(ids, want);
        let target = session_id(&tokens[1]);
        let before = snapshot(&mut c);
        // Refused or unknown: 0, nothing written.
        for (property, value, id) in [
            ("user_id", "151", target.as_str()),
            ("user_id", "150", tokens[1].as_str()),
            ("user_id", "150", session_id(&other).as_str()),
            ("user_id", "150", UNKNOWN_TOKEN),
            ("user_id", "150", ""),
            ("user_id", "150", "ZZZ"),
            ("user_id", "150", &target[1..]),
            ("user_id", "999", target.as_str()),
        ] {
            assert_eq!(revoke_id(&mut c, property, value, id), 0, "{value} {id}");
        }
        assert_eq!(snapshot(&mut c), before, "a refused REVOKEID wrote");
        assert_eq!(revoke_id(&mut c, "user_id", "150", &target), 1);
        assert_eq!(c.validate(&tokens[1]), None);
        for t in [&tokens[0], &tokens[2], &other] {
            assert!(c.validate(t).is_some());
        }
        assert_eq!(
            listed_ids(&mut c, "user_id", "150", tokens_shown),
            set(&[&session_id(&tokens[0]), &session_id(&tokens[2])])
        );
        // It left every index it was in.
        assert!(!c.exists("tenant:t1"));
        assert_eq!(revoke_id(&mut c, "user_id", "150", &target), 0);
        assert_eq!(
            c.info_field("session", "session_revoked_by_id").as_deref(),
            Some("1")
        );
        // One session.revoke event, on the session's key.
        let mut message = Vec::new();
        for _ in 0..7 {
            let mut line = String::new();
            events.read_line(&mut line).unwrap();
            message.push(line.trim_end().to_string());
        }
        let key = if tokens_shown {
            tokens[1].clone()
        } else {
            target.clone()
        };
        assert_eq!(message.last(), Some(&key), "{message:?}");
        sync_replica(&mut c, &replica);
        assert_eq!(snapshot(&mut c), snapshot(&mut replica.conn()));
    }
}

#[test]
fn revokeid_refuses_bad_arguments_and_other_types() {
    let s = Server::start(&HASHED);
    let mut c = s.conn();
    let t = c.create(r#"{"user_id":150}"#, &[]).token;
    let id = session_id(&t);
    c.ok(&["SET", "tenant:x", "a string"]);
    let before = snapshot(&mut c);
    for (args, want) in [
        (vec!["SESSION.REVOKEID"], "wrong number of arguments"),
        (
            vec!["SESSION.REVOKEID", "user_id", "150"],
            "wrong number of arguments",
        ),
        (
            vec!["SESSION.REVOKEID", "user_id", "150", &id, "extra"],
            "wrong number of arguments",
        ),
        (
            vec!["SESSION.REVOKEID", "bogus", "150", &id],
            "not a configured index",
        ),
        (vec!["SESSION.REVOKEID", "tenant", "x", &id], "WRONGTYPE"),
    ] {
        let e = c.err(&args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // Bytes of every kind as the identifier, property or value.
    for bad in [
        "\0",
        "\u{ff}",
        "{",
        "}",
        "{06S}",
        &"a".repeat(10_000),
        "\r\n",
    ] {
        assert_eq!(revoke_id(&mut c, "user_id", "150", bad), 0);
        assert_eq!(revoke_id(&mut c, "user_id", bad, &id), 0);
        let e = c.err(&["SESSION.REVOKEID", bad, "150", &id]);
        assert!(e.starts_with("ERR"), "{e}");
    }
    assert_eq!(snapshot(&mut c), before);
    assert!(c.validate(&t).is_some());
}

#[test]
fn session_id_is_reserved_in_data() {
    let s = Server::start(&HASHED);
    let mut c = s.conn();
    let e = c.err(&["SESSION.CREATE", r#"{"user_id":1,"sessionId":"x"}"#]);
    assert!(e.contains("reserved property 'sessionId'"), "{e}");
    assert_eq!(c.dbsize(), 0, "a refused CREATE wrote");
    let t = c.create(r#"{"user_id":1}"#, &[]).token;
    let before = snapshot(&mut c);
    let e = c.err(&["SESSION.UPDATE", &t, r#"{"sessionId":"x"}"#]);
    assert!(e.contains("reserved property 'sessionId'"), "{e}");
    assert_eq!(snapshot(&mut c), before);
    // A null removes one (a session stored before the name was reserved may have it).
    let reply = c.string(&["SESSION.UPDATE", &t, r#"{"sessionId":null,"a":1}"#]);
    assert!(!keys_of(&parse_object(&reply)).contains(&"sessionId"));
}

#[test]
fn grace_records_name_the_new_session_by_its_hash() {
    let s = Server::start(&HASHED);
    let mut c = s.conn();
    let old = c.create(r#"{"user_id":150}"#, &[]).token;
    let new = parse_object(&c.string(&["SESSION.ROTATE", &old, "GRACE", "30"]))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let record = c.get_bytes(session_id(&old)).expect("the grace record");
    assert!(
        record.starts_with(b"r2 "),
        "{:?}",
        String::from_utf8_lossy(&record)
    );
    assert!(contains(&record, &session_id(&new)));
    assert!(
        !contains(&record, &new),
        "the grace record holds the new token"
    );
    assert!(
        c.validate(&old).is_some(),
        "the old token reads in its window"
    );
    assert!(c.get(&old).is_some());
    // Read-only: UPDATE and ROTATE on it reply nil.
    assert_eq!(c.cmd(&["SESSION.UPDATE", &old, "{}"]), Value::Nil);
    assert_eq!(c.cmd(&["SESSION.ROTATE", &old]), Value::Nil);
    // The record's own name, presented as a token, reads nothing.
    assert_eq!(c.validate(session_id(&old)), None);
    assert_eq!(c.smembers("user_id:150"), set(&[&session_id(&new)]));
    assert_eq!(c.int(&["SESSION.DESTROY", &old]), 1);
    assert_eq!(c.validate(&new), None);
    assert_eq!(c.dbsize(), 1, "only the secret is left: {:?}", c.keys());
}

#[test]
fn token_hash_takes_none_or_sha256() {
    let s = Server::start(&PLAIN);
    let mut c = s.conn();
    assert_eq!(c.config_get("session.token-hash"), "none");
    for bad in ["", "sha-256", "md5", "SHA256 ", "none,sha256"] {
        if bad.trim().eq_ignore_ascii_case("sha256") {
            continue;
        }
        let e = c.err(&["CONFIG", "SET", "session.token-hash", bad]);
        assert!(e.contains("is not one of none, sha256"), "{bad}: {e}");
        assert_eq!(c.config_get("session.token-hash"), "none");
    }
    c.ok(&["CONFIG", "SET", "session.token-hash", "SHA256"]);
    assert_eq!(c.config_get("session.token-hash"), "sha256");
    assert_eq!(
        c.info_field("session", "session_token_hash").as_deref(),
        Some("sha256")
    );
    let log = Server::start_expect_failure(&["token-hash", "sha512"]);
    assert!(log.contains("token-hash"), "{log}");
}

#[test]
fn client_tracking_broadcasts_no_token() {
    // A client in BCAST mode hears of every key modified: with `token-hash sha256` a token
    // must not be one of them (the module signals the hashed key it writes, not the token).
    let s = Server::start(&HASHED);
    let mut listener = TcpStream::connect(("127.0.0.1", s.port())).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut c = s.conn();
    let id = {
        listener
            .write_all(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n")
            .unwrap();
        let mut reader = BufReader::new(listener.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        line.trim_start_matches(':').trim().to_string()
    };
    listener
        .write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$20\r\n__redis__:invalidate\r\n")
        .unwrap();
    let mut reader = BufReader::new(listener);
    for _ in 0..6 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
    }
    let mut tracked = s.conn();
    tracked.ok(&["CLIENT", "TRACKING", "on", "REDIRECT", &id, "BCAST"]);
    let (issued, _) = workload(&mut c);
    c.ok(&["SET", "tracking-marker", "1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no marker invalidation: {seen:#?}"
        );
        let mut line = String::new();
        reader.read_line(&mut line).expect("an invalidation");
        if line.contains("tracking-marker") {
            break;
        }
        seen.push(line);
    }
    assert!(
        seen.iter().any(|l| l.contains("user_id:150")),
        "no invalidation of the module's keys was seen: {seen:#?}"
    );
    for t in &issued {
        assert!(
            !seen.iter().any(|l| l.contains(t.as_str())),
            "tracking sent {t}"
        );
    }
}
