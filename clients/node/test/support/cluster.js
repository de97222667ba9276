'use strict';
// A real Redis Cluster on loopback ports for the cluster tests: 3 primaries with a replica
// each by default, `cluster-enabled yes`, the module loaded on every node, each node in a
// temporary directory of its own on a free port whose cluster bus port (port + 10000) is
// free too. Joined with CLUSTER ADDSLOTSRANGE / MEET / REPLICATE; ready when every node
// says cluster_state:ok and every replica's link is up. Every process is stopped by its pid.
// (tests/cluster/conftest.py does the same in Python.)

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const Redis = require('ioredis');

const MODULE =
  process.env.REDIS_SESSION_MODULE ||
  path.resolve(__dirname, '../../../../target/release/libredis_session.so');
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const DEADLINE_MS = 30000;

const handedOut = new Set();

function canBind(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port whose bus port is free too, never one handed out before in this process. */
async function freePortPair() {
  for (let i = 0; i < 200; i++) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
    const taken = [...handedOut].some((p) => [p, p + 10000].includes(port) || [p, p + 10000].includes(port + 10000));
    if (port < 55000 && !taken && (await canBind(port + 10000))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port pair found');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, check, timeoutMs = DEADLINE_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(50);
  }
}

class Node {
  constructor(port, dir, child) {
    this.port = port;
    this.dir = dir;
    this.child = child;
    this.exited = null;
    this.exitedPromise = new Promise((resolve) => child.once('exit', resolve));
    child.on('exit', (code, signal) => {
      this.exited = { code, signal };
    });
    this.client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    this.client.on('error', () => {});
    this.id = null;
  }

  static async start(clusterDir, moduleArgs) {
    const port = await freePortPair();
    const dir = path.join(clusterDir, String(port));
    fs.mkdirSync(dir);
    const child = spawn(
      REDIS_SERVER,
      [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
        '--logfile', path.join(dir, 'redis.log'),
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', '2000', '--repl-diskless-sync-delay', '0', '--repl-ping-replica-period', '1',
        '--save', '', '--appendonly', 'no', '--daemonize', 'no',
        '--loadmodule', MODULE, ...moduleArgs,
      ],
      { stdio: 'ignore' },
    );
    return new Node(port, dir, child);
  }

  log() {
    const file = path.join(this.dir, 'redis.log');
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').slice(-3000) : '(no log)';
  }

  async waitUp() {
    await waitFor(`node ${this.port}`, async () => {
      if (this.exited !== null) {
        throw Object.assign(new Error(`redis-server on ${this.port} exited: ${this.log()}`), { fatal: true });
      }
      if (this.client.status !== 'ready') {
        if (this.client.status === 'wait' || this.client.status === 'end') {
          await this.client.connect().catch(() => {});
        }
      }
      return this.client.status === 'ready' && (await this.client.ping()) === 'PONG';
    }, 10000);
    this.id = await this.client.call('CLUSTER', 'MYID');
  }

  call(...args) {
    return this.client.call(...args);
  }

  async stop() {
    this.client.disconnect();
    if (this.exited === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exitedPromise;
      clearTimeout(timer);
    }
  }
}

class Cluster {
  /** Starts and joins the cluster; resolves it ready. */
  static async start({ primaries = 3, replicas = 1, moduleArgs = ['indexes', 'user_id'] } = {}) {
    if (!fs.existsSync(MODULE)) {
      throw new Error(`module not found at ${MODULE}: build it (cargo build --release) or set REDIS_SESSION_MODULE`);
    }
    const c = new Cluster();
    c.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-session-client-cluster-'));
    c.primaries = [];
    c.replicas = [];
    // An interrupted run must not leave servers behind.
    c.onExit = () => {
      for (const n of c.nodes) if (n.exited === null) n.child.kill('SIGKILL');
    };
    process.once('exit', c.onExit);
    try {
      for (let i = 0; i < primaries; i++) c.primaries.push(await Node.start(c.dir, moduleArgs));
      for (let i = 0; i < primaries * replicas; i++) c.replicas.push(await Node.start(c.dir, moduleArgs));
      await Promise.all(c.nodes.map((n) => n.waitUp()));
      await c._join(replicas);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  get nodes() {
    return [...this.primaries, ...this.replicas];
  }

  async _join(replicas) {
    const n = this.primaries.length;
    const per = Math.floor(16384 / n);
    await Promise.all(
      this.primaries.map((node, i) =>
        node.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(i === n - 1 ? 16383 : (i + 1) * per - 1)),
      ),
    );
    const first = this.primaries[0];
    for (const node of this.nodes.slice(1)) {
      await node.call('CLUSTER', 'MEET', '127.0.0.1', String(first.port));
    }
    const ids = this.nodes.map((node) => node.id);
    await waitFor('every node to know every other', async () => {
      for (const node of this.nodes) {
        const known = new Set(
          String(await node.call('CLUSTER', 'NODES'))
            .split('\n')
            .filter(Boolean)
            .map((line) => line.split(' ')[0]),
        );
        if (!ids.every((id) => known.has(id))) return false;
      }
      return true;
    });
    for (let i = 0; i < this.replicas.length; i++) {
      await this.replicas[i].call('CLUSTER', 'REPLICATE', this.primaries[Math.floor(i / replicas)].id);
    }
    await this.waitOk();
  }

  /** Every node says cluster_state:ok, sees every slot served, every replica's link is up. */
  async waitOk() {
    await waitFor('cluster_state:ok', async () => {
      for (const node of this.nodes) {
        const info = String(await node.call('CLUSTER', 'INFO'));
        if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false;
      }
      for (const replica of this.replicas) {
        const info = String(await replica.call('INFO', 'replication'));
        if (!info.includes('role:slave') || !info.includes('master_link_status:up')) return false;
      }
      // Every primary's view of the slots names the three primaries.
      for (const node of this.nodes) {
        const slots = await node.call('CLUSTER', 'SLOTS');
        const withReplica = slots.filter((entry) => entry.length >= 4);
        if (withReplica.length !== slots.length || slots.length < this.primaries.length) return false;
      }
      return true;
    });
  }

  /** Resolves slot -> the port of the primary serving it, from CLUSTER SLOTS. */
  async owners() {
    const owners = new Array(16384);
    for (const [start, end, primary] of await this.primaries[0].call('CLUSTER', 'SLOTS')) {
      for (let s = start; s <= end; s++) owners[s] = Number(primary[1]);
    }
    return owners;
  }

  /** Every key on every node: [{port, role, key}], by SCAN. */
  async everyKey() {
    const out = [];
    for (const node of this.nodes) {
      const role = this.primaries.includes(node) ? 'primary' : 'replica';
      if (role === 'replica') await node.call('READONLY');
      let cursor = '0';
      do {
        const [next, keys] = await node.call('SCAN', cursor, 'COUNT', '1000');
        cursor = next;
        for (const key of keys) out.push({ port: node.port, role, key });
      } while (cursor !== '0');
    }
    return out;
  }

  /** The count of MOVED/ASK error replies every primary has given so far. */
  async redirections() {
    let total = 0;
    for (const node of this.primaries) {
      const info = String(await node.call('INFO', 'errorstats'));
      for (const m of info.matchAll(/errorstat_(?:MOVED|ASK):count=(\d+)/g)) total += Number(m[1]);
    }
    return total;
  }

  async stop() {
    process.removeListener('exit', this.onExit);
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => {})));
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { Cluster, waitFor };
