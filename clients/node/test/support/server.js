'use strict';
// Starts a throwaway redis-server with the redis-session module for one test file: a free
// loopback port, a temporary directory for its files, no persistence, and a readiness check
// with a deadline. The module comes from REDIS_SESSION_MODULE (default: the release build of
// this repository); redis-server from REDIS_SERVER or PATH.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const MODULE =
  process.env.REDIS_SESSION_MODULE ||
  path.resolve(__dirname, '../../../../target/release/libredis_session.so');
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const READY_DEADLINE_MS = 10000;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true when a PING on 127.0.0.1:port gets +PONG. */
function pings(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

/**
 * Starts the server; resolves `{port, stop()}`. `moduleArgs` follow the module path
 * (e.g. ['indexes', 'user_id']).
 */
async function startServer(moduleArgs = []) {
  if (!fs.existsSync(MODULE)) {
    throw new Error(`module not found at ${MODULE}: build it (cargo build --release) or set REDIS_SESSION_MODULE`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-session-client-test-'));
  const logfile = path.join(dir, 'redis.log');
  const port = await freePort();
  const child = spawn(
    REDIS_SERVER,
    [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', logfile,
      '--save', '', '--appendonly', 'no', '--daemonize', 'no',
      '--loadmodule', MODULE, ...moduleArgs,
    ],
    { stdio: 'ignore' },
  );
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  const exitedPromise = new Promise((resolve) => child.once('exit', resolve));
  const log = () => (fs.existsSync(logfile) ? fs.readFileSync(logfile, 'utf8') : '(no log)');
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  // A test run that is interrupted must not leave the server behind.
  const onExit = () => {
    if (exited === null) child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    if (exited !== null) {
      const text = log();
      cleanup();
      throw new Error(`redis-server exited (${JSON.stringify(exited)}) before it was ready:\n${text}`);
    }
    if (await pings(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      const text = log();
      cleanup();
      throw new Error(`redis-server not ready on port ${port} after ${READY_DEADLINE_MS} ms:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    port,
    host: '127.0.0.1',
    async stop() {
      process.removeListener('exit', onExit);
      if (exited === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exitedPromise;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}

module.exports = { startServer };
