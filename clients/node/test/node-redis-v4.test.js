'use strict';
// node-redis v4: promise API after `await client.connect()`.
const { defineSuite } = require('./support/suite');
const { createClient } = require('redis4');

defineSuite(`node-redis ${require('redis4/package.json').version}`, {
  async connect({ port, host }) {
    const client = createClient({ socket: { port, host, reconnectStrategy: false } });
    client.on('error', (err) => console.error('redis4 client:', err.message));
    await client.connect();
    return client;
  },
  close: (client) => client.disconnect(),
});
