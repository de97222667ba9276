// Type declarations of redis-session-client (index.js). test/types/usage.ts uses them and
// test/types.test.js type-checks it with tsc, so that they follow index.js.

/// <reference types="node" />

/** Session data: a plain object of JSON values. */
export interface SessionData {
  [property: string]: any;
}

/** What create() resolves: the data with its new token and `createdAt`. */
export type CreatedSession<T extends SessionData = SessionData> = T & {
  token: string;
  /** UTC `YYYY-MM-DD HH:MM:SS`, written by the server, unless the data had its own. */
  createdAt: string;
};

/** What validate(), get() and update() resolve: the data with `createdAt`, without `token`. */
export type ValidatedSession<T extends SessionData = SessionData> = T & { createdAt: string };

/** One element of list(): the session's data, its identifier and (with `token-hash none`) its token. */
export type ListedSession<T extends SessionData = SessionData> = T & {
  /** Absent when the module's `token-hash` is `sha256`. */
  token?: string;
  /** The session's identifier, for revokeId(); not a secret. */
  sessionId: string;
  createdAt: string;
};

/** A Node-style callback. */
export type Callback<R> = (err: Error | null, result: R) => void;

/** A token, as a string (or a Buffer holding one). */
export type Token = string | Buffer;

/** An index value, matched as the module writes it: `'150'` and `150` are the same entry. */
export type IndexValue = string | number | boolean | bigint;

/**
 * The Redis clients this package knows: node-redis v2/v3 (`send_command`), node-redis v4+
 * (`sendCommand`, v4's legacy mode through `.v4`, and the cluster client of `createCluster`),
 * ioredis (`call`, and `Redis.Cluster`).
 */
export type RedisClient =
  | { send_command(command: string, args: any[], callback: (err: Error | null, reply: any) => void): any }
  | { sendCommand(...args: any[]): Promise<any> }
  | { call(command: string, ...args: any[]): Promise<any> }
  | { v4: { sendCommand(args: any[]): Promise<any> } };

export interface InitOptions {
  /** A connected Redis client (node-redis v4+ after `await client.connect()`). */
  redis_client: RedisClient;
  /** Seconds a session lives after its last validation (1 .. 315360000); default: the module's `ttl`. */
  token_TTL?: number | null;
  /** Random bytes per token (16 .. 128), set on the server before the service's first call. */
  token_bytes_length?: number | null;
}

export interface CreateOptions {
  /** At most this many (1 .. 1000000) live sessions for the session's primary index value. */
  maxSessions?: number | null;
  /** With maxSessions: fail instead of ending the sessions nearest their end. */
  deny?: boolean;
}

export class SessionService {
  constructor(options: InitOptions);
  readonly redis_client: RedisClient;
  readonly token_TTL: number | null;
  readonly token_bytes_length: number | null;

  /** SESSION.CREATE data [TTL token_TTL] [MAXSESSIONS n [DENY]] */
  create<T extends SessionData>(data: T, callback?: Callback<CreatedSession<T>>): Promise<CreatedSession<T>>;
  create<T extends SessionData>(
    data: T,
    options: CreateOptions | null | undefined,
    callback?: Callback<CreatedSession<T>>,
  ): Promise<CreatedSession<T>>;

  /** SESSION.VALIDATE token: the data, prolonging the session; null for an unknown token. */
  validate<T extends SessionData = SessionData>(
    token: Token | null | undefined,
    callback?: Callback<ValidatedSession<T> | null>,
  ): Promise<ValidatedSession<T> | null>;

  /** SESSION.GET token: as validate, prolonging nothing. */
  get<T extends SessionData = SessionData>(
    token: Token | null | undefined,
    callback?: Callback<ValidatedSession<T> | null>,
  ): Promise<ValidatedSession<T> | null>;

  /** SESSION.UPDATE token patch: a JSON merge patch (null removes a property); null for an unknown token. */
  update<T extends SessionData = SessionData>(
    token: Token | null | undefined,
    patch: SessionData,
    callback?: Callback<ValidatedSession<T> | null>,
  ): Promise<ValidatedSession<T> | null>;

  /** SESSION.ROTATE token [GRACE seconds]: a new token for the session; null for an unknown token. */
  rotate<T extends SessionData = SessionData>(
    token: Token | null | undefined,
    callback?: Callback<CreatedSession<T> | null>,
  ): Promise<CreatedSession<T> | null>;
  rotate<T extends SessionData = SessionData>(
    token: Token | null | undefined,
    graceSeconds: number | null | undefined,
    callback?: Callback<CreatedSession<T> | null>,
  ): Promise<CreatedSession<T> | null>;

  /** SESSION.DESTROY token: true, or false when there was no such session. */
  destroy(token: Token | null | undefined, callback?: Callback<boolean>): Promise<boolean>;

  /** SESSION.REVOKEINDEX property value [EXCEPT token]: how many sessions ended. */
  revokeIndex(property: string, value: IndexValue, callback?: Callback<number>): Promise<number>;
  revokeIndex(
    property: string,
    value: IndexValue,
    exceptToken: Token | null | undefined,
    callback?: Callback<number>,
  ): Promise<number>;

  /** SESSION.REVOKEID property value session-id: true when it ended that session. */
  revokeId(property: string, value: IndexValue, sessionId: string, callback?: Callback<boolean>): Promise<boolean>;

  /** SESSION.LIST property value: every live session of that index entry, in no particular order. */
  list<T extends SessionData = SessionData>(
    property: string,
    value: IndexValue,
    callback?: Callback<ListedSession<T>[]>,
  ): Promise<ListedSession<T>[]>;

  /** Adds an index to the module's `indexes` setting (every node of a cluster); resolves the list. */
  addIndex(name: string, callback?: Callback<string[]>): Promise<string[]>;
  /** Removes an index from the module's `indexes` setting; resolves the list. */
  removeIndex(name: string, callback?: Callback<string[]>): Promise<string[]>;
  /** The module's `indexes` setting, as a list. */
  getIndexes(callback?: Callback<string[]>): Promise<string[]>;
}

/** Makes the session service (and remembers it for getService()). */
export function init(options: InitOptions): SessionService;

/** The service the last init() made, or null before any. */
export function getService(): SessionService | null;

/** A session's identifier, as list() gives it in `sessionId`: `[{<slot tag>}]<hex SHA-256 of the token>`. */
export function sessionId(token: Token): string;

/** The Redis Cluster hash slot of a key name, as CLUSTER KEYSLOT gives it. */
export function keySlot(name: string | Buffer): number;
