'use strict';
// Login, validate, list, log out everywhere: redis-session from Node.js with ioredis
// (`client.call(name, ...args)` sends any command and returns a promise).
//
// Needs a redis-server with the module loaded and `user_id` as an index:
//   redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
// Run:  npm ci && REDIS_PORT=6379 node demo.js   (exits non-zero if anything is unexpected)

const Redis = require('ioredis');

function check(condition, what) {
  if (!condition) throw new Error(`FAILED: ${what}`);
}

async function main(redis) {
  const userId = Math.floor(Math.random() * 1e9); // one no other run is using

  // Login, twice: a laptop and a phone. The reply is the data plus token and createdAt.
  const laptop = JSON.parse(
    await redis.call('SESSION.CREATE', JSON.stringify({ user_id: userId, device: 'laptop', roles: ['admin'] })),
  );
  const phone = JSON.parse(
    await redis.call('SESSION.CREATE', JSON.stringify({ user_id: userId, device: 'phone' }), 'TTL', 600),
  );
  console.log(`login:    user ${userId} on the laptop -> token ${laptop.token.slice(0, 12)}...`);
  console.log(`login:    user ${userId} on the phone  -> token ${phone.token.slice(0, 12)}...`);

  // Validate: every request does this; it returns the data and prolongs the session.
  const data = JSON.parse(await redis.call('SESSION.VALIDATE', laptop.token));
  console.log('validate:', JSON.stringify(data));
  check(data.user_id === userId && data.roles[0] === 'admin', 'validate returns the data, types intact');
  check(!('token' in data) && 'createdAt' in data, 'validate returns the data without the token');

  // List: every live session of the user.
  const sessions = (await redis.call('SESSION.LIST', 'user_id', userId)).map((s) => JSON.parse(s));
  console.log('list:    ', sessions.map((s) => s.device).sort());
  check(
    JSON.stringify(sessions.map((s) => s.token).sort()) === JSON.stringify([laptop.token, phone.token].sort()),
    'list shows both sessions',
  );

  // Log out everywhere.
  const revoked = await redis.call('SESSION.REVOKEINDEX', 'user_id', userId);
  console.log(`revoke:   ${revoked} sessions ended`);
  check(revoked === 2, 'log out everywhere ends both sessions');

  // The tokens are now invalid.
  const after = await redis.call('SESSION.VALIDATE', laptop.token);
  console.log(`validate: ${after} (the token is no longer valid)`);
  check(after === null, 'a revoked token validates to nil');
  check((await redis.call('SESSION.LIST', 'user_id', userId)).length === 0, 'the user has no sessions left');

  console.log('ok');
}

(async () => {
  const port = Number(process.env.REDIS_PORT || 6379);
  // No retrying: a demo should fail fast, not wait for a server.
  const redis = new Redis(port, '127.0.0.1', {
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  redis.on('error', () => {}); // connect() and each command report their own errors
  let failed = false;
  try {
    await redis.connect();
    await main(redis);
  } catch (err) {
    console.error(err.message.startsWith('FAILED') ? err.message : `FAILED: ${err.stack}`);
    failed = true;
  } finally {
    redis.disconnect();
  }
  process.exitCode = failed ? 1 : 0;
})();
