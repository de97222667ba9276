'use strict';
// The package's behaviour, checked against a real redis-server with the module, through one
// kind of Redis client. Each *.test.js file runs this suite with its own client (node-redis
// v3, v4, v5, v6, ioredis) and its own server. Server-side facts (PTTL, SMEMBERS, CONFIG) are
// read through a separate ioredis connection, so that they do not depend on the client under
// test.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, it, before, after } = require('node:test');
const Redis = require('ioredis');

const sessions = require('../..');
const { startServer } = require('./server');

const HEX_TOKEN = /^[0-9a-f]+$/;
const CREATED_AT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/** A user id no other test uses, so tests never see each other's sessions. */
function uniqueUser() {
  return 100000 + crypto.randomInt(1e9);
}

/**
 * @param {string} name what the client is, for the test names
 * @param {object} client
 * @param {(server: {port:number, host:string}) => Promise<object>} client.connect makes a
 *   client the way its users do (connected, for the promise APIs)
 * @param {(client: object) => Promise<void>} client.close
 */
function defineSuite(name, { connect, close }) {
  describe(`redis-session-client with ${name}`, () => {
    let server;
    let client;
    let raw; // ioredis, for reading the server's state

    before(async () => {
      server = await startServer();
      client = await connect(server);
      raw = new Redis(server.port, server.host, { maxRetriesPerRequest: 1, lazyConnect: true });
      await raw.connect();
    });

    after(async () => {
      if (raw) raw.disconnect();
      if (client) await close(client);
      if (server) await server.stop();
    });

    const service = (options = {}) => sessions.init({ redis_client: client, ...options });

    it('getService() returns the service the last init() made', () => {
      const first = service();
      assert.equal(sessions.getService(), first);
      const second = service({ token_TTL: 60 });
      assert.equal(sessions.getService(), second);
      assert.notEqual(first, second);
    });

    it('create and validate round-trip the data with its types', async () => {
      const svc = service();
      const data = {
        user_id: uniqueUser(),
        name: 'Zoë',
        admin: false,
        score: 1.5,
        nothing: null,
        roles: ['admin', 'dev'],
        empty: [],
        prefs: { lang: 'en', nested: { depth: 2 } },
      };
      const session = await svc.create(data);
      assert.match(session.token, HEX_TOKEN);
      assert.equal(session.token.length, 48, 'default token-bytes 24 is 48 hex characters');
      assert.match(session.createdAt, CREATED_AT);
      const { token, createdAt, ...rest } = session;
      assert.deepEqual(rest, data);
      assert.deepEqual(Object.keys(session), ['token', ...Object.keys(data), 'createdAt']);

      const validated = await svc.validate(token);
      assert.deepEqual(validated, { ...data, createdAt });
      assert.equal(typeof validated.user_id, 'number');
      assert.equal(validated.admin, false);
      assert.deepEqual(validated.empty, []);
      assert.equal('token' in validated, false);
    });

    it('create keeps data of its own createdAt', async () => {
      const session = await service().create({ user_id: uniqueUser(), createdAt: 'yesterday' });
      assert.equal(session.createdAt, 'yesterday');
    });

    it('token_TTL sets the session TTL, and validate restores it', async () => {
      const svc = service({ token_TTL: 600 });
      const { token } = await svc.create({ user_id: uniqueUser() });
      const pttl = Number(await raw.call('PTTL', token));
      assert.ok(pttl > 598000 && pttl <= 600000, `PTTL ${pttl} should be about 600000`);
      await raw.call('PEXPIRE', token, '5000');
      assert.notEqual(await svc.validate(token), null);
      const after = Number(await raw.call('PTTL', token));
      assert.ok(after > 598000 && after <= 600000, `PTTL after validate ${after} should be about 600000`);
    });

    it('without token_TTL the module ttl setting applies (7200 s, the original default)', async () => {
      const { token } = await service().create({ user_id: uniqueUser() });
      const ttl = Number(await raw.call('TTL', token));
      assert.ok(ttl > 7190 && ttl <= 7200, `TTL ${ttl} should be about 7200`);
    });

    it('token_bytes_length sets the token length (a server setting)', async () => {
      try {
        const svc = service({ token_bytes_length: 32 });
        const { token } = await svc.create({ user_id: uniqueUser() });
        assert.match(token, HEX_TOKEN);
        assert.equal(token.length, 64);
        assert.deepEqual(await raw.call('CONFIG', 'GET', 'session.token-bytes'), ['session.token-bytes', '32']);
        const sixteen = service({ token_bytes_length: 16 });
        assert.equal((await sixteen.create({ user_id: uniqueUser() })).token.length, 32);
      } finally {
        await raw.call('CONFIG', 'SET', 'session.token-bytes', '24');
      }
    });

    it('init() refuses bad options at once', () => {
      assert.throws(() => sessions.init({}), TypeError);
      assert.throws(() => sessions.init({ redis_client: {} }), TypeError);
      assert.throws(() => service({ token_TTL: 0 }), RangeError);
      assert.throws(() => service({ token_TTL: 1.5 }), RangeError);
      assert.throws(() => service({ token_bytes_length: 8 }), RangeError);
    });

    it('callback style: every method calls back Node style and still returns a promise', async () => {
      const svc = service();
      const user = uniqueUser();
      const viaCallback = (fn) =>
        new Promise((resolve, reject) => {
          const returned = fn((err, result) => (err ? reject(err) : resolve(result)));
          assert.ok(returned instanceof Promise);
        });
      const session = await viaCallback((cb) => svc.create({ user_id: user, foo: 'bar' }, cb));
      assert.equal(session.foo, 'bar');
      const data = await viaCallback((cb) => svc.validate(session.token, cb));
      assert.equal(data.user_id, user);
      assert.equal(await viaCallback((cb) => svc.validate('0123456789abcdef0123456789abcdef', cb)), null);
      const updated = await viaCallback((cb) => svc.update(session.token, { foo: 'baz' }, cb));
      assert.equal(updated.foo, 'baz');
      const indexes = await viaCallback((cb) => svc.addIndex('user_id', cb));
      assert.ok(indexes.includes('user_id'));
      const listed = await viaCallback((cb) => svc.list('user_id', user, cb));
      assert.equal(listed.length, 0, 'the index applies to sessions created after addIndex');
      const second = await svc.create({ user_id: user });
      assert.equal(await viaCallback((cb) => svc.revokeIndex('user_id', user, cb)), 1);
      assert.equal(await svc.validate(second.token), null);
      assert.equal(await viaCallback((cb) => svc.destroy(session.token, cb)), true);
      await viaCallback((cb) => svc.removeIndex('user_id', cb));

      // Errors reach the callback as its first argument, and the promise rejects too.
      const err = await new Promise((resolve) => {
        svc.create({ token: 'mine' }, (e, result) => resolve(e || result)).catch(() => {});
      });
      assert.ok(err instanceof Error);
      assert.match(err.message, /reserved property 'token'/);
    });

    it('promise style: module errors reject, bad arguments reject before a round trip', async () => {
      const svc = service();
      await assert.rejects(svc.create({ token: 'mine' }), /reserved property 'token'/);
      await assert.rejects(svc.create('not an object'), TypeError);
      await assert.rejects(svc.create([1, 2]), TypeError);
      await assert.rejects(svc.update('0123456789abcdef0123456789abcdef', null), TypeError);
      await assert.rejects(svc.list('no_such_index', 1), /not a configured index/);
      await assert.rejects(svc.revokeIndex('no_such_index', 1), /not a configured index/);
    });

    it('an unknown, malformed or missing token validates to null', async () => {
      const svc = service();
      assert.equal(await svc.validate('0123456789abcdef0123456789abcdef'), null);
      assert.equal(await svc.validate('not a token'), null);
      assert.equal(await svc.validate(''), null);
      assert.equal(await svc.validate(undefined), null);
      assert.equal(await svc.get('0123456789abcdef0123456789abcdef'), null);
      assert.equal(await svc.update('0123456789abcdef0123456789abcdef', { a: 1 }), null);
      assert.equal(await svc.destroy('0123456789abcdef0123456789abcdef'), false);
      // A key the module did not write is unknown too, and left alone.
      await raw.call('HSET', 'abcdefabcdefabcdefabcdefabcdefab', 'user_id', '150');
      assert.equal(await svc.validate('abcdefabcdefabcdefabcdefabcdefab'), null);
      assert.equal(await raw.call('HGET', 'abcdefabcdefabcdefabcdefabcdefab', 'user_id'), '150');
    });

    it('addIndex and removeIndex change the named index, server-wide', async () => {
      const svc = service();
      await raw.call('CONFIG', 'SET', 'session.indexes', '');
      try {
        assert.deepEqual(await svc.addIndex('user_id'), ['user_id']);
        assert.deepEqual(await svc.addIndex('tenant_id'), ['user_id', 'tenant_id']);
        assert.deepEqual(await svc.addIndex('user_id'), ['user_id', 'tenant_id'], 'no duplicates');
        assert.deepEqual(await svc.getIndexes(), ['user_id', 'tenant_id']);
        // The named index goes, not the last one.
        assert.deepEqual(await svc.removeIndex('user_id'), ['tenant_id']);
        assert.deepEqual(await svc.removeIndex('not_an_index'), ['tenant_id']);
        assert.deepEqual(await raw.call('CONFIG', 'GET', 'session.indexes'), ['session.indexes', 'tenant_id']);

        const user = uniqueUser();
        const tenant = `acme-${user}`;
        const { token } = await svc.create({ user_id: user, tenant_id: tenant });
        assert.deepEqual(await raw.call('SMEMBERS', `tenant_id:${tenant}`), [token]);
        assert.equal(await raw.call('EXISTS', `user_id:${user}`), 0);

        assert.deepEqual(await svc.removeIndex('tenant_id'), []);
        await assert.rejects(svc.addIndex(''), TypeError);
        await assert.rejects(svc.addIndex('a,b'), TypeError);
      } finally {
        await raw.call('CONFIG', 'SET', 'session.indexes', '');
      }
    });

    it('destroy ends one session and takes it out of its index', async () => {
      const svc = service();
      await svc.addIndex('user_id');
      try {
        const user = uniqueUser();
        const a = await svc.create({ user_id: user, device: 'laptop' });
        const b = await svc.create({ user_id: user, device: 'phone' });
        assert.equal(await svc.destroy(a.token), true);
        assert.equal(await svc.validate(a.token), null);
        assert.equal(await svc.destroy(a.token), false);
        assert.deepEqual(await raw.call('SMEMBERS', `user_id:${user}`), [b.token]);
        assert.equal((await svc.validate(b.token)).device, 'phone');
      } finally {
        await svc.removeIndex('user_id');
      }
    });

    it('list and revokeIndex: log out everywhere, or on every other device', async () => {
      const svc = service();
      await svc.addIndex('user_id');
      try {
        const user = uniqueUser();
        const other = await svc.create({ user_id: user + 1 });
        const created = [];
        for (const device of ['laptop', 'phone', 'tablet']) {
          created.push(await svc.create({ user_id: user, device }));
        }
        const listed = await svc.list('user_id', user);
        const byToken = (x, y) => (x.token < y.token ? -1 : 1);
        // Each element is CREATE's reply with the session's identifier (the token's SHA-256).
        for (const s of listed) {
          assert.equal(s.sessionId, crypto.createHash('sha256').update(s.token).digest('hex'));
        }
        const withoutIds = listed.map(({ sessionId, ...rest }) => rest);
        assert.deepEqual(withoutIds.sort(byToken), [...created].sort(byToken));

        // Every other device: the current session stays.
        const current = created[0].token;
        assert.equal(await svc.revokeIndex('user_id', user, current), 2);
        assert.deepEqual((await svc.list('user_id', user)).map((s) => s.token), [current]);
        assert.equal(await svc.validate(created[1].token), null);

        // Everywhere.
        assert.equal(await svc.revokeIndex('user_id', String(user)), 1);
        assert.equal(await svc.validate(current), null);
        assert.deepEqual(await svc.list('user_id', user), []);
        assert.equal(await raw.call('EXISTS', `user_id:${user}`), 0);
        assert.notEqual(await svc.validate(other.token), null, "another user's session stays");
        assert.equal(await svc.revokeIndex('user_id', user), 0);
      } finally {
        await svc.removeIndex('user_id');
      }
    });

    it('the index holds no stale tokens: an expired session leaves list()', async () => {
      const svc = service();
      await svc.addIndex('user_id');
      try {
        const user = uniqueUser();
        const gone = await svc.create({ user_id: user });
        const kept = await svc.create({ user_id: user });
        await raw.call('DEL', gone.token); // as if it had expired
        assert.deepEqual((await svc.list('user_id', user)).map((s) => s.token), [kept.token]);
        assert.deepEqual(await raw.call('SMEMBERS', `user_id:${user}`), [kept.token]);
      } finally {
        await svc.removeIndex('user_id');
      }
    });

    it('update merges a patch and moves the session between indexes', async () => {
      const svc = service({ token_TTL: 300 });
      await svc.addIndex('user_id');
      try {
        const user = uniqueUser();
        const s = await svc.create({ user_id: user, theme: 'dark', cart: { items: 1 } });
        const updated = await svc.update(s.token, { theme: null, cart: { coupon: 'X' }, user_id: user + 7 });
        assert.deepEqual(updated, {
          user_id: user + 7,
          cart: { items: 1, coupon: 'X' },
          createdAt: s.createdAt,
        });
        assert.deepEqual(await svc.validate(s.token), updated);
        assert.equal(await raw.call('EXISTS', `user_id:${user}`), 0);
        assert.deepEqual(await raw.call('SMEMBERS', `user_id:${user + 7}`), [s.token]);
        await assert.rejects(svc.update(s.token, { token: 'x' }), /reserved property 'token'/);
      } finally {
        await svc.removeIndex('user_id');
      }
    });

    it('get reads a session without prolonging it', async () => {
      const svc = service({ token_TTL: 600 });
      const s = await svc.create({ user_id: uniqueUser() });
      await raw.call('PEXPIRE', s.token, '50000');
      assert.equal((await svc.get(s.token)).user_id, s.user_id);
      assert.ok(Number(await raw.call('PTTL', s.token)) <= 50000);
    });

    it('calls not awaited take effect in call order: addIndex, create, then the index set', async () => {
      await raw.call('CONFIG', 'SET', 'session.indexes', '');
      try {
        const svc = service();
        const user = uniqueUser();
        // As with the original library, where addIndex was synchronous: nothing awaited.
        const added = svc.addIndex('user_id');
        const created = svc.create({ user_id: user, foo: 'bar' });
        const listed = svc.list('user_id', user);
        const removed = svc.removeIndex('user_id');
        const unindexed = svc.create({ user_id: user, foo: 'after' });
        const refused = svc.list('user_id', user);
        const { token } = await created;
        assert.deepEqual(await added, ['user_id']);
        assert.deepEqual(await raw.call('SMEMBERS', `user_id:${user}`), [token]);
        assert.deepEqual((await listed).map((s) => s.token), [token]);
        assert.deepEqual(await removed, []);
        await unindexed;
        await assert.rejects(refused, /not a configured index/);
        assert.deepEqual(await raw.call('SMEMBERS', `user_id:${user}`), [token], 'created after removeIndex: not indexed');
      } finally {
        await raw.call('CONFIG', 'SET', 'session.indexes', '');
      }
    });

    it('token_bytes_length applies before the calls made after init(), not awaited', async () => {
      await raw.call('CONFIG', 'SET', 'session.token-bytes', '24');
      try {
        const svc = service({ token_bytes_length: 20 });
        const sessionsMade = [svc.create({ user_id: uniqueUser() }), svc.create({ user_id: uniqueUser() })];
        const other = service({ token_bytes_length: 32 });
        const longer = other.create({ user_id: uniqueUser() });
        const again = svc.create({ user_id: uniqueUser() }); // svc applied its setting already
        for (const p of sessionsMade) assert.equal((await p).token.length, 40);
        assert.equal((await longer).token.length, 64);
        assert.equal((await again).token.length, 64, 'token-bytes is the server setting, last set to 32');
      } finally {
        await raw.call('CONFIG', 'SET', 'session.token-bytes', '24');
      }
    });

    it('rotate gives the session a new token; with a grace period the old one still reads', async () => {
      const svc = service();
      await svc.addIndex('user_id');
      try {
        const user = uniqueUser();
        const s = await svc.create({ user_id: user, role: 'user' });
        const rotated = await svc.rotate(s.token);
        assert.match(rotated.token, HEX_TOKEN);
        assert.notEqual(rotated.token, s.token);
        assert.deepEqual(rotated, { ...s, token: rotated.token });
        assert.equal(await svc.validate(s.token), null, 'without grace the old token ends at once');
        assert.deepEqual(await raw.call('SMEMBERS', `user_id:${user}`), [rotated.token]);

        const graced = await svc.rotate(rotated.token, 30);
        assert.equal((await svc.validate(rotated.token)).role, 'user', 'the old token reads during the grace period');
        assert.equal(await svc.update(rotated.token, { role: 'admin' }), null, 'read-only');
        const pttl = Number(await raw.call('PTTL', rotated.token));
        assert.ok(pttl > 0 && pttl <= 30000, `grace PTTL ${pttl}`);
        assert.equal((await svc.validate(graced.token)).role, 'user');

        const viaCallback = await new Promise((resolve, reject) => {
          svc.rotate(graced.token, (err, r) => (err ? reject(err) : resolve(r)));
        });
        assert.equal(viaCallback.user_id, user);
        assert.equal(await svc.rotate('0123456789abcdef0123456789abcdef'), null);
        assert.equal(await svc.rotate(undefined), null);
        await assert.rejects(svc.rotate(viaCallback.token, 301), RangeError);
        await assert.rejects(svc.rotate(viaCallback.token, 1.5), RangeError);
      } finally {
        await svc.removeIndex('user_id');
      }
    });

    it('create with maxSessions ends the sessions nearest their end, or fails with deny', async () => {
      const svc = service();
      await svc.addIndex('user_id');
      try {
        const user = uniqueUser();
        const made = [];
        for (const ttl of [1000, 2000, 3000]) {
          made.push(await service({ token_TTL: ttl }).create({ user_id: user, ttl }));
        }
        await assert.rejects(
          svc.create({ user_id: user, device: 'd4' }, { maxSessions: 3, deny: true }),
          /MAXSESSIONS 3 DENY/,
        );
        assert.equal(await raw.call('SCARD', `user_id:${user}`), 3, 'deny writes nothing');
        const fourth = await svc.create({ user_id: user, device: 'd4' }, { maxSessions: 3 });
        assert.equal(fourth.device, 'd4');
        assert.equal(await svc.validate(made[0].token), null, 'the session with the least time left ended');
        assert.notEqual(await svc.validate(made[1].token), null);
        const tokens = (await svc.list('user_id', user)).map((s) => s.token).sort();
        assert.deepEqual(tokens, [made[1].token, made[2].token, fourth.token].sort());
        const only = await svc.create({ user_id: user }, { maxSessions: 1 });
        assert.deepEqual((await svc.list('user_id', user)).map((s) => s.token), [only.token]);

        await assert.rejects(svc.create({ device: 'x' }, { maxSessions: 2 }), /MAXSESSIONS/, 'no index value');
        await assert.rejects(svc.create({ user_id: user }, { maxSessions: 0 }), RangeError);
        await assert.rejects(svc.create({ user_id: user }, { deny: true }), TypeError);
        await assert.rejects(svc.create({ user_id: user }, 'three'), TypeError);
      } finally {
        await svc.removeIndex('user_id');
      }
    });

    it('revokeId ends one listed session by its sessionId; with token-hash sha256 list shows no token', async () => {
      const svc = service();
      await svc.addIndex('user_id');
      try {
        const user = uniqueUser();
        const laptop = await svc.create({ user_id: user, device: 'laptop' });
        const phone = await svc.create({ user_id: user, device: 'phone' });
        const listed = await svc.list('user_id', user);
        const phoneId = listed.find((s) => s.device === 'phone').sessionId;
        assert.equal(phoneId, sessions.sessionId(phone.token));
        assert.equal(await svc.revokeId('user_id', user, phone.token), false, 'a token is no identifier');
        assert.equal(await svc.revokeId('user_id', user + 1, phoneId), false, 'scoped to the index');
        assert.equal(await svc.revokeId('user_id', user, phoneId), true);
        assert.equal(await svc.validate(phone.token), null);
        assert.notEqual(await svc.validate(laptop.token), null);
        assert.equal(await svc.revokeId('user_id', user, phoneId), false);
        assert.equal(await svc.revokeId('user_id', user, ''), false);
        await assert.rejects(svc.revokeId('no_such_index', user, phoneId), /not a configured index/);

        await raw.call('CONFIG', 'SET', 'session.token-hash', 'sha256');
        try {
          const tablet = await svc.create({ user_id: user, device: 'tablet' });
          const hashed = await svc.list('user_id', user);
          assert.equal(hashed.length, 2);
          for (const s of hashed) assert.equal('token' in s, false, 'no token with token-hash sha256');
          const ids = hashed.map((s) => s.sessionId).sort();
          assert.deepEqual(ids, [sessions.sessionId(laptop.token), sessions.sessionId(tablet.token)].sort());
          assert.equal(await svc.revokeId('user_id', String(user), sessions.sessionId(tablet.token)), true);
          assert.equal(await svc.validate(tablet.token), null);
        } finally {
          await raw.call('CONFIG', 'SET', 'session.token-hash', 'none');
        }
      } finally {
        await svc.removeIndex('user_id');
      }
    });
  });
}

module.exports = { defineSuite };
