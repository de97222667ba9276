'use strict';
/**
 * redis-session-client: the API of the npm library `ca-session-service`, implemented on the
 * SESSION.* commands of the redis-session module. Each call is one command, so every session
 * operation is one atomic step inside Redis.
 *
 * The Redis client is the caller's: node-redis v2/v3 (callback API, `send_command`),
 * node-redis v4 and later (promise API, `sendCommand([...])`, also in v4's legacy mode), or
 * ioredis (`call`). This package has no dependencies.
 */

/** The range of the module's `ttl` setting and of SESSION.CREATE's TTL option, in seconds. */
const TTL_MAX = 315360000;
/** The range of the module's `token-bytes` setting. */
const TOKEN_BYTES_MIN = 16;
const TOKEN_BYTES_MAX = 128;

let currentService = null;

/**
 * Turns the caller's Redis client into one function, `(name, args) => Promise<reply>`.
 * Throws a TypeError for anything that is not one of the supported clients.
 */
function commandSender(client) {
  if (client === null || typeof client !== 'object') {
    throw new TypeError('redis-session-client: init() needs redis_client, a connected Redis client');
  }
  // node-redis v4 in legacy mode: the callback API outside, the promise API under `.v4`.
  // (Outside legacy mode v4's `.v4` getter throws, hence the try.)
  let v4 = null;
  try {
    v4 = client.v4;
  } catch (_) {
    v4 = null;
  }
  if (v4 && typeof v4.sendCommand === 'function') {
    return (name, args) => v4.sendCommand([name, ...args]);
  }
  // ioredis has `call(name, ...args)`; it also has a `send_command` that takes a Command
  // object, so it must be recognised before node-redis v2/v3.
  if (typeof client.call === 'function') {
    return (name, args) => client.call(name, ...args);
  }
  // node-redis v2/v3: `send_command(name, args, callback)`; commands sent before the
  // connection is up are queued by the client.
  if (typeof client.send_command === 'function') {
    return (name, args) =>
      new Promise((resolve, reject) => {
        client.send_command(name, args, (err, reply) => (err ? reject(err) : resolve(reply)));
      });
  }
  // node-redis v4 and later: `sendCommand([name, ...args])`, after `await client.connect()`.
  if (typeof client.sendCommand === 'function') {
    return (name, args) => client.sendCommand([name, ...args]);
  }
  throw new TypeError(
    'redis-session-client: redis_client is not a client this package knows ' +
      '(node-redis v2-v6 or ioredis: it needs send_command, sendCommand or call)',
  );
}

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

/**
 * Runs `work` (a function returning a promise) and returns that promise; when `callback` is a
 * function it is also called, Node style, on a later tick (so that an exception it throws is
 * not swallowed as a rejection). Synchronous throws in `work` become rejections.
 */
function settle(work, callback) {
  let promise;
  try {
    promise = Promise.resolve(work());
  } catch (err) {
    promise = Promise.reject(err);
  }
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
   * @param {object} options.redis_client a node-redis (v2..v6) or ioredis client
   * @param {number} [options.token_TTL] seconds a session lives after its last validation;
   *   when absent, the module's `ttl` setting applies (7200 by default, as in the original)
   * @param {number} [options.token_bytes_length] random bytes per token; when given it is set
   *   on the server (`CONFIG SET session.token-bytes`), which is a server-wide setting
   */
  constructor(options) {
    const opts = options || {};
    this._send = commandSender(opts.redis_client);
    this.redis_client = opts.redis_client;
    this.token_TTL =
      opts.token_TTL === undefined || opts.token_TTL === null
        ? null
        : checkWholeNumber(opts.token_TTL, 'token_TTL', 1, TTL_MAX);
    this.token_bytes_length =
      opts.token_bytes_length === undefined || opts.token_bytes_length === null
        ? null
        : checkWholeNumber(opts.token_bytes_length, 'token_bytes_length', TOKEN_BYTES_MIN, TOKEN_BYTES_MAX);
    // token_bytes_length is applied before the first command rather than here: a node-redis
    // v4+ client may not be connected yet when init() runs.
    this._settingsApplied = null;
  }

  /** Applies the server settings this service was given, once (again after a failure). */
  _ready() {
    if (this.token_bytes_length === null) {
      return Promise.resolve();
    }
    if (this._settingsApplied === null) {
      const wanted = String(this.token_bytes_length);
      this._settingsApplied = this._send('CONFIG', ['GET', 'session.token-bytes'])
        .then((reply) => {
          const current = configValue(reply, 'session.token-bytes');
          if (current === null) {
            throw new Error(
              'redis-session-client: the server has no session.token-bytes setting ' +
                '(is the redis-session module loaded?)',
            );
          }
          return current === wanted
            ? null
            : this._send('CONFIG', ['SET', 'session.token-bytes', wanted]);
        })
        .catch((err) => {
          this._settingsApplied = null;
          throw err;
        });
    }
    return this._settingsApplied;
  }

  _command(name, args) {
    return this._ready().then(() => this._send(name, args));
  }

  /**
   * Creates a session for `data` (a plain object) and resolves
   * `{token, ...data, createdAt}`. SESSION.CREATE data [TTL token_TTL].
   */
  create(data, callback) {
    return settle(() => {
      if (data === null || typeof data !== 'object' || Array.isArray(data)) {
        throw new TypeError('redis-session-client: create() needs a plain object of session data');
      }
      const args = [JSON.stringify(data)];
      if (this.token_TTL !== null) {
        args.push('TTL', String(this.token_TTL));
      }
      return this._command('SESSION.CREATE', args).then(parseJson);
    }, callback);
  }

  /**
   * Resolves the session's data (without `token`) and prolongs the session, or null when the
   * token is unknown, expired or malformed. SESSION.VALIDATE token.
   */
  validate(token, callback) {
    return settle(() => {
      const t = tokenArg(token);
      return t === null ? null : this._command('SESSION.VALIDATE', [t]).then(parseJson);
    }, callback);
  }

  /**
   * Resolves the session's data without prolonging it, or null. SESSION.GET token.
   */
  get(token, callback) {
    return settle(() => {
      const t = tokenArg(token);
      return t === null ? null : this._command('SESSION.GET', [t]).then(parseJson);
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
        : this._command('SESSION.UPDATE', [t, JSON.stringify(patch)]).then(parseJson);
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
        : this._command('SESSION.DESTROY', [t]).then((n) => Number(n) === 1);
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
      const args = [String(property), indexValue(value)];
      if (exceptToken !== undefined && exceptToken !== null) {
        const t = tokenArg(exceptToken);
        if (t === null) {
          throw new TypeError('redis-session-client: exceptToken must be a token string');
        }
        args.push('EXCEPT', t);
      }
      return this._command('SESSION.REVOKEINDEX', args).then(Number);
    }, callback);
  }

  /**
   * Resolves every live session whose `property` is `value`, each `{token, ...data}`, in no
   * particular order. Prolongs nothing. `property` must be an index. SESSION.LIST property value.
   */
  list(property, value, callback) {
    return settle(
      () =>
        this._command('SESSION.LIST', [String(property), indexValue(value)]).then((reply) =>
          (reply || []).map(parseJson),
        ),
      callback,
    );
  }

  /**
   * Makes `name` a secondary index, for sessions created from now on. Server-wide: it changes
   * the module's `indexes` setting. Resolves the list of indexes.
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
    return settle(() => this._readIndexes(), callback);
  }

  _readIndexes() {
    return this._send('CONFIG', ['GET', 'session.indexes']).then((reply) => {
      const value = configValue(reply, 'session.indexes');
      if (value === null) {
        throw new Error(
          'redis-session-client: the server has no session.indexes setting ' +
            '(is the redis-session module loaded?)',
        );
      }
      return value
        .split(',')
        .map((n) => n.trim())
        .filter((n) => n !== '');
    });
  }

  _changeIndexes(change) {
    return this._readIndexes().then((names) => {
      const next = change(names);
      if (next.length === names.length && next.every((n, i) => n === names[i])) {
        return names;
      }
      return this._send('CONFIG', ['SET', 'session.indexes', next.join(',')]).then(() => next);
    });
  }
}

/**
 * The value of `name` in a CONFIG GET reply, or null. The reply is a flat array
 * `[name, value]` (RESP2, every client here) or an object / Map (RESP3 clients).
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

module.exports = { init, getService, SessionService };
