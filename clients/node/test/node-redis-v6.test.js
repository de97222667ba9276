'use strict';
// node-redis v6 (the newest major; it needs Node.js 20, so on older Node this file is skipped).
const { describe, it } = require('node:test');
const { defineSuite } = require('./support/suite');

const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  describe('redis-session-client with node-redis 6', () => {
    it('needs Node.js 20 or later', { skip: `Node.js ${process.versions.node}` }, () => {});
  });
} else {
  const { createClient } = require('redis6');
  defineSuite(`node-redis ${require('redis6/package.json').version}`, {
    async connect({ port, host }) {
      const client = createClient({ socket: { port, host, reconnectStrategy: false } });
      client.on('error', (err) => console.error('redis6 client:', err.message));
      await client.connect();
      return client;
    },
    close: (client) => client.destroy(),
  });
}
