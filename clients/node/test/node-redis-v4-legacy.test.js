'use strict';
// node-redis v4 in legacy mode (`legacyMode: true`, callback API outside, promises under .v4),
// the usual stepping stone for code written against v3.
const { defineSuite } = require('./support/suite');
const { createClient } = require('redis4');

defineSuite(`node-redis ${require('redis4/package.json').version} (legacyMode)`, {
  async connect({ port, host }) {
    const client = createClient({ legacyMode: true, socket: { port, host, reconnectStrategy: false } });
    client.on('error', (err) => console.error('redis4 legacy client:', err.message));
    await client.connect();
    return client;
  },
  close: (client) => client.disconnect(),
});
