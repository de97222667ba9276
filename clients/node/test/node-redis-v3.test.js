'use strict';
// node-redis v3, the client the original library's README shows: `new redis.createClient(PORT,
// HOST)`, callback API, commands queued until the connection is up.
const { defineSuite } = require('./support/suite');
const redis = require('redis3');

defineSuite(`node-redis ${require('redis3/package.json').version} (callback API)`, {
  async connect({ port, host }) {
    // eslint-disable-next-line new-cap
    const client = new redis.createClient(port, host);
    client.on('error', (err) => console.error('redis3 client:', err.message));
    return client;
  },
  close: (client) => new Promise((resolve) => client.quit(() => resolve())),
});
