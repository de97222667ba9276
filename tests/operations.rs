//! Operating the module inside a real Redis (issue 4): what `COMMAND INFO` and `COMMAND DOCS`
//! say about every SESSION.* command, that MONITOR and SLOWLOG never show a SESSION.* command,
//! its token or its data, the `INFO session` counters and settings, the keyspace events, and
//! SESSION.* inside MULTI/EXEC and Lua scripts (with a replica WITHOUT the module matching
//! the primary afterwards).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis::Value;
use serde_json::{json, Value as Json};

use common::{as_string, error_text, snapshot, sync_replica, Conn, Server, UNKNOWN_TOKEN};

/// How long any raw-socket read (MONITOR, pub/sub) may block before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A reply as JSON, for easy matching: strings, integers, arrays (RESP3 maps as objects).
fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Int(i) => json!(i),
        Value::Array(items) | Value::Set(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(pairs) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| (as_string(k).expect("map key"), to_json(v)))
                .collect(),
        ),
        other => match as_string(other) {
            Some(s) => Json::String(s),
            None => panic!("unexpected reply element {other:?}"),
        },
    }
}

/// A RESP2 "map" (a flat array of name, value, name, value...) as an object.
fn pairs(v: &Json) -> serde_json::Map<String, Json> {
    match v {
        Json::Object(m) => m.clone(),
        Json::Array(items) => {
            assert!(items.len() % 2 == 0, "odd map {v}");
            items
                .chunks(2)
                .map(|kv| {
                    let k = kv[0].as_str().unwrap_or_else(|| panic!("map key in {v}"));
                    (k.to_string(), kv[1].clone())
                })
                .collect()
        }
        other => panic!("expected a map, got {other}"),
    }
}

/// The strings of a JSON array, sorted.
fn string_set(v: &Json) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// `INFO session` as a map of field to value.
fn info_session(c: &mut Conn) -> BTreeMap<String, String> {
    let text = c.string(&["INFO", "session"]);
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad INFO line {l:?}"));
            (k.to_string(), v.trim_end().to_string())
        })
        .collect()
}

/// The counters of `INFO session`, in a fixed order.
const COUNTERS: [&str; 10] = [
    "session_created",
    "session_validate_hits",
    "session_validate_misses",
    "session_destroyed",
    "session_revoked",
    "session_index_entries_pruned",
    "session_index_entries_removed_by_key_events",
    "session_sessions_ended_by_lost_index",
    "session_sessions_ended_by_maxsessions",
    "session_rotated",
];

fn counters(c: &mut Conn) -> [u64; 10] {
    let info = info_session(c);
    COUNTERS.map(|name| {
        info.get(name)
            .unwrap_or_else(|| panic!("INFO session has no {name}: {info:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    })
}

/// Asserts the counters moved by exactly `delta` since `before`; returns the new values.
fn assert_counters(c: &mut Conn, before: [u64; 10], delta: [u64; 10], what: &str) -> [u64; 10] {
    let now = counters(c);
    let moved: Vec<(&str, i128)> = COUNTERS
        .iter()
        .zip(now.iter().zip(before.iter()))
        .map(|(n, (a, b))| (*n, *a as i128 - *b as i128))
        .collect();
    let want: Vec<(&str, i128)> = COUNTERS
        .iter()
        .zip(delta.iter())
        .map(|(n, d)| (*n, *d as i128))
        .collect();
    assert_eq!(moved, want, "counter changes after {what}");
    now
}

fn assert_replica_matches(p: &mut Conn, replica: &Server, what: &str) {
    sync_replica(p, replica);
    let mut r = replica.conn();
    let want = snapshot(p);
    assert!(!want.is_empty(), "{what}: the primary holds nothing");
    assert_eq!(
        snapshot(&mut r),
        want,
        "{what}: replica differs from primary"
    );
    assert_eq!(
        r.cmd(&["MODULE", "LIST"]),
        Value::Array(vec![]),
        "the replica must run without the module"
    );
}

/// A RESP2 reply read from a raw socket.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    fn text(&self) -> String {
        match self {
            Resp::Simple(s) | Resp::Error(s) => s.clone(),
            Resp::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("expected a string, got {other:?}"),
        }
    }
}

/// A plain TCP connection speaking RESP2, for MONITOR and pub/sub streams: every read is
/// bounded by [`READ_TIMEOUT`].
struct RawConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawConn {
    fn connect(server: &Server) -> RawConn {
        let stream = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let writer = stream.try_clone().unwrap();
        RawConn {
            reader: BufReader::new(stream),
            writer,
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&req).expect("write");
    }

    fn line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .unwrap_or_else(|e| panic!("no reply within {READ_TIMEOUT:?}: {e}"));
        assert!(line.ends_with(b"\r\n"), "truncated reply {line:?}");
        line.truncate(line.len() - 2);
        String::from_utf8(line).expect("UTF-8 line")
    }

    fn read(&mut self) -> Resp {
        let line = self.line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Resp::Bulk(None);
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut buf).expect("bulk body");
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Resp::Array(None);
                }
                Resp::Array(Some((0..n).map(|_| self.read()).collect()))
            }
            _ => panic!("unexpected RESP line {line:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// COMMAND INFO / COMMAND GETKEYS / COMMAND DOCS
// ---------------------------------------------------------------------------------------

/// name, arity, declares the token (argument 1) as its key.
const COMMANDS: [(&str, i64, bool); 9] = [
    ("session.create", -2, false),
    ("session.validate", 2, true),
    ("session.get", 2, true),
    ("session.update", 3, true),
    ("session.rotate", -2, true),
    ("session.destroy", 2, true),
    ("session.revokeindex", -3, false),
    ("session.revokeid", 4, false),
    ("session.list", 3, false),
];

/// The flags the contract and DESIGN-NOTES give each command (as COMMAND INFO names them).
fn expected_flags(name: &str) -> BTreeSet<String> {
    let mut flags: BTreeSet<String> = ["module", "skip_monitor", "skip_slowlog"]
        .map(String::from)
        .into();
    flags.insert(
        if name == "session.get" {
            "readonly"
        } else {
            "write"
        }
        .into(),
    );
    if matches!(name, "session.create" | "session.update" | "session.rotate") {
        flags.insert("denyoom".into());
    }
    if matches!(name, "session.get" | "session.validate") {
        flags.insert("fast".into());
    }
    // CREATE's cluster routing key (`ROUTE key`) is found by keyword.
    if name == "session.create" {
        flags.insert("movablekeys".into());
    }
    flags
}

/// The cluster routing key of the commands without a token (docs/cluster.md): CREATE's
/// `ROUTE key` found by keyword, REVOKEINDEX's and LIST's value at argument 2, not a key.
fn check_route_spec(name: &str, specs: &[Json]) {
    assert_eq!(specs.len(), 1, "{name}: one key spec, got {specs:?}");
    let spec = pairs(&specs[0]);
    let bs = pairs(&spec["begin_search"]);
    let bs_spec = pairs(&bs["spec"]);
    let flags = string_set(&spec["flags"]);
    if name == "session.create" {
        assert_eq!(bs["type"], json!("keyword"), "{name}: begin_search");
        assert_eq!(bs_spec["keyword"], json!("ROUTE"), "{name}: keyword");
        assert_eq!(flags, ["RW", "insert"].map(String::from).into(), "{name}");
    } else {
        assert_eq!(bs["type"], json!("index"), "{name}: begin_search");
        assert_eq!(bs_spec["index"], json!(2), "{name}: the value");
        assert_eq!(flags, ["RO", "not_key"].map(String::from).into(), "{name}");
    }
    let fk = pairs(&spec["find_keys"]);
    let range = pairs(&fk["spec"]);
    assert_eq!(
        (&range["lastkey"], &range["keystep"], &range["limit"]),
        (&json!(0), &json!(1), &json!(0)),
        "{name}: one key"
    );
}

#[test]
fn command_info_gives_arity_flags_and_key_positions() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let mut args = vec!["COMMAND", "INFO"];
    args.extend(COMMANDS.iter().map(|(n, _, _)| *n));
    let reply = to_json(&c.ok(&args));
    let entries = reply.as_array().expect("array");
    assert_eq!(entries.len(), COMMANDS.len());
    for ((name, arity, has_key), entry) in COMMANDS.iter().zip(entries) {
        let e = entry
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no COMMAND INFO entry: {entry}"));
        assert_eq!(e[0], json!(name), "name");
        assert_eq!(e[1], json!(arity), "{name}: arity");
        assert_eq!(string_set(&e[2]), expected_flags(name), "{name}: flags");
        let (first, last, step) = match (*has_key, *name) {
            (true, _) => (1, 1, 1),
            (false, "session.create") => (0, 0, 0),
            // The value, a routing key for cluster clients that read this range.
            (false, _) => (2, 2, 1),
        };
        assert_eq!(
            (&e[3], &e[4], &e[5]),
            (&json!(first), &json!(last), &json!(step)),
            "{name}: first/last/step"
        );
        let specs = e[8].as_array().expect("key specs");
        if !has_key {
            check_route_spec(name, specs);
            continue;
        }
        assert_eq!(specs.len(), 1, "{name}: one key spec, got {specs:?}");
        let spec = pairs(&specs[0]);
        let bs = pairs(&spec["begin_search"]);
        assert_eq!(bs["type"], json!("index"), "{name}: begin_search");
        assert_eq!(
            pairs(&bs["spec"])["index"],
            json!(1),
            "{name}: key at argument 1"
        );
        let fk = pairs(&spec["find_keys"]);
        assert_eq!(fk["type"], json!("range"), "{name}: find_keys");
        let range = pairs(&fk["spec"]);
        assert_eq!(
            (&range["lastkey"], &range["keystep"], &range["limit"]),
            (&json!(0), &json!(1), &json!(0)),
            "{name}: one key"
        );
        let flags = string_set(&spec["flags"]);
        let want: &[&str] = match *name {
            "session.get" => &["RO", "access"],
            "session.destroy" | "session.rotate" => &["RW", "delete"],
            _ => &["RW", "access", "update"],
        };
        assert_eq!(
            flags,
            want.iter().map(|f| f.to_string()).collect(),
            "{name}: key spec flags"
        );
    }
}

#[test]
fn command_getkeys_returns_the_token_for_commands_with_a_key() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let tok = UNKNOWN_TOKEN;
    for (args, key) in [
        (vec!["session.validate", tok], tok),
        (vec!["session.get", tok], tok),
        (vec!["session.update", tok, "{}"], tok),
        (vec!["session.destroy", tok], tok),
        (vec!["session.rotate", tok, "GRACE", "5"], tok),
    ] {
        let mut cmd = vec!["COMMAND", "GETKEYS"];
        cmd.extend(&args);
        assert_eq!(to_json(&c.ok(&cmd)), json!([key]), "GETKEYS {args:?}");
    }
    // Upper case works too: command names are case-insensitive.
    assert_eq!(
        to_json(&c.ok(&["COMMAND", "GETKEYS", "SESSION.GET", "abc"])),
        json!(["abc"])
    );
    // CREATE's routing key when given (cluster clients such as redis-py route by it).
    assert_eq!(
        to_json(&c.ok(&[
            "COMMAND",
            "GETKEYS",
            "session.create",
            "{}",
            "TTL",
            "5",
            "ROUTE",
            "user_id:{1}"
        ])),
        json!(["user_id:{1}"])
    );
    let e = c.err(&["COMMAND", "GETKEYS", "session.create", "{}"]);
    assert!(e.contains("Invalid arguments"), "GETKEYS create: {e}");
    // The value of REVOKEINDEX, REVOKEID and LIST is no key (not_key): GETKEYS leaves it out.
    for args in [
        vec!["session.revokeindex", "user_id", "1"],
        vec!["session.revokeid", "user_id", "1", UNKNOWN_TOKEN],
        vec!["session.list", "user_id", "1"],
    ] {
        let mut cmd = vec!["COMMAND", "GETKEYS"];
        cmd.extend(&args);
        let e = c.err(&cmd);
        assert!(e.contains("no key arguments"), "GETKEYS {args:?}: {e}");
    }
}

/// An argument as COMMAND DOCS shows it: name, type, token, optional.
type ArgDoc = (String, String, Option<String>, bool);

fn expected_args(name: &str) -> Vec<ArgDoc> {
    let a = |n: &str, t: &str| (n.to_string(), t.to_string(), None, false);
    let o = |n: &str, t: &str, tok: &str| (n.to_string(), t.to_string(), Some(tok.into()), true);
    match name {
        "session.create" => vec![
            a("data", "string"),
            o("seconds", "integer", "TTL"),
            o("max-seconds", "integer", "MAXLIFETIME"),
            o("limit", "integer", "MAXSESSIONS"),
            o("deny", "pure-token", "DENY"),
            o("key", "key", "ROUTE"),
        ],
        "session.validate" | "session.get" | "session.destroy" => vec![a("token", "key")],
        "session.update" => vec![a("token", "key"), a("patch", "string")],
        "session.rotate" => vec![a("token", "key"), o("seconds", "integer", "GRACE")],
        "session.revokeindex" => vec![
            a("property", "string"),
            a("value", "key"),
            o("token", "string", "EXCEPT"),
        ],
        "session.list" => vec![a("property", "string"), a("value", "key")],
        "session.revokeid" => vec![
            a("property", "string"),
            a("value", "key"),
            a("session-id", "string"),
        ],
        other => panic!("unknown command {other}"),
    }
}

#[test]
fn command_docs_give_summary_complexity_since_group_and_arguments() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let mut args = vec!["COMMAND", "DOCS"];
    args.extend(COMMANDS.iter().map(|(n, _, _)| *n));
    let docs = pairs(&to_json(&c.ok(&args)));
    assert_eq!(
        docs.keys().cloned().collect::<BTreeSet<_>>(),
        COMMANDS.iter().map(|(n, _, _)| n.to_string()).collect(),
        "COMMAND DOCS names"
    );
    for (name, _, has_key) in COMMANDS {
        let doc = pairs(&docs[name]);
        let summary = doc["summary"].as_str().unwrap_or_default();
        assert!(
            summary.len() > 10,
            "{name}: summary {:?}",
            doc.get("summary")
        );
        let complexity = doc["complexity"].as_str().unwrap_or_default();
        assert!(
            complexity.starts_with("O("),
            "{name}: complexity {:?}",
            doc.get("complexity")
        );
        // The release each command first appeared in: ROTATE and REVOKEID came in 0.2.0.
        let since = match name {
            "session.rotate" | "session.revokeid" => "0.2.0",
            _ => "0.1.0",
        };
        assert_eq!(doc["since"], json!(since), "{name}: since");
        // Arguments added after their command say when: CREATE's MAXSESSIONS, DENY, ROUTE.
        let added: Vec<(String, String)> = doc["arguments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let a = pairs(a);
                let since = a.get("since")?.as_str()?.to_string();
                Some((a["name"].as_str()?.to_string(), since))
            })
            .collect();
        let want: Vec<(String, String)> = if name == "session.create" {
            ["limit", "deny", "key"]
                .iter()
                .map(|n| (n.to_string(), "0.2.0".to_string()))
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(added, want, "{name}: arguments' since");
        assert_eq!(doc["group"], json!("module"), "{name}: group");
        assert_eq!(doc["module"], json!("session"), "{name}: module");
        let got: Vec<ArgDoc> = doc["arguments"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no arguments in {doc:?}"))
            .iter()
            .map(|a| {
                let a = pairs(a);
                if a["type"] == json!("key") {
                    assert_eq!(a["key_spec_index"], json!(0), "{name}: key_spec_index");
                }
                let optional = a
                    .get("flags")
                    .map(|f| string_set(f).contains("optional"))
                    .unwrap_or(false);
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["type"].as_str().unwrap().to_string(),
                    a.get("token").map(|t| t.as_str().unwrap().to_string()),
                    optional,
                )
            })
            .collect();
        assert_eq!(got, expected_args(name), "{name}: arguments");
        assert_eq!(
            got.first().map(|a| a.1 == "key"),
            Some(has_key),
            "{name}: the token is the key"
        );
    }
}

// ---------------------------------------------------------------------------------------
// MONITOR and SLOWLOG
// ---------------------------------------------------------------------------------------

/// The secret value inside the session data, which must never show anywhere.
const SECRET: &str = "s3cr3t-d4t4-value";

/// What one run of every SESSION.* command leaves to look for.
struct Secrets {
    /// A session in no index: its token must never show.
    unindexed: String,
    /// A session in an index: its token may show only in the module's SADD/SREM.
    indexed: String,
    data: Vec<String>,
    /// The dataset's session secret (the key that tags sessions): it must never show.
    secret: String,
}

/// Runs all seven commands (and a refused one) with secret tokens and data.
fn run_every_command(c: &mut Conn) -> Secrets {
    let data_unindexed = format!(r#"{{"secret":"{SECRET}"}}"#);
    let data_indexed = format!(r#"{{"user_id":42,"secret":"{SECRET}"}}"#);
    let patch = r#"{"user_id":43,"extra":"p4tch-v4lue"}"#;
    let unindexed = c.create(&data_unindexed, &["TTL", "600"]).token;
    let indexed = c.create(&data_indexed, &[]).token;
    assert!(c.validate(&unindexed).is_some());
    assert!(c.validate(&indexed).is_some());
    assert!(c.get(&unindexed).is_some());
    assert!(c.opt_string(&["SESSION.UPDATE", &indexed, patch]).is_some());
    let patch_unindexed = r#"{"extra":"p4tch-v4lue"}"#;
    assert!(c
        .opt_string(&["SESSION.UPDATE", &unindexed, patch_unindexed])
        .is_some());
    let listed = to_json(&c.ok(&["SESSION.LIST", "user_id", "43"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // A refused command carrying secret data.
    c.err(&["SESSION.CREATE", &format!(r#"{{"token":"{SECRET}"}}"#)]);
    assert_eq!(c.int(&["SESSION.DESTROY", &unindexed]), 1);
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "43"]), 1);
    let secret = c.secret("").expect("CREATE made the secret");
    Secrets {
        unindexed,
        indexed,
        secret,
        data: vec![
            data_unindexed,
            data_indexed,
            patch.to_string(),
            patch_unindexed.to_string(),
            SECRET.to_string(),
            "p4tch-v4lue".to_string(),
        ],
    }
}

/// Checks one MONITOR line or SLOWLOG entry (`command` is its command name in lower case).
fn assert_nothing_secret(shown: &str, command: &str, secrets: &Secrets, source: &str) {
    assert!(
        !shown.to_lowercase().contains("session."),
        "{source} shows a SESSION.* command: {shown}"
    );
    for d in &secrets.data {
        assert!(
            !shown.contains(d.as_str()),
            "{source} shows session data: {shown}"
        );
    }
    assert!(
        !shown.contains(&secrets.unindexed),
        "{source} shows the token of a session in no index: {shown}"
    );
    assert!(
        !shown.contains(&secrets.secret),
        "{source} shows the session secret: {shown}"
    );
    // The documented limitation: the index updates the module issues as commands (SADD,
    // SREM) show the token of an indexed session. Nothing else may.
    if shown.contains(&secrets.indexed) {
        assert!(
            command == "sadd" || command == "srem",
            "{source} shows a token outside the module's SADD/SREM: {shown}"
        );
    }
}

#[test]
fn monitor_never_shows_session_commands_tokens_or_data() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut monitor = RawConn::connect(&s);
    monitor.send(&["MONITOR"]);
    assert_eq!(monitor.read(), Resp::Simple("OK".into()));
    let mut c = s.conn();
    c.ok(&["SET", "ops-visible", "1"]);
    let secrets = run_every_command(&mut c);
    c.ok(&["ECHO", "ops-monitor-marker"]);

    let deadline = Instant::now() + READ_TIMEOUT;
    let mut lines = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no marker in MONITOR: {lines:#?}"
        );
        let line = monitor.read().text();
        if line.contains("ops-monitor-marker") {
            break;
        }
        lines.push(line);
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""SET" "ops-visible""#) || l.contains(r#""set" "ops-visible""#)),
        "MONITOR did not show the plain SET: {lines:#?}"
    );
    for line in &lines {
        // `<time> [<db> <client>] "<command>" "<arg>"...`
        let command = line
            .split_once("] \"")
            .map(|(_, rest)| rest.split('"').next().unwrap_or_default().to_lowercase())
            .unwrap_or_default();
        assert_nothing_secret(line, &command, &secrets, "MONITOR");
    }
    // Nor does the module write a token, data or the secret to the server log.
    let log = s.log();
    for secret in secrets
        .data
        .iter()
        .chain([&secrets.unindexed, &secrets.indexed, &secrets.secret])
    {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows {secret}:\n{log}"
        );
    }
}

#[test]
fn slowlog_never_shows_session_commands_tokens_or_data() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    c.ok(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    c.ok(&["CONFIG", "SET", "slowlog-max-len", "1024"]);
    c.ok(&["SLOWLOG", "RESET"]);
    c.ok(&["SET", "ops-visible", "1"]);
    let secrets = run_every_command(&mut c);
    let log = to_json(&c.ok(&["SLOWLOG", "GET", "1000"]));
    let entries = log.as_array().expect("SLOWLOG GET array");
    let commands: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            e[3].as_array()
                .expect("entry arguments")
                .iter()
                .map(|a| a.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    assert!(
        commands
            .iter()
            .any(|a| a.first().map(|n| n.to_lowercase()) == Some("set".into())),
        "SLOWLOG did not log the plain SET: {commands:?}"
    );
    for args in &commands {
        let name = args.first().map(|n| n.to_lowercase()).unwrap_or_default();
        assert!(!name.starts_with("session."), "SLOWLOG has {args:?}");
        assert_nothing_secret(&args.join(" "), &name, &secrets, "SLOWLOG");
    }
}

// ---------------------------------------------------------------------------------------
// INFO session
// ---------------------------------------------------------------------------------------

#[test]
fn info_session_lists_every_field() {
    let s = Server::start(&["indexes", "user_id", "ttl", "3600"]);
    let mut c = s.conn();
    let info = info_session(&mut c);
    // Which mechanisms the server gave the module follows from its version (README table).
    let kind = c.server_kind();
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    let want: BTreeMap<String, String> = [
        ("session_created", "0"),
        ("session_validate_hits", "0"),
        ("session_validate_misses", "0"),
        ("session_destroyed", "0"),
        ("session_revoked", "0"),
        ("session_index_entries_pruned", "0"),
        ("session_index_entries_removed_by_key_events", "0"),
        ("session_sessions_ended_by_lost_index", "0"),
        ("session_sessions_ended_by_maxsessions", "0"),
        ("session_rotated", "0"),
        ("session_revoked_by_id", "0"),
        ("session_key_events", yes_no(kind.key_events())),
        ("session_slot_functions", yes_no(kind.slot_functions())),
        (
            "session_index_mode",
            if kind.key_events() {
                "exact"
            } else {
                "sampled"
            },
        ),
        ("session_ttl", "3600"),
        ("session_token_bytes", "24"),
        ("session_indexes", "user_id"),
        ("session_max_lifetime", "0"),
        ("session_key_prefix", ""),
        ("session_index_prefix", ""),
        ("session_max_data_bytes", "65536"),
        ("session_renew_interval", "0"),
        ("session_token_hash", "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(info, want);
    // The section is also part of `INFO everything` and `INFO modules`.
    for section in ["everything", "modules"] {
        let text = c.string(&["INFO", section]);
        assert!(
            text.contains("# session\r\n") && text.contains("session_created:0"),
            "INFO {section} lacks the session section"
        );
    }
}

#[test]
fn info_session_counters_move_exactly() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    // With key events, a session deleted by hand leaves its index at once (counted as such)
    // and nothing is left for LIST, REVOKEINDEX or the write samples to prune.
    let ke = c.server_kind().key_events();
    let zero = counters(&mut c);
    assert_eq!(zero, [0; 10]);

    let a = c.create(r#"{"user_id":1}"#, &[]).token;
    let b = c.create(r#"{"user_id":1}"#, &["TTL", "60"]).token;
    let d = c.create(r#"{"x":true}"#, &[]).token;
    let now = assert_counters(&mut c, zero, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0], "3 CREATE");

    // A refused CREATE stores nothing and counts nothing.
    c.err(&["SESSION.CREATE", "[1]"]);
    let now = assert_counters(&mut c, now, [0; 10], "a refused CREATE");

    assert!(c.validate(&a).is_some());
    assert!(c.validate(&a).is_some());
    assert!(c.validate(&d).is_some());
    assert!(c.validate(UNKNOWN_TOKEN).is_none());
    assert!(c.validate("not-a-token").is_none());
    let now = assert_counters(
        &mut c,
        now,
        [0, 3, 2, 0, 0, 0, 0, 0, 0, 0],
        "3 hits, 2 misses",
    );

    assert!(c.get(&a).is_some());
    assert!(c.get(UNKNOWN_TOKEN).is_none());
    let now = assert_counters(&mut c, now, [0; 10], "GET (counts in neither)");

    assert!(c
        .opt_string(&["SESSION.UPDATE", &a, r#"{"k":1}"#])
        .is_some());
    let now = assert_counters(&mut c, now, [0; 10], "UPDATE");

    assert_eq!(c.int(&["SESSION.DESTROY", &d]), 1);
    assert_eq!(c.int(&["SESSION.DESTROY", &d]), 0);
    assert_eq!(c.int(&["SESSION.DESTROY", UNKNOWN_TOKEN]), 0);
    let now = assert_counters(&mut c, now, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], "DESTROY once");
    assert!(c.validate(&d).is_none());
    let now = assert_counters(
        &mut c,
        now,
        [0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        "VALIDATE of destroyed",
    );

    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "1"]), 2);
    assert!(c.validate(&b).is_none());
    let now = assert_counters(
        &mut c,
        now,
        [0, 0, 1, 0, 2, 0, 0, 0, 0, 0],
        "REVOKEINDEX of 2",
    );
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "1"]), 0);
    let now = assert_counters(&mut c, now, [0; 10], "REVOKEINDEX of none");

    // LIST prunes the tokens whose keys were deleted by hand.
    let seven: Vec<String> = (0..3)
        .map(|_| c.create(r#"{"user_id":7}"#, &[]).token)
        .collect();
    let now = assert_counters(&mut c, now, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0], "3 more CREATE");
    assert_eq!(c.int(&["DEL", &seven[0], &seven[1]]), 2);
    let listed = to_json(&c.ok(&["SESSION.LIST", "user_id", "7"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(c.smembers("user_id:7"), BTreeSet::from([seven[2].clone()]));
    let delta = if ke {
        [0, 0, 0, 0, 0, 0, 2, 0, 0, 0]
    } else {
        [0, 0, 0, 0, 0, 2, 0, 0, 0, 0]
    };
    let now = assert_counters(&mut c, now, delta, "LIST pruning 2");

    // REVOKEINDEX counts the live ones as revoked and the stale ones as pruned.
    let eight: Vec<String> = (0..3)
        .map(|_| c.create(r#"{"user_id":8}"#, &[]).token)
        .collect();
    assert_eq!(c.int(&["DEL", &eight[0]]), 1);
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "8"]), 2);
    let delta = if ke {
        [3, 0, 0, 0, 2, 0, 1, 0, 0, 0]
    } else {
        [3, 0, 0, 0, 2, 1, 0, 0, 0, 0]
    };
    let now = assert_counters(&mut c, now, delta, "REVOKEINDEX 2 + 1 stale");

    // A write to an index prunes a sample of it.
    let nine: Vec<String> = (0..2)
        .map(|_| c.create(r#"{"user_id":9}"#, &[]).token)
        .collect();
    assert_eq!(c.int(&["DEL", &nine[0]]), 1);
    assert_eq!(c.int(&["SESSION.DESTROY", &nine[1]]), 1);
    assert!(
        !c.exists("user_id:9"),
        "DESTROY left the stale token behind"
    );
    let delta = if ke {
        [2, 0, 0, 1, 0, 0, 1, 0, 0, 0]
    } else {
        [2, 0, 0, 1, 0, 1, 0, 0, 0, 0]
    };
    let now = assert_counters(&mut c, now, delta, "DESTROY pruning 1");

    // A session whose index set was deleted by hand ends (at once with key events, at its
    // next VALIDATE on 7.0), counted once, and that VALIDATE is a miss.
    let ten = c.create(r#"{"user_id":10}"#, &[]).token;
    assert_eq!(c.int(&["DEL", "user_id:10"]), 1);
    assert!(c.validate(&ten).is_none());
    assert!(!c.exists(&ten));
    assert_counters(&mut c, now, [1, 0, 1, 0, 0, 0, 0, 1, 0, 0], "a lost index");
}

#[test]
fn info_session_settings_follow_config_set() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for (setting, value) in [
        ("session.ttl", "99"),
        ("session.token-bytes", "32"),
        ("session.indexes", "user_id,tenant_id"),
        ("session.max-lifetime", "500"),
        ("session.max-data-bytes", "2048"),
        ("session.renew-interval", "30"),
    ] {
        c.ok(&["CONFIG", "SET", setting, value]);
        let field = format!("session_{}", setting["session.".len()..].replace('-', "_"));
        assert_eq!(
            info_session(&mut c).get(&field).map(String::as_str),
            Some(value),
            "INFO {field} after CONFIG SET {setting} {value}"
        );
    }
    // A refused CONFIG SET leaves INFO as it was (the prefixes are load-time only).
    c.err(&["CONFIG", "SET", "session.ttl", "0"]);
    c.err(&["CONFIG", "SET", "session.key-prefix", "s:"]);
    let info = info_session(&mut c);
    assert_eq!(info["session_ttl"], "99");
    assert_eq!(info["session_key_prefix"], "");
    // They come from the load arguments.
    let s = Server::start(&["key-prefix", "s:", "index-prefix", "i:"]);
    let info = info_session(&mut s.conn());
    assert_eq!(
        (
            info["session_key_prefix"].as_str(),
            info["session_index_prefix"].as_str()
        ),
        ("s:", "i:")
    );
}

// ---------------------------------------------------------------------------------------
// Keyspace notifications
// ---------------------------------------------------------------------------------------

const MARKER_CHANNEL: &str = "ops-marker";

/// A subscriber to every keyspace channel of db 0 and the three module event channels.
fn subscribe(s: &Server) -> RawConn {
    let mut sub = RawConn::connect(s);
    sub.send(&["PSUBSCRIBE", "__keyspace@0__:*"]);
    sub.send(&[
        "SUBSCRIBE",
        "__keyevent@0__:session.create",
        "__keyevent@0__:session.destroy",
        "__keyevent@0__:session.revoke",
        MARKER_CHANNEL,
    ]);
    for _ in 0..5 {
        let Resp::Array(Some(items)) = sub.read() else {
            panic!("no subscribe confirmation");
        };
        let kind = items[0].text();
        assert!(kind == "subscribe" || kind == "psubscribe", "{items:?}");
    }
    sub
}

/// Every (channel, payload) received until the marker is published, in order.
fn messages_until_marker(sub: &mut RawConn, c: &mut Conn) -> Vec<(String, String)> {
    assert!(c.int(&["PUBLISH", MARKER_CHANNEL, "end"]) >= 1);
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut got = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no marker; got {got:?}");
        let Resp::Array(Some(items)) = sub.read() else {
            panic!("not a pub/sub message");
        };
        let texts: Vec<String> = items.iter().map(Resp::text).collect();
        let (channel, payload) = match texts[0].as_str() {
            "message" => (texts[1].clone(), texts[2].clone()),
            "pmessage" => (texts[2].clone(), texts[3].clone()),
            other => panic!("unexpected {other}: {texts:?}"),
        };
        if channel == MARKER_CHANNEL {
            return got;
        }
        got.push((channel, payload));
    }
}

/// Creates 4 sessions, destroys one, revokes two of the three in `user_id:1`, and runs the
/// commands that raise no event. Returns (created, destroyed, revoked) tokens.
fn event_workload(c: &mut Conn) -> (Vec<String>, String, Vec<String>) {
    let a = c.create(r#"{"user_id":1}"#, &[]).token;
    let b = c.create(r#"{"user_id":1}"#, &[]).token;
    let kept = c.create(r#"{"user_id":1}"#, &[]).token;
    let d = c.create(r#"{"x":1}"#, &[]).token;
    assert!(c.validate(&kept).is_some());
    assert!(c.get(&kept).is_some());
    assert!(c
        .opt_string(&["SESSION.UPDATE", &kept, r#"{"y":2}"#])
        .is_some());
    c.ok(&["SESSION.LIST", "user_id", "1"]);
    assert_eq!(c.int(&["SESSION.DESTROY", &d]), 1);
    assert_eq!(c.int(&["SESSION.DESTROY", &d]), 0);
    assert_eq!(
        c.int(&["SESSION.REVOKEINDEX", "user_id", "1", "EXCEPT", &kept]),
        2
    );
    (vec![a.clone(), b.clone(), kept, d.clone()], d, vec![a, b])
}

#[test]
fn keyspace_events_for_create_destroy_and_revoke() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", "KEd"]);
    let mut sub = subscribe(&s);
    let (created, destroyed, revoked) = event_workload(&mut c);
    let got = messages_until_marker(&mut sub, &mut c);

    let mut want = Vec::new();
    let mut expect = |event: &str, key: &str| {
        want.push((format!("__keyspace@0__:{key}"), event.to_string()));
        want.push((format!("__keyevent@0__:{event}"), key.to_string()));
    };
    for t in &created {
        expect("session.create", t);
    }
    expect("session.destroy", &destroyed);
    for t in &revoked {
        expect("session.revoke", t);
    }
    assert_eq!(got.len(), want.len(), "events: {got:?}");
    // Creates and the destroy come in the order they ran; the revokes in set order.
    assert_eq!(&got[..10], &want[..10], "create/destroy events");
    let mut got_revokes = got[10..].to_vec();
    got_revokes.sort();
    let mut want_revokes = want[10..].to_vec();
    want_revokes.sort();
    assert_eq!(got_revokes, want_revokes, "revoke events (all: {got:?})");
    // Each keyspace message is followed by its keyevent message.
    for pair in got.chunks(2) {
        assert!(pair[0].0.starts_with("__keyspace@0__:"), "{pair:?}");
        assert_eq!(pair[1].0, format!("__keyevent@0__:{}", pair[0].1));
    }
}

#[test]
fn keyspace_events_follow_the_key_prefix() {
    let s = Server::start(&["indexes", "user_id", "key-prefix", "sess:"]);
    let mut c = s.conn();
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", "Kd"]);
    let mut sub = subscribe(&s);
    let t = c.create(r#"{"user_id":1}"#, &[]).token;
    assert_eq!(c.int(&["SESSION.DESTROY", &t]), 1);
    let got = messages_until_marker(&mut sub, &mut c);
    assert_eq!(
        got,
        [
            (format!("__keyspace@0__:sess:{t}"), "session.create".into()),
            (format!("__keyspace@0__:sess:{t}"), "session.destroy".into()),
        ],
        "Kd: keyspace channel only, on the session key"
    );
}

#[test]
fn no_keyspace_events_when_notifications_are_off() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    assert_eq!(c.config_get("notify-keyspace-events"), "");
    let mut sub = subscribe(&s);
    event_workload(&mut c);
    let got = messages_until_marker(&mut sub, &mut c);
    assert_eq!(got, Vec::<(String, String)>::new());
}

#[test]
fn class_d_is_what_enables_the_session_events() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    // Every class but `d` (module events).
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", "KEg$lshzxet"]);
    let mut sub = subscribe(&s);
    event_workload(&mut c);
    let got = messages_until_marker(&mut sub, &mut c);
    let session_events: Vec<_> = got
        .iter()
        .filter(|(ch, payload)| ch.contains("session.") || payload.starts_with("session."))
        .collect();
    assert!(
        session_events.is_empty(),
        "session events without class d: {session_events:?}"
    );
}

#[test]
fn session_keys_raise_only_session_events_even_with_every_class() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub = subscribe(&s);
    let (created, destroyed, revoked) = event_workload(&mut c);
    let got = messages_until_marker(&mut sub, &mut c);
    // The module writes a session's value and expiry through the key API: no set, expire
    // or del event on a session key, only the module's own (`A` includes `d`).
    let mut on_sessions: Vec<(String, String)> = got
        .iter()
        .filter_map(|(channel, payload)| {
            let key = channel.strip_prefix("__keyspace@0__:")?;
            created
                .contains(&key.to_string())
                .then(|| (key.to_string(), payload.clone()))
        })
        .collect();
    on_sessions.sort();
    let mut want: Vec<(String, String)> = created
        .iter()
        .map(|t| (t.clone(), "session.create".to_string()))
        .chain([(destroyed.clone(), "session.destroy".to_string())])
        .chain(revoked.iter().map(|t| (t.clone(), "session.revoke".into())))
        .collect();
    want.sort();
    assert_eq!(on_sessions, want, "events on session keys (all: {got:?})");
}

// ---------------------------------------------------------------------------------------
// MULTI/EXEC and scripts
// ---------------------------------------------------------------------------------------

fn bulk(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// The token of a CREATE reply.
fn token_of(reply: &str) -> String {
    common::parse_object(reply)["token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// A CREATE reply without its token: what VALIDATE replies.
fn data_of(reply: &str) -> String {
    let mut m = common::parse_object(reply);
    m.shift_remove("token");
    serde_json::to_string(&m).unwrap()
}

#[test]
fn session_commands_run_inside_multi_exec() {
    let primary = Server::start(&["indexes", "user_id"]);
    let replica = Server::start_replica_without_module(&primary);
    let mut p = primary.conn();

    let created = p.transaction(&[
        &["SESSION.CREATE", r#"{"user_id":1,"n":1}"#],
        &["SESSION.CREATE", r#"{"user_id":1,"n":2}"#, "TTL", "600"],
        &[
            "SESSION.CREATE",
            r#"{"user_id":2,"n":3}"#,
            "MAXLIFETIME",
            "900",
        ],
        &["SESSION.CREATE", "not json"],
    ]);
    let replies: Vec<String> = created[..3].iter().map(bulk).collect();
    let e = error_text(&created[3]).expect("the bad CREATE fails inside EXEC");
    assert!(e.starts_with("ERR data is not valid JSON"), "{e}");
    let [a, b, x] = [0, 1, 2].map(|i| token_of(&replies[i]));
    assert_eq!(
        p.smembers("user_id:1"),
        BTreeSet::from([a.clone(), b.clone()])
    );
    assert_replica_matches(&mut p, &replica, "after CREATE in MULTI");

    let data_a = data_of(&replies[0]);
    let patched = data_a.replacen(r#""user_id":1"#, r#""user_id":2"#, 1);
    let got = p.transaction(&[
        &["SESSION.VALIDATE", &a],
        &["SESSION.GET", &a],
        &["SESSION.UPDATE", &a, r#"{"user_id":2}"#],
        &["SESSION.GET", &a],
        &["SESSION.DESTROY", &b],
        &["SESSION.VALIDATE", &b],
        &["SESSION.DESTROY", &b],
        &["SESSION.GET", UNKNOWN_TOKEN],
    ]);
    assert_eq!(bulk(&got[0]), data_a, "VALIDATE");
    assert_eq!(bulk(&got[1]), data_a, "GET");
    assert_eq!(bulk(&got[2]), patched, "UPDATE");
    assert_eq!(bulk(&got[3]), patched, "GET after UPDATE");
    assert_eq!(got[4], Value::Int(1), "DESTROY");
    assert_eq!(got[5], Value::Nil, "VALIDATE after DESTROY");
    assert_eq!(got[6], Value::Int(0), "DESTROY again");
    assert_eq!(got[7], Value::Nil, "GET unknown");
    assert!(!p.exists("user_id:1"), "user_id:1 should be empty now");
    assert_eq!(
        p.smembers("user_id:2"),
        BTreeSet::from([a.clone(), x.clone()])
    );
    assert_replica_matches(&mut p, &replica, "after VALIDATE/UPDATE/DESTROY in MULTI");

    let got = p.transaction(&[
        &["SESSION.LIST", "user_id", "2"],
        &["SESSION.REVOKEINDEX", "user_id", "2", "EXCEPT", &x],
        &["SESSION.VALIDATE", &a],
        &["SESSION.VALIDATE", &x],
    ]);
    let listed: BTreeSet<String> = match &got[0] {
        Value::Array(items) => items.iter().map(|i| token_of(&bulk(i))).collect(),
        other => panic!("LIST: {other:?}"),
    };
    assert_eq!(listed, BTreeSet::from([a.clone(), x.clone()]), "LIST");
    assert_eq!(got[1], Value::Int(1), "REVOKEINDEX");
    assert_eq!(got[2], Value::Nil, "VALIDATE of revoked");
    assert_eq!(
        bulk(&got[3]),
        data_of(&replies[2]),
        "VALIDATE of the excepted"
    );
    assert_replica_matches(&mut p, &replica, "after LIST/REVOKEINDEX in MULTI");
}

#[test]
fn watch_on_a_session_key_sees_validate_but_not_get() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut other = s.conn();
    let t = c.create(r#"{"a":1}"#, &[]).token;
    let ping_in_transaction = |c: &mut Conn| {
        c.ok(&["MULTI"]);
        c.ok(&["PING"]);
        c.cmd(&["EXEC"])
    };
    c.ok(&["WATCH", &t]);
    assert!(other.get(&t).is_some());
    assert_eq!(
        ping_in_transaction(&mut c),
        Value::Array(vec![Value::SimpleString("PONG".into())]),
        "GET writes nothing: the transaction runs"
    );
    c.ok(&["WATCH", &t]);
    // A VALIDATE in the same millisecond as the CREATE moves no expiry and so writes
    // nothing (tests/hardening.rs); a later one slides the expiry, which is a write.
    std::thread::sleep(Duration::from_millis(5));
    assert!(other.validate(&t).is_some());
    assert_eq!(
        ping_in_transaction(&mut c),
        Value::Nil,
        "VALIDATE touched the watched session: EXEC aborts"
    );
}

#[test]
fn scripts_may_call_session_commands() {
    let primary = Server::start(&["indexes", "user_id"]);
    let replica = Server::start_replica_without_module(&primary);
    let mut p = primary.conn();

    let reply = p.string(&[
        "EVAL",
        "return redis.call('SESSION.CREATE', ARGV[1])",
        "0",
        r#"{"a":1}"#,
    ]);
    let t = token_of(&reply);
    assert_eq!(p.validate(&t), Some(data_of(&reply)));

    // Create and validate in one script.
    let script = "local r = redis.call('SESSION.CREATE', ARGV[1], 'TTL', '600') \
                  local t = cjson.decode(r).token \
                  return {r, redis.call('SESSION.VALIDATE', t)}";
    let got = p.ok(&["EVAL", script, "0", r#"{"user_id":5,"b":[1,2]}"#]);
    let Value::Array(items) = got else {
        panic!("EVAL: {got:?}");
    };
    let created = bulk(&items[0]);
    assert_eq!(
        bulk(&items[1]),
        data_of(&created),
        "VALIDATE inside the script"
    );
    let t2 = token_of(&created);
    assert_eq!(p.smembers("user_id:5"), BTreeSet::from([t2.clone()]));

    // A script doing every other command.
    let script = "local u = redis.call('SESSION.UPDATE', KEYS[1], ARGV[1]) \
                  local g = redis.call('SESSION.GET', KEYS[1]) \
                  local l = redis.call('SESSION.LIST', 'user_id', '6') \
                  local d = redis.call('SESSION.DESTROY', KEYS[2]) \
                  return {u, g, #l, d}";
    let got = to_json(&p.ok(&["EVAL", script, "2", &t2, &t, r#"{"user_id":6}"#]));
    assert_eq!(got[1], got[0], "GET after UPDATE in a script");
    assert_eq!((&got[2], &got[3]), (&json!(1), &json!(1)), "{got}");
    assert_eq!(
        p.int(&[
            "EVAL",
            "return redis.call('SESSION.REVOKEINDEX', 'user_id', '6')",
            "0"
        ]),
        1
    );

    // GET is read-only: allowed in EVAL_RO; VALIDATE writes: refused there.
    let t3 = p.create(r#"{"c":3}"#, &[]).token;
    assert_eq!(
        p.opt_string(&[
            "EVAL_RO",
            "return redis.call('SESSION.GET', KEYS[1])",
            "1",
            &t3
        ]),
        p.get(&t3)
    );
    let e = p.err(&[
        "EVAL_RO",
        "return redis.call('SESSION.VALIDATE', KEYS[1])",
        "1",
        &t3,
    ]);
    assert!(e.contains("Write commands are not allowed"), "{e}");

    // Functions too.
    p.ok(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=sessions\n\
         redis.register_function('mk', function(keys, args) \
         return redis.call('SESSION.CREATE', args[1]) end)",
    ]);
    let made = p.string(&["FCALL", "mk", "0", r#"{"user_id":7}"#]);
    assert_eq!(p.validate(token_of(&made)), Some(data_of(&made)));

    assert_replica_matches(&mut p, &replica, "after scripts");
}

// ---------------------------------------------------------------------------------------
// Read-only replicas
// ---------------------------------------------------------------------------------------

#[test]
fn get_runs_on_a_read_only_replica_with_the_module() {
    let primary = Server::start(&["indexes", "user_id"]);
    let replica = Server::builder()
        .module_args(&["indexes", "user_id"])
        .replica_of(&primary)
        .start();
    replica.wait_link_up();
    let mut p = primary.conn();
    let created = p.create(r#"{"user_id":1,"k":"v"}"#, &[]);
    sync_replica(&mut p, &replica);
    let mut r = replica.conn();
    assert_eq!(r.get(&created.token), Some(created.data_text()));
    for cmd in [
        vec!["SESSION.VALIDATE", created.token.as_str()],
        vec!["SESSION.DESTROY", created.token.as_str()],
        vec!["SESSION.CREATE", "{}"],
        vec!["SESSION.LIST", "user_id", "1"],
    ] {
        let e = r.err(&cmd);
        assert!(e.starts_with("READONLY"), "{cmd:?} on a replica: {e}");
    }
}
