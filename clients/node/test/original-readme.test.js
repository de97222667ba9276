'use strict';
// The original library's documented usage (ca-session-service's README, in
// /work/shared/seed/ of the project), replayed as it shows it: node-redis v2/v3's
// `new redis.createClient(PORT, HOST)`, init with token_TTL and token_bytes_length,
// addIndex('user_id') called and not awaited (it was synchronous in the original), create
// with a callback, validate with a callback and as a promise, then the index set read with
// SMEMBERS from the same client, and the user's tokens deleted from the database.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const Redis = require('ioredis');
const { startServer } = require('./support/server');

let server;
let admin;

before(async () => {
  // A server without indexes and with another token length: addIndex and
  // token_bytes_length must both take effect, before the create that follows them.
  server = await startServer(['token-bytes', '16']);
  admin = new Redis(server.port, server.host);
});

after(async () => {
  if (admin) admin.disconnect();
  if (server) await server.stop();
});

for (const form of ['init({redis_client})', 'init({redis_client, token_TTL, token_bytes_length})']) {
test(`ca-session-service's README, call for call, nothing awaited: ${form}`, async () => {
  await Promise.all([
    admin.call('FLUSHALL'),
    admin.call('CONFIG', 'SET', 'session.indexes', ''),
    admin.call('CONFIG', 'SET', 'session.token-bytes', '16'),
  ]);
  const overrides = form.includes('token_TTL');
  const PORT = server.port;
  const HOST = server.host;
  const seen = await new Promise((resolve, reject) => {
    const out = {};
    const fail = (err) => reject(err);
    /* eslint-disable no-var, new-cap */
    // --- as in the README, with require('ca-session-service') swapped for this package ---
    var redis = require('redis3');
    var CaSession = require('..');

    var sessionService = CaSession.init({
      redis_client: new redis.createClient(PORT, HOST),
    });
    out.first = sessionService;

    var redis_client = new redis.createClient(PORT, HOST);
    if (overrides) {
      // "You can override token's Time To Live and bytes lenght"
      sessionService = CaSession.init({
        redis_client: redis_client,
        token_TTL: 2 * 3600, // TTL in seconds, defaults to 2h
        token_bytes_length: 24, // Tokens bytes lenght, defaults to 24 bytes
      });
    } else {
      sessionService = CaSession.init({
        redis_client: redis_client,
      });
    }

    sessionService.addIndex('user_id');

    sessionService.create({ user_id: 150, foo: 'bar' }, function (err, session) {
      if (err) return fail(err);
      // {token: "GENERATED_TOKEN_VALUE", user_id: 150, foo: "bar", createdAt: "2015-10-25 20:14:10"}
      out.session = session;
      var TOKEN = session.token;

      sessionService.validate(TOKEN, function (err, session) {
        if (err) return fail(err);
        // {user_id: 150, foo: "bar", createdAt: "2015-10-25 20:14:10"}
        out.validated = session;

        sessionService.validate(TOKEN).then(function (session) {
          // {user_id: 150, foo: "bar", createdAt: "2015-10-25 20:14:10"}
          out.promised = session;

          // as defined in custom indexes, "user_id:150" key now contains all associated tokens
          redis_client.smembers('user_id:150', function (err, members) {
            if (err) return fail(err);
            // members contain all tokens
            out.members = members;
            out.client = redis_client;
            if (members.length === 0) return resolve(out); // (the assertions say what went wrong)
            // now you can delete all tokens from redis db associated with user
            redis_client.del(members, function (err, deleted) {
              if (err) return fail(err);
              out.deleted = deleted;
              sessionService.validate(TOKEN, function (err, session) {
                if (err) return fail(err);
                out.afterDelete = session;
                resolve(out);
              });
            });
          });
        }, fail);
      });
    });
    /* eslint-enable no-var, new-cap */
  });
  const CaSessionList = () => require('..').getService().list('user_id', 150);
  try {
    const { token, createdAt } = seen.session;
    const digits = overrides ? 48 : 32; // token_bytes_length 24, or the server's 16
    assert.match(token, new RegExp(`^[0-9a-f]{${digits}}$`));
    assert.match(createdAt, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    assert.deepEqual(seen.session, { token, user_id: 150, foo: 'bar', createdAt });
    assert.deepEqual(seen.validated, { user_id: 150, foo: 'bar', createdAt });
    assert.deepEqual(seen.promised, { user_id: 150, foo: 'bar', createdAt });
    assert.deepEqual(seen.members, [token], 'addIndex took effect before create');
    assert.equal(seen.deleted, 1);
    assert.equal(seen.afterDelete, null, 'DEL <token> ends the session');
    assert.equal(await admin.call('CONFIG', 'GET', 'session.token-bytes').then((r) => r[1]), overrides ? '24' : '16');
    assert.deepEqual(await CaSessionList(), [], 'list() skips and prunes the deleted tokens');
    assert.deepEqual(await admin.call('CONFIG', 'GET', 'session.indexes'), ['session.indexes', 'user_id']);
  } finally {
    await new Promise((resolve) => seen.client.quit(() => resolve()));
    await new Promise((resolve) => seen.first.redis_client.quit(() => resolve()));
  }
});
}
