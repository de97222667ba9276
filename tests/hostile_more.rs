//! Hostile input against every command, beyond tests/hostile.rs: malformed tokens and tokens
//! that name keys the module did not write, index keys taken by other types, NUL bytes,
//! invalid UTF-8 in every argument position, 100,000-deep nesting, numbers beyond i64 and
//! f64, oversized data, wrong arities, unknown options and bad TTLs.
//!
//! Every case asserts the exact reply and that nothing outside what the command may write
//! changed (type, full value, and `PEXPIRETIME` of every key). Each test ends by checking
//! that the same server process still answers and logged no caught panic. Run with
//! `--nocapture` to see every case and the reply it got (`CASE ... -> ...` lines).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use redis::Value;

use common::{contents, error_text, tag_v2, Conn, Contents, Server};

const MODULE_ARGS: &[&str] = &["indexes", "user_id,tenant_id"];

/// Everything observable about a key: its type, its value as its type's read command
/// returns it (order normalised where the type has none, see [`Contents`]), and its absolute
/// expiry in ms (-1 when persistent).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyState {
    kind: String,
    value: Contents,
    pexpiretime: i64,
}

fn key_state(c: &mut Conn, key: &[u8]) -> Option<KeyState> {
    let kind = c.key_type(key);
    if kind == "none" {
        return None;
    }
    let value = contents(c, key, &kind);
    let pexpiretime = c.pexpiretime(key);
    Some(KeyState {
        kind,
        value,
        pexpiretime,
    })
}

/// The state of every key in the database.
fn snapshot(c: &mut Conn) -> BTreeMap<Vec<u8>, KeyState> {
    c.keys()
        .into_iter()
        .filter_map(|k| key_state(c, &k).map(|s| (k, s)))
        .collect()
}

/// Panics naming the keys that differ between two snapshots.
fn assert_unchanged(
    before: &BTreeMap<Vec<u8>, KeyState>,
    after: &BTreeMap<Vec<u8>, KeyState>,
    what: &str,
) {
    if before == after {
        return;
    }
    let names: BTreeSet<&Vec<u8>> = before.keys().chain(after.keys()).collect();
    let changed: Vec<String> = names
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "{}: {:?} -> {:?}",
                shown(k),
                before.get(k).map(|s| (&s.kind, s.pexpiretime)),
                after.get(k).map(|s| (&s.kind, s.pexpiretime))
            )
        })
        .collect();
    panic!("{what} changed keys: {changed:#?}");
}

/// Bytes for a message: printable ASCII as is, everything else escaped, long ones cut.
fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(60) {
        if (0x20..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > 60 {
        out.push_str(&format!("...({} bytes)", bytes.len()));
    }
    out
}

/// A reply in one line, as redis-cli would show it (bulk strings cut at 100 bytes).
fn describe(v: &Value) -> String {
    match v {
        Value::Nil => "(nil)".into(),
        Value::Int(i) => format!("(integer) {i}"),
        Value::BulkString(b) if b.len() > 100 => {
            format!("\"{}...\" ({} bytes)", shown(&b[..100]), b.len())
        }
        Value::BulkString(b) => format!("\"{}\"", shown(b)),
        Value::Array(items) if items.is_empty() => "(empty array)".into(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(describe).collect::<Vec<_>>().join(", ")
        ),
        Value::ServerError(_) => format!("(error) {}", error_text(v).unwrap_or_default()),
        other => format!("{other:?}"),
    }
}

/// Sends `args`, prints the case and its reply, and returns the reply.
fn case<A: AsRef<[u8]>>(c: &mut Conn, args: &[A]) -> Value {
    let v = c.cmd(args);
    let line: Vec<String> = args.iter().map(|a| shown(a.as_ref())).collect();
    println!("CASE {} -> {}", line.join(" "), describe(&v));
    v
}

/// Sends `args` and asserts the reply is exactly `want` and that no key changed.
fn expect_same_db<A: AsRef<[u8]>>(c: &mut Conn, args: &[A], want: &Value) {
    let before = snapshot(c);
    let got = case(c, args);
    let line: Vec<String> = args.iter().map(|a| shown(a.as_ref())).collect();
    assert_eq!(&got, want, "{}", line.join(" "));
    assert_unchanged(&before, &snapshot(c), &line.join(" "));
}

/// Sends `args` and asserts an error reply with exactly `want` (`CODE detail`), and that no
/// key changed.
fn expect_error<A: AsRef<[u8]>>(c: &mut Conn, args: &[A], want: &str) {
    let before = snapshot(c);
    let got = case(c, args);
    let line: Vec<String> = args.iter().map(|a| shown(a.as_ref())).collect();
    assert_eq!(
        error_text(&got).as_deref(),
        Some(want),
        "{}: {got:?}",
        line.join(" ")
    );
    assert_unchanged(&before, &snapshot(c), &line.join(" "));
}

/// The same server process answers PING and has logged no caught panic.
fn assert_same_server(s: &mut Server) {
    s.assert_alive();
    let mut c = s.conn();
    c.ping();
    let info = c.string(&["INFO", "server"]);
    let pid = format!("process_id:{}", s.pid());
    assert!(
        info.lines().any(|l| l.trim() == pid),
        "another process answers"
    );
    let log = s.log();
    assert!(
        !log.contains("caught a panic"),
        "the module panicked (caught); log:\n{log}"
    );
}

fn nil() -> Value {
    Value::Nil
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

fn empty() -> Value {
    Value::Array(Vec::new())
}

/// The tokens in a LIST reply.
fn listed_tokens(v: &Value) -> BTreeSet<String> {
    let Value::Array(items) = v else {
        panic!("LIST: expected an array, got {v:?}");
    };
    items
        .iter()
        .map(|item| {
            let text = common::as_string(item).expect("LIST element is a string");
            common::parse_object(&text)["token"]
                .as_str()
                .expect("token")
                .to_string()
        })
        .collect()
}

/// A 48-character lowercase hex name that no session will get.
fn hex_name(i: u64) -> String {
    format!("{:048x}", 0x00ba_d000_0000 + i)
}

/// Writes one key of each kind the module must leave alone, each at a well-formed token
/// name (and some at the edge lengths 32 and 256), some with an expiry and some without.
/// Returns their names.
fn plant_non_sessions(c: &mut Conn) -> Vec<String> {
    let names: Vec<String> = (0..11).map(hex_name).collect();
    let n = |i: usize| names[i].as_str();
    // A hash as the npm library wrote sessions.
    c.ok(&[
        "HSET",
        n(0),
        "user_id",
        "150",
        "foo",
        "bar",
        "createdAt",
        "2020-01-01 00:00:00",
    ]);
    c.ok(&["PEXPIRE", n(0), "3600000"]);
    // Hashes that have the module's fields, but not all, or not in range.
    c.ok(&[
        "HSET",
        n(1),
        "data",
        r#"{"user_id":1}"#,
        "ttl",
        "0",
        "deadline",
        "0",
    ]);
    c.ok(&["HSET", n(2), "data", r#"{"user_id":1}"#, "ttl", "60"]);
    c.ok(&["PEXPIRE", n(2), "7200000"]);
    c.ok(&[
        "HSET",
        n(3),
        "data",
        r#"{"user_id":1}"#,
        "ttl",
        "60",
        "deadline",
        "0",
        "indexes",
        "not json",
    ]);
    c.ok(&[
        "HSET",
        n(4),
        "data",
        "user_id=1",
        "ttl",
        "60",
        "deadline",
        "0",
    ]);
    c.ok(&["SET", n(5), r#"{"user_id":1}"#, "PX", "3600000"]);
    c.ok(&["SADD", n(6), "a", "b"]);
    c.ok(&["RPUSH", n(7), "a", "b"]);
    c.ok(&["PEXPIRE", n(7), "3600000"]);
    c.ok(&["ZADD", n(8), "1", "a"]);
    c.ok(&["XADD", n(9), "*", "f", "v"]);
    c.ok(&["PEXPIRE", n(9), "3600000"]);
    c.ok(&["SET", n(10), "x"]);
    let mut all = names.clone();
    let short = "b".repeat(32);
    let long = "c".repeat(256);
    c.ok(&["SET", &short, "short", "PX", "3600000"]);
    c.ok(&["HSET", &long, "ttl", "60", "deadline", "0"]);
    all.push(short);
    all.push(long);
    all
}

/// Keys of other types at an index key's name: string, list, hash, zset, stream.
const OTHER_KINDS: [&str; 5] = ["string", "list", "hash", "zset", "stream"];

/// Writes a key of `kind` at `name`, with an expiry an hour away.
fn plant_kind(c: &mut Conn, kind: &str, name: &str) {
    match kind {
        "string" => c.ok(&["SET", name, "not a set"]),
        "list" => c.ok(&["RPUSH", name, "a"]),
        "hash" => c.ok(&["HSET", name, "f", "v"]),
        "zset" => c.ok(&["ZADD", name, "1", "a"]),
        "stream" => c.ok(&["XADD", name, "*", "f", "v"]),
        other => panic!("unknown kind {other}"),
    };
    c.ok(&["PEXPIRE", name, "3600000"]);
}

fn wrongtype(key: &str) -> String {
    format!("WRONGTYPE index key '{key}' holds a value that is not a set")
}

// ---------------------------------------------------------------------------------------

/// Every command on a malformed token replies as to an unknown one and changes nothing; and
/// LIST and REVOKEINDEX of `user_id:1`, which lists every malformed name, show and revoke
/// nothing but the real session `t`.
fn assert_malformed_names_unknown(c: &mut Conn, malformed: &[Vec<u8>], t: &str) {
    for name in malformed {
        let n = name.as_slice();
        expect_same_db(c, &[b"SESSION.VALIDATE".as_slice(), n], &nil());
        expect_same_db(c, &[b"SESSION.GET".as_slice(), n], &nil());
        expect_same_db(
            c,
            &[b"SESSION.UPDATE".as_slice(), n, br#"{"user_id":2}"#],
            &nil(),
        );
        expect_same_db(c, &[b"SESSION.DESTROY".as_slice(), n], &int(0));
    }
    // LIST shows only the real session and leaves the other members (their keys exist).
    let before = snapshot(c);
    let listed = case(c, &["SESSION.LIST", "user_id", "1"]);
    assert_eq!(listed_tokens(&listed), BTreeSet::from([t.to_string()]));
    assert_unchanged(&before, &snapshot(c), "LIST");
    expect_same_db(
        c,
        &["SESSION.REVOKEINDEX", "user_id", "1", "EXCEPT", t],
        &int(0),
    );
}

/// Tokens that are not lowercase hex of 32..256 characters are unknown to every command,
/// even where a key that would pass for a session sits at exactly that key name and the
/// name is a member of an index: first a 0.1.0 hash with valid fields, then a layout-2
/// string tagged with the dataset's secret for that very name. Nothing is read, prolonged
/// or deleted.
#[test]
fn malformed_tokens_are_unknown_to_every_command_even_over_session_like_hashes() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let real = c.create(r#"{"user_id":1,"tenant_id":"acme"}"#, &[]);
    let t = real.token.as_str();
    let mut malformed: Vec<Vec<u8>> = vec![
        Vec::new(),
        b" ".to_vec(),
        "a".repeat(31).into_bytes(),
        "a".repeat(257).into_bytes(),
        t.to_uppercase().into_bytes(),
        format!("{}A", &t[..t.len() - 1]).into_bytes(),
        format!("{}g", &t[..t.len() - 1]).into_bytes(),
        format!("{t} ").into_bytes(),
        format!(" {t}").into_bytes(),
        format!("{t}\n").into_bytes(),
        format!("{t}\0").into_bytes(),
        t.as_bytes()[..31].to_vec(),
        "ä".repeat(16).into_bytes(),
        "0".repeat(1 << 20).into_bytes(),
        b"tenant_id:zz".to_vec(),
        b"*".to_vec(),
    ];
    let mut invalid_utf8 = vec![0xffu8, 0xfe];
    invalid_utf8.extend_from_slice(&t.as_bytes()[2..]);
    malformed.push(invalid_utf8);
    // At every malformed name, a hash with valid session fields and an expiry, listed in
    // the index user_id:1 next to the real session.
    for name in &malformed {
        c.ok(&[
            b"HSET".as_slice(),
            name,
            b"data",
            br#"{"user_id":1}"#,
            b"ttl",
            b"60",
            b"deadline",
            b"0",
            b"indexes",
            br#"["user_id:1"]"#,
        ]);
        c.ok(&[b"PEXPIRE".as_slice(), name, b"3600000"]);
        c.ok(&[b"SADD".as_slice(), b"user_id:1", name]);
    }
    assert_malformed_names_unknown(&mut c, &malformed, t);

    // The same names now hold layout-2 strings with the tag the module would give a session
    // of that name: what makes them no session is the name alone.
    let secret = c.secret("").expect("the first CREATE makes the secret");
    let fake = common::StoredSession {
        layout: common::Layout::V2,
        tag: None,
        data: r#"{"user_id":1}"#.to_string(),
        ttl: 60,
        deadline: 0,
        indexes: Some(vec!["user_id:1".to_string()]),
    };
    for name in &malformed {
        let value = fake.encode_v2(&secret, name);
        assert!(common::StoredSession::parse_v2(&value).is_some());
        c.ok(&[b"SET".as_slice(), name, &value, b"PX", b"3600000"]);
        c.ok(&[b"SADD".as_slice(), b"user_id:1", name]);
        assert_eq!(c.key_type(name), "string");
    }
    assert_malformed_names_unknown(&mut c, &malformed, t);

    // EXCEPT with the token in capitals names another string: the real session goes, and
    // nothing else is touched.
    let upper = t.to_uppercase();
    let mut before = snapshot(&mut c);
    let v = case(
        &mut c,
        &["SESSION.REVOKEINDEX", "user_id", "1", "EXCEPT", &upper],
    );
    assert_eq!(v, int(1));
    before.remove(t.as_bytes());
    before.remove(b"tenant_id:acme".as_slice());
    let mut after = snapshot(&mut c);
    // The index set lost the real token: check its members here, not its whole state.
    let members = c.smembers("user_id:1");
    assert_eq!(members.len(), malformed.len());
    assert!(!members.contains(t));
    before.remove(b"user_id:1".as_slice());
    after.remove(b"user_id:1".as_slice());
    assert_unchanged(&before, &after, "REVOKEINDEX ... EXCEPT <capitals>");
    assert_same_server(&mut s);
}

/// Well-formed tokens that name keys the module did not write (an npm-library hash, hashes
/// with some of the module's fields, a string, set, list, zset, stream) are unknown: nil or
/// 0, and every such key keeps its value and expiry, even when listed in an index.
#[test]
fn tokens_naming_non_session_keys_are_unknown_and_their_keys_untouched() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let victims = plant_non_sessions(&mut c);
    let real = c.create(r#"{"user_id":7}"#, &[]);
    for v in &victims {
        let v = v.as_str();
        expect_same_db(&mut c, &["SESSION.VALIDATE", v], &nil());
        expect_same_db(&mut c, &["SESSION.GET", v], &nil());
        expect_same_db(&mut c, &["SESSION.UPDATE", v, r#"{"a":1}"#], &nil());
        expect_same_db(&mut c, &["SESSION.UPDATE", v, r#"{"user_id":8}"#], &nil());
        expect_same_db(&mut c, &["SESSION.DESTROY", v], &int(0));
    }
    // In an index, such members are neither listed, nor revoked, nor pruned.
    for v in &victims {
        c.ok(&["SADD", "user_id:7", v]);
    }
    let before = snapshot(&mut c);
    let listed = case(&mut c, &["SESSION.LIST", "user_id", "7"]);
    assert_eq!(listed_tokens(&listed), BTreeSet::from([real.token.clone()]));
    assert_unchanged(&before, &snapshot(&mut c), "LIST");
    expect_same_db(
        &mut c,
        &["SESSION.REVOKEINDEX", "user_id", "7", "EXCEPT", &real.token],
        &int(0),
    );
    let mut before = snapshot(&mut c);
    assert_eq!(
        case(
            &mut c,
            &["SESSION.REVOKEINDEX", "user_id", "7", "EXCEPT", &victims[0]]
        ),
        int(1)
    );
    let mut after = snapshot(&mut c);
    assert!(!c.exists(&real.token));
    let want: BTreeSet<String> = victims.iter().cloned().collect();
    assert_eq!(c.smembers("user_id:7"), want);
    for state in [&mut before, &mut after] {
        state.remove(real.token.as_bytes());
        state.remove(b"user_id:7".as_slice());
    }
    assert_unchanged(&before, &after, "REVOKEINDEX");
    assert_same_server(&mut s);
}

/// Every command given the well-formed token `name` treats it as unknown (nil or 0) and
/// changes no key: not its value, not its expiry, not an index set.
fn assert_token_unknown(c: &mut Conn, name: &str) {
    expect_same_db(c, &["SESSION.VALIDATE", name], &nil());
    expect_same_db(c, &["SESSION.GET", name], &nil());
    expect_same_db(c, &["SESSION.UPDATE", name, r#"{"a":1}"#], &nil());
    expect_same_db(
        c,
        &["SESSION.UPDATE", name, r#"{"user_id":78,"tenant_id":null}"#],
        &nil(),
    );
    expect_same_db(c, &["SESSION.DESTROY", name], &int(0));
}

/// The same text with its 16 tag digits replaced by `tag` (which need not be hex).
fn retagged(value: &[u8], tag: &str) -> Vec<u8> {
    assert!(value.starts_with(b"s2 ") && tag.len() == 16);
    let mut out = value.to_vec();
    out[3..19].copy_from_slice(tag.as_bytes());
    out
}

/// The states of the keys `names`, all of which must exist.
fn states_of(c: &mut Conn, names: &[String]) -> BTreeMap<String, KeyState> {
    names
        .iter()
        .map(|n| {
            let state = key_state(c, n.as_bytes()).unwrap_or_else(|| panic!("{n} is gone"));
            (n.clone(), state)
        })
        .collect()
}

/// A layout-2 session is a string tagged with the dataset's secret for that very key name;
/// a string at a token name is no session otherwise. Arbitrary text; the exact layout-2
/// text with a wrong tag (all zeros, made with another secret, made for another name, one
/// digit off, in capitals); a correctly tagged text that breaks the layout; and a
/// byte-for-byte copy of a real session's value under another token name (or under the same
/// name in another database) are unknown to VALIDATE, GET, UPDATE and DESTROY, are neither
/// listed nor revoked through the indexes their text names (and whose sets hold them), and
/// keep their value and expiry exactly. The same text correctly tagged, written by hand, is
/// a session: it validates and is prolonged, so every check here could fail.
#[test]
fn strings_at_token_names_are_sessions_only_when_tagged_for_that_very_name() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let real = c.create(r#"{"user_id":77,"tenant_id":"acme"}"#, &["TTL", "3600"]);
    let t = real.token.clone();
    let secret = c.secret("").expect("the first CREATE makes the secret");
    let other_secret = format!(
        "{}{}",
        if secret.starts_with('0') { "1" } else { "0" },
        &secret[1..]
    );
    let real_value = c.get_bytes(&t).expect("the real session is a string");
    let real_stored = c.stored(&t);
    assert_eq!(real_stored.layout, common::Layout::V2);
    assert_eq!(
        real_stored.index_keys(),
        vec!["user_id:77".to_string(), "tenant_id:acme".to_string()]
    );
    let real_expiry = c.pexpiretime(&t);
    let imitation = common::StoredSession {
        data: r#"{"user_id":77,"tenant_id":"acme","createdAt":"2020-01-01 00:00:00"}"#.into(),
        ..real_stored.clone()
    };
    // A name whose tag has a letter, so that the tag in capitals is another text.
    let capitals_name = (200..)
        .map(hex_name)
        .find(|n| {
            tag_v2(&secret, n.as_bytes())
                .bytes()
                .any(|b| b.is_ascii_lowercase())
        })
        .unwrap();

    // Ten minutes left: a session with a TTL of an hour would be prolonged by VALIDATE.
    let soon = c.time_ms() + 600_000;
    // (what, name, value, PEXPIREAT in ms or none)
    let mut fakes: Vec<(&str, String, Vec<u8>, Option<i64>)> = Vec::new();
    let mut add = |what: &'static str, name: String, value: Vec<u8>, px: Option<i64>| {
        fakes.push((what, name, value, px));
    };
    let n = |i: u64| hex_name(100 + i);
    let right = |name: &str| imitation.encode_v2(&secret, name.as_bytes());
    let right_tag = |name: &str| tag_v2(&secret, name.as_bytes());
    // (a) arbitrary text.
    add("plain text", n(0), b"plain text".to_vec(), Some(soon));
    add(
        "a session's data",
        n(1),
        real.data_text().into_bytes(),
        None,
    );
    add("the empty string", n(2), Vec::new(), Some(soon));
    add("binary", n(3), b"\x00\n\xff\xfes2 \r\n{}".to_vec(), None);
    add("the magic alone", n(4), b"s2 ".to_vec(), Some(soon));
    add("no header", n(5), b"s2 not a header\n{}".to_vec(), None);
    // (b) the layout's exact text, with a wrong tag.
    add(
        "an all-zero tag",
        n(6),
        retagged(&right(&n(6)), &"0".repeat(16)),
        Some(soon),
    );
    add(
        "a tag made with another secret",
        n(7),
        retagged(&right(&n(7)), &tag_v2(&other_secret, n(7).as_bytes())),
        None,
    );
    add(
        "the real token's tag",
        n(8),
        retagged(&right(&n(8)), &right_tag(&t)),
        Some(soon),
    );
    add(
        "the tag of the name with a key prefix",
        n(9),
        retagged(&right(&n(9)), &right_tag(&format!("sess:{}", n(9)))),
        None,
    );
    let mut off_by_one = right_tag(&n(10)).into_bytes();
    off_by_one[15] = if off_by_one[15] == b'0' { b'1' } else { b'0' };
    add(
        "the tag one digit off",
        n(10),
        retagged(&right(&n(10)), std::str::from_utf8(&off_by_one).unwrap()),
        Some(soon),
    );
    add(
        "the right tag in capitals",
        capitals_name.clone(),
        retagged(
            &right(&capitals_name),
            &right_tag(&capitals_name).to_uppercase(),
        ),
        None,
    );
    // The right tag, but not the layout.
    let tagged = |name: &str, rest: &str| format!("s2 {} {rest}", right_tag(name)).into_bytes();
    let data = &imitation.data;
    let list = r#"["user_id:77","tenant_id:acme"]"#;
    add(
        "the right tag, TTL 0",
        n(11),
        tagged(&n(11), &format!("0 0 {list}\n{data}")),
        Some(soon),
    );
    add(
        "the right tag, TTL past ten years",
        n(12),
        tagged(&n(12), &format!("315360001 0 {list}\n{data}")),
        None,
    );
    add(
        "the right tag, data not an object",
        n(13),
        tagged(&n(13), &format!("3600 0 {list}\n[1]")),
        Some(soon),
    );
    add(
        "the right tag, indexes not JSON",
        n(14),
        tagged(&n(14), &format!("3600 0 user_id:77\n{data}")),
        None,
    );
    add(
        "the right tag, no newline",
        n(15),
        tagged(&n(15), &format!("3600 0 {list} {data}")),
        Some(soon),
    );
    // (c) the real session's value, byte for byte, under another token name.
    add(
        "a copy of the real session",
        n(16),
        real_value.clone(),
        Some(real_expiry),
    );
    add(
        "a persistent copy of the real session",
        n(17),
        real_value.clone(),
        None,
    );
    add(
        "a copy under a 32-character name",
        "e".repeat(32),
        real_value.clone(),
        Some(soon),
    );
    add(
        "a copy under a 256-character name",
        "d".repeat(256),
        real_value.clone(),
        None,
    );
    let copy = n(16);

    for (what, name, value, px) in &fakes {
        println!("CASE -- {what} at {name}");
        match px {
            Some(at) => c.ok(&[
                b"SET".as_slice(),
                name.as_bytes(),
                value,
                b"PXAT",
                at.to_string().as_bytes(),
            ]),
            None => c.ok(&[b"SET".as_slice(), name.as_bytes(), value]),
        };
        c.ok(&["SADD", "user_id:77", name]);
        c.ok(&["SADD", "tenant_id:acme", name]);
    }
    let names: Vec<String> = fakes.iter().map(|f| f.1.clone()).collect();
    let planted = states_of(&mut c, &names);
    for (what, name, value, _) in &fakes {
        println!("CASE -- {what}");
        assert_eq!(
            planted[name].value,
            Contents::String(value.clone()),
            "{what}"
        );
        assert_token_unknown(&mut c, name);
    }

    // The control: the imitation tagged right, written by hand, is a session, and VALIDATE
    // prolongs it from ten minutes to its TTL of an hour.
    let control = hex_name(300);
    let now = c.time_ms();
    let control_session = common::StoredSession {
        data: r#"{"user_id":77,"tenant_id":"acme","n":"control"}"#.into(),
        ..imitation.clone()
    };
    c.write_v2(&control, "", &control_session, now + 600_000);
    c.ok(&["SADD", "user_id:77", &control]);
    c.ok(&["SADD", "tenant_id:acme", &control]);
    assert_eq!(
        c.get(&control).as_deref(),
        Some(control_session.data.as_str())
    );
    assert_eq!(
        c.validate(&control).as_deref(),
        Some(control_session.data.as_str())
    );
    assert!(
        c.pexpiretime(&control) >= now + 3_000_000,
        "VALIDATE prolongs the control"
    );

    // Through the indexes their text names and whose sets hold them: not listed, not revoked.
    let fake_members: BTreeSet<String> = names.iter().cloned().collect();
    for (property, value) in [("user_id", "77"), ("tenant_id", "acme")] {
        let before = snapshot(&mut c);
        let listed = case(&mut c, &["SESSION.LIST", property, value]);
        assert_eq!(
            listed_tokens(&listed),
            BTreeSet::from([t.clone(), control.clone()])
        );
        assert_unchanged(&before, &snapshot(&mut c), "LIST");
    }
    let mut before = snapshot(&mut c);
    let v = case(
        &mut c,
        &["SESSION.REVOKEINDEX", "user_id", "77", "EXCEPT", &t],
    );
    assert_eq!(v, int(1), "only the control is revoked");
    assert!(!c.exists(&control) && c.exists(&t));
    let mut after = snapshot(&mut c);
    let mut want = fake_members.clone();
    want.insert(t.clone());
    for index in ["user_id:77", "tenant_id:acme"] {
        assert_eq!(c.smembers(index), want, "{index}");
        before.remove(index.as_bytes());
        after.remove(index.as_bytes());
    }
    before.remove(control.as_bytes());
    assert_unchanged(&before, &after, "REVOKEINDEX user_id 77 EXCEPT <real>");

    let mut before = snapshot(&mut c);
    let v = case(&mut c, &["SESSION.REVOKEINDEX", "tenant_id", "acme"]);
    assert_eq!(v, int(1), "only the real session is revoked");
    assert!(!c.exists(&t));
    let mut after = snapshot(&mut c);
    for index in ["user_id:77", "tenant_id:acme"] {
        assert_eq!(c.smembers(index), fake_members, "{index}");
        before.remove(index.as_bytes());
        after.remove(index.as_bytes());
    }
    before.remove(t.as_bytes());
    assert_unchanged(&before, &after, "REVOKEINDEX tenant_id acme");

    // With the original gone, its copies are still nobody's session.
    for name in &names {
        assert_token_unknown(&mut c, name);
    }
    expect_same_db(&mut c, &["SESSION.LIST", "user_id", "77"], &empty());
    expect_same_db(&mut c, &["SESSION.REVOKEINDEX", "user_id", "77"], &int(0));
    expect_same_db(
        &mut c,
        &["SESSION.REVOKEINDEX", "tenant_id", "acme", "EXCEPT", &copy],
        &int(0),
    );
    assert_eq!(
        states_of(&mut c, &names),
        planted,
        "a fake changed during the test"
    );

    // A session copied under its own name into another database, whose secret is another
    // (or which has none yet), is no session there; the original still is.
    let again = c.create(r#"{"user_id":77,"tenant_id":"acme"}"#, &["TTL", "3600"]);
    let mut c1 = s.conn();
    c1.ok(&["SELECT", "1"]);
    assert_eq!(
        c.int(&["COPY", &again.token, &again.token, "DB", "1"]),
        1,
        "COPY"
    );
    // Its index sets there hold only the copy (a member whose key is missing is stale, and
    // LIST would rightly prune it).
    c1.ok(&["SADD", "user_id:77", &again.token]);
    c1.ok(&["SADD", "tenant_id:acme", &again.token]);
    for with_secret in [false, true] {
        println!("CASE -- a copy in database 1, which has a secret: {with_secret}");
        if with_secret {
            c1.create(r#"{"n":1}"#, &[]);
            let db1 = c1.secret("").expect("a CREATE makes database 1's secret");
            assert_ne!(db1, secret);
        }
        assert_token_unknown(&mut c1, &again.token);
        assert_eq!(
            c1.secret("").is_some(),
            with_secret,
            "no command on it made a secret"
        );
        expect_same_db(&mut c1, &["SESSION.LIST", "user_id", "77"], &empty());
        expect_same_db(
            &mut c1,
            &["SESSION.REVOKEINDEX", "tenant_id", "acme"],
            &int(0),
        );
    }
    assert_eq!(
        c.validate(&again.token).map(|d| common::normalize(&d)),
        Some(again.data_text())
    );
    assert_same_server(&mut s);
}

/// A hash at a token name is a session only when it is a well-formed 0.1.0 session. A
/// layout-2 text, tagged with the dataset's secret for that very name, in a field of a hash
/// that is not one (as its only field, as `data`, `ttl`, `deadline` or `indexes`, or beside
/// `ttl` and `deadline` without `data`) makes no session of it: unknown to every command,
/// neither listed nor revoked through the index set holding it, value and expiry unchanged.
/// In an extra field of a well-formed 0.1.0 hash it spoils nothing: that one is a session.
#[test]
fn hashes_carrying_layout_2_text_are_sessions_only_when_well_formed_0_1_0() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let real = c.create(r#"{"user_id":77}"#, &["TTL", "3600"]);
    let t = real.token.clone();
    let secret = c.secret("").expect("the first CREATE makes the secret");
    let imitation = common::StoredSession {
        data: r#"{"user_id":77,"createdAt":"2020-01-01 00:00:00"}"#.into(),
        ..c.stored(&t)
    };
    let text = |name: &str| {
        String::from_utf8(imitation.encode_v2(&secret, name.as_bytes())).expect("UTF-8 text")
    };
    let data = imitation.data.clone();
    let n = |i: u64| hex_name(400 + i);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("the text as the only field", vec![("session", text(&n(0)))]),
        (
            "the text as data",
            vec![
                ("data", text(&n(1))),
                ("ttl", "3600".into()),
                ("deadline", "0".into()),
            ],
        ),
        (
            "the text as data, with indexes",
            vec![
                ("data", text(&n(2))),
                ("ttl", "3600".into()),
                ("deadline", "0".into()),
                ("indexes", r#"["user_id:77"]"#.into()),
            ],
        ),
        (
            "the text as ttl",
            vec![
                ("data", data.clone()),
                ("ttl", text(&n(3))),
                ("deadline", "0".into()),
            ],
        ),
        (
            "the text as deadline",
            vec![
                ("data", data.clone()),
                ("ttl", "3600".into()),
                ("deadline", text(&n(4))),
            ],
        ),
        (
            "the text as indexes",
            vec![
                ("data", data.clone()),
                ("ttl", "3600".into()),
                ("deadline", "0".into()),
                ("indexes", text(&n(5))),
            ],
        ),
        (
            "the text beside ttl and deadline, no data",
            vec![
                ("s2", text(&n(6))),
                ("ttl", "3600".into()),
                ("deadline", "0".into()),
            ],
        ),
    ];
    let mut names = Vec::new();
    for (i, (what, fields)) in cases.iter().enumerate() {
        let name = n(i as u64);
        println!("CASE -- a hash at {name} with {what}");
        let mut hset: Vec<&str> = vec!["HSET", &name];
        for (f, v) in fields {
            hset.push(f);
            hset.push(v);
        }
        c.ok(&hset);
        if i % 2 == 0 {
            c.ok(&["PEXPIRE", &name, "600000"]);
        }
        c.ok(&["SADD", "user_id:77", &name]);
        names.push(name);
    }
    let planted = states_of(&mut c, &names);
    for ((what, _), name) in cases.iter().zip(&names) {
        println!("CASE -- {what}");
        assert_eq!(planted[name].kind, "hash");
        assert_token_unknown(&mut c, name);
    }

    // The control: a well-formed 0.1.0 hash with the text in an extra field is a session, and
    // VALIDATE prolongs it (and leaves its fields alone).
    let control = hex_name(500);
    let now = c.time_ms();
    c.write_v010(&control, &data, 3600, 0, &["user_id:77"], now + 600_000);
    c.ok(&["HSET", &control, "note", &text(&control)]);
    let fields = c.hgetall(&control);
    assert_eq!(c.get(&control).as_deref(), Some(data.as_str()));
    assert_eq!(c.validate(&control).as_deref(), Some(data.as_str()));
    assert!(
        c.pexpiretime(&control) >= now + 3_000_000,
        "VALIDATE prolongs the control"
    );
    assert_eq!(c.hgetall(&control), fields);

    let before = snapshot(&mut c);
    let listed = case(&mut c, &["SESSION.LIST", "user_id", "77"]);
    assert_eq!(
        listed_tokens(&listed),
        BTreeSet::from([t.clone(), control.clone()])
    );
    assert_unchanged(&before, &snapshot(&mut c), "LIST");
    let mut before = snapshot(&mut c);
    let v = case(
        &mut c,
        &["SESSION.REVOKEINDEX", "user_id", "77", "EXCEPT", &t],
    );
    assert_eq!(v, int(1), "only the control is revoked");
    assert!(!c.exists(&control) && c.exists(&t));
    let mut after = snapshot(&mut c);
    let mut want: BTreeSet<String> = names.iter().cloned().collect();
    want.insert(t.clone());
    assert_eq!(c.smembers("user_id:77"), want);
    for state in [&mut before, &mut after] {
        state.remove(b"user_id:77".as_slice());
    }
    before.remove(control.as_bytes());
    assert_unchanged(&before, &after, "REVOKEINDEX user_id 77 EXCEPT <real>");
    let v = case(&mut c, &["SESSION.REVOKEINDEX", "user_id", "77"]);
    assert_eq!(v, int(1), "only the real session is revoked");
    want.remove(&t);
    assert_eq!(c.smembers("user_id:77"), want);
    assert_eq!(
        states_of(&mut c, &names),
        planted,
        "a fake changed during the test"
    );
    assert_same_server(&mut s);
}

/// CREATE and UPDATE into an index key that holds a string, list, hash, zset or stream fail
/// with WRONGTYPE and write nothing at all (not even the indexes that were fine); LIST of
/// and REVOKEINDEX of it are WRONGTYPE; the key keeps its value and expiry.
#[test]
fn index_keys_of_other_types_refuse_create_and_update_and_are_never_written() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let session = c.create(r#"{"user_id":1,"tenant_id":"acme"}"#, &[]);
    for kind in OTHER_KINDS {
        println!("CASE -- the index keys user_id:42 and tenant_id:evil hold a {kind}");
        plant_kind(&mut c, kind, "user_id:42");
        plant_kind(&mut c, kind, "tenant_id:evil");
        let user42 = wrongtype("user_id:42");
        let evil = wrongtype("tenant_id:evil");
        expect_error(&mut c, &["SESSION.CREATE", r#"{"user_id":42}"#], &user42);
        expect_error(
            &mut c,
            &["SESSION.CREATE", r#"{"tenant_id":"new","user_id":42}"#],
            &user42,
        );
        expect_error(
            &mut c,
            &["SESSION.CREATE", r#"{"user_id":2,"tenant_id":"evil"}"#],
            &evil,
        );
        expect_error(
            &mut c,
            &["SESSION.UPDATE", &session.token, r#"{"user_id":42}"#],
            &user42,
        );
        expect_error(
            &mut c,
            &[
                "SESSION.UPDATE",
                &session.token,
                r#"{"user_id":3,"tenant_id":"evil","x":1}"#,
            ],
            &evil,
        );
        expect_error(&mut c, &["SESSION.LIST", "user_id", "42"], &user42);
        expect_error(&mut c, &["SESSION.REVOKEINDEX", "user_id", "42"], &user42);
        expect_error(
            &mut c,
            &[
                "SESSION.REVOKEINDEX",
                "tenant_id",
                "evil",
                "EXCEPT",
                &session.token,
            ],
            &evil,
        );
        c.ok(&["DEL", "user_id:42", "tenant_id:evil"]);
    }
    assert_eq!(
        c.validate(&session.token).map(|d| common::normalize(&d)),
        Some(session.data_text())
    );
    assert_same_server(&mut s);
}

/// When a session's index key was replaced by another type after the session joined it, the
/// module never touches that key: VALIDATE, GET and UPDATE end the session (it can no longer
/// be revoked by value), and DESTROY and REVOKEINDEX (through another index) do the rest of
/// their work.
#[test]
fn index_keys_replaced_by_other_types_are_left_alone_while_the_rest_is_done() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    for kind in OTHER_KINDS {
        println!("CASE -- the index key user_id:5 was replaced by a {kind}");
        let a = c.create(r#"{"user_id":5,"tenant_id":"t1"}"#, &["TTL", "100"]);
        let b = c.create(r#"{"user_id":5,"tenant_id":"t1"}"#, &["TTL", "100"]);
        let keep = c.create(r#"{"tenant_id":"t1"}"#, &["TTL", "100"]);
        c.ok(&["DEL", "user_id:5"]);
        plant_kind(&mut c, kind, "user_id:5");
        let victim = key_state(&mut c, b"user_id:5").unwrap();

        // SPEC revision 4: without its index set a session can no longer be revoked by
        // value, so it ends (at once with key events, at its next read on 7.0). VALIDATE, GET
        // and UPDATE reply nil; the foreign key and the other index's other members stay.
        let v = case(&mut c, &["SESSION.GET", &a.token]);
        assert_eq!(v, nil(), "{kind}");
        let v = case(&mut c, &["SESSION.VALIDATE", &a.token]);
        assert_eq!(v, nil(), "{kind}");
        let v = case(&mut c, &["SESSION.UPDATE", &b.token, r#"{"user_id":6}"#]);
        assert_eq!(v, nil(), "{kind}");
        assert!(!c.exists(&a.token) && !c.exists(&b.token) && !c.exists("user_id:6"));
        assert_eq!(
            c.smembers("tenant_id:t1"),
            BTreeSet::from([keep.token.clone()])
        );
        assert_eq!(key_state(&mut c, b"user_id:5").as_ref(), Some(&victim));

        // Inside a transaction that replaces the key first, every server's commands meet the
        // foreign key (key-event work runs when it ends): DESTROY and REVOKEINDEX through
        // the good index do their work and leave it alone.
        c.ok(&["DEL", "user_id:5"]);
        let d = c.create(r#"{"user_id":5,"tenant_id":"t1"}"#, &["TTL", "100"]);
        let e = c.create(r#"{"user_id":5,"tenant_id":"t1"}"#, &["TTL", "100"]);
        let plant: &[&str] = match kind {
            "string" => &["SET", "user_id:5", "not a set"],
            "list" => &["RPUSH", "user_id:5", "a"],
            "hash" => &["HSET", "user_id:5", "f", "v"],
            "zset" => &["ZADD", "user_id:5", "1", "a"],
            _ => &["XADD", "user_id:5", "*", "f", "v"],
        };
        let replies = c.transaction(&[
            &["DEL", "user_id:5"],
            plant,
            &["SESSION.DESTROY", &d.token],
            &["SESSION.REVOKEINDEX", "tenant_id", "t1"],
            &["TYPE", "user_id:5"],
        ]);
        assert_eq!(replies[2], int(1), "{kind}: DESTROY of d");
        assert_eq!(replies[3], int(2), "{kind}: REVOKEINDEX of e and keep");
        assert!(!c.exists(&d.token) && !c.exists(&e.token) && !c.exists(&keep.token));
        assert!(!c.exists("tenant_id:t1"));
        assert_eq!(
            c.key_type("user_id:5"),
            kind,
            "the foreign key is left alone"
        );

        expect_error(
            &mut c,
            &["SESSION.REVOKEINDEX", "user_id", "5"],
            &wrongtype("user_id:5"),
        );
        expect_error(
            &mut c,
            &["SESSION.LIST", "user_id", "5"],
            &wrongtype("user_id:5"),
        );
        c.ok(&["FLUSHALL"]);
    }
    assert_same_server(&mut s);
}

/// NUL bytes in property names and in indexed values are data like any other byte: they
/// round-trip through CREATE, VALIDATE, GET, UPDATE, LIST and REVOKEINDEX, and the index key
/// carries the raw NUL.
#[test]
fn nul_bytes_in_names_and_indexed_values_go_through_every_command() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let created = c.create(r#"{"a\u0000b":1,"user_id":"x\u0000y"}"#, &[]);
    let t = created.token.clone();
    println!(
        "CASE CREATE {{\"a\\u0000b\":1,\"user_id\":\"x\\u0000y\"}} -> {}",
        created.raw
    );
    let data = c.validate(&t).unwrap();
    assert_eq!(data, created.data_text());
    assert!(data.contains(r#""a\u0000b":1"#), "{data}");
    assert_eq!(c.get(&t).unwrap(), data);
    assert_eq!(c.smembers(b"user_id:x\x00y"), BTreeSet::from([t.clone()]));
    let listed = case(&mut c, &[&b"SESSION.LIST"[..], b"user_id", b"x\x00y"]);
    assert_eq!(listed_tokens(&listed), BTreeSet::from([t.clone()]));

    let v = case(
        &mut c,
        &[
            "SESSION.UPDATE",
            &t,
            r#"{"a\u0000b":null,"c\u0000":2,"user_id":"p\u0000q"}"#,
        ],
    );
    let Value::BulkString(updated) = v else {
        panic!("UPDATE: {v:?}")
    };
    let updated = String::from_utf8(updated).unwrap();
    let object = common::parse_object(&updated);
    assert!(
        !object.contains_key("a\u{0}b") && object["c\u{0}"] == 2,
        "{updated}"
    );
    assert_eq!(object["user_id"], "p\u{0}q");
    assert!(!c.exists(b"user_id:x\x00y"));
    assert_eq!(c.smembers(b"user_id:p\x00q"), BTreeSet::from([t.clone()]));
    // The stored index list escapes the NUL (a raw byte there would be data like any other,
    // but the header is one line of compact JSON).
    let stored = c.stored(&t);
    assert_eq!(stored.layout, common::Layout::V2);
    assert_eq!(stored.indexes, Some(vec!["user_id:p\u{0}q".to_string()]));
    let value = c.get_bytes(&t).unwrap();
    let header = value.split(|&b| b == b'\n').next().unwrap();
    assert!(
        header.ends_with(br#" ["user_id:p\u0000q"]"#),
        "{}",
        shown(header)
    );

    // A property named like an index plus a NUL is not that index.
    let other = c.create(r#"{"user_id\u0000":1}"#, &[]);
    assert_eq!(c.stored(&other.token).indexes, None);
    expect_error(
        &mut c,
        &[&b"SESSION.LIST"[..], b"user_id\x00", b"1"],
        "ERR property 'user_id\\u{0}' is not a configured index (see session.indexes)",
    );
    expect_error(
        &mut c,
        &[&b"SESSION.REVOKEINDEX"[..], b"user_id\x00", b"1"],
        "ERR property 'user_id\\u{0}' is not a configured index (see session.indexes)",
    );
    expect_error(
        &mut c,
        &[&b"SESSION.CREATE"[..], b"{}", b"TTL", b"6\x000"],
        "ERR TTL must be a whole number from 1 to 315360000",
    );
    expect_error(
        &mut c,
        &[&b"SESSION.CREATE"[..], b"{}", b"TTL\x00", b"60"],
        "ERR unknown option 'TTL\\u{0}' (expected TTL, MAXLIFETIME, MAXSESSIONS or ROUTE)",
    );
    expect_same_db(
        &mut c,
        &[
            &b"SESSION.REVOKEINDEX"[..],
            b"user_id",
            b"p\x00q",
            b"EXCEPT",
            t.as_bytes(),
        ],
        &int(0),
    );
    let v = case(
        &mut c,
        &[&b"SESSION.REVOKEINDEX"[..], b"user_id", b"p\x00q"],
    );
    assert_eq!(v, int(1));
    assert!(!c.exists(&t) && !c.exists(b"user_id:p\x00q"));
    let mut left = vec![other.token.into_bytes(), b"session-secret".to_vec()];
    left.sort();
    assert_eq!(
        c.keys(),
        left,
        "only the session without index and the secret are left"
    );
    assert_same_server(&mut s);
}

/// Invalid UTF-8 (`\xff\xfe`, alone or inside otherwise valid text) in every argument
/// position of every command gets a reply: nil or 0 where it is a token or an index value,
/// an error naming the problem where it is data, a patch, an option or a property.
#[test]
fn invalid_utf8_in_every_argument_position_gets_a_reply() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let real = c.create(r#"{"user_id":1,"tenant_id":"acme"}"#, &[]);
    let spare = c.create(r#"{"user_id":2}"#, &[]);
    let t = real.token.as_bytes();
    let bad: &[u8] = b"\xff\xfe";
    let mut bad_token = t.to_vec();
    bad_token[0] = 0xff;
    let not_json = "ERR data is not valid JSON: ";
    let prop_err =
        "ERR property '\\u{fffd}\\u{fffd}' is not a configured index (see session.indexes)";

    // (arguments, expected reply: Ok(value) or Err(error text prefix))
    type Case<'a> = (Vec<&'a [u8]>, Result<Value, &'a str>);
    let cases: Vec<Case> = vec![
        (vec![b"SESSION.CREATE", bad], Err(not_json)),
        (vec![b"SESSION.CREATE", b"{\"a\":\"\xff\"}"], Err(not_json)),
        (vec![b"SESSION.CREATE", b"{\"\xff\":1}"], Err(not_json)),
        (
            vec![b"SESSION.CREATE", b"{\"user_id\":\"\xc3\"}"],
            Err(not_json),
        ),
        (
            vec![b"SESSION.CREATE", b"{}", bad, b"60"],
            Err("ERR unknown option '\\u{fffd}\\u{fffd}' (expected TTL, MAXLIFETIME, MAXSESSIONS or ROUTE)"),
        ),
        (
            vec![b"SESSION.CREATE", b"{}", b"TTL", bad],
            Err("ERR TTL must be a whole number from 1 to 315360000"),
        ),
        (
            vec![b"SESSION.CREATE", b"{}", b"MAXLIFETIME", b"6\xff"],
            Err("ERR MAXLIFETIME must be a whole number from 0 to 315360000"),
        ),
        (vec![b"SESSION.VALIDATE", bad], Ok(nil())),
        (vec![b"SESSION.VALIDATE", &bad_token], Ok(nil())),
        (vec![b"SESSION.GET", bad], Ok(nil())),
        (vec![b"SESSION.GET", &bad_token], Ok(nil())),
        (vec![b"SESSION.UPDATE", bad, b"{}"], Ok(nil())),
        (vec![b"SESSION.UPDATE", &bad_token, b"{\"a\":1}"], Ok(nil())),
        (vec![b"SESSION.UPDATE", bad, bad], Err(not_json)),
        (vec![b"SESSION.UPDATE", t, bad], Err(not_json)),
        (
            vec![b"SESSION.UPDATE", t, b"{\"a\":\"\xff\"}"],
            Err(not_json),
        ),
        (vec![b"SESSION.DESTROY", bad], Ok(int(0))),
        (vec![b"SESSION.DESTROY", &bad_token], Ok(int(0))),
        (vec![b"SESSION.REVOKEINDEX", bad, b"1"], Err(prop_err)),
        (vec![b"SESSION.REVOKEINDEX", b"user_id", bad], Ok(int(0))),
        (
            vec![b"SESSION.REVOKEINDEX", b"user_id", b"1", bad, t],
            Err("ERR unknown option '\\u{fffd}\\u{fffd}' (expected EXCEPT token)"),
        ),
        (
            vec![b"SESSION.REVOKEINDEX", b"user_id", bad, b"EXCEPT", bad],
            Ok(int(0)),
        ),
        (vec![b"SESSION.LIST", bad, b"1"], Err(prop_err)),
        (vec![b"SESSION.LIST", b"user_id", bad], Ok(empty())),
    ];
    for (args, want) in &cases {
        let before = snapshot(&mut c);
        let got = case(&mut c, args);
        let line: Vec<String> = args.iter().map(|a| shown(a)).collect();
        match want {
            Ok(v) => assert_eq!(&got, v, "{}", line.join(" ")),
            Err(prefix) => {
                let e = error_text(&got).unwrap_or_else(|| panic!("{line:?}: {got:?}"));
                assert!(e.starts_with(prefix), "{}: {e}", line.join(" "));
            }
        }
        assert_unchanged(&before, &snapshot(&mut c), &line.join(" "));
    }
    // EXCEPT with a non-UTF-8 token excludes nothing: the one session in user_id:2 goes.
    let v = case(
        &mut c,
        &[
            &b"SESSION.REVOKEINDEX"[..],
            b"user_id",
            b"2",
            b"EXCEPT",
            bad,
        ],
    );
    assert_eq!(v, int(1));
    assert!(!c.exists(&spare.token));
    // An index value that is not UTF-8 names an index key like any other bytes.
    c.ok(&[&b"SADD"[..], b"user_id:\xff", t]);
    let listed = case(&mut c, &[&b"SESSION.LIST"[..], b"user_id", b"\xff"]);
    assert_eq!(listed_tokens(&listed), BTreeSet::from([real.token.clone()]));
    assert_eq!(
        c.validate(&real.token).map(|d| common::normalize(&d)),
        Some(real.data_text())
    );
    assert_same_server(&mut s);
}

fn nested_arrays(levels: usize) -> String {
    format!("{{\"a\":{}1{}}}", "[".repeat(levels), "]".repeat(levels))
}

fn nested_objects(levels: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels))
}

/// 100,000-deep arrays and objects, in CREATE's data and in UPDATE's patch, closed or not:
/// over max-data-bytes they are refused for their size; under a raised limit for their
/// depth. Nothing is written, the session keeps its data and expiry.
#[test]
fn hundred_thousand_deep_nesting_is_refused_in_data_and_patch() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let session = c.create(r#"{"user_id":1}"#, &[]);
    let t = session.token.as_str();
    let deep: Vec<(&str, String)> = vec![
        ("arrays", nested_arrays(100_000)),
        ("objects", nested_objects(100_000)),
        (
            "unclosed arrays",
            format!("{{\"a\":{}", "[".repeat(100_000)),
        ),
        ("unclosed objects", "{\"a\":".repeat(100_000)),
        ("mixed", "{\"a\":[".repeat(50_000)),
    ];
    let too_large = "ERR data is larger than max-data-bytes (65536 bytes)";
    for (what, text) in &deep {
        println!("CASE ({what}, {} bytes)", text.len());
        expect_error(&mut c, &["SESSION.CREATE", text], too_large);
        expect_error(&mut c, &["SESSION.UPDATE", t, text], too_large);
    }
    c.ok(&["CONFIG", "SET", "session.max-data-bytes", "4194304"]);
    let too_deep = "ERR data is nested more than 100 levels deep";
    for (what, text) in &deep {
        println!(
            "CASE ({what}, {} bytes, max-data-bytes 4194304)",
            text.len()
        );
        expect_error(&mut c, &["SESSION.CREATE", text], too_deep);
        expect_error(&mut c, &["SESSION.UPDATE", t, text], too_deep);
        // An unknown token gets the same error: the patch is checked first.
        expect_error(
            &mut c,
            &["SESSION.UPDATE", common::UNKNOWN_TOKEN, text],
            too_deep,
        );
    }
    // 100 levels still pass through a patch, 101 do not.
    let at_limit = format!(r#"{{"user_id":1,"deep":{}}}"#, nested_objects(99));
    let v = case(&mut c, &["SESSION.UPDATE", t, &at_limit]);
    assert!(matches!(v, Value::BulkString(_)), "{v:?}");
    let over = format!(r#"{{"deep":{}}}"#, nested_objects(100));
    expect_error(&mut c, &["SESSION.UPDATE", t, &over], too_deep);
    assert_same_server(&mut s);
}

/// Numbers beyond i64 and f64 keep their digits through CREATE, VALIDATE, UPDATE and LIST,
/// and an indexed one names its index key by those digits.
#[test]
fn numbers_beyond_i64_and_f64_round_trip() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let big = format!("1{}", "2".repeat(399));
    let neg = format!("-9{}", "8".repeat(399));
    let frac = format!("0.{}1", "0".repeat(398));
    let data = format!(
        r#"{{"user_id":{big},"neg":{neg},"frac":{frac},"huge":1e999999,"tiny":-1E-999999,"max":18446744073709551616,"min":-9223372036854775809,"pi":3.14159265358979323846264338327950288}}"#
    );
    let created = c.create(&data, &[]);
    let got = c.validate(&created.token).unwrap();
    println!("CASE CREATE <numbers> -> VALIDATE {got}");
    for exact in [
        format!(r#""user_id":{big}"#),
        format!(r#""neg":{neg}"#),
        format!(r#""frac":{frac}"#),
        r#""huge":1e+999999"#.to_string(),
        r#""tiny":-1e-999999"#.to_string(),
        r#""max":18446744073709551616"#.to_string(),
        r#""min":-9223372036854775809"#.to_string(),
        r#""pi":3.14159265358979323846264338327950288"#.to_string(),
    ] {
        assert!(got.contains(&exact), "{exact} not in {got}");
    }
    let index = format!("user_id:{big}");
    assert_eq!(c.smembers(&index), BTreeSet::from([created.token.clone()]));
    let listed = case(&mut c, &["SESSION.LIST", "user_id", &big]);
    assert_eq!(
        listed_tokens(&listed),
        BTreeSet::from([created.token.clone()])
    );

    let patch = format!(r#"{{"user_id":{neg},"e":123e456789}}"#);
    let v = case(&mut c, &["SESSION.UPDATE", &created.token, &patch]);
    let updated = common::as_string(&v).expect("UPDATE reply");
    assert!(
        updated.contains(&format!(r#""user_id":{neg}"#)),
        "{updated}"
    );
    assert!(updated.contains(r#""e":123e+456789"#), "{updated}");
    assert!(!c.exists(&index));
    assert_eq!(
        c.smembers(format!("user_id:{neg}")),
        BTreeSet::from([created.token.clone()])
    );
    // Floats and exponents index as compact JSON writes them.
    for (value, key) in [
        ("1.0", "user_id:1.0"),
        ("1e2", "user_id:1e+2"),
        ("1.5E-3", "user_id:1.5e-3"),
        ("1E+2", "user_id:1e+2"),
        ("-0", "user_id:-0"),
    ] {
        let made = c.create(&format!(r#"{{"user_id":{value}}}"#), &[]);
        println!("CASE CREATE {{\"user_id\":{value}}} -> index key {key}");
        assert!(c.smembers(key).contains(&made.token), "{value} -> {key}");
    }
    assert_same_server(&mut s);
}

/// Data and patches over max-data-bytes are refused by size and write nothing; exactly at
/// the limit they pass; a merge whose result is over the limit is refused too.
#[test]
fn data_over_max_data_bytes_is_refused_in_create_and_update() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let sized = |n: usize| format!(r#"{{"x":"{}"}}"#, "a".repeat(n - 8));
    let too_large = "ERR data is larger than max-data-bytes (65536 bytes)";
    assert_eq!(sized(65536).len(), 65536);
    let at_limit = c.create(&sized(65536), &[]);
    println!("CASE CREATE <65536 bytes> -> token {}", at_limit.token);
    expect_error(&mut c, &["SESSION.CREATE", &sized(65537)], too_large);
    expect_error(&mut c, &["SESSION.CREATE", &sized(16 << 20)], too_large);

    let small = c.create(r#"{"user_id":1}"#, &[]);
    let t = small.token.as_str();
    expect_error(&mut c, &["SESSION.UPDATE", t, &sized(65537)], too_large);
    expect_error(&mut c, &["SESSION.UPDATE", t, &sized(16 << 20)], too_large);
    // Each part is small enough; together they are not.
    let v = case(
        &mut c,
        &[
            "SESSION.UPDATE",
            t,
            &format!(r#"{{"y":"{}"}}"#, "b".repeat(40_000)),
        ],
    );
    assert!(matches!(v, Value::BulkString(_)), "{v:?}");
    expect_error(
        &mut c,
        &[
            "SESSION.UPDATE",
            t,
            &format!(r#"{{"z":"{}"}}"#, "c".repeat(40_000)),
        ],
        too_large,
    );
    // A patch that shrinks a session at the limit passes.
    let v = case(
        &mut c,
        &["SESSION.UPDATE", &at_limit.token, r#"{"x":null}"#],
    );
    assert!(matches!(v, Value::BulkString(_)), "{v:?}");
    assert_same_server(&mut s);
}

/// The arguments of a command with `n` arguments after its name, drawn from a list that
/// makes every valid arity a valid call.
fn args_for(name: &str, n: usize, token: &str) -> Vec<String> {
    let pool: Vec<&str> = match name {
        "SESSION.CREATE" => vec!["{}", "TTL", "60", "MAXLIFETIME", "0", "TTL"],
        "SESSION.UPDATE" => vec![token, "{}", "{}", "{}", "{}", "{}"],
        "SESSION.REVOKEINDEX" => vec!["user_id", "9", "EXCEPT", token, "x", "y"],
        "SESSION.LIST" => vec!["user_id", "9", "x", "y", "z", "w"],
        _ => vec![token; 6],
    };
    std::iter::once(name.to_string())
        .chain(pool[..n].iter().map(|s| s.to_string()))
        .collect()
}

/// Every command with 0 to 6 arguments: the arities it does not take get exactly the arity
/// error and change nothing (the session named in the arguments keeps its expiry).
#[test]
fn wrong_arities_of_every_command_get_the_arity_error_and_change_nothing() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let valid: [(&str, &[usize]); 7] = [
        ("SESSION.CREATE", &[1, 2, 3, 4, 5, 6]),
        ("SESSION.VALIDATE", &[1]),
        ("SESSION.GET", &[1]),
        ("SESSION.UPDATE", &[2]),
        ("SESSION.DESTROY", &[1]),
        ("SESSION.REVOKEINDEX", &[2, 4]),
        ("SESSION.LIST", &[2]),
    ];
    for (name, ok_counts) in valid {
        // A fresh session per command: the valid calls of DESTROY and REVOKEINDEX end it.
        let session = c.create(r#"{"user_id":9}"#, &[]);
        for n in 0..=6 {
            let args = args_for(name, n, &session.token);
            if ok_counts.contains(&n) {
                // Not an arity error (CREATE's odd option lists fail on their options).
                let before = snapshot(&mut c);
                let got = case(&mut c, &args);
                if let Some(e) = error_text(&got) {
                    assert!(!e.contains("wrong number of arguments"), "{args:?}: {e}");
                    assert_unchanged(&before, &snapshot(&mut c), &args.join(" "));
                }
            } else {
                let want = format!(
                    "ERR wrong number of arguments for '{}' command",
                    name.to_lowercase()
                );
                expect_error(&mut c, &args, &want);
            }
        }
    }
    assert_same_server(&mut s);
}

/// Options the commands do not know are refused by name; keywords are case-insensitive.
#[test]
fn unknown_options_are_refused_by_name() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let session = c.create(r#"{"user_id":1}"#, &[]);
    let t = session.token.as_str();
    let unknown = |o: &str| {
        format!("ERR unknown option '{o}' (expected TTL, MAXLIFETIME, MAXSESSIONS or ROUTE)")
    };
    for opt in [
        "EX", "PX", "KEEPTTL", "NX", "TTL=5", "TT", "TTLS", "MAX", "EXCEPT", "",
    ] {
        expect_error(&mut c, &["SESSION.CREATE", "{}", opt, "5"], &unknown(opt));
    }
    expect_error(
        &mut c,
        &["SESSION.CREATE", "{}", "TTL", "5", "FOO", "1"],
        &unknown("FOO"),
    );
    expect_error(
        &mut c,
        &["SESSION.CREATE", "{}", "TTL", "5", "ttl", "6"],
        "ERR option 'TTL' given twice",
    );
    expect_error(
        &mut c,
        &[
            "SESSION.CREATE",
            "{}",
            "MAXLIFETIME",
            "5",
            "MaxLifetime",
            "6",
        ],
        "ERR option 'MAXLIFETIME' given twice",
    );
    for opt in ["FOO", "EXCEPTX", "TTL", ""] {
        expect_error(
            &mut c,
            &["SESSION.REVOKEINDEX", "user_id", "1", opt, t],
            &format!("ERR unknown option '{opt}' (expected EXCEPT token)"),
        );
    }
    for opts in [["ttl", "60"], ["mAxLiFeTiMe", "60"]] {
        let v = case(&mut c, &["SESSION.CREATE", "{}", opts[0], opts[1]]);
        assert!(matches!(v, Value::BulkString(_)), "{opts:?}: {v:?}");
    }
    expect_same_db(
        &mut c,
        &["SESSION.REVOKEINDEX", "user_id", "1", "except", t],
        &int(0),
    );
    assert_same_server(&mut s);
}

/// TTL and MAXLIFETIME accept exactly the whole numbers in their ranges; everything else
/// (negative, zero for TTL, past ten years, beyond i64, fractions, exponents, empty, signs,
/// spaces, hex, non-ASCII digits) is refused and writes nothing.
#[test]
fn bad_ttl_and_maxlifetime_values_are_refused() {
    let mut s = Server::start(MODULE_ARGS);
    let mut c = s.conn();
    let refused_both = [
        "-1",
        "315360001",
        "99999999999999999999999",
        "1.5",
        "1e3",
        "",
        "+5",
        " 5",
        "5 ",
        "0x10",
        "\u{663}",
        "-0",
        "9223372036854775808",
    ];
    for (option, msg) in [
        ("TTL", "ERR TTL must be a whole number from 1 to 315360000"),
        (
            "MAXLIFETIME",
            "ERR MAXLIFETIME must be a whole number from 0 to 315360000",
        ),
    ] {
        for value in refused_both {
            expect_error(
                &mut c,
                &["SESSION.CREATE", r#"{"user_id":1}"#, option, value],
                msg,
            );
        }
    }
    expect_error(
        &mut c,
        &["SESSION.CREATE", "{}", "TTL", "0"],
        "ERR TTL must be a whole number from 1 to 315360000",
    );
    assert_eq!(c.dbsize(), 0);

    // Accepted values set the expiry they promise.
    let cases = [
        (["TTL", "1"], 1_000i64),
        (["TTL", "315360000"], 315_360_000_000),
        (["TTL", "060"], 60_000),
        (["MAXLIFETIME", "0"], 7_200_000),
        (["MAXLIFETIME", "315360000"], 7_200_000),
        (["MAXLIFETIME", "10"], 10_000),
    ];
    for (opts, ms) in cases {
        let now = c.time_ms();
        let made = c.create("{}", &opts);
        let at = c.pexpiretime(&made.token);
        println!(
            "CASE CREATE {{}} {} {} -> PEXPIRETIME now+{}ms",
            opts[0],
            opts[1],
            at - now
        );
        assert!(
            (at - now - ms).abs() < 2_000,
            "{opts:?}: expiry {at}, now {now}"
        );
    }
    assert_same_server(&mut s);
}
