'use strict';
// Login, validate, list, log out everywhere: redis-session from Node.js with node-redis
// (the `redis` package, v4 or later: `sendCommand([...])` returns a promise).
//
// Needs a redis-server with the module loaded and `user_id` as an index:
//   redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
// Run:  npm ci && REDIS_PORT=6379 node demo.js   (exits non-zero if anything is unexpected)

const { createClient } = require('redis');

function check(condition, what) {
  if (!condition) throw new Error(`FAILED: ${what}`);
}

async function main(client) {
  const userId = Math.floor(Math.random() * 1e9); // one no other run is using

  // Login, twice: a laptop and a phone. The reply is the data plus token and createdAt.
  const laptop = JSON.parse(
    await client.sendCommand(['SESSION.CREATE', JSON.stringify({ user_id: userId, device: 'laptop', roles: ['admin'] })]),
  );
  const phone = JSON.parse(
    await client.sendCommand(['SESSION.CREATE', JSON.stringify({ user_id: userId, device: 'phone' }), 'TTL', '600']),
  );
  console.log(`login:    user ${userId} on the laptop -> token ${laptop.token.slice(0, 12)}...`);
  console.log(`login:    user ${userId} on the phone  -> token ${phone.token.slice(0, 12)}...`);

  // Validate: every request does this; it returns the data and prolongs the session.
  const data = JSON.parse(await client.sendCommand(['SESSION.VALIDATE', laptop.token]));
  console.log('validate:', JSON.stringify(data));
  check(data.user_id === userId && data.roles[0] === 'admin', 'validate returns the data, types intact');
  check(!('token' in data) && 'createdAt' in data, 'validate returns the data without the token');

  // List: every live session of the user.
  const sessions = (await client.sendCommand(['SESSION.LIST', 'user_id', String(userId)])).map((s) => JSON.parse(s));
  console.log('list:    ', sessions.map((s) => s.device).sort());
  check(
    JSON.stringify(sessions.map((s) => s.token).sort()) === JSON.stringify([laptop.token, phone.token].sort()),
    'list shows both sessions',
  );

  // Log out everywhere.
  const revoked = await client.sendCommand(['SESSION.REVOKEINDEX', 'user_id', String(userId)]);
  console.log(`revoke:   ${revoked} sessions ended`);
  check(revoked === 2, 'log out everywhere ends both sessions');

  // The tokens are now invalid.
  const after = await client.sendCommand(['SESSION.VALIDATE', laptop.token]);
  console.log(`validate: ${after} (the token is no longer valid)`);
  check(after === null, 'a revoked token validates to nil');
  check((await client.sendCommand(['SESSION.LIST', 'user_id', String(userId)])).length === 0, 'the user has no sessions left');

  console.log('ok');
}

(async () => {
  const port = Number(process.env.REDIS_PORT || 6379);
  // No reconnecting and a connect timeout: a demo should fail fast, not wait for a server.
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 5000, reconnectStrategy: false } });
  client.on('error', () => {}); // connect() and each command report their own errors
  let failed = false;
  try {
    await client.connect();
    await main(client);
  } catch (err) {
    console.error(err.message.startsWith('FAILED') ? err.message : `FAILED: ${err.stack}`);
    failed = true;
  } finally {
    if (client.isOpen) client.destroy();
  }
  process.exitCode = failed ? 1 : 0;
})();
