'use strict';
// The package on a real Redis Cluster (3 primaries, a replica each, the module on every node,
// `indexes user_id`), through node-redis's cluster client (createCluster, v4, v5 and v6) and
// ioredis's Cluster: every call routed by the key of the Cluster design (the token; CREATE's
// ROUTE <primary index key>; the value argument of REVOKEINDEX, REVOKEID and LIST), checked
// by what each client was asked to send, by the redirections the nodes gave (none), and by
// where every key is.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');

const sessions = require('..');
const { Cluster } = require('./support/cluster');

const TOKEN = /^\{[0-9A-Za-z]{1,4}\}[0-9a-f]{48}$/;
const major = Number(process.versions.node.split('.')[0]);

/** Records the routing of every command the service gives the cluster client. */
function recordNodeRedis(cluster) {
  const seen = [];
  const original = cluster.sendCommand;
  cluster.sendCommand = function (firstKey, isReadonly, args, ...rest) {
    if (/^session\./i.test(String(args[0]))) {
      seen.push({ slot: firstKey === undefined ? null : sessions.keySlot(firstKey), args: args.map(String) });
    }
    return original.call(this, firstKey, isReadonly, args, ...rest);
  };
  return seen;
}

function recordIoredis(cluster) {
  const seen = [];
  const original = cluster.sendCommand;
  cluster.sendCommand = function (command, ...rest) {
    if (/^session\./i.test(command.name)) {
      seen.push({ slot: command.getSlot(), args: [command.name, ...command.args.map(String)] });
    }
    return original.call(this, command, ...rest);
  };
  return seen;
}

const CLIENTS = [
  ...[['redis4', 18], ['redis', 18], ['redis6', 20]].map(([mod, minNode]) => ({
    name: `node-redis ${require(`${mod}/package.json`).version} createCluster`,
    skip: major < minNode ? `Node.js ${process.versions.node}` : false,
    async connect(port) {
      // useReplicas: so that the client knows the replicas, and addIndex reaches them.
      const c = require(mod).createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${port}` }], useReplicas: true });
      c.on('error', (err) => console.error(`${mod} cluster:`, err.message));
      await c.connect();
      return { client: c, seen: recordNodeRedis(c) };
    },
    close: (c) => (typeof c.close === 'function' ? c.close() : c.quit()),
  })),
  {
    name: `ioredis ${require('ioredis/package.json').version} Cluster`,
    skip: false,
    async connect(port) {
      const Redis = require('ioredis');
      const c = new Redis.Cluster([{ host: '127.0.0.1', port }]);
      c.on('error', (err) => console.error('ioredis cluster:', err.message));
      await new Promise((resolve, reject) => {
        c.once('ready', resolve);
        c.once('error', reject);
      });
      return { client: c, seen: recordIoredis(c) };
    },
    close: async (c) => c.disconnect(),
  },
];

/** The slot each recorded SESSION.* command should have gone to, by the Cluster design. */
function expectedSlot({ slot, args }) {
  const [name, a1, a2] = args;
  switch (name.toUpperCase()) {
    case 'SESSION.CREATE': {
      const at = args.indexOf('ROUTE');
      // Without ROUTE (no primary index value) any slot, but a slot: a primary.
      return at === -1 ? (slot === null ? 'a slot' : slot) : sessions.keySlot(args[at + 1]);
    }
    case 'SESSION.REVOKEINDEX':
    case 'SESSION.REVOKEID':
    case 'SESSION.LIST':
      return sessions.keySlot(a2); // the value argument
    default:
      return sessions.keySlot(a1); // the token
  }
}

describe('redis-session-client on a Redis Cluster', () => {
  let cluster;
  let owners;

  before(async () => {
    cluster = await Cluster.start();
    owners = await cluster.owners();
  });

  after(async () => {
    if (cluster) await cluster.stop();
  });

  /** The node (admin connection) serving the slot of `key`. */
  const ownerOf = (key) => cluster.primaries.find((n) => n.port === owners[sessions.keySlot(key)]);

  async function everyKeyWhereItBelongs() {
    const replicaOf = new Map();
    for (const r of cluster.replicas) {
      const info = String(await r.call('INFO', 'replication'));
      replicaOf.set(r.port, Number(/master_port:(\d+)/.exec(info)[1]));
    }
    const keys = await cluster.everyKey();
    for (const { port, role, key } of keys) {
      const slot = Number(await cluster.primaries[0].call('CLUSTER', 'KEYSLOT', key));
      assert.equal(slot, sessions.keySlot(key), `keySlot(${key})`);
      const serving = role === 'primary' ? port : replicaOf.get(port);
      assert.equal(owners[slot], serving, `${key} (slot ${slot}) is on ${port} (${role}), served by ${owners[slot]}`);
    }
    return keys.filter((k) => k.role === 'primary').length;
  }

  for (const kind of CLIENTS) {
    describe(kind.name, { skip: kind.skip }, () => {
      let client;
      let seen;
      let svc;

      before(async () => {
        ({ client, seen } = await kind.connect(cluster.primaries[0].port));
        svc = sessions.init({ redis_client: client });
      });

      after(async () => {
        if (client) await kind.close(client);
      });

      /** Every SESSION.* command recorded so far went to its slot, and no node redirected. */
      async function routedByTheirKeys(redirectionsBefore) {
        assert.ok(seen.length > 0);
        for (const s of seen) {
          assert.equal(s.slot, expectedSlot(s), `routing of ${s.args.join(' ').slice(0, 120)}`);
        }
        assert.equal(await cluster.redirections(), redirectionsBefore, 'no MOVED or ASK: every call went to its node');
        seen.length = 0;
      }

      it('every call, each routed by its key', async () => {
        const redirections = await cluster.redirections();
        const tag = kind.name.replace(/\W+/g, '');
        const user = `${tag}-150`;
        const a = await svc.create({ user_id: user, role: 'admin' });
        const b = await svc.create({ user_id: user, role: 'user' });
        assert.match(a.token, TOKEN);
        assert.equal(sessions.keySlot(a.token), sessions.keySlot(user), 'the session lives in the slot of its value');
        assert.deepEqual(
          await ownerOf(user).call('SMEMBERS', `user_id:{${user}}`).then((m) => m.sort()),
          [a.token, b.token].sort(),
        );

        assert.equal((await svc.validate(a.token)).role, 'admin');
        assert.equal((await svc.get(a.token)).user_id, user);
        assert.equal((await svc.update(a.token, { role: 'owner' })).role, 'owner');
        const listed = await svc.list('user_id', user);
        assert.deepEqual(listed.map((s) => s.sessionId).sort(), [a.token, b.token].map(sessions.sessionId).sort());

        const rotated = await svc.rotate(a.token, 30);
        assert.match(rotated.token, TOKEN);
        assert.equal(sessions.keySlot(rotated.token), sessions.keySlot(a.token), 'a rotated token keeps its slot');
        assert.equal((await svc.validate(a.token)).role, 'owner', 'grace');

        await assert.rejects(svc.create({ user_id: user }, { maxSessions: 2, deny: true }), /DENY/);
        const c = await svc.create({ user_id: user, role: 'third' }, { maxSessions: 3 });
        assert.equal((await svc.list('user_id', user)).length, 3);

        assert.equal(await svc.revokeId('user_id', user, sessions.sessionId(c.token)), true);
        assert.equal(await svc.validate(c.token), null);
        assert.equal(await svc.revokeIndex('user_id', user, rotated.token), 1);
        assert.equal(await svc.validate(b.token), null);
        assert.equal(await svc.destroy(rotated.token), true);
        assert.equal(await svc.validate(a.token), null, 'the grace token ends with its session');
        assert.deepEqual(await svc.list('user_id', user), []);

        // Values whose index key takes the slot tag form, and a session without an index value.
        for (const value of ['', `${tag}{b}c`, '}{', 'Zoë', 42, true]) {
          const s = await svc.create({ user_id: value });
          const text = String(value);
          assert.equal(sessions.keySlot(s.token), sessions.keySlot(text), `slot of ${JSON.stringify(value)}`);
          const route = seen.filter((x) => x.args[0] === 'SESSION.CREATE').pop().args.slice(-2);
          assert.equal(route[0], 'ROUTE');
          // The ROUTE key is the module's own index key: it is on the node, holding the token.
          assert.deepEqual(await ownerOf(text).call('SMEMBERS', route[1]), [s.token], `index key ${route[1]}`);
          if (text === '' || text.includes('{')) {
            assert.equal(route[1], `user_id:${s.token.slice(0, s.token.indexOf('}') + 1)}:${text}`);
          } else {
            assert.equal(route[1], `user_id:{${text}}`);
          }
          assert.equal((await svc.list('user_id', value)).length, 1);
          assert.equal(await svc.revokeIndex('user_id', value), 1);
        }
        const loose = await svc.create({ device: 'kiosk' });
        assert.equal(seen.filter((x) => x.args[0] === 'SESSION.CREATE').pop().args.includes('ROUTE'), false);
        assert.equal(await svc.destroy(loose.token), true);

        assert.deepEqual(await svc.getIndexes(), ['user_id']);
        await routedByTheirKeys(redirections);
      });

      it('not awaited: addIndex reaches every node before the create after it is routed', async () => {
        const redirections = await cluster.redirections();
        const tenant = `acme-${kind.name.replace(/\W+/g, '')}`;
        const added = svc.addIndex('tenant');
        // No user_id: the session's primary index is now tenant, so it is routed by tenant:{...}.
        const created = svc.create({ tenant, plan: 'pro' });
        const removed = svc.removeIndex('tenant');
        const after = svc.create({ tenant, plan: 'after' });
        assert.deepEqual(await added, ['user_id', 'tenant']);
        const s = await created;
        assert.equal(sessions.keySlot(s.token), sessions.keySlot(tenant));
        assert.deepEqual(await ownerOf(tenant).call('SMEMBERS', `tenant:{${tenant}}`), [s.token]);
        assert.deepEqual(await removed, ['user_id']);
        const t = await after;
        assert.equal(seen.filter((x) => x.args[0] === 'SESSION.CREATE').pop().args.includes('ROUTE'), false);
        for (const node of cluster.nodes) {
          assert.deepEqual(await node.call('CONFIG', 'GET', 'session.indexes'), ['session.indexes', 'user_id'], `node ${node.port}`);
        }
        assert.equal(await svc.destroy(s.token), true);
        assert.equal(await svc.destroy(t.token), true);

        // token_bytes_length: set on every node before the first call of its service.
        const longer = sessions.init({ redis_client: client, token_bytes_length: 32 });
        const made = await Promise.all([1, 2, 3].map((i) => longer.create({ user_id: `${tenant}-${i}` })));
        for (const m of made) assert.match(m.token, /^\{[0-9A-Za-z]{1,4}\}[0-9a-f]{64}$/);
        for (const node of cluster.nodes) {
          assert.deepEqual(await node.call('CONFIG', 'GET', 'session.token-bytes'), ['session.token-bytes', '32']);
        }
        await Promise.all(cluster.nodes.map((n) => n.call('CONFIG', 'SET', 'session.token-bytes', '24')));
        await Promise.all(made.map((m) => svc.destroy(m.token)));
        await routedByTheirKeys(redirections);
      });

      it('sessions of 100 users, made and revoked without awaiting, spread over every shard', async () => {
        const redirections = await cluster.redirections();
        const prefix = `u-${kind.name.replace(/\W+/g, '')}-`;
        const users = Array.from({ length: 100 }, (_, i) => `${prefix}${i}`);
        const made = await Promise.all(users.flatMap((u) => [0, 1, 2].map((n) => svc.create({ user_id: u, n }))));
        const tokens = new Map(users.map((u) => [u, made.filter((m) => m.user_id === u).map((m) => m.token)]));
        const holding = await Promise.all(cluster.primaries.map((n) => n.call('DBSIZE')));
        assert.ok(holding.every((n) => Number(n) > 0), `keys on every primary: ${holding}`);
        assert.ok((await everyKeyWhereItBelongs()) >= 300);

        const lists = await Promise.all(users.map((u) => svc.list('user_id', u)));
        lists.forEach((l, i) => assert.equal(l.length, 3, users[i]));
        // Log every other user out everywhere, validating everyone at the same time.
        const revoked = await Promise.all(users.filter((_, i) => i % 2 === 0).map((u) => svc.revokeIndex('user_id', u)));
        assert.deepEqual(revoked, Array(50).fill(3));
        const valid = await Promise.all(users.flatMap((u) => tokens.get(u).map((t) => svc.validate(t))));
        valid.forEach((v, i) => {
          const u = users[Math.floor(i / 3)];
          assert.equal(v === null, users.indexOf(u) % 2 === 0, `${u}: ${JSON.stringify(v)}`);
        });
        await Promise.all(users.map((u) => svc.revokeIndex('user_id', u)));
        await everyKeyWhereItBelongs();
        await routedByTheirKeys(redirections);
      });
    });
  }
});
