'use strict';
// The snippet of README.md marked as run by this test works as printed: it is run as it is
// (in an async function, for its top-level await) against a fresh server with the module,
// `require('redis-session-client')` resolving to this package, and what each console.log
// prints is compared with the comment at the end of its line.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test, before, after } = require('node:test');
const { startServer } = require('./support/server');

const root = path.resolve(__dirname, '..');
let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) await server.stop();
});

/** The ```js block after the README's "test/readme.test.js runs this block" marker. */
function snippet() {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- test/readme.test.js runs this block');
  assert.notEqual(marker, -1, 'the README marks the snippet this test runs');
  const match = /```js\n([\s\S]*?)```/.exec(readme.slice(marker));
  assert.ok(match, 'a ```js block follows the marker');
  return match[1];
}

test('the README snippet (rotate, maxSessions, list, revokeId) runs as printed', () => {
  const code = snippet();
  const expected = code
    .split('\n')
    .filter((line) => line.includes('console.log('))
    .map((line) => line.slice(line.lastIndexOf('// ') + 3));
  assert.ok(expected.length >= 8, 'the snippet shows what it prints');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-session-client-readme-'));
  try {
    // `require('redis-session-client')` from anywhere: a node_modules of its own on NODE_PATH.
    fs.mkdirSync(path.join(dir, 'modules'));
    fs.symlinkSync(root, path.join(dir, 'modules', 'redis-session-client'), 'dir');
    const file = path.join(dir, 'snippet.js');
    fs.writeFileSync(file, `(async () => {\n${code}\n})().catch((err) => { console.error(err); process.exit(1); });\n`);
    const out = spawnSync(process.execPath, [file], {
      encoding: 'utf8',
      timeout: 30000,
      env: {
        ...process.env,
        REDIS_URL: `redis://${server.host}:${server.port}`,
        NODE_PATH: [path.join(dir, 'modules'), path.join(root, 'node_modules')].join(path.delimiter),
      },
    });
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(out.stdout.trimEnd().split('\n'), expected);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
