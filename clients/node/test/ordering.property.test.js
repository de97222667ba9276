'use strict';
// Property: any sequence of the original API's calls (init options, addIndex, removeIndex,
// create, validate, get, update, destroy, revokeIndex, list, ...), made without awaiting
// them, behaves exactly as if each had been awaited in turn. Each random sequence (a seeded
// PRNG: PROPERTY_SEED=<n> replays a run, PROPERTY_RUNS=<n> sequences per client) runs twice,
// on two servers reset to a fresh state: awaited call by call on one, fired without awaiting
// on the other, and every call's result is compared (tokens, identifiers and dates named by
// the order they appeared in, list() sorted). A sequence is made of rounds: the calls of one
// round are fired together; a call may name a session made in an earlier round.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const Redis = require('ioredis');

const sessions = require('..');
const { startServer } = require('./support/server');

const RUNS = Number(process.env.PROPERTY_RUNS || 100);
const BASE_SEED = Number(process.env.PROPERTY_SEED || Math.floor(Math.random() * 2 ** 31));
const BOGUS = '0123456789abcdef0123456789abcdef';

/** mulberry32: a small seeded PRNG. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (xs) => xs[int(xs.length)];
  return { next, int, pick };
}

const USERS = [1, 2, 'x', ''];
const TENANTS = ['acme', 'beta'];
const INDEXES = ['user_id', 'tenant'];

/** A random sequence: rounds of call descriptions (plain data, so a failure can print it). */
function generate(rand) {
  const rounds = [];
  let n = 0;
  let sessionsSoFar = 0;
  const roundCount = 2 + rand.int(4);
  for (let r = 0; r < roundCount; r++) {
    const ops = [];
    const len = 1 + rand.int(12);
    const ref = () => (sessionsSoFar === 0 || rand.next() < 0.1 ? -1 : rand.int(sessionsSoFar));
    let made = 0;
    for (let i = 0; i < len; i++) {
      const roll = rand.next();
      const cb = rand.next() < 0.3; // callback style
      if (roll < 0.07) {
        ops.push({
          op: 'init',
          token_TTL: rand.pick([undefined, 60, 600]),
          token_bytes_length: rand.pick([undefined, undefined, 16, 20, 32]),
        });
      } else if (roll < 0.17) {
        ops.push({ op: 'addIndex', name: rand.pick(INDEXES), cb });
      } else if (roll < 0.22) {
        ops.push({ op: 'removeIndex', name: rand.pick(INDEXES), cb });
      } else if (roll < 0.25) {
        ops.push({ op: 'getIndexes', cb });
      } else if (roll < 0.45) {
        const data = { n: n++ };
        if (rand.next() < 0.8) data.user_id = rand.pick(USERS);
        if (rand.next() < 0.4) data.tenant = rand.pick(TENANTS);
        const options = rand.pick([undefined, undefined, undefined, { maxSessions: 1 }, { maxSessions: 2, deny: true }]);
        ops.push({ op: 'create', data, options, cb });
        made++;
      } else if (roll < 0.55) {
        ops.push({ op: rand.pick(['validate', 'get']), ref: ref(), cb });
      } else if (roll < 0.61) {
        const patch = rand.pick([{ n: n++ }, { user_id: rand.pick(USERS) }, { tenant: null }, { tenant: rand.pick(TENANTS) }]);
        ops.push({ op: 'update', ref: ref(), patch, cb });
      } else if (roll < 0.66) {
        ops.push({ op: 'destroy', ref: ref(), cb });
      } else if (roll < 0.72) {
        ops.push({ op: 'rotate', ref: ref(), grace: rand.pick([undefined, 0, 5]), cb });
        made++;
      } else if (roll < 0.8) {
        const except = rand.next() < 0.3 ? ref() : null;
        ops.push({ op: 'revokeIndex', property: rand.pick(INDEXES), value: rand.pick([...USERS, ...TENANTS]), except, cb });
      } else if (roll < 0.94) {
        ops.push({ op: 'list', property: rand.pick(INDEXES), value: rand.pick([...USERS, ...TENANTS]), cb });
      } else {
        ops.push({ op: 'revokeId', property: rand.pick(INDEXES), value: rand.pick([...USERS, ...TENANTS]), ref: ref(), cb });
      }
    }
    sessionsSoFar += made;
    rounds.push(ops);
  }
  return rounds;
}

/**
 * One run of a sequence on `client`. `awaited`: each call awaited before the next; else the
 * calls of a round are all made, then awaited together. Resolves the results, normalised.
 */
async function play(client, rounds, awaited) {
  let svc = sessions.init({ redis_client: client });
  const tokens = []; // every token a create or rotate gave, in call order
  const results = [];
  const tokenOf = (ref) => (ref === -1 || ref >= tokens.length ? BOGUS : tokens[ref]);
  for (const ops of rounds) {
    const pending = [];
    for (const o of ops) {
      if (o.op === 'init') {
        svc = sessions.init({ redis_client: client, token_TTL: o.token_TTL, token_bytes_length: o.token_bytes_length });
        pending.push(Promise.resolve('init'));
        continue;
      }
      const args = {
        addIndex: () => [o.name],
        removeIndex: () => [o.name],
        getIndexes: () => [],
        create: () => (o.options === undefined ? [o.data] : [o.data, o.options]),
        validate: () => [tokenOf(o.ref)],
        get: () => [tokenOf(o.ref)],
        update: () => [tokenOf(o.ref), o.patch],
        destroy: () => [tokenOf(o.ref)],
        rotate: () => (o.grace === undefined ? [tokenOf(o.ref)] : [tokenOf(o.ref), o.grace]),
        revokeIndex: () => (o.except === null ? [o.property, o.value] : [o.property, o.value, tokenOf(o.except)]),
        list: () => [o.property, o.value],
        revokeId: () => [o.property, o.value, sessions.sessionId(tokenOf(o.ref))],
      }[o.op]();
      let p;
      if (o.cb) {
        p = new Promise((resolve) => {
          svc[o.op](...args, (err, result) => resolve(err ? { error: err.message } : { ok: result }));
        });
      } else {
        p = svc[o.op](...args).then(
          (result) => ({ ok: result }),
          (err) => ({ error: err.message }),
        );
      }
      if (awaited) await p;
      pending.push(p);
    }
    const settled = await Promise.all(pending);
    ops.forEach((o, i) => {
      const r = settled[i];
      if ((o.op === 'create' || o.op === 'rotate') && r.ok && r.ok.token) tokens.push(r.ok.token);
    });
    results.push(...settled);
  }
  return normalise(results, tokens);
}

/** Tokens as T<k>/<length>, identifiers as I<k>, dates as DATE; list() results sorted. */
function normalise(results, tokens) {
  const names = new Map();
  tokens.forEach((t, k) => {
    names.set(t, `T${k}/${t.length}`);
    names.set(sessions.sessionId(t), `I${k}`);
  });
  names.set(BOGUS, 'BOGUS');
  const walk = (v) => {
    if (typeof v === 'string') {
      if (names.has(v)) return names.get(v);
      if (/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(v)) return 'DATE';
      return [...names].reduce((s, [from, to]) => s.split(from).join(to), v);
    }
    if (Array.isArray(v)) {
      return v.map(walk).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    }
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return results.map(walk);
}

const CLIENTS = {
  'node-redis 3 (callback API)': {
    connect: ({ port, host }) => require('redis3').createClient(port, host),
    close: (c) => new Promise((resolve) => c.quit(() => resolve())),
  },
  'node-redis 4': {
    connect: async ({ port, host }) => {
      const c = require('redis4').createClient({ socket: { port, host } });
      await c.connect();
      return c;
    },
    close: (c) => c.quit(),
  },
  'node-redis 5': {
    connect: async ({ port, host }) => {
      const c = require('redis').createClient({ socket: { port, host } });
      await c.connect();
      return c;
    },
    close: (c) => c.close(),
  },
  ioredis: {
    connect: async ({ port, host }) => new Redis(port, host),
    close: async (c) => c.disconnect(),
  },
};

describe('calls not awaited behave exactly as if each were awaited in turn', () => {
  let servers;
  let admins;

  before(async () => {
    servers = await Promise.all([startServer(), startServer()]);
    admins = servers.map((s) => new Redis(s.port, s.host));
  });

  after(async () => {
    for (const a of admins || []) a.disconnect();
    await Promise.all((servers || []).map((s) => s.stop()));
  });

  /** A server as fresh: no keys, the module's default settings. */
  const reset = (admin) =>
    Promise.all([
      admin.call('FLUSHALL'),
      admin.call('CONFIG', 'SET', 'session.indexes', ''),
      admin.call('CONFIG', 'SET', 'session.token-bytes', '24'),
      admin.call('CONFIG', 'SET', 'session.token-hash', 'none'),
    ]);

  Object.entries(CLIENTS).forEach(([name, kind], k) => {
    it(`${name}: ${RUNS} random sequences (seed ${BASE_SEED + k * 100003})`, async () => {
      const clients = await Promise.all(servers.map((s) => kind.connect(s)));
      try {
        let calls = 0;
        let reordered = 0; // sequences where a barrier had calls behind it
        for (let run = 0; run < RUNS; run++) {
          const seed = BASE_SEED + k * 100003 + run;
          const rounds = generate(prng(seed));
          calls += rounds.flat().length;
          if (rounds.some((ops) => ops.slice(0, -1).some((o) => /Index$/.test(o.op) && o.op !== 'revokeIndex'))) reordered++;
          // The two servers swap roles every run.
          const [a, b] = run % 2 === 0 ? [0, 1] : [1, 0];
          await Promise.all([reset(admins[a]), reset(admins[b])]);
          const [expected, actual] = await Promise.all([play(clients[a], rounds, true), play(clients[b], rounds, false)]);
          assert.deepEqual(
            actual,
            expected,
            `seed ${seed} (PROPERTY_SEED=${seed - k * 100003 - run}): ${JSON.stringify(rounds)}`,
          );
        }
        assert.ok(calls > RUNS * 5, `${calls} calls`);
        assert.ok(reordered > RUNS / 4, `${reordered} sequences with a setting change followed by more calls`);
      } finally {
        await Promise.all(clients.map((c) => kind.close(c)));
      }
    });
  });
});
