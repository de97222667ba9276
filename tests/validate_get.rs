//! SESSION.VALIDATE and SESSION.GET: replies, sliding expiry and its cap, index expiry,
//! unknown, expired and malformed tokens, keys that are not sessions, and GET on a
//! read-only replica.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::{
    contents, keys_of, parse_object, sync_replica, Conn, Layout, Server, StoredSession,
    UNKNOWN_TOKEN,
};

#[test]
fn validate_returns_data_with_created_at_and_without_token() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150,"foo":"bar"}"#, &[]);
    let reply = c.validate(&created.token).expect("session found");
    let parsed = parse_object(&reply);
    assert_eq!(keys_of(&parsed), ["user_id", "foo", "createdAt"]);
    assert_eq!(parsed["createdAt"], created.reply["createdAt"]);
    assert_eq!(reply, created.data_text());
    assert_eq!(c.stored(&created.token).data, reply);
}

#[test]
fn get_replies_exactly_as_validate() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(r#"{"a":[1,{"b":null}],"c":"Zoë"}"#, &[]);
    let got = c.get(&created.token).expect("GET finds the session");
    assert_eq!(Some(got), c.validate(&created.token));
}

#[test]
fn validate_slides_expiry_forward() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(r#"{"a":1}"#, &["TTL", "100"]);
    let at_create = c.pexpiretime(&created.token);
    // Stand in for time passing: the session has 5 s left.
    c.ok(&["PEXPIRE", &created.token, "5000"]);
    let t0 = c.time_ms();
    assert!(c.validate(&created.token).is_some());
    let t1 = c.time_ms();
    let exp = c.pexpiretime(&created.token);
    assert!(
        (t0 + 100_000..=t1 + 100_000).contains(&exp),
        "expiry {exp} not now + TTL ({t0}..{t1})"
    );
    // And with real time passing, it moves past where CREATE put it.
    sleep(Duration::from_millis(25));
    assert!(c.validate(&created.token).is_some());
    let later = c.pexpiretime(&created.token);
    assert!(
        later > at_create,
        "expiry {later} did not move past {at_create}"
    );
}

#[test]
fn validate_slides_by_the_session_ttl_not_the_setting() {
    let s = Server::start(&["ttl", "50"]);
    let mut c = s.conn();
    let created = c.create("{}", &["TTL", "300"]);
    c.ok(&["CONFIG", "SET", "session.ttl", "9"]);
    c.ok(&["PEXPIRE", &created.token, "1000"]);
    let t0 = c.time_ms();
    assert!(c.validate(&created.token).is_some());
    let t1 = c.time_ms();
    let exp = c.pexpiretime(&created.token);
    assert!((t0 + 300_000..=t1 + 300_000).contains(&exp), "{exp}");
}

#[test]
fn validate_never_prolongs_past_max_lifetime() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(r#"{"a":1}"#, &["TTL", "100", "MAXLIFETIME", "50"]);
    let deadline = c.stored(&created.token).deadline;
    assert!(deadline > 0);
    assert_eq!(c.pexpiretime(&created.token), deadline);
    assert!(c.validate(&created.token).is_some());
    assert_eq!(c.pexpiretime(&created.token), deadline);
}

#[test]
fn validate_caps_expiry_at_deadline_as_it_nears() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(r#"{"a":1}"#, &["TTL", "100", "MAXLIFETIME", "1000"]);
    // Stand in for 970 s passing: 30 s left of the lifetime, 2 s of idle time.
    let near = c.time_ms() + 30_000;
    let mut stored = c.stored(&created.token);
    stored.deadline = near;
    let idle_end = c.time_ms() + 2000;
    c.write_v2(&created.token, "", &stored, idle_end);
    assert!(c.validate(&created.token).is_some());
    assert_eq!(c.pexpiretime(&created.token), near);
    assert_eq!(c.stored(&created.token).deadline, near);
    // The same for a 0.1.0 hash.
    let old = "0123456789abcdef0123456789abcdef0123456789abcde0";
    let near = c.time_ms() + 30_000;
    let idle_end = c.time_ms() + 2000;
    c.write_v010(old, r#"{"a":2}"#, 100, near, &[], idle_end);
    assert_eq!(c.validate(old).as_deref(), Some(r#"{"a":2}"#));
    assert_eq!(c.pexpiretime(old), near);
}

#[test]
fn validate_raises_index_key_expiry() {
    let s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150,"tenant_id":"t"}"#, &["TTL", "100"]);
    c.ok(&["PEXPIRE", "user_id:150", "1000"]);
    c.ok(&["PEXPIRE", "tenant_id:t", "1000"]);
    assert!(c.validate(&created.token).is_some());
    let exp = c.pexpiretime(&created.token);
    assert!(c.pexpiretime("user_id:150") >= exp);
    assert!(c.pexpiretime("tenant_id:t") >= exp);
}

/// A VALIDATE that leaves the session's expiry where it is (here capped by its max lifetime,
/// which is what the same millisecond does by chance) still raises a hand-shortened index
/// expiry with renew-interval 0.
#[test]
fn validate_raises_index_key_expiry_when_the_session_expiry_stays() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &["TTL", "100", "MAXLIFETIME", "100"]);
    let exp = c.pexpiretime(&created.token);
    c.ok(&["PEXPIRE", "user_id:150", "1000"]);
    assert!(c.validate(&created.token).is_some());
    assert_eq!(
        c.pexpiretime(&created.token),
        exp,
        "capped by the max lifetime"
    );
    assert!(c.pexpiretime("user_id:150") >= exp);
}

#[test]
fn validate_leaves_persistent_index_persistent() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &[]);
    c.ok(&["PERSIST", "user_id:150"]);
    assert!(c.validate(&created.token).is_some());
    assert_eq!(c.pexpiretime("user_id:150"), -1);
}

/// SPEC revision 4: a session whose index set is gone (here deleted and replaced by a
/// string by hand) could no longer be revoked by value, so it ends (fail closed): at once on
/// servers with key events, at its next VALIDATE on 7.0. The foreign key is left alone.
#[test]
fn validate_ends_a_session_whose_index_key_was_replaced_and_leaves_that_key_alone() {
    let s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150,"tenant_id":"t"}"#, &[]);
    let other = c.create(r#"{"tenant_id":"t"}"#, &[]);
    c.ok(&["DEL", "user_id:150"]);
    c.ok(&["SET", "user_id:150", "precious", "PX", "100000"]);
    let exp = c.pexpiretime("user_id:150");
    assert_eq!(
        c.get(&created.token),
        None,
        "GET of a session without its index"
    );
    assert_eq!(c.validate(&created.token), None, "the session ended");
    assert!(!c.exists(&created.token));
    assert_eq!(c.smembers("tenant_id:t"), [other.token.clone()].into());
    assert_eq!(c.string(&["GET", "user_id:150"]), "precious");
    assert_eq!(c.pexpiretime("user_id:150"), exp);
    assert!(c.validate(&other.token).is_some());
}

#[test]
fn unknown_token_is_nil() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create("{}", &[]);
    let before = c.keys();
    assert_eq!(before.len(), 2, "the session and the secret");
    assert_eq!(c.validate(UNKNOWN_TOKEN), None);
    assert_eq!(c.get(UNKNOWN_TOKEN), None);
    assert_eq!(c.keys(), before);
    assert!(c.exists(&created.token));
}

#[test]
fn expired_session_is_nil() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":1}"#, &["TTL", "1"]);
    assert!(c.get(&created.token).is_some());
    sleep(Duration::from_millis(1100));
    assert_eq!(c.validate(&created.token), None);
    assert_eq!(c.get(&created.token), None);
    assert!(!c.exists(&created.token));
}

#[test]
fn deleted_session_is_nil() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create("{}", &[]);
    c.ok(&["DEL", &created.token]);
    assert_eq!(c.validate(&created.token), None);
    assert_eq!(
        c.keys(),
        [b"session-secret".to_vec()],
        "validate must not recreate anything (the secret stays)"
    );
}

/// Checks VALIDATE and GET treat `name` as unknown and leave whatever it holds exactly as it
/// was (value and expiry).
fn assert_unknown_and_untouched(c: &mut Conn, name: &[u8], what: &str) {
    let shown = String::from_utf8_lossy(name).into_owned();
    let kind = c.key_type(name);
    let exp = c.pexpiretime(name);
    let before = contents(c, name, &kind);
    assert_eq!(c.validate(name), None, "VALIDATE {shown:?} ({what})");
    assert_eq!(c.get(name), None, "GET {shown:?} ({what})");
    assert_eq!(
        c.pexpiretime(name),
        exp,
        "{shown:?} ({what}): expiry changed"
    );
    assert_eq!(c.key_type(name), kind, "{shown:?} ({what}): type changed");
    assert_eq!(
        contents(c, name, &kind),
        before,
        "{shown:?} ({what}): value changed"
    );
    c.ping();
}

/// Puts at `name`, in turn, what would be a live session under a well-formed token: a
/// layout-2 copy of the session at `source` correctly tagged for `name`, the same session
/// as a 0.1.0 hash, and a byte-for-byte `COPY` of `source`. Checks VALIDATE and GET treat
/// `name` as unknown each time and leave it as it was.
fn assert_malformed_token_is_unknown(c: &mut Conn, source: &str, name: &[u8]) {
    let shown = String::from_utf8_lossy(name).into_owned();
    let session = c.stored(source);
    assert_eq!(session.layout, Layout::V2);
    let exp = c.pexpiretime(source);
    let secret = c.secret("").expect("the secret");
    let tagged = session.encode_v2(&secret, name);
    assert!(StoredSession::parse_v2(&tagged).is_some());
    c.ok(&[
        b"SET".as_slice(),
        name,
        &tagged,
        b"PXAT",
        exp.to_string().as_bytes(),
    ]);
    assert_unknown_and_untouched(c, name, "tagged for its name");
    c.ok(&[b"DEL".as_slice(), name]);

    let ttl = session.ttl.to_string();
    let deadline = session.deadline.to_string();
    c.ok(&[
        b"HSET".as_slice(),
        name,
        b"data",
        session.data.as_bytes(),
        b"ttl",
        ttl.as_bytes(),
        b"deadline",
        deadline.as_bytes(),
    ]);
    c.ok(&[b"PEXPIREAT".as_slice(), name, exp.to_string().as_bytes()]);
    assert_unknown_and_untouched(c, name, "0.1.0 hash");
    c.ok(&[b"DEL".as_slice(), name]);

    assert_eq!(
        c.int(&[b"COPY".as_slice(), source.as_bytes(), name]),
        1,
        "COPY to {shown:?}"
    );
    assert_unknown_and_untouched(c, name, "copy of another session");
    c.ok(&[b"DEL".as_slice(), name]);
}

/// A name that is not a well-formed token is never a session, whatever its key holds.
#[test]
fn malformed_tokens_are_nil_even_when_their_key_looks_like_a_session() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let created = c.create(r#"{"a":1}"#, &[]);
    let t = created.token.clone();
    let cases: Vec<Vec<u8>> = vec![
        t.to_uppercase().into_bytes(),
        format!("{}A", &t[..47]).into_bytes(),
        t.as_bytes()[..31].to_vec(),
        "a".repeat(257).into_bytes(),
        "g".repeat(48).into_bytes(),
        format!("{} ", &t[..47]).into_bytes(),
        format!("{}\n", &t[..47]).into_bytes(),
        b"0123456789abcdef0123456789abcdef\x00".to_vec(),
        {
            let mut b = t.as_bytes()[..46].to_vec();
            b.extend_from_slice(&[0xff, 0xfe]);
            b
        },
        "é".repeat(24).into_bytes(),
        b"".to_vec(),
    ];
    for name in &cases {
        assert_malformed_token_is_unknown(&mut c, &t, name);
    }
    assert_eq!(
        c.validate(&t).as_deref(),
        Some(created.data_text().as_str())
    );
}

#[test]
fn token_length_bounds_are_32_and_256_hex_chars() {
    let s = Server::start(&["token-bytes", "16"]);
    let mut c = s.conn();
    let short = c.create(r#"{"n":32}"#, &[]).token;
    assert_eq!(short.len(), 32);
    c.ok(&["CONFIG", "SET", "session.token-bytes", "128"]);
    let long = c.create(r#"{"n":256}"#, &[]).token;
    assert_eq!(long.len(), 256);
    assert!(c.validate(&short).is_some(), "32-char token");
    assert!(c.get(&long).is_some(), "256-char token");
    assert!(c.validate(&long).is_some(), "256-char token");
    // One character more or fewer is malformed, whatever the key holds.
    let long_plus = format!("{long}0");
    assert_malformed_token_is_unknown(&mut c, &long, long_plus.as_bytes());
    assert_malformed_token_is_unknown(&mut c, &short, &short.as_bytes()[..31]);
}

/// Checks VALIDATE and GET on `key` reply nil and leave its value and expiry unchanged.
fn assert_not_a_session(c: &mut Conn, key: &str, dump_cmd: &[&str]) {
    let value = c.cmd(dump_cmd);
    let exp = c.pexpiretime(key);
    let dbsize = c.dbsize();
    assert_eq!(c.validate(key), None, "VALIDATE on non-session {key}");
    assert_eq!(c.get(key), None, "GET on non-session {key}");
    assert_eq!(c.cmd(dump_cmd), value, "{key} changed");
    assert_eq!(c.pexpiretime(key), exp, "{key}: expiry changed");
    assert_eq!(c.dbsize(), dbsize);
    c.ping();
}

fn hex_name(i: u8) -> String {
    format!("{:02x}", i).repeat(24)
}

#[test]
fn npm_library_hash_is_not_a_session() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    // What ca-session-service wrote: the data's properties as hash fields.
    let persistent = hex_name(1);
    c.ok(&[
        "HSET",
        &persistent,
        "user_id",
        "150",
        "foo",
        "bar",
        "createdAt",
        "2015-10-25 20:14:10",
    ]);
    assert_not_a_session(&mut c, &persistent, &["HGETALL", &persistent]);
    assert_eq!(
        c.pexpiretime(&persistent),
        -1,
        "PERSISTed key stays persistent"
    );
    let expiring = hex_name(2);
    c.ok(&["HSET", &expiring, "user_id", "150", "foo", "bar"]);
    c.ok(&["PEXPIRE", &expiring, "100000"]);
    assert_not_a_session(&mut c, &expiring, &["HGETALL", &expiring]);
}

#[test]
fn keys_of_other_types_are_not_sessions() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let string = hex_name(3);
    c.ok(&["SET", &string, r#"{"a":1}"#, "PX", "100000"]);
    assert_not_a_session(&mut c, &string, &["GET", &string]);
    // Strings in layout 2's shape, with no secret in the dataset to sign them.
    let shaped = hex_name(8);
    c.ok(&[
        "SET",
        &shaped,
        "s2 0123456789abcdef 100 0\n{\"a\":1}",
        "PX",
        "100000",
    ]);
    assert_not_a_session(&mut c, &shaped, &["GET", &shaped]);
    assert_eq!(c.secret(""), None, "VALIDATE made no secret");
    let set = hex_name(4);
    c.ok(&["SADD", &set, "data", "ttl", "deadline"]);
    assert_not_a_session(&mut c, &set, &["SMEMBERS", &set]);
    let list = hex_name(5);
    c.ok(&["RPUSH", &list, "data", "{}"]);
    c.ok(&["PEXPIRE", &list, "100000"]);
    assert_not_a_session(&mut c, &list, &["LRANGE", &list, "0", "-1"]);
    let zset = hex_name(6);
    c.ok(&["ZADD", &zset, "1", "data"]);
    assert_not_a_session(&mut c, &zset, &["ZRANGE", &zset, "0", "-1", "WITHSCORES"]);
    let stream = hex_name(7);
    c.ok(&["XADD", &stream, "1-1", "data", "{}"]);
    assert_not_a_session(&mut c, &stream, &["XRANGE", &stream, "-", "+"]);
    // Once the dataset has a secret, the made-up tag is still not the one it gives that key.
    c.create("{}", &[]);
    assert!(c.secret("").is_some());
    assert_not_a_session(&mut c, &shaped, &["GET", &shaped]);
    assert_not_a_session(&mut c, &string, &["GET", &string]);
}

/// 0.1.0 hashes are still sessions, but only with every field well-formed.
#[test]
fn hashes_missing_or_spoiling_session_fields_are_not_sessions() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let cases: [&[&str]; 9] = [
        &["data", r#"{"a":1}"#],
        &["data", r#"{"a":1}"#, "ttl", "100"],
        &["data", r#"{"a":1}"#, "deadline", "0"],
        &["ttl", "100", "deadline", "0"],
        &["data", r#"{"a":1}"#, "ttl", "abc", "deadline", "0"],
        &["data", r#"{"a":1}"#, "ttl", "0", "deadline", "0"],
        &["data", r#"{"a":1}"#, "ttl", "315360001", "deadline", "0"],
        &["data", r#"{"a":1}"#, "ttl", "100", "deadline", "-1"],
        &["data", r#"["a"]"#, "ttl", "100", "deadline", "0"],
    ];
    for (i, fields) in cases.iter().enumerate() {
        let key = hex_name(16 + i as u8);
        let mut hset = vec!["HSET", key.as_str()];
        hset.extend_from_slice(fields);
        c.ok(&hset);
        c.ok(&["PEXPIRE", &key, "100000"]);
        assert_not_a_session(&mut c, &key, &["HGETALL", &key]);
    }
    // The same fields done right are a session: the checks above are about the fields.
    let good = hex_name(200);
    c.ok(&[
        "HSET",
        &good,
        "data",
        r#"{"a":1}"#,
        "ttl",
        "100",
        "deadline",
        "0",
    ]);
    assert_eq!(c.get(&good).as_deref(), Some(r#"{"a":1}"#));
}

#[test]
fn get_prolongs_nothing() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":150}"#, &["TTL", "100"]);
    c.ok(&["PEXPIRE", &created.token, "50000"]);
    c.ok(&["PEXPIRE", "user_id:150", "50000"]);
    let exp = c.pexpiretime(&created.token);
    let idx_exp = c.pexpiretime("user_id:150");
    let value = c.get_bytes(&created.token).expect("the session");
    sleep(Duration::from_millis(5));
    assert!(c.get(&created.token).is_some());
    assert_eq!(c.pexpiretime(&created.token), exp);
    assert_eq!(c.pexpiretime("user_id:150"), idx_exp);
    assert_eq!(c.get_bytes(&created.token), Some(value));
}

#[test]
fn get_works_on_read_only_replica_with_module() {
    let primary = Server::start(&["indexes", "user_id"]);
    let replica = Server::builder()
        .module_args(&["indexes", "user_id"])
        .replica_of(&primary)
        .start();
    replica.wait_link_up();
    let mut p = primary.conn();
    let created = p.create(r#"{"user_id":150,"n":1.0}"#, &[]);
    sync_replica(&mut p, &replica);
    let mut r = replica.conn();
    let exp = r.pexpiretime(&created.token);
    assert_eq!(
        r.get(&created.token).as_deref(),
        Some(created.data_text().as_str())
    );
    assert_eq!(r.get(UNKNOWN_TOKEN), None);
    assert_eq!(r.pexpiretime(&created.token), exp);
    // VALIDATE writes, so a read-only replica refuses it.
    let e = r.err(&["SESSION.VALIDATE", &created.token]);
    assert!(e.starts_with("READONLY"), "{e}");
}

#[test]
fn validate_and_get_refuse_wrong_arity() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for name in ["session.validate", "session.get"] {
        for args in [vec![name], vec![name, UNKNOWN_TOKEN, "extra"]] {
            assert_eq!(
                c.err(&args),
                format!("ERR wrong number of arguments for '{name}' command")
            );
        }
    }
    let upper = c.err(&["SESSION.VALIDATE"]);
    assert_eq!(
        upper,
        "ERR wrong number of arguments for 'session.validate' command"
    );
}

/// `renew-interval r`: VALIDATE rewrites the expiry only when at most TTL − r remains, and a
/// VALIDATE that rewrites nothing writes and replicates nothing (the replication offset
/// stays), while one past the threshold slides the expiry as without the setting.
#[test]
fn renew_interval_makes_validations_inside_it_write_nothing() {
    let primary = Server::start(&["indexes", "user_id", "ttl", "600", "renew-interval", "60"]);
    let replica = Server::start_replica_without_module(&primary);
    let mut c = primary.conn();
    let t = c.create(r#"{"user_id":1}"#, &[]).token;
    sync_replica(&mut c, &replica);
    let exp = c.pexpiretime(&t);
    let offset = common::repl_offset(&mut c, "master_repl_offset");
    for _ in 0..100 {
        assert!(c.validate(&t).is_some());
    }
    assert_eq!(c.pexpiretime(&t), exp, "inside the interval: not slid");
    assert_eq!(
        common::repl_offset(&mut c, "master_repl_offset"),
        offset,
        "inside the interval: nothing replicated"
    );
    // 530 s left (< 600 - 60): the next VALIDATE slides it to now + 600 s.
    c.ok(&["PEXPIRE", &t, "530000"]);
    let before = c.time_ms();
    assert!(c.validate(&t).is_some());
    let slid = c.pexpiretime(&t);
    assert!(slid >= before + 600_000, "{slid} not now + 600 s");
    sync_replica(&mut c, &replica);
    assert_eq!(replica.conn().pexpiretime(&t), slid);
    // 0 (the default) slides on every VALIDATE.
    c.ok(&["CONFIG", "SET", "session.renew-interval", "0"]);
    sleep(Duration::from_millis(5));
    assert!(c.validate(&t).is_some());
    assert!(c.pexpiretime(&t) > slid);
}
