//! The eight settings in all four forms (load argument, redis.conf line, `MODULE LOADEX ...
//! CONFIG`, `CONFIG SET`), their ranges, case-insensitive names, and how a change applies to
//! sessions created afterwards.

mod common;

use common::{is_lower_hex, module_path_str, tag_v2, Conn, Layout, Server};

/// Every setting with the value the "all settings" tests give it.
const ALL_SETTINGS: [(&str, &str); 8] = [
    ("ttl", "3600"),
    ("token-bytes", "32"),
    ("indexes", "user_id,tenant_id"),
    ("max-lifetime", "86400"),
    ("key-prefix", "sess:"),
    ("index-prefix", "idx:"),
    ("max-data-bytes", "2048"),
    ("renew-interval", "30"),
];

/// A JSON object of exactly `len` bytes.
fn data_of_len(len: usize) -> String {
    let overhead = r#"{"pad":""}"#.len();
    format!(r#"{{"pad":"{}"}}"#, "x".repeat(len - overhead))
}

/// Checks `CONFIG GET` and the behaviour of a server configured with `ALL_SETTINGS`.
fn assert_all_settings_in_effect(c: &mut Conn) {
    for (name, value) in ALL_SETTINGS {
        assert_eq!(
            c.config_get(&format!("session.{name}")),
            value,
            "session.{name}"
        );
    }
    let t0 = c.time_ms();
    let s = c.create(r#"{"user_id":150,"tenant_id":"acme"}"#, &[]);
    let t1 = c.time_ms();
    // token-bytes 32
    assert_eq!(s.token.len(), 64, "token {}", s.token);
    assert!(is_lower_hex(&s.token));
    // key-prefix sess:
    let key = format!("sess:{}", s.token);
    assert!(c.exists(&key), "no session at {key}");
    assert!(!c.exists(&s.token), "session stored without its prefix");
    // The secret is under the key prefix too, and tags the session's prefixed key.
    let secret = c
        .secret("sess:")
        .expect("the secret at sess:session-secret");
    assert!(
        !c.exists("session-secret"),
        "secret stored without its prefix"
    );
    // ttl 3600, max-lifetime 86400
    let stored = c.stored(&key);
    assert_eq!(stored.layout, Layout::V2);
    assert_eq!(stored.tag, Some(tag_v2(&secret, key.as_bytes())));
    assert_eq!(stored.ttl, 3600);
    let deadline = stored.deadline;
    assert!(
        (t0 + 86_400_000..=t1 + 86_400_000).contains(&deadline),
        "deadline {deadline} not creation + 86400 s ({t0}..{t1})"
    );
    let exp = c.pexpiretime(&key);
    assert!(
        (t0 + 3_600_000..=t1 + 3_600_000).contains(&exp),
        "expiry {exp} not now + 3600 s ({t0}..{t1})"
    );
    // indexes user_id,tenant_id with index-prefix idx:
    for idx in ["idx:user_id:150", "idx:tenant_id:acme"] {
        assert!(c.smembers(idx).contains(&s.token), "{idx} lacks the token");
    }
    assert!(!c.exists("user_id:150"), "index written without its prefix");
    // renew-interval 30: a VALIDATE with more than 3600 - 30 s left rewrites nothing.
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(c.validate(&s.token).is_some());
    assert_eq!(c.pexpiretime(&key), exp, "renewed within the interval");
    // max-data-bytes 2048
    c.create(&data_of_len(2048), &[]);
    let e = c.err(&["SESSION.CREATE", &data_of_len(2049)]);
    assert!(
        e.starts_with("ERR data is larger than max-data-bytes"),
        "{e}"
    );
}

fn load_args_for_all_settings() -> Vec<&'static str> {
    ALL_SETTINGS.iter().flat_map(|(n, v)| [*n, *v]).collect()
}

#[test]
fn config_get_lists_all_nine_settings_with_defaults() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let all = c.config_get_all("session.*");
    let expected: Vec<(String, String)> = [
        ("session.index-prefix", ""),
        ("session.indexes", ""),
        ("session.key-prefix", ""),
        ("session.max-data-bytes", "65536"),
        ("session.max-lifetime", "0"),
        ("session.renew-interval", "0"),
        ("session.token-bytes", "24"),
        ("session.token-hash", "none"),
        ("session.ttl", "7200"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(all.into_iter().collect::<Vec<_>>(), expected);
}

#[test]
fn load_arguments_set_every_setting() {
    let s = Server::start(&load_args_for_all_settings());
    assert_all_settings_in_effect(&mut s.conn());
}

#[test]
fn load_argument_names_are_case_insensitive() {
    let s = Server::start(&["TTL", "5", "Token-Bytes", "16", "INDEXES", "user_id"]);
    let mut c = s.conn();
    assert_eq!(c.config_get("session.ttl"), "5");
    assert_eq!(c.config_get("session.token-bytes"), "16");
    assert_eq!(c.config_get("session.indexes"), "user_id");
    let created = c.create(r#"{"user_id":1}"#, &[]);
    assert_eq!(created.token.len(), 32);
}

#[test]
fn conf_lines_after_loadmodule_set_every_setting() {
    let mut b = Server::builder();
    for (name, value) in ALL_SETTINGS {
        b = b.directive(&format!("session.{name} {value}"));
    }
    let s = b.start();
    assert_all_settings_in_effect(&mut s.conn());
}

#[test]
fn conf_line_names_are_case_insensitive() {
    let s = Server::builder()
        .directive("SESSION.TTL 77")
        .directive("Session.Token-Bytes 16")
        .start();
    let mut c = s.conn();
    assert_eq!(c.config_get("session.ttl"), "77");
    assert_eq!(c.config_get("session.token-bytes"), "16");
}

#[test]
fn conf_line_wins_over_load_argument() {
    let s = Server::builder()
        .module_args(&["ttl", "100"])
        .directive("session.ttl 200")
        .start();
    assert_eq!(s.conn().config_get("session.ttl"), "200");
}

#[test]
fn module_loadex_config_sets_every_setting() {
    let s = Server::builder().without_module().module_command().start();
    let mut c = s.conn();
    let so = module_path_str();
    let mut args = vec!["MODULE".to_string(), "LOADEX".to_string(), so];
    for (name, value) in ALL_SETTINGS {
        args.extend([
            "CONFIG".to_string(),
            format!("session.{name}"),
            value.to_string(),
        ]);
    }
    c.ok(&args);
    assert_all_settings_in_effect(&mut c);
}

#[test]
fn module_loadex_args_set_settings() {
    let s = Server::builder().without_module().module_command().start();
    let mut c = s.conn();
    let so = module_path_str();
    let mut args = vec!["MODULE", "LOADEX", &so, "ARGS"];
    args.extend(load_args_for_all_settings());
    c.ok(&args);
    assert_all_settings_in_effect(&mut c);
}

#[test]
fn module_loadex_config_names_are_case_insensitive() {
    let s = Server::builder().without_module().module_command().start();
    let mut c = s.conn();
    let so = module_path_str();
    c.ok(&["MODULE", "LOADEX", &so, "CONFIG", "SESSION.TTL", "77"]);
    assert_eq!(c.config_get("session.ttl"), "77");
}

/// Every setting but the two prefixes, which are load-time only (see below).
#[test]
fn config_set_changes_every_setting_at_run_time() {
    let s = Server::start(&["key-prefix", "sess:", "index-prefix", "idx:"]);
    let mut c = s.conn();
    for (name, value) in ALL_SETTINGS {
        if !name.ends_with("-prefix") {
            c.ok(&["CONFIG", "SET", &format!("session.{name}"), value]);
        }
    }
    assert_all_settings_in_effect(&mut c);
}

/// Issue 16, item 4: a prefix changed at run time took every existing session out of reach
/// of its token, and on 7.0 pruning then removed them from their indexes for good, so
/// REVOKEINDEX missed them after the prefix was changed back. The prefixes are now given at
/// load only: CONFIG SET refuses them and changes nothing.
#[test]
fn prefixes_are_set_at_load_and_refused_at_run_time() {
    let s = Server::start(&[
        "indexes",
        "user_id",
        "key-prefix",
        "s:",
        "index-prefix",
        "i:",
    ]);
    let mut c = s.conn();
    let t = c.create(r#"{"user_id":1}"#, &[]).token;
    for (name, other) in [("session.key-prefix", "new:"), ("session.index-prefix", "")] {
        let e = c.err(&["CONFIG", "SET", name, other]);
        assert!(e.starts_with("ERR") && e.contains(name), "{name}: {e}");
    }
    assert_eq!(c.config_get("session.key-prefix"), "s:");
    assert_eq!(c.config_get("session.index-prefix"), "i:");
    // Writes to the same index (which prune a sample on 7.0) keep the old session in it.
    for _ in 0..20 {
        c.create(r#"{"user_id":1}"#, &[]);
    }
    assert!(c.smembers("i:user_id:1").contains(&t));
    assert!(c.validate(&t).is_some());
    assert_eq!(c.int(&["SESSION.REVOKEINDEX", "user_id", "1"]), 21);
    // MODULE LOADEX ... CONFIG, like a load argument, still sets them.
    let s = Server::builder().without_module().module_command().start();
    let mut c = s.conn();
    let so = module_path_str();
    c.ok(&[
        "MODULE",
        "LOADEX",
        &so,
        "CONFIG",
        "session.key-prefix",
        "x:",
    ]);
    assert_eq!(c.config_get("session.key-prefix"), "x:");
}

#[test]
fn config_set_and_get_names_are_case_insensitive() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.ok(&["CONFIG", "SET", "SESSION.TTL", "5"]);
    assert_eq!(c.config_get("session.ttl"), "5");
    assert_eq!(c.config_get("SESSION.TTL"), "5");
    c.ok(&["CONFIG", "SET", "Session.Max-Lifetime", "9"]);
    assert_eq!(c.config_get("session.max-lifetime"), "9");
}

#[test]
fn config_set_accepts_range_bounds() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for (name, values) in [
        ("ttl", ["1", "315360000"]),
        ("token-bytes", ["16", "128"]),
        ("max-lifetime", ["0", "315360000"]),
        ("max-data-bytes", ["1024", "536870912"]),
        ("renew-interval", ["0", "315360000"]),
    ] {
        for v in values {
            let full = format!("session.{name}");
            c.ok(&["CONFIG", "SET", &full, v]);
            assert_eq!(c.config_get(&full), v);
        }
    }
}

#[test]
fn config_set_bad_value_fails_and_keeps_value() {
    let s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let cases: [(&str, &[&str]); 6] = [
        ("ttl", &["0", "315360001", "-5", "abc", "1.5", ""]),
        ("token-bytes", &["15", "129", "200", "x"]),
        ("max-lifetime", &["-1", "315360001", "1e3"]),
        ("max-data-bytes", &["1023", "536870913", "0"]),
        ("indexes", &["a,,b"]),
        ("renew-interval", &["-1", "315360001", "x"]),
    ];
    for (name, bad_values) in cases {
        let full = format!("session.{name}");
        let before = c.config_get(&full);
        for bad in bad_values {
            let e = c.err(&["CONFIG", "SET", &full, bad]);
            assert!(
                e.starts_with("ERR") && e.to_lowercase().contains(name),
                "CONFIG SET {full} {bad:?}: error should name the setting: {e}"
            );
            assert_eq!(
                c.config_get(&full),
                before,
                "CONFIG SET {full} {bad:?} changed it"
            );
        }
    }
    // The unchanged settings still govern new sessions.
    let created = c.create(r#"{"user_id":5}"#, &[]);
    assert_eq!(created.token.len(), 48);
    assert!(c.smembers("user_id:5").contains(&created.token));
}

#[test]
fn indexes_setting_trims_spaces_around_names() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.ok(&["CONFIG", "SET", "session.indexes", " user_id , tenant_id "]);
    let created = c.create(r#"{"user_id":1,"tenant_id":2}"#, &[]);
    assert!(c.smembers("user_id:1").contains(&created.token));
    assert!(c.smembers("tenant_id:2").contains(&created.token));
}

/// Starts a server with each set of load arguments and checks it refuses to load, naming
/// `setting` in a `redis-session: bad load argument '<setting>': <reason>` log line.
fn assert_load_refused(cases: &[(&[&str], &str)]) {
    let mut failures = Vec::new();
    for (args, setting) in cases {
        let log = Server::start_expect_failure(args);
        let wanted = format!("redis-session: bad load argument '{setting}':");
        if !log.to_lowercase().contains(&wanted) {
            failures.push(format!(
                "args {args:?}: log lacks \"{wanted}\"; log:\n{log}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn load_argument_out_of_range_refuses_load_naming_setting() {
    assert_load_refused(&[
        (&["ttl", "0"], "ttl"),
        (&["ttl", "315360001"], "ttl"),
        (&["token-bytes", "15"], "token-bytes"),
        (&["token-bytes", "200"], "token-bytes"),
        (&["max-lifetime", "-1"], "max-lifetime"),
        (&["max-lifetime", "315360001"], "max-lifetime"),
        (&["max-data-bytes", "1023"], "max-data-bytes"),
        (&["max-data-bytes", "536870913"], "max-data-bytes"),
    ]);
}

#[test]
fn load_argument_not_a_number_refuses_load_naming_setting() {
    assert_load_refused(&[
        (&["ttl", "abc"], "ttl"),
        (&["ttl", "1.5"], "ttl"),
        (&["token-bytes", ""], "token-bytes"),
        (&["max-data-bytes", "1e6"], "max-data-bytes"),
    ]);
}

#[test]
fn uppercase_bad_load_argument_is_refused() {
    assert_load_refused(&[(&["TTL", "0"], "ttl")]);
}

#[test]
fn unknown_load_argument_refuses_load() {
    assert_load_refused(&[
        (&["bogus", "1"], "bogus"),
        (&["ttl", "5", "bogus", "1"], "bogus"),
    ]);
}

#[test]
fn load_argument_missing_value_refuses_load() {
    assert_load_refused(&[
        (&["ttl"], "ttl"),
        (&["ttl", "5", "token-bytes"], "token-bytes"),
    ]);
}

#[test]
fn load_argument_empty_index_name_refuses_load() {
    assert_load_refused(&[(&["indexes", "a,,b"], "indexes")]);
}

#[test]
fn bad_conf_line_refuses_load_naming_setting() {
    let mut failures = Vec::new();
    for (line, setting) in [
        ("session.ttl 0", "ttl"),
        ("session.ttl abc", "ttl"),
        ("session.token-bytes 200", "token-bytes"),
        ("session.max-lifetime 315360001", "max-lifetime"),
        ("session.max-data-bytes 1023", "max-data-bytes"),
        ("session.indexes a,,b", "indexes"),
    ] {
        let log = Server::builder().directive(line).start_expect_failure();
        let wanted = format!("session.{setting}");
        if !log.to_lowercase().contains(&wanted) {
            failures.push(format!("{line:?}: log does not name {wanted}; log:\n{log}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn module_loadex_with_bad_config_is_refused() {
    let s = Server::builder().without_module().module_command().start();
    let mut c = s.conn();
    let so = module_path_str();
    for (name, bad) in [
        ("session.ttl", "0"),
        ("session.ttl", "abc"),
        ("session.token-bytes", "200"),
        ("session.max-lifetime", "-1"),
        ("session.max-data-bytes", "1023"),
        ("session.indexes", "a,,b"),
        ("session.bogus", "1"),
    ] {
        let mentions_before = s.log().lines().filter(|l| l.contains(name)).count();
        let e = c.err(&["MODULE", "LOADEX", &so, "CONFIG", name, bad]);
        assert!(e.starts_with("ERR"), "LOADEX CONFIG {name} {bad}: {e}");
        assert_eq!(
            c.cmd(&["MODULE", "LIST"]),
            redis::Value::Array(vec![]),
            "module loaded despite CONFIG {name} {bad}"
        );
        if name != "session.bogus" {
            // The log gained a line saying which setting was refused.
            let mentions = s.log().lines().filter(|l| l.contains(name)).count();
            assert!(
                mentions > mentions_before,
                "LOADEX CONFIG {name} {bad}: no new log line names {name}:\n{}",
                s.log()
            );
        }
    }
    // Nothing was left behind by the refused loads.
    c.ok(&["MODULE", "LOADEX", &so, "CONFIG", "session.ttl", "60"]);
    assert_eq!(c.config_get("session.ttl"), "60");
}

#[test]
fn module_loadex_with_bad_args_is_refused_and_logged() {
    let s = Server::builder().without_module().module_command().start();
    let mut c = s.conn();
    let so = module_path_str();
    let e = c.err(&["MODULE", "LOADEX", &so, "ARGS", "ttl", "0"]);
    assert!(e.starts_with("ERR"), "{e}");
    assert_eq!(c.cmd(&["MODULE", "LIST"]), redis::Value::Array(vec![]));
    assert!(
        s.log().contains("redis-session: bad load argument 'ttl':"),
        "log:\n{}",
        s.log()
    );
}

#[test]
fn token_bytes_sets_token_length() {
    let s = Server::start(&["token-bytes", "16"]);
    let mut c = s.conn();
    for (bytes, len) in [("16", 32), ("128", 256), ("20", 40)] {
        c.ok(&["CONFIG", "SET", "session.token-bytes", bytes]);
        let t = c.create("{}", &[]).token;
        assert_eq!(t.len(), len, "token-bytes {bytes}: {t}");
        assert!(is_lower_hex(&t), "{t}");
        assert!(
            c.validate(&t).is_some(),
            "token-bytes {bytes}: token does not validate"
        );
    }
}

#[test]
fn ttl_change_applies_to_sessions_created_afterwards() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let old = c.create(r#"{"n":1}"#, &[]);
    c.ok(&["CONFIG", "SET", "session.ttl", "100"]);
    let t0 = c.time_ms();
    let new = c.create(r#"{"n":2}"#, &[]);
    let t1 = c.time_ms();
    assert_eq!(c.stored(&old.token).ttl, 7200);
    assert_eq!(c.stored(&new.token).ttl, 100);
    let exp = c.pexpiretime(&new.token);
    assert!((t0 + 100_000..=t1 + 100_000).contains(&exp), "{exp}");
    // The old session keeps sliding by its own TTL.
    let t0 = c.time_ms();
    assert!(c.validate(&old.token).is_some());
    let t1 = c.time_ms();
    let exp = c.pexpiretime(&old.token);
    assert!((t0 + 7_200_000..=t1 + 7_200_000).contains(&exp), "{exp}");
}

#[test]
fn max_lifetime_change_applies_to_sessions_created_afterwards() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let old = c.create(r#"{"n":1}"#, &[]);
    c.ok(&["CONFIG", "SET", "session.max-lifetime", "60"]);
    let t0 = c.time_ms();
    let new = c.create(r#"{"n":2}"#, &[]);
    let t1 = c.time_ms();
    assert_eq!(c.stored(&old.token).deadline, 0);
    let deadline = c.stored(&new.token).deadline;
    assert!(
        (t0 + 60_000..=t1 + 60_000).contains(&deadline),
        "{deadline}"
    );
    assert_eq!(c.pexpiretime(&new.token), deadline);
    assert!(c.validate(&old.token).is_some());
    assert!(
        c.pexpiretime(&old.token) > t1 + 7_000_000,
        "old session got capped"
    );
}

#[test]
fn indexes_change_applies_to_sessions_created_afterwards() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let old = c.create(r#"{"user_id":150}"#, &[]);
    assert!(!c.exists("user_id:150"));
    c.ok(&["CONFIG", "SET", "session.indexes", "user_id"]);
    let new = c.create(r#"{"user_id":150}"#, &[]);
    let members = c.smembers("user_id:150");
    assert!(members.contains(&new.token));
    assert!(!members.contains(&old.token));
    // The old session is not lost.
    assert!(c.validate(&old.token).is_some());
}
