'use strict';
// Login, validate, list, log out everywhere: redis-session from Node.js with node-redis
// (the `redis` package, v4 or later: `sendCommand([...])` returns a promise).
//
// Needs a redis-server with the module loaded and `user_id` as an index:
//   redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
// Run:  npm ci && REDIS_PORT=6379 node demo.js   (exits non-zero if anything is unexpected)
//
// On a Redis Cluster (the module on every node), give it the port of one node instead:
//   REDIS_CLUSTER_PORT=7000 node demo.js
// It then talks through createCluster, whose `sendCommand(firstKey, isReadonly, args)` sends
// each command to the node of the key it is given: the token for VALIDATE, the value for LIST
// and REVOKEINDEX, and for CREATE its `ROUTE user_id:{<value>}` key.

const { createClient, createCluster } = require('redis');

function check(condition, what) {
  if (!condition) throw new Error(`FAILED: ${what}`);
}

/**
 * One function for both modes: send(routeKey, args). A plain client ignores routeKey; the
 * cluster client sends the command to the node serving routeKey's slot (isReadonly false:
 * to the primary).
 */
function sender(client, cluster) {
  return cluster
    ? (routeKey, args) => client.sendCommand(routeKey, false, args)
    : (routeKey, args) => client.sendCommand(args);
}

async function main(send, cluster) {
  const userId = Math.floor(Math.random() * 1e9); // one no other run is using
  const value = String(userId); // every argument must be a string
  // On a cluster, CREATE names the key it is routed by: the user's index key, whose hash tag
  // {<user_id>} puts the session in that user's slot. Elsewhere it is accepted and unused.
  const routeKey = `user_id:{${userId}}`;
  const route = cluster ? ['ROUTE', routeKey] : [];

  // Login, twice: a laptop and a phone. The reply is the data plus token and createdAt.
  const laptop = JSON.parse(
    await send(routeKey, ['SESSION.CREATE', JSON.stringify({ user_id: userId, device: 'laptop', roles: ['admin'] }), ...route]),
  );
  const phone = JSON.parse(
    await send(routeKey, ['SESSION.CREATE', JSON.stringify({ user_id: userId, device: 'phone' }), 'TTL', '600', ...route]),
  );
  console.log(`login:    user ${userId} on the laptop -> token ${laptop.token.slice(0, 16)}...`);
  console.log(`login:    user ${userId} on the phone  -> token ${phone.token.slice(0, 16)}...`);
  if (cluster) {
    // The token starts with the slot tag of the user's slot: cluster clients route by it.
    check(/^\{[0-9A-Za-z]+\}[0-9a-f]+$/.test(laptop.token), 'a cluster token starts with its slot tag');
  }

  // Validate: every request does this; it returns the data and prolongs the session.
  const data = JSON.parse(await send(laptop.token, ['SESSION.VALIDATE', laptop.token]));
  console.log('validate:', JSON.stringify(data));
  check(data.user_id === userId && data.roles[0] === 'admin', 'validate returns the data, types intact');
  check(!('token' in data) && 'createdAt' in data, 'validate returns the data without the token');

  // List: every live session of the user, each with its token and its sessionId.
  const sessions = (await send(value, ['SESSION.LIST', 'user_id', value])).map((s) => JSON.parse(s));
  for (const s of [...sessions].sort((a, b) => a.device.localeCompare(b.device))) {
    console.log(`list:     ${s.device.padEnd(6)}  sessionId ${s.sessionId.slice(0, 16)}...`);
  }
  check(
    JSON.stringify(sessions.map((s) => s.token).sort()) === JSON.stringify([laptop.token, phone.token].sort()),
    'list shows both sessions',
  );
  check(sessions.every((s) => s.sessionId && s.sessionId !== s.token), 'each listed session has its sessionId');

  // Log out everywhere.
  const revoked = await send(value, ['SESSION.REVOKEINDEX', 'user_id', value]);
  console.log(`revoke:   ${revoked} sessions ended`);
  check(revoked === 2, 'log out everywhere ends both sessions');

  // The tokens are now invalid.
  const after = await send(laptop.token, ['SESSION.VALIDATE', laptop.token]);
  console.log(`validate: ${after} (the token is no longer valid)`);
  check(after === null, 'a revoked token validates to nil');
  check((await send(phone.token, ['SESSION.VALIDATE', phone.token])) === null, 'the other device is logged out too');
  check((await send(value, ['SESSION.LIST', 'user_id', value])).length === 0, 'the user has no sessions left');

  console.log('ok');
}

(async () => {
  const clusterPort = process.env.REDIS_CLUSTER_PORT;
  const port = Number(clusterPort || process.env.REDIS_PORT || 6379);
  // No reconnecting and a connect timeout: a demo should fail fast, not wait for a server.
  const socket = { host: '127.0.0.1', port, connectTimeout: 5000, reconnectStrategy: false };
  const client = clusterPort
    ? createCluster({ rootNodes: [{ socket }], defaults: { socket: { connectTimeout: 5000, reconnectStrategy: false } } })
    : createClient({ socket });
  console.log(clusterPort ? `mode:     cluster, through 127.0.0.1:${port} (createCluster)` : `mode:     standalone, 127.0.0.1:${port}`);
  client.on('error', () => {}); // connect() and each command report their own errors
  let failed = false;
  try {
    await client.connect();
    await main(sender(client, Boolean(clusterPort)), Boolean(clusterPort));
  } catch (err) {
    console.error(err.message.startsWith('FAILED') ? err.message : `FAILED: ${err.stack}`);
    failed = true;
  } finally {
    if (clusterPort) await client.close();
    else if (client.isOpen) client.destroy();
  }
  process.exitCode = failed ? 1 : 0;
})();
