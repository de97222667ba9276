'use strict';
// ioredis: `client.call(name, ...args)`.
const { defineSuite } = require('./support/suite');
const Redis = require('ioredis');

defineSuite(`ioredis ${require('ioredis/package.json').version}`, {
  async connect({ port, host }) {
    const client = new Redis(port, host, { maxRetriesPerRequest: 1 });
    client.on('error', (err) => console.error('ioredis client:', err.message));
    return client;
  },
  close: async (client) => client.disconnect(),
});
