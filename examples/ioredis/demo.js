'use strict';
// Login, validate, list, log out everywhere: redis-session from Node.js with ioredis
// (`client.call(name, ...args)` sends any command and returns a promise).
//
// Needs a redis-server with the module loaded and `user_id` as an index:
//   redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
// Run:  npm ci && REDIS_PORT=6379 node demo.js   (exits non-zero if anything is unexpected)
//
// On a Redis Cluster (the module on every node), give it the port of one node instead:
//   REDIS_CLUSTER_PORT=7000 node demo.js
// It then talks through ioredis's Cluster. ioredis routes by their keys only the commands its
// own command table knows, which SESSION.* are not: `call` sends one to some node, and when
// that node does not serve the key's slot it answers MOVED, which ioredis follows. The answer
// is the same, one round trip later. (redis-session-client, in clients/node, sends each call
// straight to its node: see examples/node-package/.) CREATE still needs its
// `ROUTE user_id:{<value>}`: the node checks the slot of that key, and MOVED names its node.

const Redis = require('ioredis');

function check(condition, what) {
  if (!condition) throw new Error(`FAILED: ${what}`);
}

async function main(redis, cluster) {
  const userId = Math.floor(Math.random() * 1e9); // one no other run is using
  // On a cluster, CREATE names the key it is routed by: the user's index key, whose hash tag
  // {<user_id>} puts the session in that user's slot. Elsewhere it is accepted and unused.
  const route = cluster ? ['ROUTE', `user_id:{${userId}}`] : [];

  // Login, twice: a laptop and a phone. The reply is the data plus token and createdAt.
  const laptop = JSON.parse(
    await redis.call('SESSION.CREATE', JSON.stringify({ user_id: userId, device: 'laptop', roles: ['admin'] }), ...route),
  );
  const phone = JSON.parse(
    await redis.call('SESSION.CREATE', JSON.stringify({ user_id: userId, device: 'phone' }), 'TTL', 600, ...route),
  );
  console.log(`login:    user ${userId} on the laptop -> token ${laptop.token.slice(0, 16)}...`);
  console.log(`login:    user ${userId} on the phone  -> token ${phone.token.slice(0, 16)}...`);
  if (cluster) {
    // The token starts with the slot tag of the user's slot: cluster clients route by it.
    check(/^\{[0-9A-Za-z]+\}[0-9a-f]+$/.test(laptop.token), 'a cluster token starts with its slot tag');
  }

  // Validate: every request does this; it returns the data and prolongs the session.
  const data = JSON.parse(await redis.call('SESSION.VALIDATE', laptop.token));
  console.log('validate:', JSON.stringify(data));
  check(data.user_id === userId && data.roles[0] === 'admin', 'validate returns the data, types intact');
  check(!('token' in data) && 'createdAt' in data, 'validate returns the data without the token');

  // List: every live session of the user, each with its token and its sessionId.
  const sessions = (await redis.call('SESSION.LIST', 'user_id', userId)).map((s) => JSON.parse(s));
  for (const s of [...sessions].sort((a, b) => a.device.localeCompare(b.device))) {
    console.log(`list:     ${s.device.padEnd(6)}  sessionId ${s.sessionId.slice(0, 16)}...`);
  }
  check(
    JSON.stringify(sessions.map((s) => s.token).sort()) === JSON.stringify([laptop.token, phone.token].sort()),
    'list shows both sessions',
  );
  check(sessions.every((s) => s.sessionId && s.sessionId !== s.token), 'each listed session has its sessionId');

  // Log out everywhere.
  const revoked = await redis.call('SESSION.REVOKEINDEX', 'user_id', userId);
  console.log(`revoke:   ${revoked} sessions ended`);
  check(revoked === 2, 'log out everywhere ends both sessions');

  // The tokens are now invalid.
  const after = await redis.call('SESSION.VALIDATE', laptop.token);
  console.log(`validate: ${after} (the token is no longer valid)`);
  check(after === null, 'a revoked token validates to nil');
  check((await redis.call('SESSION.VALIDATE', phone.token)) === null, 'the other device is logged out too');
  check((await redis.call('SESSION.LIST', 'user_id', userId)).length === 0, 'the user has no sessions left');

  console.log('ok');
}

(async () => {
  const clusterPort = process.env.REDIS_CLUSTER_PORT;
  const port = Number(clusterPort || process.env.REDIS_PORT || 6379);
  // No retrying: a demo should fail fast, not wait for a server.
  const options = { connectTimeout: 5000, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true };
  const redis = clusterPort
    ? new Redis.Cluster([{ host: '127.0.0.1', port }], {
        lazyConnect: true,
        clusterRetryStrategy: () => null,
        redisOptions: { connectTimeout: 5000, maxRetriesPerRequest: 0 },
      })
    : new Redis(port, '127.0.0.1', options);
  console.log(clusterPort ? `mode:     cluster, through 127.0.0.1:${port} (Redis.Cluster)` : `mode:     standalone, 127.0.0.1:${port}`);
  redis.on('error', () => {}); // connect() and each command report their own errors
  let failed = false;
  try {
    await redis.connect();
    await main(redis, Boolean(clusterPort));
  } catch (err) {
    console.error(err.message.startsWith('FAILED') ? err.message : `FAILED: ${err.stack}`);
    failed = true;
  } finally {
    redis.disconnect();
  }
  process.exitCode = failed ? 1 : 0;
})();
