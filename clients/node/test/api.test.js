'use strict';
// The package without a server: which client API it picks, getService(), the callback
// contract, argument checks. Fake clients record what they were asked to send.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');

const sessions = require('..');

test('getService() is null before init()', () => {
  assert.equal(sessions.getService(), null);
});

/** A fake for each client API: each records [name, ...args] and replies `reply(name)`. */
function fakes(replyTo) {
  const sent = [];
  const reply = (name) => replyTo(name);
  return {
    sent,
    'node-redis v2/v3 (send_command)': {
      send_command(name, args, cb) {
        sent.push([name, ...args]);
        setImmediate(cb, null, reply(name));
      },
    },
    'node-redis v4+ (sendCommand)': {
      sendCommand(args) {
        sent.push(args);
        return Promise.resolve(reply(args[0]));
      },
    },
    'node-redis v4 legacyMode (.v4.sendCommand)': {
      sendCommand() {
        throw new Error('the legacy-mode sendCommand must not be used');
      },
      v4: {
        sendCommand(args) {
          sent.push(args);
          return Promise.resolve(reply(args[0]));
        },
      },
    },
    'ioredis (call)': {
      call(name, ...args) {
        sent.push([name, ...args]);
        return Promise.resolve(reply(name));
      },
      send_command() {
        throw new Error("ioredis's send_command takes a Command object: it must not be used");
      },
      sendCommand() {
        throw new Error("ioredis's sendCommand takes a Command object: it must not be used");
      },
    },
  };
}

for (const kind of Object.keys(fakes(() => null)).filter((k) => k !== 'sent')) {
  test(`${kind}: commands go through the right method, all arguments strings`, async () => {
    const f = fakes(
      (name) =>
        ({
          'SESSION.CREATE': '{"token":"ab","user_id":150,"createdAt":"2015-10-25 20:14:10"}',
          'SESSION.REVOKEINDEX': 2,
          'SESSION.LIST': ['{"token":"cd","admin":true}'],
        })[name],
    );
    const svc = sessions.init({ redis_client: f[kind], token_TTL: 60 });
    assert.deepEqual(await svc.create({ user_id: 150 }), {
      token: 'ab',
      user_id: 150,
      createdAt: '2015-10-25 20:14:10',
    });
    assert.deepEqual(f.sent, [['SESSION.CREATE', '{"user_id":150}', 'TTL', '60']]);
    f.sent.length = 0;
    assert.equal(await svc.revokeIndex('user_id', 150, 'cd'), 2);
    assert.deepEqual(await svc.list('admin', true), [{ token: 'cd', admin: true }]);
    assert.deepEqual(f.sent, [
      ['SESSION.REVOKEINDEX', 'user_id', '150', 'EXCEPT', 'cd'],
      ['SESSION.LIST', 'admin', 'true'],
    ]);
  });
}

test('a Buffer reply is read as UTF-8 JSON', async () => {
  const client = { sendCommand: async () => Buffer.from('{"name":"Zoë"}') };
  assert.deepEqual(await sessions.init({ redis_client: client }).validate('ab'), { name: 'Zoë' });
});

test('token_bytes_length is set before the first command, once, and retried after a failure', async () => {
  const sent = [];
  let failConfig = true;
  const client = {
    async sendCommand(args) {
      sent.push(args.join(' '));
      if (args[0] === 'CONFIG' && args[1] === 'GET') {
        if (failConfig) {
          failConfig = false;
          throw new Error('ERR unknown command');
        }
        return ['session.token-bytes', '24'];
      }
      return args[0] === 'CONFIG' ? 'OK' : null;
    },
  };
  const svc = sessions.init({ redis_client: client, token_bytes_length: 32 });
  assert.deepEqual(sent, [], 'init() sends nothing: a node-redis v4+ client may not be connected yet');
  await assert.rejects(svc.validate('ab'), /unknown command/);
  assert.equal(await svc.validate('ab'), null);
  assert.equal(await svc.validate('cd'), null);
  assert.deepEqual(sent, [
    'CONFIG GET session.token-bytes',
    'CONFIG GET session.token-bytes',
    'CONFIG SET session.token-bytes 32',
    'SESSION.VALIDATE ab',
    'SESSION.VALIDATE cd',
  ]);
});

test('a callback is called on a later tick, so that what it throws is not swallowed', () => {
  // In a child process: the test runner would catch the uncaught exception itself.
  const script = `
    const svc = require(${JSON.stringify(require.resolve('..'))})
      .init({ redis_client: { sendCommand: async () => null } });
    process.on('unhandledRejection', () => { console.log('swallowed as a rejection'); process.exit(3); });
    svc.validate('ab', () => { throw new Error('from the callback'); });
  `;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 });
  assert.equal(child.status, 1, child.stdout + child.stderr);
  assert.match(child.stderr, /from the callback/);
});

test('init() refuses what is not a Redis client', () => {
  assert.throws(() => sessions.init(), TypeError);
  assert.throws(() => sessions.init({ redis_client: 'localhost:6379' }), TypeError);
  assert.throws(() => sessions.init({ redis_client: { get() {} } }), /send_command, sendCommand or call/);
});
