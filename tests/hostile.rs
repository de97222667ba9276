//! Hostile input from clients: binary, huge and malformed tokens, data and options. Each
//! gets a reply (nil or an error), nothing half-written, and the server keeps answering.

mod common;

use redis::Value;

use common::{error_text, Server, UNKNOWN_TOKEN};

/// `names` as `Conn::keys` returns them: raw bytes, sorted.
fn keys_named<K: AsRef<[u8]>>(names: &[K]) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = names.iter().map(|n| n.as_ref().to_vec()).collect();
    keys.sort();
    keys
}

#[test]
fn hostile_tokens_are_unknown_and_server_lives() {
    let mut s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":1}"#, &[]);
    let tokens: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\x00".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        vec![0u8; 48],
        vec![0xffu8; 48],
        b"*".to_vec(),
        b"user_id:1".to_vec(),
        b"../../etc/passwd".to_vec(),
        b"%s%s%s%n".to_vec(),
        "a".repeat(10_000).into_bytes(),
        "0".repeat(1 << 20).into_bytes(),
        format!("{}\x00{}", &created.token[..24], &created.token[25..]).into_bytes(),
        format!("{}\x00", created.token).into_bytes(),
        // The secret's key, and the secret's text (32 lowercase hex digits, so token-shaped,
        // but no key has that name).
        b"session-secret".to_vec(),
        c.secret("")
            .expect("the first CREATE makes the secret")
            .into_bytes(),
    ];
    for t in &tokens {
        for cmd in ["SESSION.VALIDATE", "SESSION.GET"] {
            let v = c.cmd(&[cmd.as_bytes(), t.as_slice()]);
            assert_eq!(v, Value::Nil, "{cmd} on a {}-byte hostile token", t.len());
        }
    }
    // Nothing but the session, its index set and the dataset's secret.
    assert_eq!(
        c.keys(),
        keys_named(&[created.token.as_str(), "session-secret", "user_id:1"])
    );
    assert!(c.validate(&created.token).is_some());
    s.assert_alive();
}

#[test]
fn hostile_data_gets_errors_and_server_lives() {
    let mut s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let inputs: Vec<Vec<u8>> = vec![
        b"\xff\xfe".to_vec(),
        b"{\"a\":\"\xff\"}".to_vec(),
        b"{\"\xc3\":1}".to_vec(),
        b"{\"a\":1}\x00".to_vec(),
        b"\x00{\"a\":1}".to_vec(),
        b"{\"a\":\"\x00\"}".to_vec(),
        br#"{"a":"\u00"}"#.to_vec(),
        br#"{"a":-}"#.to_vec(),
        br#"{"a":NaN}"#.to_vec(),
        br#"{"a":Infinity}"#.to_vec(),
        b"{\"a\":1,}".to_vec(),
        b"{\"a\" 1}".to_vec(),
        b"{".repeat(50_000),
        b"}".repeat(50_000),
        format!("{{\"a\":\"{}", "x".repeat(60_000)).into_bytes(),
        br#"{"user_id":{"a":{"b":1}}}"#.to_vec(),
    ];
    for data in &inputs {
        let before = c.dbsize();
        let v = c.cmd(&[b"SESSION.CREATE".as_slice(), data.as_slice()]);
        let shown = String::from_utf8_lossy(&data[..data.len().min(40)]).into_owned();
        match error_text(&v) {
            Some(e) => assert!(e.starts_with("ERR "), "{shown:?}: {e}"),
            None => panic!("SESSION.CREATE {shown:?} should fail, got {v:?}"),
        }
        assert_eq!(c.dbsize(), before, "{shown:?} wrote something");
        c.ping();
    }
    s.assert_alive();
}

#[test]
fn valid_but_awkward_data_round_trips() {
    let mut s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    for data in [
        r#"{"":""}"#,
        r#"{"a\u0000b":"c\u0000d"}"#,
        r#"{"\ud83d\ude00":"\u2028\u2029"}"#,
        r#"{"a":1e999999999999}"#,
        "  {\n\t\"spaced\" : [ 1 , 2 ] }  ",
    ] {
        let created = c.create(data, &[]);
        let got = c.validate(&created.token).expect("session found");
        let mut expected = common::parse_object(data);
        if !expected.contains_key("createdAt") {
            expected.insert("createdAt".into(), created.reply["createdAt"].clone());
        }
        assert_eq!(
            common::normalize(&got),
            serde_json::to_string(&expected).unwrap(),
            "{data:?}"
        );
    }
    s.assert_alive();
}

#[test]
fn indexed_value_with_nul_and_odd_bytes_is_indexed_raw() {
    let mut s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let created = c.create(r#"{"user_id":"a\u0000b\r\n*1"}"#, &[]);
    let members = c.smembers(b"user_id:a\x00b\r\n*1");
    assert!(members.contains(&created.token), "{members:?}");
    assert_eq!(
        c.keys(),
        keys_named(&[
            created.token.as_bytes(),
            b"session-secret",
            b"user_id:a\x00b\r\n*1"
        ])
    );
    s.assert_alive();
}

#[test]
fn hostile_options_get_errors_and_server_lives() {
    let mut s = Server::start(&["indexes", "user_id"]);
    let mut c = s.conn();
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"TTL", b"\xff"],
        vec![b"TTL", b"1\x00"],
        vec![b"\xff", b"1"],
        vec![b"TTL\x00", b"1"],
        vec![b"A\r\nB", b"1"],
        vec![b"TTL", b"-9223372036854775808"],
        vec![b"TTL", b"9223372036854775807"],
        vec![b"TTL", b"18446744073709551616"],
        vec![b"MAXLIFETIME", b"-9223372036854775809"],
        vec![b"MAXLIFETIME", b"9223372036854775807"],
        vec![b"TTL", b"5", b"MAXLIFETIME", b"5", b"TTL"],
        vec![b"", b""],
    ];
    for opts in &cases {
        let mut args: Vec<&[u8]> = vec![b"SESSION.CREATE", br#"{"user_id":1}"#];
        args.extend(opts.iter().copied());
        // Raw socket: the error may echo the option's bytes, which need not be UTF-8.
        let line = s.raw_first_line(&args);
        let shown: Vec<String> = opts
            .iter()
            .map(|o| String::from_utf8_lossy(o).into_owned())
            .collect();
        assert!(
            line.starts_with(b"-ERR "),
            "options {shown:?}: expected an ERR reply, got {:?}",
            String::from_utf8_lossy(&line)
        );
        assert_eq!(c.dbsize(), 0, "{shown:?} wrote something");
        c.ping();
    }
    s.assert_alive();
}

#[test]
fn ambiguous_json_gets_a_reply_and_server_lives() {
    let mut s = Server::start(&[]);
    let mut c = s.conn();
    // RFC 8259 leaves these to the implementation: accept or refuse, but reply sanely.
    for data in [
        r#"{"a":1,"a":2}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\udc00\ud800"}"#,
    ] {
        let before = c.dbsize();
        match c.cmd(&["SESSION.CREATE", data]) {
            Value::BulkString(b) => {
                let reply = common::parse_object(&String::from_utf8(b).expect("UTF-8 reply"));
                let token = reply["token"].as_str().unwrap().to_string();
                let got = c.validate(&token).expect("created session validates");
                common::parse_object(&got);
            }
            Value::ServerError(e) => {
                assert_eq!(e.code(), "ERR", "{data}");
                assert_eq!(c.dbsize(), before, "{data}: refused but wrote");
            }
            other => panic!("{data}: unexpected reply {other:?}"),
        }
        c.ping();
    }
    s.assert_alive();
}

#[test]
fn wrong_arity_never_crashes() {
    let mut s = Server::start(&[]);
    let mut c = s.conn();
    let many: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    for name in ["SESSION.CREATE", "SESSION.VALIDATE", "SESSION.GET"] {
        let mut args = vec![name.to_string()];
        if name != "SESSION.CREATE" {
            args.push(UNKNOWN_TOKEN.into());
        } else {
            args.push("{}".into());
        }
        args.extend(many.iter().cloned());
        let e = c.err(&args);
        assert!(e.starts_with("ERR "), "{name} with 1001 arguments: {e}");
    }
    assert_eq!(c.dbsize(), 0);
    s.assert_alive();
}

#[test]
fn many_clients_creating_and_validating_at_once_keep_server_alive() {
    let mut s = Server::start(&["indexes", "user_id"]);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let mut c = s.conn();
            std::thread::spawn(move || {
                for n in 0..200 {
                    let created = c.create(&format!(r#"{{"user_id":{},"n":{n}}}"#, n % 7), &[]);
                    assert!(c.validate(&created.token).is_some());
                    let _ = c.validate(format!("{i:0>48}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let mut c = s.conn();
    let total: usize = (0..7)
        .map(|v| c.smembers(format!("user_id:{v}")).len())
        .sum();
    assert_eq!(total, 800);
    s.assert_alive();
}
