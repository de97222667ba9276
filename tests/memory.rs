//! Memory: with `maxmemory` reached under `noeviction`, CREATE and UPDATE fail with Redis's
//! OOM error while every other command keeps serving the sessions that exist (logged-in
//! users stay logged in, logouts work); and 100,000 create/destroy cycles give their memory
//! back.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::Value;

use common::{error_text, Conn, Server, UNKNOWN_TOKEN};

/// A field of `INFO memory` (or any section) as a number.
fn info_number(c: &mut Conn, section: &str, field: &str) -> i64 {
    let info = c.string(&["INFO", section]);
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

fn used_memory(c: &mut Conn) -> i64 {
    info_number(c, "memory", "used_memory")
}

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Asserts that `args` fails with the OOM error and changes no key.
fn expect_oom(c: &mut Conn, args: &[&str]) {
    let before = (c.dbsize(), c.keys());
    let v = c.cmd(args);
    println!("CASE {} -> {v:?}", args.join(" "));
    assert_eq!(error_text(&v).as_deref(), Some(OOM), "{args:?}: {v:?}");
    assert_eq!((c.dbsize(), c.keys()), before, "{args:?} wrote something");
}

/// Under `maxmemory` with `noeviction`: CREATE and UPDATE are refused with OOM (directly, in
/// MULTI and from a script) and write nothing; VALIDATE (prolonging), GET, LIST, DESTROY and
/// REVOKEINDEX (with and without EXCEPT) keep working on the sessions that exist.
#[test]
fn full_memory_refuses_create_and_update_but_serves_existing_sessions() {
    let mut s = Server::builder()
        .module_args(&["indexes", "user_id,tenant_id"])
        .directive("maxmemory-policy noeviction")
        .start();
    let mut c = s.conn();
    let tokens: Vec<String> = (0..20)
        .map(|i| {
            c.create(
                &format!(r#"{{"user_id":{},"tenant_id":"acme","n":{i}}}"#, i % 4),
                &["TTL", "600"],
            )
            .token
        })
        .collect();

    // Fill up: the limit 1 MiB above what the sessions use, then a bystander value of
    // 2 MiB written past it (memory is checked before each write, so the write that
    // crosses the limit is let in). The margin is wide enough that the logouts below,
    // which free a few kilobytes, leave memory full, and that deleting the filler frees
    // it again whatever buffers the commands in between kept (RM_Call's pooled clients).
    let limit = used_memory(&mut c) + (1 << 20);
    c.ok(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    // The filling runs on a connection of its own, closed after it, so that the buffers
    // it needed go with it.
    let mut filler = s.conn();
    for i in 0..32 {
        let v = filler.cmd(&[
            "SETRANGE",
            "bystander:fill",
            &(i << 16).to_string(),
            &"x".repeat(1 << 16),
        ]);
        if error_text(&v).is_some() {
            println!("CASE SETRANGE bystander:fill (chunk {i}) -> {v:?}");
            break;
        }
    }
    drop(filler);
    let full = used_memory(&mut c);
    println!("memory: limit {limit}, used {full}");
    assert!(
        full > limit + (512 << 10),
        "memory is not full: {full} <= {limit}"
    );
    expect_oom(&mut c, &["SET", "bystander:other", "x"]);

    expect_oom(&mut c, &["SESSION.CREATE", r#"{"user_id":1}"#]);
    expect_oom(&mut c, &["SESSION.CREATE", "{}", "TTL", "60"]);
    let stored_before = c.get_bytes(&tokens[0]);
    let data_before = Some(c.stored(&tokens[0]).data);
    let expiry_before = c.pexpiretime(&tokens[0]);
    expect_oom(&mut c, &["SESSION.UPDATE", &tokens[0], r#"{"user_id":9}"#]);
    expect_oom(&mut c, &["SESSION.UPDATE", &tokens[0], "{}"]);
    assert_eq!(
        c.get_bytes(&tokens[0]),
        stored_before,
        "UPDATE under OOM changed the value"
    );
    assert_eq!(c.pexpiretime(&tokens[0]), expiry_before);
    // Inside MULTI the command is refused when queued, and EXEC aborts.
    c.ok(&["MULTI"]);
    let queued = c.cmd(&["SESSION.CREATE", "{}"]);
    assert_eq!(error_text(&queued).as_deref(), Some(OOM), "{queued:?}");
    let exec = c.cmd(&["EXEC"]);
    println!("CASE MULTI; SESSION.CREATE {{}}; EXEC -> {queued:?}; {exec:?}");
    assert!(error_text(&exec).is_some_and(|e| e.starts_with("EXECABORT")));
    // A script calling CREATE is refused by Redis's OOM check for scripts.
    let v = c.cmd(&["EVAL", "return redis.call('SESSION.CREATE', '{}')", "0"]);
    println!("CASE EVAL redis.call('SESSION.CREATE', '{{}}') -> {v:?}");
    assert!(
        error_text(&v).is_some_and(|e| e.starts_with("OOM")),
        "EVAL CREATE: {v:?}"
    );
    let sessions = tokens.len() as i64;
    assert_eq!(
        c.dbsize(),
        sessions + 5 + 1 + 1,
        "sessions, index sets, the secret, filler"
    );

    // Logged-in users stay logged in: VALIDATE answers and prolongs.
    sleep(Duration::from_millis(5));
    let got = c.validate(&tokens[0]).expect("VALIDATE under OOM");
    println!("CASE SESSION.VALIDATE <token> -> {got}");
    assert_eq!(Some(got), data_before);
    assert!(c.pexpiretime(&tokens[0]) > expiry_before, "not prolonged");
    let v = c.cmd(&[
        "EVAL",
        "return redis.call('SESSION.VALIDATE', KEYS[1])",
        "1",
        &tokens[1],
    ]);
    assert!(matches!(v, Value::BulkString(_)), "EVAL VALIDATE: {v:?}");
    assert!(c.get(&tokens[2]).is_some(), "GET under OOM");
    let listed = c.cmd(&["SESSION.LIST", "user_id", "1"]);
    println!(
        "CASE SESSION.LIST user_id 1 -> {} sessions",
        match &listed {
            Value::Array(a) => a.len(),
            _ => 0,
        }
    );
    assert!(
        matches!(&listed, Value::Array(a) if a.len() == 5),
        "{listed:?}"
    );

    // Logouts work: one session, everyone of a user, everyone but the current device.
    assert_eq!(c.int(&["SESSION.DESTROY", &tokens[0]]), 1);
    assert!(!c.exists(&tokens[0]));
    assert!(!c.smembers("user_id:0").contains(&tokens[0]));
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "1"]), 5);
    assert_eq!(
        c.int(&["SESSION.REVOKEINDEX", "user_id", "2", "EXCEPT", &tokens[2]]),
        4
    );
    assert!(c.exists(&tokens[2]));
    assert_eq!(
        c.dbsize(),
        10 + 4 + 1 + 1,
        "10 sessions, 4 index sets, the secret, filler"
    );
    assert!(
        used_memory(&mut c) > limit,
        "every command above ran with memory full"
    );

    // Memory freed: CREATE works again.
    c.ok(&["DEL", "bystander:fill"]);
    let freed = used_memory(&mut c);
    assert!(freed < limit, "DEL freed memory: {freed} >= {limit}");
    let made = c.create(r#"{"user_id":1}"#, &[]);
    assert!(c.validate(&made.token).is_some());
    s.assert_alive();
}

/// Asserts the database holds the session secret and nothing else: every session and index
/// key is gone (DESTROY and REVOKEINDEX leave the secret).
fn assert_only_the_secret(c: &mut Conn) {
    assert_eq!(
        c.keys(),
        vec![b"session-secret".to_vec()],
        "keys left behind besides the secret"
    );
    assert!(c.secret("").is_some_and(|s| s.len() == 32), "the secret");
}

/// Creates `n` sessions in one pipeline and returns their tokens.
fn create_batch(con: &mut redis::Connection, first: usize, n: usize) -> Vec<String> {
    let mut pipe = redis::pipe();
    for i in first..first + n {
        // Index values that a batch does not repeat: every index set is made by one CREATE
        // and removed by one DESTROY, so index keys come and go as often as sessions.
        pipe.cmd("SESSION.CREATE").arg(format!(
            r#"{{"user_id":{i},"tenant_id":"t{}","pad":"{}"}}"#,
            i % 5000,
            "p".repeat(i % 64)
        ));
    }
    let replies: Vec<String> = pipe.query(con).expect("CREATE batch");
    replies
        .iter()
        .map(|r| {
            let reply = common::parse_object(r);
            reply["token"].as_str().expect("token").to_string()
        })
        .collect()
}

/// Destroys `tokens` in one pipeline; each must reply 1.
fn destroy_batch(con: &mut redis::Connection, tokens: &[String]) {
    let mut pipe = redis::pipe();
    for t in tokens {
        pipe.cmd("SESSION.DESTROY").arg(t);
    }
    let replies: Vec<i64> = pipe.query(con).expect("DESTROY batch");
    assert!(replies.iter().all(|&r| r == 1), "a DESTROY missed");
}

/// `used_memory` once it has settled: the lowest of a few readings a little apart (client
/// buffers are trimmed by the server's cron, not at once).
fn settled_used_memory(c: &mut Conn) -> i64 {
    (0..5)
        .map(|_| {
            sleep(Duration::from_millis(120));
            used_memory(c)
        })
        .min()
        .unwrap()
}

/// How far `used_memory` may end above where it started after the cycles. A leak of even
/// the smallest allocation (8 bytes) once per cycle would add 800,000 bytes over 100,000
/// cycles, twelve times this margin; the noise measured between runs (a client's 16 KiB
/// query buffer not yet trimmed) was 0 to 16,384 bytes, a quarter of it.
const LEAK_MARGIN: i64 = 64 * 1024;

/// 100,000 sessions created and destroyed (in pipelined batches of 1,000, each in two
/// indexes with 50 and 7 values that come and go) leave `used_memory` within
/// [`LEAK_MARGIN`] of where it started, and no key behind.
#[test]
fn create_destroy_cycles_give_memory_back() {
    const BATCH: usize = 1000;
    const CYCLES: usize = 100_000;
    let mut s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port())).unwrap();
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(30))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();

    // Warm-up: the same batches first, so that tables and buffers reach their working size.
    let mut next = 0;
    for _ in 0..5 {
        let tokens = create_batch(&mut con, next, BATCH);
        destroy_batch(&mut con, &tokens);
        next += BATCH;
    }
    assert_only_the_secret(&mut c);
    let start = settled_used_memory(&mut c);

    let began = Instant::now();
    for _ in 0..CYCLES / BATCH {
        let tokens = create_batch(&mut con, next, BATCH);
        destroy_batch(&mut con, &tokens);
        next += BATCH;
    }
    let took = began.elapsed();
    assert_only_the_secret(&mut c);
    let end = settled_used_memory(&mut c);
    let created = info_number(&mut c, "session", "session_created");
    let destroyed = info_number(&mut c, "session", "session_destroyed");
    println!(
        "leak check: {CYCLES} create/destroy cycles in {:.2} s; used_memory {start} -> {end} \
         ({:+} bytes; margin {LEAK_MARGIN}); created {created}, destroyed {destroyed}",
        took.as_secs_f64(),
        end - start
    );
    assert_eq!(created, next as i64);
    assert_eq!(destroyed, next as i64);
    assert!(
        end - start < LEAK_MARGIN,
        "used_memory grew by {} bytes over {CYCLES} cycles ({:.1} bytes per cycle)",
        end - start,
        (end - start) as f64 / CYCLES as f64
    );
    s.assert_alive();
}

/// Sends one pipeline of `commands`, keeping error replies in place.
fn pipeline(con: &mut redis::Connection, commands: &[Vec<String>]) -> Vec<Value> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for args in commands {
        let cmd = pipe.cmd(&args[0]);
        for a in &args[1..] {
            cmd.arg(a);
        }
    }
    pipe.query(con).expect("pipeline")
}

/// 20,000 sessions taken through every command (VALIDATE, GET, UPDATE moving an index,
/// LIST, error replies from CREATE and UPDATE, nil for an unknown token) and ended half by
/// DESTROY, half by REVOKEINDEX, leave `used_memory` within [`LEAK_MARGIN`] too.
#[test]
fn every_command_gives_memory_back() {
    const BATCH: usize = 1000;
    const SESSIONS: usize = 20_000;
    let mut s = Server::start(&["indexes", "user_id,tenant_id"]);
    let mut c = s.conn();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port())).unwrap();
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(30))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();

    let round = |con: &mut redis::Connection, first: usize| {
        let tokens = create_batch(con, first, BATCH);
        let mut uses = Vec::new();
        for (i, t) in (first..).zip(&tokens) {
            let moved = (i + 1_000_000).to_string();
            let line = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
            uses.push(line(&["SESSION.VALIDATE", t]));
            uses.push(line(&["SESSION.GET", t]));
            uses.push(line(&[
                "SESSION.UPDATE",
                t,
                &format!(r#"{{"user_id":{moved},"x":[1,{{"y":null}}],"pad":null}}"#),
            ]));
            uses.push(line(&["SESSION.LIST", "user_id", &moved]));
            uses.push(line(&["SESSION.CREATE", "{not json"]));
            uses.push(line(&["SESSION.UPDATE", t, r#"{"token":1}"#]));
            uses.push(line(&["SESSION.VALIDATE", UNKNOWN_TOKEN]));
            uses.push(if i % 2 == 0 {
                line(&["SESSION.DESTROY", t])
            } else {
                line(&["SESSION.REVOKEINDEX", "user_id", &moved])
            });
        }
        let replies = pipeline(con, &uses);
        let errors = replies.iter().filter(|v| error_text(v).is_some()).count();
        assert_eq!(
            errors,
            2 * BATCH,
            "only the two bad commands per session fail"
        );
        let ended = replies
            .iter()
            .skip(7)
            .step_by(8)
            .filter(|v| **v == Value::Int(1))
            .count();
        assert_eq!(
            ended, BATCH,
            "every session ended by DESTROY or REVOKEINDEX"
        );
    };

    let mut next = 0;
    for _ in 0..3 {
        round(&mut con, next);
        next += BATCH;
    }
    assert_only_the_secret(&mut c);
    let start = settled_used_memory(&mut c);
    let began = Instant::now();
    for _ in 0..SESSIONS / BATCH {
        round(&mut con, next);
        next += BATCH;
    }
    let took = began.elapsed();
    assert_only_the_secret(&mut c);
    let end = settled_used_memory(&mut c);
    println!(
        "leak check: {SESSIONS} sessions through every command ({} commands) in {:.2} s; \
         used_memory {start} -> {end} ({:+} bytes; margin {LEAK_MARGIN})",
        SESSIONS * 9,
        took.as_secs_f64(),
        end - start
    );
    assert!(
        end - start < LEAK_MARGIN,
        "used_memory grew by {} bytes over {SESSIONS} sessions",
        end - start
    );
    s.assert_alive();
}
