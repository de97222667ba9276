'use strict';
// index.d.ts against index.js: tsc type-checks test/types/usage.ts (the package used from
// TypeScript with the real client types, and lines that must be refused), and the names the
// declarations export are the names index.js exports.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const root = path.resolve(__dirname, '..');

test('tsc --noEmit accepts test/types/usage.ts (and refuses its @ts-expect-error lines)', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const out = spawnSync(process.execPath, [tsc, '--noEmit', '-p', path.join(__dirname, 'types')], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120000,
  });
  assert.equal(out.status, 0, `tsc failed:\n${out.stdout}${out.stderr}`);
});

test('package.json lists index.d.ts as "types" and in "files"; it declares what index.js exports', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  assert.equal(pkg.types, 'index.d.ts');
  assert.ok(pkg.files.includes('index.d.ts'));
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:function|class) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(require('..')).sort());
  const methods = Object.getOwnPropertyNames(require('..').SessionService.prototype)
    .filter((m) => m !== 'constructor' && !m.startsWith('_'))
    .sort();
  const classBody = dts.slice(dts.indexOf('export class SessionService'));
  const declaredMethods = [...new Set([...classBody.matchAll(/^ {2}(\w+)(?:<[^>]*>)?\(/gm)].map((m) => m[1]))]
    .filter((m) => m !== 'constructor')
    .sort();
  assert.deepEqual(declaredMethods, methods);
});
