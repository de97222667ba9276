'use strict';
// One repetition of the end-to-end workload (issue 14) through one Node session store, then
// a check of what it left in Redis. Run by ../run.sh, which starts the server and passes
// its port; prints one JSON line on stdout.
//
//   node bench.js STORE PORT
//
// STORE is one of:
//   client          redis-session-client on node-redis v5: create() = SESSION.CREATE,
//                   validate() = SESSION.VALIDATE (read + sliding expiry, index expiry)
//   raw             the same two commands sent through node-redis v5's sendCommand, with
//                   JSON.stringify/JSON.parse by hand (a reference: the package's own cost)
//   redis-sessions  redis-sessions 4 (its own node-redis v4 client): create() = MULTI
//                   ZADD*3 SADD HSET EXEC; get() = HMGET, then MULTI ZADD*3 HINCRBY [HSET la]
//                   EXEC (moves the session's expiry in rs:SESSIONS, the zset its wiper reads)
//   connect-redis   connect-redis 10 on node-redis v5, as express-session (resave: false)
//                   uses it: a login = set() (SET sess:<sid> <json> EX ttl); a request =
//                   get() (GET) then touch() (EXPIRE), the two express-session makes for a
//                   request whose session did not change
//
// The workload, the same for each: SESSIONS sessions, each for a user drawn (seeded) from
// USERS users, with the same small payload; each is created, then validated 10 times, the
// 11 steps in order; CONCURRENCY such sequences run at once (so CONCURRENCY requests in
// flight, through the client's own async pipelining on one connection; no manual pipeline).

const crypto = require('node:crypto');
const { createClient } = require('redis');

const [store, portArg] = process.argv.slice(2);
const port = Number(portArg);
const SESSIONS = Number(process.env.BENCH_CLIENTS_SESSIONS || 20000);
const USERS = Number(process.env.BENCH_CLIENTS_USERS || 10000);
const CONCURRENCY = Number(process.env.BENCH_CLIENTS_CONCURRENCY || 50);
const VALIDATIONS = Number(process.env.BENCH_CLIENTS_VALIDATIONS || 10);
const WARMUP = Number(process.env.BENCH_CLIENTS_WARMUP || 1000);
const SERVER_PID = Number(process.env.BENCH_SERVER_PID || 0);
const CLK_TCK = Number(process.env.BENCH_CLK_TCK || 100);
const TTL = 7200; // seconds, for every store
const url = `redis://127.0.0.1:${port}`;

function fail(msg) {
  console.error(`bench.js ${store}: ${msg}`);
  process.exit(1);
}

// A small seeded PRNG, so each store gets the same users in the same order.
function mulberry32(seed) {
  return function () {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// What a login puts in a session: flat values (redis-sessions takes nothing else).
function payload(uid) {
  return {
    user_id: uid,
    ip: `10.${(uid >> 8) & 255}.${uid & 255}.7`,
    role: 'member',
    plan: 'pro',
    lang: 'en-US',
    ua: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  };
}

function serverTicks() {
  if (!SERVER_PID) return null;
  const stat = require('node:fs').readFileSync(`/proc/${SERVER_PID}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, fields 14 and 15
}

// Each adapter: create(data) -> handle; validate(handle, uid) -> true when the session came
// back with its user; check(n, users) -> throws when Redis does not hold what it should.
// The machine's CPU time (all cores) from /proc/stat: [busy ticks, steal ticks, all ticks].
function machineTicks() {
  const f = require('node:fs').readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const all = f.reduce((a, b) => a + b, 0);
  return [all - f[3] - f[4], f[7] || 0, all];
}

async function makeAdapter(kind) {
  if (kind === 'client' || kind === 'raw') {
    const client = createClient({ url });
    await client.connect();
    let create, validate;
    if (kind === 'client') {
      const service = require('redis-session-client').init({ redis_client: client, token_TTL: TTL });
      create = async (data) => (await service.create(data)).token;
      validate = async (token, uid) => {
        const s = await service.validate(token);
        return s !== null && s.user_id === uid;
      };
    } else {
      create = async (data) =>
        JSON.parse(await client.sendCommand(['SESSION.CREATE', JSON.stringify(data), 'TTL', String(TTL)])).token;
      validate = async (token, uid) => {
        const r = await client.sendCommand(['SESSION.VALIDATE', token]);
        return r !== null && JSON.parse(r).user_id === uid;
      };
    }
    return {
      create, validate,
      flush: () => client.flushAll(),
      close: () => client.close(),
      async check(n, users, tokens) {
        const c = await countKeys(client);
        const sets = c.byPrefix('user_id:', 'set');
        if (sets.count !== users) throw new Error(`${sets.count} index sets, expected ${users}`);
        const members = await sumOf(client, sets.keys, (k) => client.sCard(k));
        if (members !== n) throw new Error(`${members} index members, expected ${n}`);
        const strings = c.total - sets.count - (c.has('session-secret') ? 1 : 0);
        if (strings !== n) throw new Error(`${strings} session keys, expected ${n}`);
        await checkTtl(client, tokens, TTL);
      },
    };
  }
  if (kind === 'redis-sessions') {
    const RedisSessions = require('redis-sessions').default || require('redis-sessions');
    const rs = new RedisSessions({ port, host: '127.0.0.1' });
    const checker = createClient({ url });
    await checker.connect();
    return {
      create: async (data) => {
        const { user_id, ip, ...d } = data;
        return (await rs.create({ app: 'bench', id: String(user_id), ip, ttl: TTL, d })).token;
      },
      validate: async (token, uid) => {
        const s = await rs.get({ app: 'bench', token });
        return s !== null && s.id === String(uid) && s.d && s.d.plan === 'pro';
      },
      flush: () => checker.flushAll(),
      close: async () => { await rs.quit(); await checker.close(); },
      async check(n, users, tokens) {
        const c = await countKeys(checker);
        const hashes = c.byPrefix('rs:bench:', 'hash');
        if (hashes.count !== n) throw new Error(`${hashes.count} session hashes, expected ${n}`);
        const sets = c.byPrefix('rs:bench:us:', 'set');
        if (sets.count !== users) throw new Error(`${sets.count} user sets, expected ${users}`);
        const members = await sumOf(checker, sets.keys, (k) => checker.sCard(k));
        if (members !== n) throw new Error(`${members} user set members, expected ${n}`);
        const z = await checker.zCard('rs:SESSIONS');
        if (z !== n) throw new Error(`rs:SESSIONS holds ${z}, expected ${n}`);
        // r counts reads: 1 at create + one per get, so every get reached Redis.
        const reads = await sumOf(checker, tokens, (t) => checker.hGet(`rs:bench:${t}`, 'r').then(Number));
        if (reads !== n * (1 + VALIDATIONS)) throw new Error(`r sums to ${reads}, expected ${n * (1 + VALIDATIONS)}`);
      },
    };
  }
  if (kind === 'connect-redis') {
    const { RedisStore } = require('connect-redis');
    const client = createClient({ url });
    await client.connect();
    const store = new RedisStore({ client, prefix: 'sess:', ttl: TTL });
    const p = (fn) => new Promise((res, rej) => fn((err, v) => (err ? rej(err) : res(v))));
    // The session object express-session stores: its cookie (toJSON of its Cookie) + data.
    const cookie = () => ({
      originalMaxAge: TTL * 1000, partitioned: null, priority: null,
      expires: new Date(Date.now() + TTL * 1000).toISOString(),
      secure: null, httpOnly: true, domain: null, path: '/', sameSite: null,
    });
    return {
      create: async (data) => {
        const sid = crypto.randomBytes(24).toString('base64url'); // express-session's uid(24)
        await p((cb) => store.set(sid, { cookie: cookie(), ...data }, cb));
        return sid;
      },
      validate: async (sid, uid) => {
        const sess = await p((cb) => store.get(sid, cb));
        if (!sess || sess.user_id !== uid) return false;
        sess.cookie.expires = new Date(Date.now() + TTL * 1000).toISOString(); // req.session.touch()
        await p((cb) => store.touch(sid, sess, cb));
        return true;
      },
      flush: () => client.flushAll(),
      close: () => client.close(),
      async check(n, users, tokens) {
        const c = await countKeys(client);
        const strings = c.byPrefix('sess:', 'string');
        if (strings.count !== n || c.total !== n) throw new Error(`${strings.count} sess: keys (${c.total} keys), expected ${n}`);
        await checkTtl(client, tokens.map((t) => `sess:${t}`), TTL);
      },
    };
  }
  fail(`unknown store ${kind}`);
}

async function countKeys(client) {
  const types = new Map();
  let total = 0;
  for await (const keys of client.scanIterator({ COUNT: 1000 })) {
    const ts = await Promise.all(keys.map((k) => client.type(k)));
    keys.forEach((k, i) => types.set(k, ts[i]));
    total += keys.length;
  }
  return {
    total,
    has: (k) => types.has(k),
    byPrefix(prefix, type) {
      const keys = [];
      for (const [k, t] of types) if (k.startsWith(prefix) && t === type && !(prefix === 'rs:bench:' && k.startsWith('rs:bench:_'))) keys.push(k);
      return { count: keys.length, keys };
    },
  };
}

async function sumOf(client, items, fn) {
  let sum = 0;
  for (let i = 0; i < items.length; i += 1000) {
    const part = await Promise.all(items.slice(i, i + 1000).map(fn));
    for (const v of part) sum += v;
  }
  return sum;
}

// Every key has an expiry, at most TTL and no older than the run (none lost, none without one).
async function checkTtl(client, keys, ttl) {
  const floor = ttl - Math.ceil((Date.now() - runStarted) / 1000) - 5;
  for (let i = 0; i < keys.length; i += 1000) {
    const part = await Promise.all(keys.slice(i, i + 1000).map((k) => client.ttl(k)));
    part.forEach((t, j) => {
      if (!(t >= floor && t <= ttl)) throw new Error(`TTL of ${keys[i + j]} is ${t}`);
    });
  }
}

let runStarted = Date.now();

async function runWorkload(a, n, seed) {
  runStarted = Date.now();
  const rnd = mulberry32(seed);
  const uids = Array.from({ length: n }, () => 1 + Math.floor(rnd() * USERS));
  const tokens = new Array(n);
  const lat = new Float64Array(n * VALIDATIONS);
  let next = 0, failed = 0, li = 0;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const token = await a.create(payload(uids[i]));
      tokens[i] = token;
      for (let v = 0; v < VALIDATIONS; v++) {
        const t0 = process.hrtime.bigint();
        if (!(await a.validate(token, uids[i]))) failed++;
        lat[li++] = Number(process.hrtime.bigint() - t0) / 1e3;
      }
    }
  }
  const ticks0 = serverTicks();
  const m0 = machineTicks();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n) }, worker));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const ticks1 = serverTicks();
  const m1 = machineTicks();
  const users = new Set(uids).size;
  lat.sort();
  return {
    tokens, failed, users, wall,
    client_cpu_s: (cpu.user + cpu.system) / 1e6,
    server_cpu_s: ticks0 === null ? null : (ticks1 - ticks0) / CLK_TCK,
    machine_busy_s: (m1[0] - m0[0]) / CLK_TCK, steal_s: (m1[1] - m0[1]) / CLK_TCK,
    validate_p50_us: lat[Math.floor(lat.length * 0.5)],
    validate_p99_us: lat[Math.floor(lat.length * 0.99)],
  };
}

(async () => {
  const a = await makeAdapter(store);
  const seed = Number(process.env.BENCH_CLIENTS_SEED || 14);
  if (WARMUP > 0) {
    await a.flush();
    const w = await runWorkload(a, WARMUP, seed + 1);
    if (w.failed) fail(`${w.failed} validations failed in the warm-up`);
    await a.check(WARMUP, w.users, w.tokens);
  }
  await a.flush();
  const r = await runWorkload(a, SESSIONS, seed);
  if (r.failed) fail(`${r.failed} of ${SESSIONS * VALIDATIONS} validations failed`);
  try {
    await a.check(SESSIONS, r.users, r.tokens);
  } catch (e) {
    fail(`check after the run: ${e.message}`);
  }
  await a.flush();
  await a.close();
  const ops = SESSIONS * (1 + VALIDATIONS);
  console.log(JSON.stringify({
    store, sessions: SESSIONS, validations: SESSIONS * VALIDATIONS, ops, users: r.users,
    concurrency: CONCURRENCY, wall_s: r.wall, ops_per_s: ops / r.wall,
    client_cpu_s: r.client_cpu_s, server_cpu_s: r.server_cpu_s,
    machine_busy_s: r.machine_busy_s, steal_s: r.steal_s,
    validate_p50_us: r.validate_p50_us, validate_p99_us: r.validate_p99_us, checked: true,
  }));
})().catch((e) => fail(e && e.stack || String(e)));
