'use strict';
// node-redis v5 (the `redis` devDependency): promise API after `await client.connect()`.
const { defineSuite } = require('./support/suite');
const { createClient } = require('redis');

defineSuite(`node-redis ${require('redis/package.json').version}`, {
  async connect({ port, host }) {
    const client = createClient({ socket: { port, host, reconnectStrategy: false } });
    client.on('error', (err) => console.error('redis5 client:', err.message));
    await client.connect();
    return client;
  },
  close: (client) => client.destroy(),
});
