//! A randomized barrage: random arities and random bytes (tokens of real sessions, JSON
//! fragments, huge strings, NUL, invalid UTF-8, real index values) sent to every SESSION.*
//! command, directly and through EVAL and MULTI/EXEC, bounded in count and time. Then:
//! the same server process answers and logged no caught panic; every key outside the
//! module's namespaces (and every non-session key inside them, including strings that
//! imitate a session's layout-2 text with a wrong tag or copy a real session's value under
//! another name) has the same type, value and expiry; the session secret is as it was; and
//! the module's keys are consistent with each other. Some sessions start as 0.1.0 hashes.
//!
//! The seed is printed; `BARRAGE_SEED=<n>` replays a run, `BARRAGE_SECONDS` and
//! `BARRAGE_MAX_COMMANDS` change its bounds (defaults 8 s and 300,000 commands). With
//! `REDIS_SERVER` pointing at a wrapper that runs redis-server under valgrind, the same test
//! is the valgrind run of docs/SAFETY.md: it ends with a clean `SHUTDOWN`.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use redis::Value;

use common::{
    contents, error_text, session_id, tag_v2, tag_v2_hashed, Conn, Contents, Layout, Rng, Server,
    StoredSession,
};

/// The configured indexes, in the order the module lists them in a session's `indexes`.
const INDEXES: [&str; 2] = ["user_id", "tenant_id"];

const COMMANDS: [&str; 9] = [
    "SESSION.CREATE",
    "SESSION.VALIDATE",
    "SESSION.GET",
    "SESSION.UPDATE",
    "SESSION.ROTATE",
    "SESSION.DESTROY",
    "SESSION.REVOKEINDEX",
    "SESSION.LIST",
    "SESSION.REVOKEID",
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Type, value (see [`Contents`]) and `PEXPIRETIME` of a key; `None` when it does not exist.
fn key_state(c: &mut Conn, key: &[u8]) -> Option<(String, Contents, i64)> {
    let kind = c.key_type(key);
    if kind == "none" {
        return None;
    }
    let value = contents(c, key, &kind);
    Some((kind, value, c.pexpiretime(key)))
}

fn is_token(name: &[u8]) -> bool {
    (32..=256).contains(&name.len())
        && name
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(40) {
        if (0x20..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > 40 {
        out.push_str(&format!("...({} bytes)", bytes.len()));
    }
    out
}

/// What the barrage draws its arguments from.
struct Pools {
    tokens: Vec<String>,
    bystanders: Vec<Vec<u8>>,
    index_values: Vec<Vec<u8>>,
}

/// The text of an indexed value in its index key's name (strings raw, numbers and booleans
/// as compact JSON), or `None` when the value is not indexed.
fn index_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn random_scalar_json(rng: &mut Rng, pools: &Pools) -> String {
    match rng.below(10) {
        0 => "null".into(),
        1 => "true".into(),
        2 => (rng.next() as i64).to_string(),
        3 => format!("{}{}", 1 + rng.below(9), "7".repeat(rng.below(60))),
        4 => "1e999999".into(),
        5 => "-0.000001".into(),
        6 => {
            let value: &Vec<u8> = rng.pick(&pools.index_values);
            serde_json::to_string(&String::from_utf8_lossy(value)).unwrap()
        }
        7 => "\"a\\u0000b\"".into(),
        8 => (rng.below(10)).to_string(),
        _ => format!("\"{}\"", "x".repeat(rng.below(50))),
    }
}

fn random_json_value(rng: &mut Rng, pools: &Pools, depth: usize) -> String {
    if depth == 0 || rng.chance(60) {
        return random_scalar_json(rng, pools);
    }
    let n = rng.below(4);
    if rng.chance(50) {
        let items: Vec<String> = (0..n)
            .map(|_| random_json_value(rng, pools, depth - 1))
            .collect();
        format!("[{}]", items.join(","))
    } else {
        random_json_object(rng, pools, depth - 1)
    }
}

fn random_json_object(rng: &mut Rng, pools: &Pools, depth: usize) -> String {
    const NAMES: [&str; 9] = [
        "user_id",
        "tenant_id",
        "user_id",
        "tenant_id",
        "token",
        "createdAt",
        "a",
        "n\\u0000",
        "\\u00e9",
    ];
    let n = rng.below(5);
    let fields: Vec<String> = (0..n)
        .map(|_| {
            let name = if rng.chance(80) {
                rng.pick(&NAMES).to_string()
            } else {
                format!("k{}", rng.below(100))
            };
            let value = if name.ends_with("_id") && rng.chance(80) {
                random_scalar_json(rng, pools)
            } else {
                random_json_value(rng, pools, depth)
            };
            format!("\"{name}\":{value}")
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// One random argument of a random kind.
fn random_arg(rng: &mut Rng, pools: &Pools) -> Vec<u8> {
    match rng.below(20) {
        0 => Vec::new(),
        1 => {
            let n = rng.below(33);
            rng.bytes(n)
        }
        2 => {
            let n = rng.below(4097);
            rng.bytes(n)
        }
        3 if rng.chance(10) => vec![b'x'; 100_000 + rng.below(900_000)],
        4..=6 if !pools.tokens.is_empty() => rng.pick(&pools.tokens).clone().into_bytes(),
        7 if !pools.tokens.is_empty() => {
            let mut t = rng.pick(&pools.tokens).clone().into_bytes();
            match rng.below(4) {
                0 => t.make_ascii_uppercase(),
                1 => t.truncate(31),
                2 => t.push(rng.next() as u8),
                _ => {
                    let i = rng.below(t.len());
                    t[i] = rng.next() as u8;
                }
            }
            t
        }
        8 => rng.pick(&pools.bystanders).clone(),
        9 => {
            let n = 32 + rng.below(225);
            (0..n).map(|_| b"0123456789abcdef"[rng.below(16)]).collect()
        }
        10 | 11 => random_json_object(rng, pools, 3).into_bytes(),
        12 => {
            let text = random_json_object(rng, pools, 3).into_bytes();
            let cut = rng.below(text.len() + 1);
            text[..cut].to_vec()
        }
        13 => {
            let deep = 90 + rng.below(20);
            format!("{{\"a\":{}1{}}}", "[".repeat(deep), "]".repeat(deep)).into_bytes()
        }
        14 => rng
            .pick(&[
                "TTL",
                "MAXLIFETIME",
                "EXCEPT",
                "ttl",
                "except",
                "user_id",
                "tenant_id",
            ])
            .as_bytes()
            .to_vec(),
        15 => rng
            .pick(&[
                "-1",
                "0",
                "1",
                "60",
                "315360000",
                "315360001",
                "99999999999999999999",
                "1.5",
            ])
            .as_bytes()
            .to_vec(),
        16 | 17 => rng.pick(&pools.index_values).clone(),
        18 => rng
            .pick(&[
                &b"\x00"[..],
                b"\xff\xfe",
                b"a\x00b",
                b"\xc3",
                b"\r\n",
                b"%s%n",
            ])
            .to_vec(),
        _ => rng
            .pick(&[
                &b"*"[..],
                b"user_id:1",
                b"bystander:*",
                b"{}",
                b"[]",
                b"null",
            ])
            .to_vec(),
    }
}

/// A command in the shape its command expects, with one argument sometimes replaced.
fn shaped_command(rng: &mut Rng, pools: &Pools) -> Vec<Vec<u8>> {
    let name = *rng.pick(&COMMANDS);
    let token = |rng: &mut Rng| -> Vec<u8> {
        if pools.tokens.is_empty() || rng.chance(10) {
            random_arg(rng, pools)
        } else {
            rng.pick(&pools.tokens).clone().into_bytes()
        }
    };
    let mut args: Vec<Vec<u8>> = vec![name.as_bytes().to_vec()];
    match name {
        "SESSION.CREATE" => {
            args.push(random_json_object(rng, pools, 3).into_bytes());
            if rng.chance(30) {
                args.push(b"TTL".to_vec());
                args.push((1 + rng.below(5)).to_string().into_bytes());
            }
            if rng.chance(20) {
                args.push(b"MAXLIFETIME".to_vec());
                args.push(rng.below(5).to_string().into_bytes());
            }
            if rng.chance(20) {
                args.push(b"MAXSESSIONS".to_vec());
                args.push((1 + rng.below(4)).to_string().into_bytes());
                if rng.chance(30) {
                    args.push(b"DENY".to_vec());
                }
            }
        }
        "SESSION.UPDATE" => {
            args.push(token(rng));
            args.push(random_json_object(rng, pools, 3).into_bytes());
        }
        "SESSION.ROTATE" => {
            args.push(token(rng));
            if rng.chance(50) {
                args.push(b"GRACE".to_vec());
                args.push(rng.below(4).to_string().into_bytes());
            }
        }
        "SESSION.REVOKEID" => {
            args.push(rng.pick(&INDEXES).as_bytes().to_vec());
            args.push(rng.pick(&pools.index_values).clone());
            let t = token(rng);
            // Mostly a real identifier (a token's hash), sometimes the token itself.
            if rng.chance(70) {
                args.push(session_id(&String::from_utf8_lossy(&t)).into_bytes());
            } else {
                args.push(t);
            }
        }
        "SESSION.REVOKEINDEX" | "SESSION.LIST" => {
            args.push(rng.pick(&INDEXES).as_bytes().to_vec());
            args.push(rng.pick(&pools.index_values).clone());
            if name == "SESSION.REVOKEINDEX" && rng.chance(40) {
                args.push(b"EXCEPT".to_vec());
                args.push(token(rng));
            }
        }
        _ => args.push(token(rng)),
    }
    if rng.chance(15) {
        let i = 1 + rng.below(args.len());
        if i < args.len() {
            args[i] = random_arg(rng, pools);
        } else {
            args.push(random_arg(rng, pools));
        }
    }
    args
}

/// Any command name (in any case) with 0 to 8 random arguments.
fn random_command(rng: &mut Rng, pools: &Pools) -> Vec<Vec<u8>> {
    let mut name = rng.pick(&COMMANDS).as_bytes().to_vec();
    if rng.chance(30) {
        name.make_ascii_lowercase();
    }
    let n = rng.below(9);
    std::iter::once(name)
        .chain((0..n).map(|_| random_arg(rng, pools)))
        .collect()
}

/// Wraps a command in `EVAL` (a script calling it) or returns it as is.
fn maybe_in_script(rng: &mut Rng, args: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if !rng.chance(5) {
        return args;
    }
    let mut eval: Vec<Vec<u8>> = vec![
        b"EVAL".to_vec(),
        b"return redis.pcall(unpack(ARGV))".to_vec(),
        b"0".to_vec(),
    ];
    eval.extend(args);
    eval
}

/// Collects tokens from a reply (CREATE's and LIST's carry them).
fn harvest_tokens(v: &Value, into: &mut Vec<String>) {
    match v {
        Value::BulkString(b) => {
            if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(b) {
                if let Some(serde_json::Value::String(t)) = m.get("token") {
                    if !into.contains(t) {
                        into.push(t.clone());
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| harvest_tokens(i, into)),
        _ => {}
    }
}

/// Writes the bystanders: keys outside the module's namespaces, non-session keys at token
/// names, and keys of other types at index names; with and without expiry.
fn plant_bystanders(c: &mut Conn) -> Vec<Vec<u8>> {
    let hex = |i: u64| format!("{:048x}", 0x00ba_d000_0000 + i);
    let cmds: Vec<Vec<String>> = vec![
        vec!["SET".into(), "bystander:str:1".into(), "plain".into()],
        vec![
            "SET".into(),
            "bystander:str:2".into(),
            r#"{"user_id":1}"#.into(),
            "PX".into(),
            "86400000".into(),
        ],
        vec![
            "HSET".into(),
            "bystander:hash:1".into(),
            "data".into(),
            "{}".into(),
            "ttl".into(),
            "60".into(),
            "deadline".into(),
            "0".into(),
        ],
        vec!["SADD".into(), "bystander:set:1".into(), "a".into(), hex(0)],
        vec!["RPUSH".into(), "bystander:list:1".into(), "a".into()],
        vec![
            "ZADD".into(),
            "bystander:zset:1".into(),
            "1".into(),
            "a".into(),
        ],
        vec![
            "XADD".into(),
            "bystander:stream:1".into(),
            "*".into(),
            "f".into(),
            "v".into(),
        ],
        vec![
            "HSET".into(),
            hex(1),
            "user_id".into(),
            "1".into(),
            "createdAt".into(),
            "2020-01-01 00:00:00".into(),
        ],
        vec![
            "HSET".into(),
            hex(2),
            "data".into(),
            "{}".into(),
            "ttl".into(),
            "0".into(),
            "deadline".into(),
            "0".into(),
        ],
        vec!["SET".into(), hex(3), "string at a token name".into()],
        vec!["SADD".into(), hex(4), "member".into()],
        vec!["RPUSH".into(), hex(5), "item".into()],
        vec!["SET".into(), "user_id:999".into(), "not a set".into()],
        vec!["RPUSH".into(), "tenant_id:evil".into(), "not a set".into()],
        vec!["HSET".into(), "user_id:998".into(), "f".into(), "v".into()],
    ];
    let mut names = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        c.ok(cmd);
        if i % 2 == 0 {
            c.ok(&["PEXPIRE", &cmd[1], &(3_600_000 + i * 1000).to_string()]);
        }
        names.push(cmd[1].as_bytes().to_vec());
    }
    names
}

/// Writes strings at token names that are not sessions although they look like one: the
/// layout-2 text with an all-zero tag, the same tagged with another secret, and the value of
/// the real session `copied` byte for byte under another name (with its expiry). Each is
/// added to the index sets its text lists, and to `user_id:7`. Returns their names.
fn plant_fake_sessions(c: &mut Conn, secret: &str, copied: &str) -> Vec<Vec<u8>> {
    let hex = |i: u64| format!("{:048x}", 0x00ba_d000_0000 + i);
    let other_secret = format!(
        "{}{}",
        if secret.starts_with('0') { "1" } else { "0" },
        &secret[1..]
    );
    let imitation = StoredSession {
        layout: Layout::V2,
        tag: None,
        data: r#"{"user_id":7,"tenant_id":"acme","createdAt":"2020-01-01 00:00:00"}"#.into(),
        ttl: 3600,
        deadline: 0,
        indexes: Some(vec!["user_id:7".into(), "tenant_id:acme".into()]),
    };
    let mut zero_tag = imitation.encode_v2(secret, hex(6).as_bytes());
    zero_tag[3..19].copy_from_slice(&[b'0'; 16]);
    let other = imitation.encode_v2(&other_secret, hex(7).as_bytes());
    let copy = c.get_bytes(copied).expect("the copied session exists");
    let copied_indexes = c.stored(copied).index_keys();
    let fakes = [
        (hex(6), zero_tag, imitation.index_keys(), Some(3_600_000)),
        (hex(7), other, imitation.index_keys(), None),
        (hex(8), copy, copied_indexes, Some(-1)),
    ];
    let mut names = Vec::new();
    for (name, value, indexes, px) in fakes {
        let mut set: Vec<Vec<u8>> = vec![b"SET".to_vec(), name.clone().into_bytes(), value];
        match px {
            // The copied session's own expiry.
            Some(-1) => set.extend([
                b"PXAT".to_vec(),
                c.pexpiretime(copied).to_string().into_bytes(),
            ]),
            Some(ms) => set.extend([b"PX".to_vec(), ms.to_string().into_bytes()]),
            None => {}
        }
        c.ok(&set);
        for index in indexes.iter().map(String::as_str).chain(["user_id:7"]) {
            c.ok(&["SADD", index, &name]);
        }
        names.push(name.into_bytes());
    }
    names
}

/// Writes 0.1.0 sessions (hashes) with plain commands, as 0.1.0 left them, and returns their
/// tokens.
fn plant_v010_sessions(c: &mut Conn, count: usize) -> Vec<String> {
    let at = c.time_ms() + 3_600_000;
    (0..count)
        .map(|i| {
            let token = format!("{:048x}", 0x0010_0000_0000u64 + i as u64);
            let (user, tenant) = (i % 8, ["acme", "zoë", "t"][i % 3]);
            let data = format!(
                r#"{{"user_id":{user},"tenant_id":"{tenant}","n":"old{i}","createdAt":"2020-01-01 00:00:00"}}"#
            );
            let user_index = format!("user_id:{user}");
            let tenant_index = format!("tenant_id:{tenant}");
            c.write_v010(&token, &data, 3600, 0, &[&user_index, &tenant_index], at);
            token
        })
        .collect()
}

/// A key read by [`read_all_keys`]: name, type, `PEXPIRETIME`, contents.
type KeyDump = (Vec<u8>, String, i64, Vec<Vec<u8>>);

/// Every key with its type, `PEXPIRETIME`, and contents (`GET` of a string, `HGETALL` of a
/// hash, `SMEMBERS` of a set, nothing for other types), read atomically by one script.
fn read_all_keys(c: &mut Conn) -> Vec<KeyDump> {
    const SCRIPT: &str = r#"
        local out = {}
        for _, k in ipairs(redis.call('KEYS', '*')) do
            local t = redis.call('TYPE', k)['ok']
            local body = {}
            if t == 'string' then body = {redis.call('GET', k)}
            elseif t == 'hash' then body = redis.call('HGETALL', k)
            elseif t == 'set' then body = redis.call('SMEMBERS', k) end
            table.insert(out, {k, t, redis.call('PEXPIRETIME', k), body})
        end
        return out
    "#;
    let bytes = |v: &Value| match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        other => panic!("expected a string, got {other:?}"),
    };
    let Value::Array(keys) = c.cmd(&["EVAL", SCRIPT, "0"]) else {
        panic!("EVAL of the key reader failed");
    };
    keys.iter()
        .map(|entry| match entry {
            Value::Array(parts) => match parts.as_slice() {
                [k, t, Value::Int(at), Value::Array(body)] => (
                    bytes(k),
                    String::from_utf8(bytes(t)).unwrap(),
                    *at,
                    body.iter().map(bytes).collect(),
                ),
                other => panic!("key reader entry {other:?}"),
            },
            other => panic!("key reader entry {other:?}"),
        })
        .collect()
}

#[test]
fn random_barrage_leaves_server_bystanders_and_indexes_intact() {
    let seed: u64 = env_or(
        "BARRAGE_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    let seconds: f64 = env_or("BARRAGE_SECONDS", 8.0);
    let max_commands: usize = env_or("BARRAGE_MAX_COMMANDS", 300_000);
    println!("barrage seed: {seed} (replay with BARRAGE_SEED={seed})");
    let mut rng = Rng(seed);

    let mut s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();

    let bystanders = plant_bystanders(&mut c);
    let mut pools = Pools {
        tokens: Vec::new(),
        bystanders: bystanders.clone(),
        index_values: [
            "0", "1", "2", "3", "7", "999", "998", "acme", "zoë", "evil", "a\0b", "",
        ]
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect(),
    };
    pools.index_values.push(b"\xff".to_vec());
    // Real sessions: some short-lived (they expire during the run and leave stale index
    // members), some deleted by hand, one index holding non-session members.
    for i in 0..60 {
        let data = format!(
            r#"{{"user_id":{},"tenant_id":"{}","n":{i}}}"#,
            i % 8,
            ["acme", "zoë", "t"][i % 3]
        );
        let opts: &[&str] = match i % 5 {
            0 => &["TTL", "2"],
            1 => &["MAXLIFETIME", "3"],
            _ => &[],
        };
        pools.tokens.push(c.create(&data, opts).token);
    }
    for t in pools.tokens.iter().step_by(10) {
        c.ok(&["DEL", t]);
    }
    let secret = c.secret("").expect("the first CREATE makes the secret");
    // Sessions as 0.1.0 wrote them: still sessions (UPDATE turns them into layout 2).
    let v010_tokens = plant_v010_sessions(&mut c, 10);
    pools.tokens.extend(v010_tokens.iter().cloned());
    // tokens[7]: user_id 7, tenant zoë, no TTL or MAXLIFETIME option, not deleted.
    let fakes = plant_fake_sessions(&mut c, &secret, &pools.tokens[7]);
    let mut bystanders = bystanders;
    bystanders.extend(fakes.iter().cloned());
    pools.bystanders = bystanders.clone();
    let mut foreign_members: Vec<String> = vec![
        String::from_utf8(bystanders[7].clone()).unwrap(),
        String::from_utf8(bystanders[9].clone()).unwrap(),
        "bystander:str:1".into(),
    ];
    for m in &foreign_members {
        c.ok(&["SADD", "user_id:7", m]);
    }
    foreign_members.extend(fakes.iter().map(|f| String::from_utf8(f.clone()).unwrap()));
    let before: BTreeMap<Vec<u8>, _> = bystanders
        .iter()
        .map(|k| (k.clone(), key_state(&mut c, k).expect("bystander exists")))
        .collect();

    // The barrage.
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut sent = 0usize;
    let mut replies: BTreeMap<&str, usize> = BTreeMap::new();
    let mut recent: VecDeque<String> = VecDeque::new();
    while sent < max_commands && Instant::now() < deadline {
        let args = if rng.chance(1) {
            // Sessions are made under either `token-hash`; every command finds both.
            let mode = *rng.pick(&["none", "sha256"]);
            vec![
                b"CONFIG".to_vec(),
                b"SET".to_vec(),
                b"session.token-hash".to_vec(),
                mode.as_bytes().to_vec(),
            ]
        } else if rng.chance(50) {
            shaped_command(&mut rng, &pools)
        } else {
            random_command(&mut rng, &pools)
        };
        let args = maybe_in_script(&mut rng, args);
        let line: Vec<String> = args.iter().map(|a| shown(a)).collect();
        recent.push_back(line.join(" "));
        if recent.len() > 20 {
            recent.pop_front();
        }
        let reply = catch_unwind(AssertUnwindSafe(|| c.cmd(&args))).unwrap_or_else(|_| {
            panic!(
                "no reply (seed {seed}, command {sent}); last commands:\n{}\nlog:\n{}",
                Vec::from(recent.clone()).join("\n"),
                s.log()
            )
        });
        sent += 1;
        let kind = match &reply {
            Value::Nil => "nil",
            Value::Int(_) => "integer",
            Value::BulkString(_) => "bulk string",
            Value::Array(a) if a.is_empty() => "empty array",
            Value::Array(_) => "array",
            Value::ServerError(_) => "error",
            _ => "other",
        };
        *replies.entry(kind).or_default() += 1;
        if let Some(e) = error_text(&reply) {
            assert!(
                !e.contains("internal error"),
                "seed {seed}: {} -> {e}",
                line.join(" ")
            );
            if args[0] != b"EVAL" {
                assert!(
                    e.starts_with("ERR ") || e.starts_with("WRONGTYPE "),
                    "seed {seed}: {} -> {e}",
                    line.join(" ")
                );
            }
        }
        harvest_tokens(&reply, &mut pools.tokens);
    }
    let elapsed = started.elapsed();
    println!(
        "barrage: {sent} commands in {:.2} s ({:.0}/s); replies {replies:?}",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    assert!(sent >= 1000, "too few commands sent: {sent}");

    // The same server, alive, and no panic caught along the way.
    s.assert_alive();
    let info = c.string(&["INFO", "server"]);
    assert!(
        info.lines()
            .any(|l| l.trim() == format!("process_id:{}", s.pid())),
        "another process answers"
    );
    let log = s.log();
    assert!(
        !log.contains("caught a panic"),
        "seed {seed}: a panic was caught; log:\n{log}"
    );

    // Every bystander as it was.
    for (k, state) in &before {
        assert_eq!(
            key_state(&mut c, k).as_ref(),
            Some(state),
            "seed {seed}: bystander {} changed",
            shown(k)
        );
    }

    // Every other key is a session at a token name, an index set, or the session secret.
    // The keys are read in one script, so that none expires between the reads (time stands
    // still in a script).
    let mut sessions: BTreeMap<String, (StoredSession, i64)> = BTreeMap::new();
    let mut index_sets: BTreeMap<Vec<u8>, (BTreeSet<Vec<u8>>, i64)> = BTreeMap::new();
    let mut secret_seen = false;
    for (key, kind, at, body) in read_all_keys(&mut c) {
        if before.contains_key(&key) {
            continue;
        }
        if key == b"session-secret" {
            // Made by the first CREATE, never expiring, never changed.
            assert_eq!(kind, "string", "seed {seed}: the secret is a {kind}");
            assert_eq!(at, -1, "seed {seed}: the secret expires");
            assert_eq!(
                body,
                vec![secret.clone().into_bytes()],
                "seed {seed}: the secret changed"
            );
            secret_seen = true;
        } else if is_token(&key) && kind == "string" && body[0].starts_with(b"r2 ") {
            // A rotated token in its grace window: `r2 <tag> <new token>`, tagged for its
            // own name, expiring within GRACE (at most 3 s here) of its rotation.
            let name = String::from_utf8(key).unwrap();
            let text = String::from_utf8(body[0].clone()).unwrap();
            let parts: Vec<&str> = text.split(' ').collect();
            assert_eq!(parts.len(), 3, "seed {seed}: grace record {name}: {text}");
            assert!(
                parts[1] == tag_v2(&secret, name.as_bytes())
                    || parts[1] == tag_v2_hashed(&secret, name.as_bytes()),
                "seed {seed}: grace record {name} has a wrong tag"
            );
            assert!(is_token(parts[2].as_bytes()), "seed {seed}: {text}");
            assert!(at > 0, "seed {seed}: grace record {name} has no expiry");
        } else if is_token(&key) {
            let name = String::from_utf8(key).unwrap();
            assert!(at > 0, "seed {seed}: session {name} has no expiry");
            let stored = match kind.as_str() {
                // The module writes layout 2, tagged for this very name.
                "string" => {
                    let stored = StoredSession::parse_v2(&body[0]).unwrap_or_else(|| {
                        panic!("seed {seed}: {name} is not layout 2: {}", shown(&body[0]))
                    });
                    // Named by its token, or by its hash (`token-hash sha256`).
                    let tag = stored.tag.clone().unwrap_or_default();
                    assert!(
                        tag == tag_v2(&secret, name.as_bytes())
                            || tag == tag_v2_hashed(&secret, name.as_bytes()),
                        "seed {seed}: session {name} has a wrong tag"
                    );
                    stored
                }
                // It writes no hash: a hash session is one of the 0.1.0 ones, still as it was
                // written (VALIDATE only prolongs it).
                "hash" => {
                    assert!(
                        v010_tokens.contains(&name),
                        "seed {seed}: {name} is a hash the test did not write"
                    );
                    let fields: BTreeMap<String, String> = body
                        .chunks(2)
                        .map(|kv| {
                            (
                                String::from_utf8(kv[0].clone()).unwrap(),
                                String::from_utf8(kv[1].clone()).unwrap(),
                            )
                        })
                        .collect();
                    StoredSession {
                        layout: Layout::V010,
                        tag: None,
                        data: fields["data"].clone(),
                        ttl: fields["ttl"].parse().unwrap(),
                        deadline: fields["deadline"].parse().unwrap(),
                        indexes: fields
                            .get("indexes")
                            .map(|t| serde_json::from_str(t).unwrap()),
                    }
                }
                other => panic!("seed {seed}: {name} is a {other}"),
            };
            sessions.insert(name, (stored, at));
        } else if INDEXES
            .iter()
            .any(|p| key.starts_with(format!("{p}:").as_bytes()))
        {
            assert_eq!(kind, "set", "seed {seed}: {} is a {kind}", shown(&key));
            index_sets.insert(key, (body.into_iter().collect(), at));
        } else {
            panic!("seed {seed}: unexpected key {} ({kind})", shown(&key));
        }
    }
    assert!(secret_seen, "seed {seed}: the session secret is gone");

    // Every session is well-formed, its index list is what its data says, and each of those
    // index sets holds its token and expires no earlier than it.
    for (token, (stored, at)) in &sessions {
        let data: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&stored.data)
            .unwrap_or_else(|e| panic!("seed {seed}: session {token} data is not JSON ({e})"));
        assert!(!data.contains_key("token"), "seed {seed}: {token}");
        assert!(
            (1..=315_360_000).contains(&stored.ttl),
            "seed {seed}: {token}"
        );
        assert!(stored.deadline >= 0, "seed {seed}: {token}");
        let listed = stored.index_keys();
        if stored.layout == Layout::V2 {
            assert_ne!(
                stored.indexes,
                Some(Vec::new()),
                "seed {seed}: {token} lists an empty index list instead of leaving it out"
            );
        }
        let mut want: Vec<String> = Vec::new();
        for p in INDEXES {
            if let Some(text) = data.get(p).and_then(index_text) {
                let key = format!("{p}:{text}");
                if !want.contains(&key) {
                    want.push(key);
                }
            }
        }
        assert_eq!(
            listed, want,
            "seed {seed}: session {token} with data {}",
            stored.data
        );
        for index in &listed {
            let (members, index_at) = index_sets.get(index.as_bytes()).unwrap_or_else(|| {
                panic!("seed {seed}: session {token} lists {index}, which is not a set")
            });
            assert!(
                members.contains(token.as_bytes()),
                "seed {seed}: {index} lacks {token}"
            );
            assert!(
                *index_at == -1 || index_at >= at,
                "seed {seed}: {index} expires at {index_at}, before {token} at {at}"
            );
        }
    }
    // Every index member that names a live session is a session listing that index.
    for (index, (members, _)) in &index_sets {
        let index_name = String::from_utf8_lossy(index).into_owned();
        for m in members {
            let Ok(m) = std::str::from_utf8(m) else {
                continue;
            };
            if let Some((stored, _)) = sessions.get(m) {
                let listed = stored.index_keys();
                assert!(
                    listed.contains(&index_name),
                    "seed {seed}: {index_name} holds {m}, whose indexes are {listed:?}"
                );
            }
        }
    }
    // Members that are not sessions of ours stay where they were put.
    if let Some((members, _)) = index_sets.get(b"user_id:7".as_slice()) {
        for m in &foreign_members {
            assert!(
                members.contains(m.as_bytes()),
                "seed {seed}: {m} was removed"
            );
        }
    } else {
        panic!("seed {seed}: user_id:7 with its foreign members is gone");
    }
    // The fake sessions stay in the other index sets their texts list, too.
    for fake in &fakes {
        let value = c.get_bytes(fake).expect("a fake session is a bystander");
        let name = String::from_utf8(fake.clone()).unwrap();
        for index in StoredSession::parse_v2(&value).unwrap().index_keys() {
            let (members, _) = index_sets
                .get(index.as_bytes())
                .unwrap_or_else(|| panic!("seed {seed}: {index} with the fake {name} is gone"));
            assert!(
                members.contains(fake),
                "seed {seed}: {name} was removed from {index}"
            );
        }
    }
    println!(
        "barrage end state: {} sessions ({} still 0.1.0 hashes), {} index sets, {} bystanders intact; total {:.2} s",
        sessions.len(),
        sessions.values().filter(|(s, _)| s.layout == Layout::V010).count(),
        index_sets.len(),
        before.len(),
        started.elapsed().as_secs_f64()
    );
    // A clean shutdown ends the run: the module must let the server exit normally (and a
    // server run under valgrind writes its leak report then; see docs/SAFETY.md). The
    // keyspace is emptied first, so that what is still allocated at exit is not data.
    c.ok(&["FLUSHALL", "SYNC"]);
    drop(c);
    s.shutdown();
}
