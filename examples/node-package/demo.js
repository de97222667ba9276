'use strict';
// Login, validate, list, log out everywhere: redis-session from Node.js with its package,
// redis-session-client (clients/node in this repository: the ca-session-service API), on
// node-redis (the `redis` package). package.json installs the package from its directory
// (`file:../../clients/node`).
//
// Needs a redis-server with the module loaded and `user_id` as an index:
//   redis-server --loadmodule ./target/release/libredis_session.so indexes user_id
// Run:  npm ci && REDIS_PORT=6379 node demo.js   (exits non-zero if anything is unexpected)
//
// On a Redis Cluster (the module on every node), give it the port of one node instead:
//   REDIS_CLUSTER_PORT=7000 node demo.js
// The service is then given node-redis's cluster client (createCluster), and nothing else
// changes: it sends every call to the node of its key (create with
// `ROUTE user_id:{<value>}`, which it works out from the module's `indexes` setting).

const { createClient, createCluster } = require('redis');
const sessions = require('redis-session-client');

function check(condition, what) {
  if (!condition) throw new Error(`FAILED: ${what}`);
}

async function main(sessionService, cluster) {
  const userId = Math.floor(Math.random() * 1e9); // one no other run is using

  // Login, twice: a laptop and a phone. Each is the data plus its token and createdAt.
  const laptop = await sessionService.create({ user_id: userId, device: 'laptop', roles: ['admin'] });
  const phone = await sessionService.create({ user_id: userId, device: 'phone' });
  console.log(`login:    user ${userId} on the laptop -> token ${laptop.token.slice(0, 16)}...`);
  console.log(`login:    user ${userId} on the phone  -> token ${phone.token.slice(0, 16)}...`);
  if (cluster) {
    // The token starts with the slot tag of the user's slot: both are in that slot.
    const slot = sessions.keySlot(`user_id:{${userId}}`);
    check(laptop.token.startsWith('{'), 'a cluster token starts with its slot tag');
    check(sessions.keySlot(laptop.token) === slot && sessions.keySlot(phone.token) === slot, "both tokens are in the user's slot");
    console.log(`cluster:  both sessions in slot ${slot}`);
  }

  // Validate: every request does this; the data (prolonged), or null when not logged in.
  const data = await sessionService.validate(laptop.token);
  console.log('validate:', JSON.stringify(data));
  check(data !== null, 'a fresh token validates');
  check(data.user_id === userId && data.roles[0] === 'admin', 'validate returns the data, types intact');
  check(!('token' in data) && 'createdAt' in data, 'validate returns the data without the token');

  // List: every live session of the user, each with its sessionId (not a secret: it names
  // the session for revokeId, an "active devices" page).
  const listed = await sessionService.list('user_id', userId);
  for (const s of [...listed].sort((a, b) => a.device.localeCompare(b.device))) {
    console.log(`list:     ${s.device.padEnd(6)}  sessionId ${s.sessionId.slice(0, 16)}...`);
  }
  check(
    JSON.stringify(listed.map((s) => s.token).sort()) === JSON.stringify([laptop.token, phone.token].sort()),
    'list shows both sessions',
  );
  check(
    JSON.stringify(listed.map((s) => s.sessionId).sort()) ===
      JSON.stringify([laptop, phone].map((s) => sessions.sessionId(s.token)).sort()),
    'each listed sessionId is the one sessionId(token) computes',
  );

  // Log out everywhere.
  const revoked = await sessionService.revokeIndex('user_id', userId);
  console.log(`revoke:   ${revoked} sessions ended`);
  check(revoked === 2, 'log out everywhere ends both sessions');

  // The tokens are now invalid.
  const after = await sessionService.validate(laptop.token);
  console.log(`validate: ${after} (the token is no longer valid)`);
  check(after === null, 'a revoked token validates to null');
  check((await sessionService.validate(phone.token)) === null, 'the other device is logged out too');
  check((await sessionService.list('user_id', userId)).length === 0, 'the user has no sessions left');

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
  console.log(
    clusterPort
      ? `mode:     cluster, through 127.0.0.1:${port} (redis-session-client on createCluster)`
      : `mode:     standalone, 127.0.0.1:${port} (redis-session-client on createClient)`,
  );
  client.on('error', () => {}); // connect() and each command report their own errors
  let failed = false;
  try {
    await client.connect();
    await main(sessions.init({ redis_client: client }), Boolean(clusterPort));
  } catch (err) {
    console.error(err.message.startsWith('FAILED') ? err.message : `FAILED: ${err.stack}`);
    failed = true;
  } finally {
    if (clusterPort) await client.close();
    else if (client.isOpen) client.destroy();
  }
  process.exitCode = failed ? 1 : 0;
})();
