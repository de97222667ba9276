//! Test harness for the integration tests: starts a real `redis-server` per test (with or
//! without the module), talks to it over a synchronous connection, and reads back what the
//! module stored (hash fields, index sets, absolute expiry times).
//!
//! Every server gets a free port (bound on 127.0.0.1:0 first, then released), its own temp
//! directory for `dir` and the log file, and a readiness loop with a deadline that fails with
//! the server log when the child dies. `Drop` kills the child by pid and reaps it. Nothing
//! here assumes a server on 6379.
//!
//! Environment: `REDIS_SERVER` (default `redis-server`) and `REDIS_SESSION_MODULE` (default
//! `<crate>/target/release/libredis_session.so`; build it first with `cargo build --release`).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Value};
use tempfile::TempDir;

/// How long a server may take to answer PING, or to exit when it is expected to fail.
const DEADLINE: Duration = Duration::from_secs(10);

/// How long a reply may take before a test fails instead of hanging.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The module under test.
pub fn module_path() -> PathBuf {
    match std::env::var_os("REDIS_SESSION_MODULE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/libredis_session.so"),
    }
}

/// The `redis-server` binary to run.
pub fn redis_server_bin() -> PathBuf {
    std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// The module path as a string, for `MODULE LOADEX`.
pub fn module_path_str() -> String {
    module_path().to_string_lossy().into_owned()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Quotes one argument for a redis.conf line (Redis splits lines with `sdssplitargs`).
pub fn conf_quote(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for ch in arg.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Configures a server before starting it.
pub struct Builder {
    /// `None`: start without the module (a plain Redis, e.g. a replica).
    module_args: Option<Vec<String>>,
    /// redis.conf-style lines written after the `loadmodule` line, in order.
    directives: Vec<String>,
    dir: Option<TempDir>,
}

impl Builder {
    /// Loads the module with these load arguments (the default is the module, no arguments).
    pub fn module_args(mut self, args: &[&str]) -> Self {
        self.module_args = Some(args.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Starts a plain Redis without the module.
    pub fn without_module(mut self) -> Self {
        self.module_args = None;
        self
    }

    /// Adds a redis.conf line (`session.ttl 5`, `appendonly yes`, ...) after `loadmodule`.
    pub fn directive(mut self, line: &str) -> Self {
        self.directives.push(line.to_string());
        self
    }

    /// Makes this server a replica of `primary`.
    pub fn replica_of(self, primary: &Server) -> Self {
        let line = format!("replicaof 127.0.0.1 {}", primary.port());
        self.directive(&line)
    }

    /// Allows `MODULE LOAD`/`MODULE LOADEX` at run time.
    pub fn module_command(self) -> Self {
        self.directive("enable-module-command yes")
    }

    /// Uses an existing directory (e.g. one left by [`Server::shutdown`]) instead of a new one.
    pub fn in_dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    fn write_conf(&self, dir: &Path, port: u16) -> PathBuf {
        let mut conf = String::new();
        conf.push_str(&format!("port {port}\n"));
        conf.push_str("bind 127.0.0.1\n");
        conf.push_str("save \"\"\n");
        conf.push_str("appendonly no\n");
        // A replica's first sync would otherwise wait 5 s for other replicas to join it.
        conf.push_str("repl-diskless-sync-delay 0\n");
        conf.push_str(&format!("dir {}\n", conf_quote(&dir.to_string_lossy())));
        conf.push_str(&format!(
            "logfile {}\n",
            conf_quote(&dir.join("redis.log").to_string_lossy())
        ));
        if let Some(args) = &self.module_args {
            conf.push_str("loadmodule ");
            conf.push_str(&conf_quote(&module_path_str()));
            for a in args {
                conf.push(' ');
                conf.push_str(&conf_quote(a));
            }
            conf.push('\n');
        }
        // The test's own directives come last, so they override the defaults above
        // (`appendonly yes`) and follow the `loadmodule` line (`session.ttl 5`).
        for d in &self.directives {
            conf.push_str(d);
            conf.push('\n');
        }
        let path = dir.join("redis.conf");
        fs::write(&path, conf).expect("write redis.conf");
        path
    }

    fn spawn(&self, dir: &Path, port: u16) -> Child {
        if self.module_args.is_some() {
            assert!(
                module_path().exists(),
                "module not found at {} (run `cargo build --release` or set REDIS_SESSION_MODULE)",
                module_path().display()
            );
        }
        let conf = self.write_conf(dir, port);
        // Errors found before the log file is opened (a bad redis.conf line) go to stderr.
        let stderr = File::create(dir.join("stderr.log")).expect("create stderr.log");
        Command::new(redis_server_bin())
            .arg(&conf)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", redis_server_bin().display()))
    }

    /// Starts the server and waits until it answers PING; panics with its log otherwise.
    pub fn start(mut self) -> Server {
        let mut dir = Some(
            self.dir
                .take()
                .unwrap_or_else(|| TempDir::new().expect("tempdir")),
        );
        // The port is free when we pick it, but another process may take it before Redis
        // binds it: retry with a new port when that is why the start failed.
        let attempts = 5;
        for attempt in 1..=attempts {
            let port = free_port();
            let d = dir.take().expect("dir");
            let child = self.spawn(d.path(), port);
            let mut server = Server {
                child,
                port,
                dir: Some(d),
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(why) => {
                    let log = server.log();
                    if attempt < attempts && log.contains("Address already in use") {
                        let _ = server.child.kill();
                        let _ = server.child.wait();
                        let d = server.dir.take().expect("dir");
                        let _ = fs::remove_file(d.path().join("redis.log"));
                        dir = Some(d);
                        continue;
                    }
                    panic!("redis-server did not start ({why}); log:\n{log}");
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts the server expecting it to exit (a bad load argument or config line);
    /// returns its log. Panics if it is still running after the deadline or answers PING.
    pub fn start_expect_failure(mut self) -> String {
        let dir = self
            .dir
            .take()
            .unwrap_or_else(|| TempDir::new().expect("tempdir"));
        let port = free_port();
        let child = self.spawn(dir.path(), port);
        let mut server = Server {
            child,
            port,
            dir: Some(dir),
        };
        let deadline = Instant::now() + DEADLINE;
        loop {
            if server.child.try_wait().expect("try_wait").is_some() {
                let log = server.log();
                if log.contains("Address already in use") {
                    // Refused for the wrong reason: another process took the port.
                    let dir = server.dir.take().expect("dir");
                    let _ = fs::remove_file(dir.path().join("redis.log"));
                    self.dir = Some(dir);
                    return self.start_expect_failure();
                }
                return log;
            }
            if server.ping_once() {
                panic!(
                    "redis-server started although it was expected to fail; log:\n{}",
                    server.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "redis-server neither exited nor answered within {DEADLINE:?}; log:\n{}",
                    server.log()
                );
            }
            sleep(Duration::from_millis(20));
        }
    }
}

/// A running `redis-server`, killed when dropped.
pub struct Server {
    child: Child,
    port: u16,
    dir: Option<TempDir>,
}

impl Server {
    /// A builder for a server with the module and no arguments; add arguments and directives.
    pub fn builder() -> Builder {
        Builder {
            module_args: Some(Vec::new()),
            directives: Vec::new(),
            dir: None,
        }
    }

    /// Starts a server with the module loaded with these load arguments.
    pub fn start(module_args: &[&str]) -> Server {
        Server::builder().module_args(module_args).start()
    }

    /// Starts a server whose module load arguments are expected to refuse the load; returns
    /// the server log after the server exits.
    pub fn start_expect_failure(module_args: &[&str]) -> String {
        Server::builder()
            .module_args(module_args)
            .start_expect_failure()
    }

    /// Starts a plain Redis (no module) replicating from `primary`, and waits for the link.
    pub fn start_replica_without_module(primary: &Server) -> Server {
        let replica = Server::builder()
            .without_module()
            .replica_of(primary)
            .start();
        replica.wait_link_up();
        replica
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    /// The server log (log file, then anything written to stderr).
    pub fn log(&self) -> String {
        let dir = self.dir();
        let mut log = fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
        let stderr = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        if !stderr.is_empty() {
            log.push_str("\n--- stderr ---\n");
            log.push_str(&stderr);
        }
        log
    }

    fn try_conn(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        let con = client.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        Ok(con)
    }

    /// True when this server's own process answers PING on its port. Checking the pid
    /// matters: if another test's server took the port first, it would answer instead.
    fn ping_once(&self) -> bool {
        let Ok(mut con) = self.try_conn(Duration::from_millis(500)) else {
            return false;
        };
        if !matches!(
            con.req_command(&redis::cmd("PING")),
            Ok(Value::SimpleString(ref s)) if s == "PONG"
        ) {
            return false;
        }
        let info = match con.req_command(redis::cmd("INFO").arg("server")) {
            Ok(v) => as_string(&v).unwrap_or_default(),
            Err(_) => return false,
        };
        let pid = format!("process_id:{}", self.child.id());
        info.lines().any(|l| l.trim() == pid)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("redis-server exited with {status}"));
            }
            if self.ping_once() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no PONG within {DEADLINE:?}"));
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// A new connection to this server.
    pub fn conn(&self) -> Conn {
        let con = self
            .try_conn(REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to port {}: {e}; log:\n{}", self.port, self.log()));
        Conn { inner: con }
    }

    /// Panics (with the log) unless the process is still running and answers PING.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("redis-server died ({status}); log:\n{}", self.log());
        }
        let mut c = match self.try_conn(REPLY_TIMEOUT) {
            Ok(c) => c,
            Err(e) => panic!(
                "redis-server does not accept connections ({e}); log:\n{}",
                self.log()
            ),
        };
        match c.req_command(&redis::cmd("PING")) {
            Ok(Value::SimpleString(s)) if s == "PONG" => {}
            other => panic!("PING answered {other:?}; log:\n{}", self.log()),
        }
    }

    /// Sends one command on a fresh raw socket and returns the first line of the reply
    /// (`-ERR ...`, `$-1`, ...) as bytes, for replies the client library would refuse to
    /// parse (an error echoing bytes that are not UTF-8).
    pub fn raw_first_line(&self, args: &[&[u8]]) -> Vec<u8> {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        stream.write_all(&req).expect("write");
        let mut line = Vec::new();
        BufReader::new(stream)
            .read_until(b'\n', &mut line)
            .expect("read reply");
        assert!(line.ends_with(b"\r\n"), "truncated reply {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Waits until this replica reports `master_link_status:up`.
    pub fn wait_link_up(&self) {
        let deadline = Instant::now() + DEADLINE;
        let mut c = self.conn();
        loop {
            let info = c.string(&["INFO", "replication"]);
            if info.contains("master_link_status:up") {
                return;
            }
            if Instant::now() > deadline {
                panic!("replica link not up:\n{info}\nlog:\n{}", self.log());
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Shuts the server down cleanly (`SHUTDOWN NOSAVE`, which still flushes the AOF) and
    /// returns its directory, to start another server on the same files.
    pub fn shutdown(mut self) -> TempDir {
        let mut c = self.conn();
        // The connection drops without a reply when the server exits.
        let _ = c.inner.req_command(redis::cmd("SHUTDOWN").arg("NOSAVE"));
        let deadline = Instant::now() + DEADLINE;
        loop {
            if self.child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if Instant::now() > deadline {
                panic!("server did not shut down; log:\n{}", self.log());
            }
            sleep(Duration::from_millis(20));
        }
        self.dir.take().expect("dir")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `Child::kill` signals this child's own pid (and does nothing once it was reaped).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `replica` has applied everything the primary has written so far.
///
/// `primary` must be the connection that did the writes: `WAIT` only waits for the writes of
/// its own client (on a fresh connection it returns at once). The offsets are compared too,
/// which covers writes made on other connections.
pub fn sync_replica(primary: &mut Conn, replica: &Server) {
    let acked = primary.int(&["WAIT", "1", "5000"]);
    assert!(
        acked >= 1,
        "WAIT 1 5000 returned {acked}; replica log:\n{}",
        replica.log()
    );
    let target = repl_offset(primary, "master_repl_offset");
    let mut r = replica.conn();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = repl_offset(&mut r, "slave_repl_offset");
        if got >= target {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "replica at offset {got}, primary at {target}; replica log:\n{}",
                replica.log()
            );
        }
        sleep(Duration::from_millis(10));
    }
}

/// A numeric field of `INFO replication`.
pub fn repl_offset(c: &mut Conn, field: &str) -> i64 {
    let info = c.string(&["INFO", "replication"]);
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {field} in INFO replication:\n{info}"))
        .trim()
        .parse()
        .unwrap()
}

/// Which server a test runs against, read from `INFO server`, and which module APIs that
/// server has (the table in the README): the one place tests decide per-server expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerKind {
    /// `redis_version` (Valkey reports the Redis version it is compatible with).
    pub version: (u32, u32, u32),
    pub valkey: bool,
}

impl ServerKind {
    /// Key events and post-notification jobs: Redis 7.2+, Valkey 8.
    pub fn key_events(&self) -> bool {
        self.valkey || self.version >= (7, 2, 0)
    }

    /// `RedisModule_ClusterKeySlot` and `RedisModule_ClusterCanonicalKeyNameInSlot`: Redis
    /// 7.4+, Valkey 8.
    pub fn slot_functions(&self) -> bool {
        self.valkey || self.version >= (7, 4, 0)
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b, c) = self.version;
        let name = if self.valkey { "valkey" } else { "redis" };
        write!(f, "{name} {a}.{b}.{c}")
    }
}

/// A connection with helpers that return plain Rust values.
pub struct Conn {
    inner: redis::Connection,
}

impl Conn {
    /// Sends one command; server errors come back as `Value::ServerError`.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Value {
        let mut c = redis::Cmd::new();
        for a in args {
            c.arg(a.as_ref());
        }
        match self.inner.req_command(&c) {
            Ok(v) => v,
            Err(e) => panic!("connection error on {}: {e}", show_args(args)),
        }
    }

    /// Sends a command that must not fail; returns its reply.
    pub fn ok<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Value {
        let v = self.cmd(args);
        if let Some(e) = error_text(&v) {
            panic!("{} failed: {e}", show_args(args));
        }
        v
    }

    /// Sends a command whose reply must be an integer.
    pub fn int<A: AsRef<[u8]>>(&mut self, args: &[A]) -> i64 {
        match self.cmd(args) {
            Value::Int(i) => i,
            other => panic!("{}: expected an integer, got {other:?}", show_args(args)),
        }
    }

    /// Sends a command whose reply must be a (bulk, simple or verbatim) string.
    pub fn string<A: AsRef<[u8]>>(&mut self, args: &[A]) -> String {
        let v = self.cmd(args);
        match as_string(&v) {
            Some(s) => s,
            None => panic!("{}: expected a string, got {v:?}", show_args(args)),
        }
    }

    /// Sends a command whose reply is a string or nil.
    pub fn opt_string<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Option<String> {
        let v = self.cmd(args);
        match v {
            Value::Nil => None,
            _ => match as_string(&v) {
                Some(s) => Some(s),
                None => panic!("{}: expected a string or nil, got {v:?}", show_args(args)),
            },
        }
    }

    /// Sends a command that must fail; returns its error text (`CODE detail`).
    pub fn err<A: AsRef<[u8]>>(&mut self, args: &[A]) -> String {
        let v = self.cmd(args);
        match error_text(&v) {
            Some(e) => e,
            None => panic!("{}: expected an error, got {v:?}", show_args(args)),
        }
    }

    pub fn ping(&mut self) {
        assert_eq!(
            self.cmd(&["PING"]),
            Value::SimpleString("PONG".into()),
            "PING"
        );
    }

    pub fn dbsize(&mut self) -> i64 {
        self.int(&["DBSIZE"])
    }

    /// Server time in milliseconds (from `TIME`, the clock expiries are computed against).
    pub fn time_ms(&mut self) -> i64 {
        match self.cmd(&["TIME"]) {
            Value::Array(parts) if parts.len() == 2 => {
                let secs: i64 = as_string(&parts[0]).unwrap().parse().unwrap();
                let micros: i64 = as_string(&parts[1]).unwrap().parse().unwrap();
                secs * 1000 + micros / 1000
            }
            other => panic!("TIME: {other:?}"),
        }
    }

    /// `PEXPIRETIME key`: absolute expiry in ms, -1 when persistent, -2 when missing.
    pub fn pexpiretime<K: AsRef<[u8]>>(&mut self, key: K) -> i64 {
        self.int(&[b"PEXPIRETIME".as_slice(), key.as_ref()])
    }

    pub fn exists<K: AsRef<[u8]>>(&mut self, key: K) -> bool {
        self.int(&[b"EXISTS".as_slice(), key.as_ref()]) == 1
    }

    pub fn key_type<K: AsRef<[u8]>>(&mut self, key: K) -> String {
        self.string(&[b"TYPE".as_slice(), key.as_ref()])
    }

    /// `HGETALL key` as a sorted map of UTF-8 fields and values.
    pub fn hgetall<K: AsRef<[u8]>>(&mut self, key: K) -> BTreeMap<String, String> {
        let v = self.cmd(&[b"HGETALL".as_slice(), key.as_ref()]);
        let items = match v {
            Value::Array(items) => items,
            Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            other => panic!("HGETALL: {other:?}"),
        };
        assert!(items.len() % 2 == 0, "HGETALL odd length");
        items
            .chunks(2)
            .map(|kv| {
                (
                    as_string(&kv[0]).expect("field"),
                    as_string(&kv[1]).expect("value"),
                )
            })
            .collect()
    }

    /// `GET key` as bytes (`None` for a missing key).
    pub fn get_bytes<K: AsRef<[u8]>>(&mut self, key: K) -> Option<Vec<u8>> {
        match self.cmd(&[b"GET".as_slice(), key.as_ref()]) {
            Value::Nil => None,
            Value::BulkString(b) => Some(b),
            other => panic!("GET: {other:?}"),
        }
    }

    /// The session stored at `key`, read with the plain read command of its type and taken
    /// apart as docs/storage.md documents either layout; panics when it is neither.
    pub fn stored<K: AsRef<[u8]>>(&mut self, key: K) -> StoredSession {
        let key = key.as_ref();
        match self.key_type(key).as_str() {
            "string" => {
                let value = self.get_bytes(key).expect("GET of a session string");
                StoredSession::parse_v2(&value).unwrap_or_else(|| {
                    panic!(
                        "not a layout-2 session: {:?}",
                        String::from_utf8_lossy(&value)
                    )
                })
            }
            "hash" => {
                let h = self.hgetall(key);
                StoredSession {
                    layout: Layout::V010,
                    tag: None,
                    data: h.get("data").cloned().expect("data field"),
                    ttl: h.get("ttl").expect("ttl field").parse().expect("ttl"),
                    deadline: h
                        .get("deadline")
                        .expect("deadline")
                        .parse()
                        .expect("deadline"),
                    indexes: h.get("indexes").map(|i| {
                        serde_json::from_str(i).expect("indexes is a JSON array of strings")
                    }),
                }
            }
            other => panic!("{}: a session is no {other}", String::from_utf8_lossy(key)),
        }
    }

    /// The dataset's session secret (`<prefix>session-secret`), if any.
    pub fn secret(&mut self, key_prefix: &str) -> Option<String> {
        self.get_bytes(format!("{key_prefix}session-secret"))
            .map(|b| String::from_utf8(b).expect("the secret is text"))
    }

    /// Writes `session` at `key` in layout 2 with plain commands, tagged with the dataset's
    /// secret as docs/storage.md says (so the module takes it for its own), expiring at
    /// `expire_at_ms`. The secret must exist (a CREATE makes it).
    pub fn write_v2(
        &mut self,
        key: &str,
        key_prefix: &str,
        session: &StoredSession,
        expire_at_ms: i64,
    ) {
        let secret = self.secret(key_prefix).expect("the session secret exists");
        let value = session.encode_v2(&secret, key.as_bytes());
        self.ok(&[
            b"SET".as_slice(),
            key.as_bytes(),
            &value,
            b"PXAT",
            expire_at_ms.to_string().as_bytes(),
        ]);
    }

    /// Writes a 0.1.0 session at `key` with plain commands (`HSET` of `data`, `ttl`,
    /// `deadline`, and `indexes` when given, then `PEXPIREAT`), and adds the key to each index
    /// set, as 0.1.0 did.
    pub fn write_v010(
        &mut self,
        key: &str,
        data: &str,
        ttl: i64,
        deadline: i64,
        indexes: &[&str],
        expire_at_ms: i64,
    ) {
        let ttl = ttl.to_string();
        let deadline = deadline.to_string();
        let list = serde_json::to_string(indexes).unwrap();
        let mut hset = vec![
            "HSET", key, "data", data, "ttl", &ttl, "deadline", &deadline,
        ];
        if !indexes.is_empty() {
            hset.extend(["indexes", list.as_str()]);
        }
        self.ok(&hset);
        self.ok(&["PEXPIREAT", key, &expire_at_ms.to_string()]);
        for index in indexes {
            self.ok(&["SADD", index, key]);
        }
    }

    pub fn hget<K: AsRef<[u8]>>(&mut self, key: K, field: &str) -> Option<String> {
        self.opt_string(&[b"HGET".as_slice(), key.as_ref(), field.as_bytes()])
    }

    /// `SMEMBERS key` as a sorted set of UTF-8 members.
    pub fn smembers<K: AsRef<[u8]>>(&mut self, key: K) -> BTreeSet<String> {
        match self.cmd(&[b"SMEMBERS".as_slice(), key.as_ref()]) {
            Value::Array(items) | Value::Set(items) => items
                .iter()
                .map(|m| as_string(m).expect("member"))
                .collect(),
            other => panic!("SMEMBERS: {other:?}"),
        }
    }

    /// All keys (`KEYS *`), sorted, as raw bytes.
    pub fn keys(&mut self) -> Vec<Vec<u8>> {
        match self.cmd(&["KEYS", "*"]) {
            Value::Array(items) => {
                let mut keys: Vec<Vec<u8>> = items
                    .into_iter()
                    .map(|k| match k {
                        Value::BulkString(b) => b,
                        other => panic!("KEYS item {other:?}"),
                    })
                    .collect();
                keys.sort();
                keys
            }
            other => panic!("KEYS: {other:?}"),
        }
    }

    /// The server this connection talks to (see [`ServerKind`]).
    pub fn server_kind(&mut self) -> ServerKind {
        let info = self.string(&["INFO", "server"]);
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
        };
        let version = field("redis_version").expect("redis_version in INFO server");
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let mut next = || parts.next().unwrap_or(0);
        ServerKind {
            version: (next(), next(), next()),
            valkey: field("valkey_version").is_some()
                || field("server_name").is_some_and(|n| n == "valkey"),
        }
    }

    /// A field of `INFO section` (`INFO session` fields carry the `session_` prefix).
    pub fn info_field(&mut self, section: &str, field: &str) -> Option<String> {
        let info = self.string(&["INFO", section]);
        info.lines()
            .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
            .map(|v| v.trim().to_string())
    }

    /// Runs commands in one `MULTI`/`EXEC` and returns EXEC's replies. Key-event work (7.2+)
    /// runs when the transaction ends, so inside it the module's commands see keys changed
    /// by hand before their events were acted on, as on 7.0.
    pub fn transaction(&mut self, commands: &[&[&str]]) -> Vec<Value> {
        self.ok(&["MULTI"]);
        for args in commands {
            let queued = self.cmd(args);
            assert_eq!(
                queued,
                Value::SimpleString("QUEUED".into()),
                "{}",
                show_args(args)
            );
        }
        match self.cmd(&["EXEC"]) {
            Value::Array(replies) => replies,
            other => panic!("EXEC: {other:?}"),
        }
    }

    /// Whether the index key's expiry, when it has one, is no earlier than `session_ms` (SPEC
    /// "Storage"). With key events an index set the module made has none (README,
    /// "Indexes"), so this holds with -1 there; tests check the -1 themselves.
    pub fn index_outlives(&mut self, index: &str, session_ms: i64) -> bool {
        let t = self.pexpiretime(index);
        t == -1 || t >= session_ms
    }

    /// Sends many commands in one pipeline; server errors come back as values.
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> Vec<Value> {
        let mut p = redis::Pipeline::new();
        for args in commands {
            let mut c = redis::Cmd::new();
            for a in args {
                c.arg(a.as_slice());
            }
            p.add_command(c);
        }
        match self
            .inner
            .req_packed_commands(&p.get_packed_pipeline(), 0, commands.len())
        {
            Ok(v) => v,
            Err(e) => panic!("connection error on a pipeline of {}: {e}", commands.len()),
        }
    }

    /// `CONFIG GET name` for one setting; panics unless exactly one value comes back.
    pub fn config_get(&mut self, name: &str) -> String {
        let all = self.config_get_all(name);
        assert_eq!(all.len(), 1, "CONFIG GET {name}: {all:?}");
        all.into_values().next().unwrap()
    }

    /// `CONFIG GET pattern` as a map (names as Redis reports them).
    pub fn config_get_all(&mut self, pattern: &str) -> BTreeMap<String, String> {
        let items = match self.cmd(&["CONFIG", "GET", pattern]) {
            Value::Array(items) => items,
            Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            other => panic!("CONFIG GET {pattern}: {other:?}"),
        };
        items
            .chunks(2)
            .map(|kv| (as_string(&kv[0]).unwrap(), as_string(&kv[1]).unwrap()))
            .collect()
    }

    /// `SESSION.CREATE data [options...]`; panics on an error; returns the raw reply text.
    pub fn create_raw(&mut self, data: &str, options: &[&str]) -> String {
        let mut args = vec!["SESSION.CREATE", data];
        args.extend_from_slice(options);
        let v = self.cmd(&args);
        match v {
            Value::BulkString(b) => String::from_utf8(b).expect("CREATE reply is UTF-8"),
            other => {
                panic!("SESSION.CREATE {data} {options:?}: expected a bulk string, got {other:?}")
            }
        }
    }

    /// `SESSION.CREATE`, parsed: returns the token and the whole reply object.
    pub fn create(&mut self, data: &str, options: &[&str]) -> Created {
        let raw = self.create_raw(data, options);
        let reply = parse_object(&raw);
        let token = match reply.get("token") {
            Some(serde_json::Value::String(t)) => t.clone(),
            other => panic!("CREATE reply has no string token: {other:?} in {raw}"),
        };
        Created { token, reply, raw }
    }

    /// `SESSION.VALIDATE token`: `Some(json text)` or `None` for nil.
    pub fn validate<T: AsRef<[u8]>>(&mut self, token: T) -> Option<String> {
        self.session_reply("SESSION.VALIDATE", token.as_ref())
    }

    /// `SESSION.GET token`: `Some(json text)` or `None` for nil.
    pub fn get<T: AsRef<[u8]>>(&mut self, token: T) -> Option<String> {
        self.session_reply("SESSION.GET", token.as_ref())
    }

    fn session_reply(&mut self, command: &str, token: &[u8]) -> Option<String> {
        match self.cmd(&[command.as_bytes(), token]) {
            Value::Nil => None,
            Value::BulkString(b) => Some(String::from_utf8(b).expect("reply is UTF-8")),
            other => panic!(
                "{command} {}: expected a bulk string or nil, got {other:?}",
                String::from_utf8_lossy(token)
            ),
        }
    }
}

/// Which layout a stored session has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One string: `s2 <tag> <ttl> <deadline>[ <indexes>]\n<data>`.
    V2,
    /// 0.1.0's hash of `data`, `ttl`, `deadline` and `indexes`.
    V010,
}

/// A stored session taken apart (see [`Conn::stored`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub layout: Layout,
    /// Layout 2's 16 hex digits.
    pub tag: Option<String>,
    pub data: String,
    pub ttl: i64,
    pub deadline: i64,
    pub indexes: Option<Vec<String>>,
}

impl StoredSession {
    /// Reads the text of layout 2 in docs/storage.md; `None` when `value` does not have it.
    pub fn parse_v2(value: &[u8]) -> Option<StoredSession> {
        let text = std::str::from_utf8(value).ok()?;
        let (header, data) = text.split_once('\n')?;
        let mut fields = header.splitn(5, ' ');
        if fields.next()? != "s2" {
            return None;
        }
        let tag = fields.next()?;
        if tag.len() != 16
            || !tag
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        let ttl = fields.next()?.parse().ok()?;
        let deadline = fields.next()?.parse().ok()?;
        let indexes = match fields.next() {
            Some(list) => Some(serde_json::from_str(list).ok()?),
            None => None,
        };
        Some(StoredSession {
            layout: Layout::V2,
            tag: Some(tag.to_string()),
            data: data.to_string(),
            ttl,
            deadline,
            indexes,
        })
    }

    /// The layout-2 text of this session under the key `name`, tagged with the hex `secret`:
    /// SipHash-2-4 of the name keyed by the secret's 16 bytes, as 16 hex digits.
    pub fn encode_v2(&self, secret: &str, name: &[u8]) -> Vec<u8> {
        let mut header = format!("s2 {} {} {}", tag_v2(secret, name), self.ttl, self.deadline);
        if let Some(indexes) = &self.indexes {
            header.push(' ');
            header.push_str(&serde_json::to_string(indexes).unwrap());
        }
        format!("{header}\n{}", self.data).into_bytes()
    }

    /// The index keys, or none.
    pub fn index_keys(&self) -> Vec<String> {
        self.indexes.clone().unwrap_or_default()
    }
}

/// The tag of docs/storage.md: SipHash-2-4 of `name` keyed by the 16 bytes of the hex `secret`, as 16
/// lowercase hex digits.
pub fn tag_v2(secret: &str, name: &[u8]) -> String {
    sip_tag(&secret_bytes(secret), name)
}

/// The tag of docs/storage.md of a session stored under its token's hash (`token-hash sha256`):
/// keyed by the first 16 bytes of SHA-256 of `redis-session layout 2, hashed token keys`,
/// a NUL byte, and the secret's 16 bytes.
pub fn tag_v2_hashed(secret: &str, name: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"redis-session layout 2, hashed token keys\0")
        .chain_update(secret_bytes(secret))
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    sip_tag(&key, name)
}

fn secret_bytes(secret: &str) -> [u8; 16] {
    assert_eq!(secret.len(), 32, "a secret is 32 hex digits");
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&secret[2 * i..2 * i + 2], 16).expect("hex secret");
    }
    key
}

fn sip_tag(key: &[u8; 16], name: &[u8]) -> String {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher24::new_with_key(key);
    h.write(name);
    format!("{:016x}", h.finish())
}

/// A session made by `SESSION.CREATE`.
pub struct Created {
    pub token: String,
    /// The reply, parsed (key order and number text kept).
    pub reply: serde_json::Map<String, serde_json::Value>,
    /// The reply as sent.
    pub raw: String,
}

impl Created {
    /// The reply without its `token`: what VALIDATE should reply, as compact JSON.
    pub fn data_text(&self) -> String {
        let mut m = self.reply.clone();
        m.shift_remove("token");
        serde_json::to_string(&m).unwrap()
    }
}

/// Parses a JSON object reply (key order and exact number text kept).
pub fn parse_object(text: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(other) => panic!("expected a JSON object, got {other}"),
        Err(e) => panic!("reply is not JSON ({e}): {text}"),
    }
}

/// Parses JSON text and writes it back compact (key order and number text kept), so that
/// texts differing only in escaping or spacing compare equal.
pub fn normalize(text: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    serde_json::to_string(&v).unwrap()
}

/// Keys of a JSON object, in order.
pub fn keys_of(m: &serde_json::Map<String, serde_json::Value>) -> Vec<&str> {
    m.keys().map(|k| k.as_str()).collect()
}

/// A reply as a string, if it is one.
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".to_string()),
        _ => None,
    }
}

/// `CODE detail` for an error reply, `None` otherwise.
pub fn error_text(v: &Value) -> Option<String> {
    match v {
        Value::ServerError(e) => Some(match e.details() {
            Some(d) => format!("{} {}", e.code(), d),
            None => e.code().to_string(),
        }),
        _ => None,
    }
}

fn show_args<A: AsRef<[u8]>>(args: &[A]) -> String {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a.as_ref());
            if s.len() > 80 {
                format!("{}...({} bytes)", &s[..s.floor_char_boundary(80)], s.len())
            } else {
                s.into_owned()
            }
        })
        .collect();
    shown.join(" ")
}

/// True when `s` is lowercase hex.
pub fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC) into unix seconds; `None` if not exactly that shape.
pub fn parse_created_at(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

/// A 48-character lowercase hex string that no test creates on purpose.
/// The identifier LIST gives the session of `token` (`sessionId`), which is also what it is
/// stored under with `token-hash sha256`: the token's slot tag, if any, then the lowercase
/// hex SHA-256 of the whole token (docs/security.md "Hashed tokens"), computed here independently.
pub fn session_id(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let tag = match (token.starts_with('{'), token.find('}')) {
        (true, Some(end)) => &token[..=end],
        _ => "",
    };
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{tag}{hex}")
}

pub const UNKNOWN_TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

/// Everything about a key of the module's that must survive a restart or match on a replica:
/// type, value and absolute expiry. (The module writes strings (sessions of layout 2 and the
/// secret), sets (indexes), and 0.1.0 sessions are hashes.)
#[derive(Debug, PartialEq)]
pub enum KeyState {
    String(Vec<u8>, i64),
    Hash(BTreeMap<String, String>, i64),
    Set(BTreeSet<String>, i64),
}

/// Every key of the database with its type, value and PEXPIRETIME; panics on a key of any
/// other type.
pub fn snapshot(c: &mut Conn) -> BTreeMap<String, KeyState> {
    let mut out = BTreeMap::new();
    for key in c.keys() {
        let exp = c.pexpiretime(&key);
        let state = match c.key_type(&key).as_str() {
            "string" => KeyState::String(c.get_bytes(&key).expect("GET"), exp),
            "hash" => KeyState::Hash(c.hgetall(&key), exp),
            "set" => KeyState::Set(c.smembers(&key), exp),
            other => panic!(
                "unexpected type {other} at {}",
                String::from_utf8_lossy(&key)
            ),
        };
        out.insert(String::from_utf8_lossy(&key).into_owned(), state);
    }
    out
}

/// A key's whole value, as bytes. Not `DUMP`: a hashtable-encoded hash (or set) dumps its
/// elements in bucket order, which reads can change (incremental rehashing) although the
/// value is the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// `GET`.
    String(Vec<u8>),
    /// `HGETALL`, sorted by field.
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    /// `SMEMBERS`, sorted.
    Set(BTreeSet<Vec<u8>>),
    /// `LRANGE 0 -1`, in list order.
    List(Vec<Vec<u8>>),
    /// `ZRANGE 0 -1 WITHSCORES`: (member, score) in rank order.
    ZSet(Vec<(Vec<u8>, Vec<u8>)>),
    /// `XRANGE - +`: (id, flat field/value list) in id order.
    Stream(Vec<(Vec<u8>, Vec<Vec<u8>>)>),
    /// `DUMP`, for any other type (a module type, say).
    Dump(Vec<u8>),
}

/// The bytes of a string reply.
fn bulk(v: &Value, what: &str) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        // A RESP3 score; Rust prints the shortest text that reads back as the same f64.
        Value::Double(d) => d.to_string().into_bytes(),
        other => panic!("{what}: expected a bulk string, got {other:?}"),
    }
}

/// The items of an array (or RESP3 set or map, flattened) reply.
fn items(v: Value, what: &str) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => panic!("{what}: expected an array, got {other:?}"),
    }
}

/// Pairs from a flat `[a, b, a, b, ...]` reply, or from RESP3's `[[a, b], ...]`.
fn pairs(v: Value, what: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let flat = items(v, what);
    if !flat.is_empty()
        && flat
            .iter()
            .all(|i| matches!(i, Value::Array(p) if p.len() == 2))
    {
        return flat
            .into_iter()
            .map(|i| {
                let p = items(i, what);
                (bulk(&p[0], what), bulk(&p[1], what))
            })
            .collect();
    }
    assert!(flat.len().is_multiple_of(2), "{what}: odd length");
    flat.chunks(2)
        .map(|kv| (bulk(&kv[0], what), bulk(&kv[1], what)))
        .collect()
}

/// The value of the key `key` of type `kind`, read with its type's plain read command.
pub fn contents(c: &mut Conn, key: &[u8], kind: &str) -> Contents {
    let what = format!("{kind} {}", String::from_utf8_lossy(key));
    let what = what.as_str();
    let mut read = |args: &[&[u8]]| {
        let v = c.cmd(args);
        if let Some(e) = error_text(&v) {
            panic!("{what}: {e}");
        }
        v
    };
    match kind {
        "string" => Contents::String(bulk(&read(&[b"GET", key]), what)),
        "hash" => Contents::Hash(pairs(read(&[b"HGETALL", key]), what).into_iter().collect()),
        "set" => Contents::Set(
            items(read(&[b"SMEMBERS", key]), what)
                .iter()
                .map(|m| bulk(m, what))
                .collect(),
        ),
        "list" => Contents::List(
            items(read(&[b"LRANGE", key, b"0", b"-1"]), what)
                .iter()
                .map(|m| bulk(m, what))
                .collect(),
        ),
        "zset" => Contents::ZSet(pairs(
            read(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]),
            what,
        )),
        "stream" => Contents::Stream(
            items(read(&[b"XRANGE", key, b"-", b"+"]), what)
                .into_iter()
                .map(|entry| {
                    let entry = items(entry, what);
                    assert_eq!(entry.len(), 2, "{what}: entry {entry:?}");
                    let mut entry = entry.into_iter();
                    let id = bulk(&entry.next().unwrap(), what);
                    let fields = items(entry.next().unwrap(), what)
                        .iter()
                        .map(|f| bulk(f, what))
                        .collect();
                    (id, fields)
                })
                .collect(),
        ),
        _ => Contents::Dump(bulk(&read(&[b"DUMP", key]), what)),
    }
}

/// SplitMix64: small, seedable, and good enough to pick test inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}
