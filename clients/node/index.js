'use strict';
/**
 * redis-session-client: the API of the npm library `ca-session-service`, implemented on the
 * SESSION.* commands of the redis-session module. Each call is one command, so every session
 * operation is one atomic step inside Redis.
 *
 * The Redis client is the caller's: node-redis v2/v3 (callback API, `send_command`),
 * node-redis v4 and later (promise API, `sendCommand([...])`, also in v4's legacy mode, and
 * the cluster client of `createCluster`), or ioredis (`call`, also on `Redis.Cluster`). This
 * package has no dependencies.
 *
 * Calls take effect in the order they were made, awaited or not: every call goes through one
 * queue per Redis client (see `Sequencer`).
 */

const crypto = require('node:crypto');

/** The range of the module's `ttl` setting and of SESSION.CREATE's TTL option, in seconds. */
const TTL_MAX = 315360000;
/** The range of the module's `token-bytes` setting. */
const TOKEN_BYTES_MIN = 16;
const TOKEN_BYTES_MAX = 128;
/** The range of SESSION.CREATE's MAXSESSIONS option. */
const MAX_SESSIONS_MAX = 1000000;
/** The range of SESSION.ROTATE's GRACE option, in seconds. */
const GRACE_MAX = 300;

let currentService = null;

// ---------------------------------------------------------------------------------------
// Cluster placement (docs/cluster.md): hash slots, slot tags, index key names.

const SLOTS = 16384;
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    table[i] = crc;
  }
  return table;
})();

/** CRC16 (XMODEM), as Redis Cluster hashes key names. */
function crc16(bytes) {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) {
    crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]) & 0xff];
  }
  return crc;
}

/** The hash slot of a key name, as `CLUSTER KEYSLOT` gives it (hash tags included). */
function keySlot(name) {
  const bytes = Buffer.isBuffer(name) ? name : Buffer.from(String(name), 'utf8');
  const open = bytes.indexOf(0x7b); // {
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) {
      return crc16(bytes.subarray(open + 1, close)) % SLOTS;
    }
  }
  return crc16(bytes) % SLOTS;
}

let slotTags = null;
/**
 * The slot tag of a slot, as the module makes it: the shortest string of letters and digits
 * (digits, then upper case, then lower case; shorter first) whose own slot it is. All 16384
 * are computed at the first need (a few tens of milliseconds), only in cluster mode.
 */
function slotTag(slot) {
  if (slotTags === null) {
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    const tags = new Array(SLOTS).fill(null);
    let missing = SLOTS;
    const bytes = Buffer.alloc(4);
    for (let len = 1; len <= 4 && missing > 0; len++) {
      const count = alphabet.length ** len;
      for (let n = 0; n < count && missing > 0; n++) {
        let rest = n;
        for (let place = len - 1; place >= 0; place--) {
          bytes[place] = alphabet.charCodeAt(rest % alphabet.length);
          rest = Math.floor(rest / alphabet.length);
        }
        const s = crc16(bytes.subarray(0, len)) % SLOTS;
        if (tags[s] === null) {
          tags[s] = bytes.toString('latin1', 0, len);
          missing--;
        }
      }
    }
    slotTags = tags;
  }
  return slotTags[slot % SLOTS];
}

/**
 * The name of an index key in cluster mode: `<index-prefix><property>:{<value>}`, or
 * `<index-prefix><property>:{<tag>}:<value>` for an empty value or one holding a brace. Its
 * slot is always `keySlot(value)`.
 */
function clusterIndexKey(prefix, property, value) {
  if (value !== '' && !value.includes('{') && !value.includes('}')) {
    return `${prefix}${property}:{${value}}`;
  }
  return `${prefix}${property}:{${slotTag(keySlot(value))}}:${value}`;
}

/**
 * A session's identifier, as SESSION.LIST gives it in `sessionId` and SESSION.REVOKEID takes
 * it: the token's slot tag (in cluster mode), then the lowercase hex SHA-256 of the whole
 * token. Not a secret; it cannot be used as a token.
 */
function sessionId(token) {
  const t = tokenArg(token);
  if (t === null) {
    throw new TypeError('redis-session-client: sessionId() needs a token string');
  }
  const tag = /^\{[0-9A-Za-z]{1,4}\}/.exec(t);
  return (tag ? tag[0] : '') + crypto.createHash('sha256').update(t, 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------------------
// Transports: how a command reaches the server, for each kind of client.

/** ioredis's Cluster: the slot a command goes to, set on ioredis's own Command object. */
function ioredisClusterCall(cluster, slot, name, args) {
  // ioredis routes a command by the keys its command table knows; SESSION.* are not in it,
  // so `call` alone would go to a random node and follow MOVED. The Command that `call`
  // builds is taken on its way to sendCommand and given the slot (Command#getSlot() keeps a
  // slot once set), so ioredis routes it, follows MOVED/ASK/TRYAGAIN as for its own
  // commands, and keeps its options (keyPrefix, showFriendlyErrorStack). Auto-pipelining is
  // turned off for this call only: it would take the command another way.
  const via = Object.create(cluster, {
    options: { value: { ...cluster.options, enableAutoPipelining: false } },
    sendCommand: {
      value(command, stream, node) {
        command.slot = slot;
        return cluster.sendCommand(command, stream, node);
      },
    },
  });
  return via.call(name, ...args);
}

/**
 * Turns the caller's Redis client into a transport:
 * - `send(name, args, route)`: sends one command (route: the key it is routed by in a
 *   cluster, or null), writing it before it returns, and returns a promise of the reply;
 * - `everyNode(name, args)`: the same command on every node (one for a plain client);
 * - `cluster`: whether it is a cluster client.
 * Throws a TypeError for anything that is not one of the supported clients.
 */
function transportFor(client) {
  if (client === null || typeof client !== 'object') {
    throw new TypeError('redis-session-client: init() needs redis_client, a connected Redis client');
  }
  // ioredis's Cluster (`new Redis.Cluster([...])`).
  if (client.isCluster === true && typeof client.call === 'function' && typeof client.nodes === 'function') {
    return {
      cluster: true,
      send(name, args, route) {
        return route === null ? client.call(name, ...args) : ioredisClusterCall(client, keySlot(route), name, args);
      },
      everyNode(name, args) {
        const nodes = client.nodes('all');
        if (nodes.length === 0) {
          return client.call(name, ...args).then((reply) => [reply]);
        }
        return Promise.all(nodes.map((node) => node.call(name, ...args)));
      },
    };
  }
  // node-redis v4+ cluster (`createCluster`): `sendCommand(firstKey, isReadonly, args)`.
  if (
    typeof client.sendCommand === 'function' &&
    typeof client.nodeClient === 'function' &&
    'masters' in client
  ) {
    return {
      cluster: true,
      send(name, args, route) {
        // Every call goes to a primary (isReadonly false), so that calls keep their order.
        return client.sendCommand(route === null ? undefined : route, false, [name, ...args]);
      },
      everyNode(name, args) {
        const nodes = [...(client.masters || []), ...(client.replicas || [])];
        if (nodes.length === 0) {
          return client.sendCommand(undefined, false, [name, ...args]).then((reply) => [reply]);
        }
        return Promise.all(
          nodes.map((node) => Promise.resolve(client.nodeClient(node)).then((c) => c.sendCommand([name, ...args]))),
        );
      },
    };
  }
  const plain = (send) => ({
    cluster: false,
    send: (name, args) => send(name, args),
    everyNode: (name, args) => send(name, args).then((reply) => [reply]),
  });
  // node-redis v4 in legacy mode: the callback API outside, the promise API under `.v4`.
  // (Outside legacy mode v4's `.v4` getter throws, hence the try.)
  let v4 = null;
  try {
    v4 = client.v4;
  } catch (_) {
    v4 = null;
  }
  if (v4 && typeof v4.sendCommand === 'function') {
    return plain((name, args) => v4.sendCommand([name, ...args]));
  }
  // ioredis has `call(name, ...args)`; it also has a `send_command` that takes a Command
  // object, so it must be recognised before node-redis v2/v3.
  if (typeof client.call === 'function') {
    return plain((name, args) => client.call(name, ...args));
  }
  // node-redis v2/v3: `send_command(name, args, callback)`; commands sent before the
  // connection is up are queued by the client.
  if (typeof client.send_command === 'function') {
    return plain(
      (name, args) =>
        new Promise((resolve, reject) => {
          client.send_command(name, args, (err, reply) => (err ? reject(err) : resolve(reply)));
        }),
    );
  }
  // node-redis v4 and later: `sendCommand([name, ...args])`, after `await client.connect()`.
  if (typeof client.sendCommand === 'function') {
    return plain((name, args) => client.sendCommand([name, ...args]));
  }
  throw new TypeError(
    'redis-session-client: redis_client is not a client this package knows ' +
      '(node-redis v2-v6 or ioredis: it needs send_command, sendCommand or call)',
  );
}

// ---------------------------------------------------------------------------------------
// The ordering queue.

/**
 * One per Redis client, shared by every service made on it: calls take effect in the order
 * they were made, whether or not the caller awaits them.
 *
 * - A plain command (every SESSION.* call, getIndexes) is written to the client at once when
 *   nothing is pending, so unawaited calls are pipelined; Redis runs the commands of one
 *   connection in order, and a cluster client keeps them in order per node.
 * - A barrier (addIndex and removeIndex, which read, change and write a setting; the
 *   service's own settings such as token_bytes_length before its first command; in a
 *   cluster, reading the index list CREATE's ROUTE needs) waits until everything sent before
 *   it has been answered, runs alone, and everything called after it waits until it is done.
 * - A call whose service needs a barrier first (its settings not applied yet) gets that
 *   barrier just before it; when the barrier fails, that call fails with its error and the
 *   next call tries again, as if every call had been awaited in turn.
 */
class Sequencer {
  constructor(transport) {
    this.transport = transport;
    this._queue = [];
    this._inflight = 0;
    this._busy = false;
    /** In a cluster: `{indexes: [...], prefix}` once read, for CREATE's ROUTE. */
    this.indexInfo = null;
  }

  /**
   * Queues `run` (returns the reply's promise) and resolves as it does. `barrier`: run alone.
   * `before(entry)`: null when it can run now, or a function doing the barrier it needs first.
   */
  enqueue(run, { barrier = false, before = null } = {}) {
    return new Promise((resolve, reject) => {
      this._queue.push({ run, barrier, before, resolve, reject });
      this._pump();
    });
  }

  _pump() {
    while (this._queue.length > 0 && !this._busy) {
      const entry = this._queue[0];
      const first = entry.before === null ? null : entry.before();
      if (first === null && !entry.barrier) {
        this._queue.shift();
        this._inflight++;
        const done = () => {
          this._inflight--;
          if (this._inflight === 0) this._pump();
        };
        attempt(entry.run).then(
          (reply) => {
            entry.resolve(reply);
            done();
          },
          (err) => {
            entry.reject(err);
            done();
          },
        );
        continue;
      }
      if (this._inflight > 0) {
        return; // the barrier waits until what was sent before it has been answered
      }
      this._busy = true;
      const finish = () => {
        this._busy = false;
        this._pump();
      };
      if (first !== null) {
        // The call's prerequisite; the call itself is looked at again afterwards.
        attempt(first).then(finish, (err) => {
          this._queue.shift();
          entry.reject(err);
          finish();
        });
      } else {
        this._queue.shift();
        attempt(entry.run).then(
          (reply) => {
            entry.resolve(reply);
            finish();
          },
          (err) => {
            entry.reject(err);
            finish();
          },
        );
      }
      return;
    }
  }

  /** Reads the index list and the index prefix (in a cluster), for CREATE's ROUTE. */
  loadIndexInfo() {
    return this.transport.send('CONFIG', ['GET', 'session.index*'], null).then((reply) => {
      const indexes = configValue(reply, 'session.indexes');
      if (indexes === null) {
        throw noModule('session.indexes');
      }
      this.indexInfo = { indexes: splitIndexes(indexes), prefix: configValue(reply, 'session.index-prefix') || '' };
    });
  }
}

/** Calls `fn` and returns its promise; a synchronous throw becomes a rejection. */
function attempt(fn) {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

const sequencers = new WeakMap();

function sequencerFor(client) {
  let seq = sequencers.get(client);
  if (seq === undefined) {
    seq = new Sequencer(transportFor(client));
    sequencers.set(client, seq);
  }
  return seq;
}

// ---------------------------------------------------------------------------------------
// Arguments and replies.

/** A bulk reply as a string (a client set to return Buffers gives Buffers). */
function text(reply) {
  return Buffer.isBuffer(reply) ? reply.toString('utf8') : reply;
}

/** A bulk reply holding JSON, parsed; nil stays null. */
function parseJson(reply) {
  if (reply === null || reply === undefined) {
    return null;
  }
  return JSON.parse(text(reply));
}

/** A token as this package passes it on, or null when it cannot be one (no round trip). */
function tokenArg(token) {
  if (Buffer.isBuffer(token)) {
    return token.toString('utf8');
  }
  return typeof token === 'string' && token !== '' ? token : null;
}

/** The value of an index key: as the module writes it (a string raw, other values as JSON). */
function indexValue(value) {
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  throw new TypeError('redis-session-client: an index value must be a string, number or boolean');
}

/** The index value of a property of session data, or null when it is not indexed. */
function dataIndexValue(value) {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : null;
  return null;
}

function checkIndexName(name) {
  if (typeof name !== 'string' || name.trim() === '' || name.includes(',')) {
    throw new TypeError(
      'redis-session-client: an index name must be a non-empty string without commas',
    );
  }
  return name.trim();
}

function checkWholeNumber(value, what, min, max) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `redis-session-client: ${what} must be a whole number from ${min} to ${max} (got ${value})`,
    );
  }
  return value;
}

function splitIndexes(value) {
  return value
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
}

function noModule(setting) {
  return new Error(
    `redis-session-client: the server has no ${setting} setting (is the redis-session module loaded?)`,
  );
}

/**
 * Runs `work` (a function returning a promise) and returns that promise; when `callback` is a
 * function it is also called, Node style, on a later tick (so that an exception it throws is
 * not swallowed as a rejection). Synchronous throws in `work` become rejections.
 */
function settle(work, callback) {
  const promise = attempt(work);
  if (typeof callback === 'function') {
    promise.then(
      (result) => process.nextTick(callback, null, result),
      (err) => process.nextTick(callback, err),
    );
  }
  return promise;
}

/** The session service: what `init()` returns. Every method returns a promise and takes an optional callback. */
class SessionService {
  /**
   * @param {object} options
   * @param {object} options.redis_client a node-redis (v2..v6, or its cluster client) or
   *   ioredis client (or Cluster)
   * @param {number} [options.token_TTL] seconds a session lives after its last validation;
   *   when absent, the module's `ttl` setting applies (7200 by default, as in the original)
   * @param {number} [options.token_bytes_length] random bytes per token; when given it is set
   *   on the server (`CONFIG SET session.token-bytes`), which is a server-wide setting
   */
  constructor(options) {
    const opts = options || {};
    this._seq = sequencerFor(opts.redis_client);
    this.redis_client = opts.redis_client;
    this.token_TTL =
      opts.token_TTL === undefined || opts.token_TTL === null
        ? null
        : checkWholeNumber(opts.token_TTL, 'token_TTL', 1, TTL_MAX);
    this.token_bytes_length =
      opts.token_bytes_length === undefined || opts.token_bytes_length === null
        ? null
        : checkWholeNumber(opts.token_bytes_length, 'token_bytes_length', TOKEN_BYTES_MIN, TOKEN_BYTES_MAX);
    // token_bytes_length is applied before the service's first command rather than here: a
    // node-redis v4+ client may not be connected yet when init() runs.
    this._settingsApplied = this.token_bytes_length === null;
    this._before = () => (this._settingsApplied ? null : () => this._applySettings());
  }

  /** Sets token-bytes on the server (every node of a cluster) when it is not set already. */
  _applySettings() {
    const wanted = String(this.token_bytes_length);
    const t = this._seq.transport;
    return t.everyNode('CONFIG', ['GET', 'session.token-bytes']).then((replies) => {
      const current = replies.map((r) => configValue(r, 'session.token-bytes'));
      if (current.some((c) => c === null)) {
        throw noModule('session.token-bytes');
      }
      const done = () => {
        this._settingsApplied = true;
      };
      if (current.every((c) => c === wanted)) {
        return done();
      }
      return t.everyNode('CONFIG', ['SET', 'session.token-bytes', wanted]).then(done);
    });
  }

  /** One command, in call order; `route()` gives its cluster routing key when it is sent. */
  _command(name, args, route = null, needsIndexes = false) {
    const seq = this._seq;
    const before =
      needsIndexes && seq.transport.cluster
        ? () => this._before() || (seq.indexInfo === null ? () => seq.loadIndexInfo() : null)
        : this._before;
    return seq.enqueue(
      () => seq.transport.send(name, typeof args === 'function' ? args() : args, route === null ? null : route()),
      { before },
    );
  }

  /** A setting change: runs alone, after what came before and before what comes after. */
  _barrier(work) {
    return this._seq.enqueue(work, { barrier: true, before: this._before });
  }

  /**
   * Creates a session for `data` (a plain object) and resolves
   * `{token, ...data, createdAt}`. SESSION.CREATE data [TTL token_TTL] [MAXSESSIONS n [DENY]]
   * (and, in a cluster, ROUTE <primary index key>).
   *
   * @param {object} [options] `{maxSessions, deny}`: at most `maxSessions` live sessions for
   *   the session's primary index value (the first index its data has); the ones nearest
   *   their end are ended first, or, with `deny: true`, the call fails and nothing is written
   */
  create(data, options, callback) {
    if (typeof options === 'function' && callback === undefined) {
      callback = options;
      options = undefined;
    }
    return settle(() => {
      if (data === null || typeof data !== 'object' || Array.isArray(data)) {
        throw new TypeError('redis-session-client: create() needs a plain object of session data');
      }
      const args = [JSON.stringify(data)];
      if (this.token_TTL !== null) {
        args.push('TTL', String(this.token_TTL));
      }
      if (options !== undefined && options !== null) {
        if (typeof options !== 'object') {
          throw new TypeError('redis-session-client: create() options must be an object ({maxSessions, deny})');
        }
        if (options.maxSessions !== undefined && options.maxSessions !== null) {
          args.push('MAXSESSIONS', String(checkWholeNumber(options.maxSessions, 'maxSessions', 1, MAX_SESSIONS_MAX)));
          if (options.deny) {
            args.push('DENY');
          }
        } else if (options.deny) {
          throw new TypeError('redis-session-client: create() option deny needs maxSessions');
        }
      }
      if (!this._seq.transport.cluster) {
        return this._command('SESSION.CREATE', args).then(parseJson);
      }
      // In a cluster: ROUTE <primary index key>, worked out when the command is sent (an
      // addIndex called before this create may change which index is the primary one).
      let route = null;
      const withRoute = () => {
        const key = this._primaryIndexKey(data);
        if (key !== null) {
          route = key;
          return [...args, 'ROUTE', key];
        }
        // No primary index value: the session lives in a slot of the node that makes it.
        // The command is routed by a random key (not sent: an ACL key pattern would judge
        // it), so that it goes to a primary (a cluster client may send a keyless command
        // to a replica) and such sessions spread over the primaries.
        route = crypto.randomBytes(8).toString('hex');
        return args;
      };
      return this._command('SESSION.CREATE', withRoute, () => route, true)
        .catch((err) => {
          // CROSSSLOT: the index list changed under this service (another process): read
          // it again and retry once.
          if (!/^CROSSSLOT/.test(String(err && err.message))) throw err;
          return this._seq.loadIndexInfo().then(() => this._seq.transport.send('SESSION.CREATE', withRoute(), route));
        })
        .then(parseJson);
    }, callback);
  }

  /** The key of the session's primary index entry in a cluster, or null when it has none. */
  _primaryIndexKey(data) {
    const info = this._seq.indexInfo;
    for (const property of info.indexes) {
      if (Object.prototype.hasOwnProperty.call(data, property)) {
        const value = dataIndexValue(data[property]);
        if (value !== null) {
          return clusterIndexKey(info.prefix, property, value);
        }
      }
    }
    return null;
  }

  /** A token-keyed command: routed by the token. */
  _tokenCommand(name, token, rest = []) {
    return this._command(name, [token, ...rest], () => token);
  }

  /** An index command: routed by the value argument (or, when empty, its index key's slot). */
  _indexCommand(name, property, value, rest = []) {
    const v = indexValue(value);
    return this._command(name, [String(property), v, ...rest], () => (v !== '' ? v : `{${slotTag(keySlot(v))}}`));
  }

  /**
   * Resolves the session's data (without `token`) and prolongs the session, or null when the
   * token is unknown, expired or malformed. SESSION.VALIDATE token.
   */
  validate(token, callback) {
    return settle(() => {
      const t = tokenArg(token);
      return t === null ? null : this._tokenCommand('SESSION.VALIDATE', t).then(parseJson);
    }, callback);
  }

  /**
   * Resolves the session's data without prolonging it, or null. SESSION.GET token.
   */
  get(token, callback) {
    return settle(() => {
      const t = tokenArg(token);
      return t === null ? null : this._tokenCommand('SESSION.GET', t).then(parseJson);
    }, callback);
  }

  /**
   * Applies `patch` as a JSON merge patch (a null value removes a property) and resolves the
   * new data, or null for an unknown token. Prolongs like validate. SESSION.UPDATE token patch.
   */
  update(token, patch, callback) {
    return settle(() => {
      if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
        throw new TypeError('redis-session-client: update() needs a plain object as the patch');
      }
      const t = tokenArg(token);
      return t === null
        ? null
        : this._tokenCommand('SESSION.UPDATE', t, [JSON.stringify(patch)]).then(parseJson);
    }, callback);
  }

  /**
   * Gives the session a new token (after a login step-up or a privilege change) and resolves
   * `{token: <new>, ...data}`, or null for an unknown token. With `graceSeconds` (1 .. 300)
   * the old token still validates, read-only, for that long. SESSION.ROTATE token [GRACE s].
   */
  rotate(token, graceSeconds, callback) {
    if (typeof graceSeconds === 'function' && callback === undefined) {
      callback = graceSeconds;
      graceSeconds = undefined;
    }
    return settle(() => {
      const rest = [];
      if (graceSeconds !== undefined && graceSeconds !== null) {
        rest.push('GRACE', String(checkWholeNumber(graceSeconds, 'graceSeconds', 0, GRACE_MAX)));
      }
      const t = tokenArg(token);
      return t === null ? null : this._tokenCommand('SESSION.ROTATE', t, rest).then(parseJson);
    }, callback);
  }

  /**
   * Ends one session (log out). Resolves true, or false when there was no such session.
   * SESSION.DESTROY token.
   */
  destroy(token, callback) {
    return settle(() => {
      const t = tokenArg(token);
      return t === null
        ? false
        : this._tokenCommand('SESSION.DESTROY', t).then((n) => Number(n) === 1);
    }, callback);
  }

  /**
   * Ends every session whose `property` is `value` (log out everywhere), except the session
   * `exceptToken` when given (log out every other device). Resolves how many were ended.
   * `property` must be an index. SESSION.REVOKEINDEX property value [EXCEPT token].
   */
  revokeIndex(property, value, exceptToken, callback) {
    if (typeof exceptToken === 'function' && callback === undefined) {
      callback = exceptToken;
      exceptToken = undefined;
    }
    return settle(() => {
      const rest = [];
      if (exceptToken !== undefined && exceptToken !== null) {
        const t = tokenArg(exceptToken);
        if (t === null) {
          throw new TypeError('redis-session-client: exceptToken must be a token string');
        }
        rest.push('EXCEPT', t);
      }
      return this._indexCommand('SESSION.REVOKEINDEX', property, value, rest).then(Number);
    }, callback);
  }

  /**
   * Ends the one session whose `property` is `value` and whose identifier (`sessionId` in
   * list()) is `id`: end one listed device without its token. Resolves true, or false when
   * that index has no such session. SESSION.REVOKEID property value session-id.
   */
  revokeId(property, value, id, callback) {
    return settle(() => {
      const v = indexValue(value);
      if (typeof id !== 'string' || id === '') {
        return false;
      }
      return this._indexCommand('SESSION.REVOKEID', property, v, [id]).then((n) => Number(n) === 1);
    }, callback);
  }

  /**
   * Resolves every live session whose `property` is `value`, each `{token, sessionId, ...data}`
   * (without `token` when the module's `token-hash` is `sha256`), in no particular order.
   * Prolongs nothing. `property` must be an index. SESSION.LIST property value.
   */
  list(property, value, callback) {
    return settle(
      () =>
        this._indexCommand('SESSION.LIST', property, value).then((reply) => (reply || []).map(parseJson)),
      callback,
    );
  }

  /**
   * Makes `name` a secondary index, for sessions created from now on. Server-wide: it changes
   * the module's `indexes` setting (on every node of a cluster). Resolves the list of indexes.
   */
  addIndex(name, callback) {
    return settle(() => {
      const wanted = checkIndexName(name);
      return this._changeIndexes((names) => (names.includes(wanted) ? names : [...names, wanted]));
    }, callback);
  }

  /**
   * Stops `name` being a secondary index, for sessions created from now on (existing index
   * sets stay). Server-wide. Resolves the list of indexes.
   */
  removeIndex(name, callback) {
    return settle(() => {
      const unwanted = checkIndexName(name);
      return this._changeIndexes((names) => names.filter((n) => n !== unwanted));
    }, callback);
  }

  /** Resolves the module's current list of indexes. */
  getIndexes(callback) {
    return settle(() => this._command('CONFIG', ['GET', 'session.indexes']).then(readIndexes), callback);
  }

  _changeIndexes(change) {
    return this._barrier(() => {
      const t = this._seq.transport;
      return t.send('CONFIG', ['GET', 'session.index*'], null).then((reply) => {
        const names = readIndexes(reply);
        const prefix = configValue(reply, 'session.index-prefix') || '';
        const next = change(names);
        const remember = () => {
          if (t.cluster) this._seq.indexInfo = { indexes: next, prefix };
          return next;
        };
        if (!t.cluster && next.length === names.length && next.every((n, i) => n === names[i])) {
          return remember();
        }
        // In a cluster the list is written to every node even when the one read had it, so
        // that the nodes agree afterwards.
        return t.everyNode('CONFIG', ['SET', 'session.indexes', next.join(',')]).then(remember);
      });
    });
  }
}

function readIndexes(reply) {
  const value = configValue(reply, 'session.indexes');
  if (value === null) {
    throw noModule('session.indexes');
  }
  return splitIndexes(value);
}

/**
 * The value of `name` in a CONFIG GET reply, or null. The reply is a flat array
 * `[name, value, ...]` (RESP2, every client here) or an object / Map (RESP3 clients).
 */
function configValue(reply, name) {
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) {
      if (String(text(reply[i])).toLowerCase() === name) {
        return String(text(reply[i + 1]));
      }
    }
    return null;
  }
  if (reply instanceof Map) {
    for (const [k, v] of reply) {
      if (String(text(k)).toLowerCase() === name) {
        return String(text(v));
      }
    }
    return null;
  }
  if (reply && typeof reply === 'object') {
    for (const k of Object.keys(reply)) {
      if (k.toLowerCase() === name) {
        return String(text(reply[k]));
      }
    }
  }
  return null;
}

/**
 * Makes the session service (and remembers it for getService()), as `ca-session-service` did:
 * `init({redis_client, token_TTL, token_bytes_length})`.
 */
function init(options) {
  currentService = new SessionService(options);
  return currentService;
}

/** The service the last init() made, or null before any. */
function getService() {
  return currentService;
}

module.exports = { init, getService, SessionService, sessionId, keySlot };
