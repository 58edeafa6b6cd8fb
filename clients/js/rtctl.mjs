// rtctl reference client for the browser and Node (>= 20 with --experimental-websocket).
// Written from docs/protocol.md alone; section numbers below are that page's.
// Uses the standard WHATWG WebSocket only, so it offers `rtctl.v1` (JSON-RPC + the JSON
// state twin, §9.3) and never `rtctl.v1.binary`.

/** §8.2's numbers. */
export const BACKOFF = Object.freeze({ base: 100, multiplier: 2, cap: 5000, jitter: 0.5, resetAfter: 10000 });

/** §8.2: exponential backoff with "equal jitter"; the attempt count spans connections. */
export class Backoff {
  /** @param {typeof BACKOFF} [opts] @param {() => number} [random] uniform in [0, 1) */
  constructor(opts = BACKOFF, random = Math.random) {
    this.opts = opts; this.random = random; this.attempts = 0;
    /** @type {number | null} when the current connection opened */
    this.openedAt = null;
  }
  /** @param {number} now */
  opened(now) { this.openedAt = now; }
  /** A connection (or an upgrade) was lost; returns the delay before the next attempt, ms.
   * @param {number} now */
  next(now) {
    if (this.openedAt !== null && now - this.openedAt >= this.opts.resetAfter) this.attempts = 0;
    this.openedAt = null;
    this.attempts += 1;
    const { base, multiplier, cap, jitter } = this.opts;
    const nominal = Math.min(cap, base * multiplier ** (this.attempts - 1));
    return nominal * (1 - jitter * this.random());
  }
}

/** A JSON-RPC error reply, surfaced intact (§3.1). */
export class RpcError extends Error {
  /** @param {{code: number, message: string, data?: any}} error */
  constructor(error) {
    super(error.message); this.name = 'RpcError'; this.code = error.code;
    if ('data' in error) this.data = error.data;
  }
  toJSON() { return 'data' in this ? { code: this.code, message: this.message, data: this.data } : { code: this.code, message: this.message }; }
}

/** A call that cannot complete: its connection dropped (no idempotency key), the client
 * closed, or it timed out. `code` is null: no server said anything. */
export class CallFailed extends Error {
  /** @param {string} message */
  constructor(message) { super(message); this.name = 'CallFailed'; this.code = null; }
  toJSON() { return { code: null, message: this.message }; }
}

/** §6.3: the kind of a close code. 'transport' and 'protocol' reconnect with backoff (the
 * latter is also reported), 'auth' needs a new token, 'server' stops.
 * @param {number} code @returns {'transport'|'protocol'|'auth'|'server'} */
export function classifyClose(code) {
  if ([1002, 1003, 1007, 1009].includes(code)) return 'protocol';
  if (code === 4001) return 'auth';
  if (code >= 4000 && code <= 4999 && code !== 4008) return 'server';
  return 'transport';
}

// ---------------------------------------------------------------- state sync (§9.3, §9.4)

/** @typedef {{root: string, types: Record<string, {name: string, type: string, of?: string}[]>}} SchemaDescription */

class Corrupt extends Error {}
const NON_FINITE = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
const PRIMITIVE = /^(bool|str|float(32|64)|u?int(8|16|32|64))$/;

/** A map's plain form: an object without a prototype, so keys like `__proto__` or
 * `toString` are ordinary keys. @param {Iterable<[string, any]>} entries */
function dict(entries) {
  /** @type {Record<string, any>} */
  const out = Object.create(null);
  for (const [k, v] of entries) out[k] = v;
  return out;
}

/** Checks that every type a schema names is one this client can decode (§9.1).
 * @param {SchemaDescription} schema @throws {TypeError} naming the first unknown type */
export function checkSchema(schema) {
  const types = isObject(schema?.types) ? schema.types : {};
  /** @param {any} t */
  const known = (t) => typeof t === 'string' && (PRIMITIVE.test(t) || Object.hasOwn(types, t));
  if (typeof schema?.root !== 'string' || !Object.hasOwn(types, schema.root)) throw new TypeError(`state.schema: root ${JSON.stringify(schema?.root)} is not a schema`);
  for (const [name, fields] of Object.entries(types)) {
    if (!Array.isArray(fields)) throw new TypeError(`state.schema: ${name} is not a field list`);
    for (const f of fields) {
      const ok = f?.type === 'map' || f?.type === 'list' ? known(f.of) : known(f?.type);
      if (!ok) throw new TypeError(`state.schema: ${name}.${f?.name}: type ${JSON.stringify(f?.of ?? f?.type)} is not one this client decodes`);
    }
  }
}

/** One stateful room's copy, kept from `state.patch` messages (§9.3) by §9.4's rules. */
export class RoomState {
  /** @param {SchemaDescription} schema from `state.schema` (§9.1) */
  constructor(schema) {
    this.schema = schema;
    /** @type {number | null} */ this.version = null;
    /** @type {any} */ this.state = null;
    this.needsSnapshot = true;
  }

  /** Applies one `message` of a `state.patch`. Returns 'applied', 'ignored', or 'resync'
   * (corrupt or a gap: the caller calls `state.resync`).
   * @param {any} msg @returns {'applied'|'ignored'|'resync'} */
  apply(msg) {
    try {
      if (!isObject(msg) || !Number.isInteger(msg.version)) throw new Corrupt('no integer version');
      if ('state' in msg) {
        const state = this.#full(this.schema.root, msg.state);
        if (!(this.needsSnapshot || this.version === null || msg.version > this.version)) return 'ignored';
        Object.assign(this, { state, version: msg.version, needsSnapshot: false });
        return 'applied';
      }
      if (!Number.isInteger(msg.base) || !isObject(msg.patch)) throw new Corrupt('not a delta');
      if (this.needsSnapshot) return 'ignored';
      if (this.version !== null && msg.version <= this.version) return 'ignored';
      if (msg.base !== this.version) { this.needsSnapshot = true; return 'resync'; }
      this.state = this.#merge(this.schema.root, this.state, msg.patch);
      this.version = msg.version;
      return 'applied';
    } catch (e) {
      if (!(e instanceof Corrupt)) throw e;
      this.needsSnapshot = true;
      return 'resync';
    }
  }

  /** The state in §9.3's plain JSON form (non-finite floats as strings). */
  toJSON() { return JSON.parse(JSON.stringify(this.state, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))); }

  /** @param {string} type @param {any} v */
  #full(type, v) {
    if (Object.hasOwn(this.schema.types, type)) {
      const fields = this.schema.types[type];
      if (!isObject(v)) throw new Corrupt(`${type}: not an object`);
      const names = fields.map((f) => f.name);
      const extra = Object.keys(v).filter((k) => !names.includes(k));
      if (extra.length || names.some((n) => !Object.hasOwn(v, n))) throw new Corrupt(`${type}: fields do not match`);
      return Object.fromEntries(fields.map((f) => [f.name, this.#fieldFull(f, v[f.name])]));
    }
    return primitive(type, v);
  }

  /** @param {{type: string, of?: string}} f @param {any} v */
  #fieldFull(f, v) {
    if (f.type === 'map') {
      if (!isObject(v)) throw new Corrupt('map: not an object');
      return dict(Object.entries(v).map(([k, x]) => [k, this.#full(/** @type {string} */ (f.of), x)]));
    }
    if (f.type === 'list') {
      if (!Array.isArray(v)) throw new Corrupt('list: not an array');
      return v.map((x) => this.#full(/** @type {string} */ (f.of), x));
    }
    return this.#full(f.type, v);
  }

  /** RFC 7396 merge of `patch` into a copy of `held` (a schema of `type`), checked.
   * @param {string} type @param {any} held @param {any} patch */
  #merge(type, held, patch) {
    if (!isObject(patch)) throw new Corrupt(`${type}: patch is not an object`);
    const fields = this.schema.types[type];
    const out = { ...held };
    for (const [name, p] of Object.entries(patch)) {
      const f = fields.find((x) => x.name === name);
      if (!f) throw new Corrupt(`${type} has no field ${name}`);
      if (f.type === 'map') out[name] = this.#mergeMap(/** @type {string} */ (f.of), held[name], p);
      else if (f.type === 'list' || !Object.hasOwn(this.schema.types, f.type)) out[name] = this.#fieldFull(f, p);
      else out[name] = this.#merge(f.type, held[name], p);
    }
    return out;
  }

  /** @param {string} of @param {Record<string, any>} held @param {any} patch */
  #mergeMap(of, held, patch) {
    if (!isObject(patch)) throw new Corrupt('map patch is not an object');
    const out = dict(Object.entries(held));
    for (const [k, p] of Object.entries(patch)) {
      if (p === null) {
        if (!Object.hasOwn(out, k)) throw new Corrupt(`removes ${k}, not held`);
        delete out[k];
      } else if (Object.hasOwn(out, k) && Object.hasOwn(this.schema.types, of)) out[k] = this.#merge(of, out[k], p);
      else out[k] = this.#full(of, p);
    }
    return out;
  }
}

/** @param {string} type @param {any} v */
function primitive(type, v) {
  if (type === 'bool' && typeof v === 'boolean') return v;
  if (type === 'str' && typeof v === 'string') return v;
  if (/^float(32|64)$/.test(type)) {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && Object.hasOwn(NON_FINITE, v)) return NON_FINITE[/** @type {keyof NON_FINITE} */ (v)];
  }
  const m = /^(u?)int(8|16|32|64)$/.exec(type);
  if (m && Number.isInteger(v)) {
    const bits = Number(m[2]);
    if (bits === 64) return v; // beyond 2^53 a JavaScript number is not exact anyway (§9.3)
    const [lo, hi] = m[1] ? [0, 2 ** bits - 1] : [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1];
    if (v >= lo && v <= hi) return v;
  }
  throw new Corrupt(`not a ${type}: ${JSON.stringify(v)}`);
}

/** @param {any} v */
function isObject(v) { return typeof v === 'object' && v !== null && !Array.isArray(v); }

// ---------------------------------------------------------------- the client

/**
 * @typedef {object} ClientOptions
 * @property {string | (() => string | Promise<string>)} token a JWT, or a function giving a
 *   fresh one (surrounding whitespace, such as `rtctl token`'s newline, is trimmed). A
 *   function is asked before every connection, so a 4001 (or an upgrade refused for an
 *   expired token, which a browser cannot see) is followed by a new token, and at 80 % of a
 *   token's life for the `session.refresh` that keeps the connection (§8.1).
 * @property {number} [callTimeout] ms before a call fails with CallFailed('timed out'); 30 s
 * @property {number} [openTimeout] ms an upgrade may take before it counts as a transport
 *   failure (§6.3 "open timed out"); 10 s
 * @property {number} [livenessInterval] ms between `sys.ping` calls (§7); 5 s, 0 = off
 * @property {number} [livenessTimeout] ms with nothing received after which the link is
 *   dead (§7); 20 s
 * @property {number} [maxAttempts] give up after this many attempts in a row that never
 *   opened (§2.4); 10. An attempt that opened resets the count.
 * @property {typeof BACKOFF} [backoff]
 * @property {typeof WebSocket} [WebSocket]
 */

/**
 * @typedef {{id?: number, method: string, params?: any, key?: string,
 *   resolve: (r: any) => void, reject: (e: Error) => void, timer: any}} Call
 * @typedef {{position: {offset: number, epoch: string} | null, copy: RoomState | null,
 *   joined: boolean, resyncing: boolean, resyncAgain: boolean, resyncBackoff: Backoff}} Room
 */

const KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * A connection manager. States: 'idle' → 'connecting' → 'open' → ('waiting' → 'connecting' …)
 * → 'closed'. Events (`on(name, fn)`): 'state' (new state), 'session' (`session.info` result),
 * 'notification' ({method, params}), 'room.message' (params), 'state.changed' ({room, version}),
 * 'disconnect' ({code, reason, kind}), 'closed' ({code, reason, kind}), 'error' (an RpcError
 * of a call the client made itself: session.info, session.refresh, a rejoin).
 */
export class Client {
  /** @param {string} url ws:// or wss:// URL, path included @param {ClientOptions} options */
  constructor(url, options) {
    this.url = url;
    this.options = { callTimeout: 30000, openTimeout: 10000, livenessInterval: 5000, livenessTimeout: 20000, maxAttempts: 10, ...options };
    this.backoff = new Backoff(this.options.backoff);
    this.WebSocket = this.options.WebSocket ?? globalThis.WebSocket;
    /** @type {'idle'|'connecting'|'open'|'waiting'|'closed'} */ this.state = 'idle';
    /** @type {WebSocket | null} */ this.ws = null;
    this.opened = false; // the current socket fired open
    /** @type {any} the last `session.info` result */ this.session = null;
    /** @type {Map<number, Call>} calls sent on this connection */ this.pending = new Map();
    /** @type {Call[]} calls waiting for an open connection (keyed re-sends first) */ this.queue = [];
    /** @type {Map<string, Room>} */ this.rooms = new Map();
    /** @type {Set<string>} users watched with presence.subscribe */ this.watched = new Set();
    /** @type {Map<string, Set<Function>>} */ this.listeners = new Map();
    this.nextId = 1;
    this.timers = /** @type {any[]} */ ([]);
    this.tokenTimer = /** @type {any} */ (null);
    this.authRetry = false;
    this.neverOpened = 0; // attempts in a row that never opened (§2.4)
    this.lastHeard = 0; // Date.now() when the current socket last received anything (§7)
    this.clockOffset = 0; // the server's clock minus ours, ms, from sys.ping (§7)
  }

  /** @param {string} name @param {(v: any) => void} fn @returns {() => void} unsubscribe */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name)?.add(fn);
    return () => this.listeners.get(name)?.delete(fn);
  }

  /** Calls every listener; one that throws is reported (rethrown outside this loop, as an
   * uncaught error) and the others still run. @param {string} name @param {any} value */
  emit(name, value) {
    for (const fn of this.listeners.get(name) ?? []) {
      try { fn(value); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }

  /** @param {Client['state']} s */
  setState(s) { this.state = s; this.emit('state', s); }

  /** Opens the first connection. */
  connect() { if (this.state === 'idle') this.#open(); }

  /** Closes with 1000, which ends the session at once (§8.3); never reconnects. */
  close() {
    if (this.state === 'closed') return;
    const ws = this.ws;
    this.#finish(1000, 'closed by the client', 'client');
    ws?.close(1000);
  }

  /**
   * Makes a call; resolves with its result, rejects with RpcError or CallFailed. Calls made
   * while not connected wait for the next connection. A call with `idempotencyKey` is sent
   * again on the next connection when its reply was lost (§3.4); one without is not.
   * @param {string} method @param {any} [params] omitted when undefined (never null, §3.1)
   * @param {{idempotencyKey?: string}} [opts] @returns {Promise<any>}
   */
  call(method, params, opts = {}) {
    const key = opts.idempotencyKey;
    if (key !== undefined && !KEY.test(key)) return Promise.reject(new TypeError(`idempotency key must be 1-64 of A-Z a-z 0-9 _ . : -: ${key}`));
    if (this.state === 'closed') return Promise.reject(new CallFailed('client closed'));
    return new Promise((resolve, reject) => {
      /** @type {Call} */
      const c = { method, params, key, resolve, reject, timer: null };
      c.timer = setTimeout(() => this.#fail(c, new CallFailed('timed out')), this.options.callTimeout);
      if (method === 'presence.subscribe') for (const u of params?.users ?? params?.[0] ?? []) this.watched.add(u);
      if (method === 'presence.unsubscribe') {
        const users = params?.users ?? params?.[0];
        if (users) for (const u of users) this.watched.delete(u); else this.watched.clear();
      }
      if (this.state === 'open') this.#send(c); else this.queue.push(c);
    });
  }

  /** Sends a notification (no reply, §3.1); dropped when not connected.
   * @param {string} method @param {any} [params] */
  notify(method, params) {
    if (this.state === 'open') this.ws?.send(JSON.stringify(request(method, params)));
  }

  /**
   * Joins a room and keeps it: after a reconnect it is joined again with `since` (§8.4).
   * @param {string} room @param {{options?: object, since?: {offset: number, epoch: string}}} [opts]
   */
  async join(room, opts = {}) {
    const entry = this.rooms.get(room) ?? this.#room(opts.since ?? null, null);
    this.rooms.set(room, entry);
    if (entry.copy) entry.copy.needsSnapshot = true;
    const params = { room, ...(opts.options ? { options: opts.options } : {}), ...(opts.since ? { since: opts.since } : {}) };
    try {
      const r = await this.call('room.join', params);
      this.#joined(room, r);
      return r;
    } catch (e) {
      if (this.rooms.get(room) === entry && !entry.joined) this.rooms.delete(room);
      throw e;
    }
  }

  /** Joins a stateful room and keeps its state (§9.1): fetches the schema first (rejects
   * with a TypeError when it names a type this client cannot decode), then resolves with the
   * join's result once a full state of at least its version is held. Rejects with
   * CallFailed('client closed') if the client closes first.
   * @param {string} room @param {{options?: object}} [opts] */
  async sync(room, opts = {}) {
    const schema = await this.call('state.schema', { room });
    checkSchema(schema);
    const copy = new RoomState(schema);
    this.rooms.set(room, this.#room(null, copy));
    const result = await this.join(room, opts);
    if (copy.version === null || copy.version < result.version) await this.#stateOf(room, result.version);
    return result;
  }

  /** @param {string} room @returns {RoomState | null} */
  roomState(room) { return this.rooms.get(room)?.copy ?? null; }

  /** Leaves a room and forgets it. @param {string} room */
  leave(room) { this.rooms.delete(room); return this.call('room.leave', { room }); }

  /** @param {Room['position']} position @param {RoomState | null} copy @returns {Room} */
  #room(position, copy) {
    return { position, copy, joined: false, resyncing: false, resyncAgain: false, resyncBackoff: new Backoff(this.options.backoff) };
  }

  /** Resolves once `room` holds a state of at least `version`; rejects when the client closes.
   * @param {string} room @param {number} version @returns {Promise<void>} */
  #stateOf(room, version) {
    return new Promise((resolve, reject) => {
      const offs = [
        this.on('state.changed', (/** @type {any} */ e) => { if (e.room === room && e.version >= version) { done(); resolve(); } }),
        this.on('closed', () => { done(); reject(new CallFailed('client closed')); }),
      ];
      const done = () => { for (const off of offs) off(); };
    });
  }

  async #open() {
    this.setState('connecting');
    let ws;
    try {
      const source = this.options.token;
      const token = (typeof source === 'function' ? await source() : source).trim();
      if (this.state !== 'connecting') return;
      const url = new URL(this.url);
      if (this.session?.recovery_token) url.searchParams.set('recover', this.session.recovery_token);
      // §2.2 carrier 3: the only one a browser can use without putting the token in the URL.
      ws = new this.WebSocket(url.href, ['rtctl.v1', `rtctl.bearer.${token}`]);
    } catch (e) {
      // no token, or one (or a URL) the WebSocket constructor refuses: a failed attempt
      this.#lost(1006, `cannot open: ${/** @type {Error} */ (e).message}`);
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    this.#after(this.options.openTimeout, () => { if (!this.opened) this.#dead(ws, 'open timed out'); });
    ws.onopen = () => {
      this.opened = true;
      this.lastHeard = Date.now();
      this.backoff.opened(Date.now());
      this.#established(ws);
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      if (typeof ev.data === 'string') this.#receive(ev.data); // §3.3: no binary on rtctl.v1
    };
    ws.onclose = (ev) => { if (this.ws === ws) this.#lost(ev.code, ev.reason); };
    // A refused upgrade: browsers fire error then close 1006; Node 20's WebSocket only error.
    ws.onerror = () => { if (this.ws === ws && !this.opened) this.#lost(1006, 'upgrade failed'); };
  }

  /** Gives up on a link believed dead: closes it with a code that holds the session (§7: a
   * browser cannot send 1011, and 4000-4999 are the server's), then reconnects. The socket
   * is forgotten first: closing one still connecting may fire its error event at once.
   * @param {WebSocket} ws @param {string} reason */
  #dead(ws, reason) {
    if (this.ws !== ws) return;
    this.#lost(1006, reason);
    ws.close(3000, reason);
  }

  /** §8.3 steps 1 and 4: session.info, presence, rooms with since, keyed calls, the queue.
   * @param {WebSocket} ws */
  async #established(ws) {
    try {
      this.#adoptInfo(ws, await this.#internal({ method: 'session.info' }));
    } catch (e) {
      // no reply at all: the link is dead (if it is not already gone)
      if (!(e instanceof RpcError)) return this.#dead(ws, 'session.info timed out');
      this.#infoFailed(ws, e); // §6.3: the step fails alone; the last recovery token stays
    }
    this.authRetry = false;
    this.neverOpened = 0;
    if (this.options.livenessInterval) this.#every(this.options.livenessInterval, () => this.#liveness(ws));
    if (this.watched.size) this.#internal({ method: 'presence.subscribe', params: { users: [...this.watched] } }).catch(() => {});
    for (const [room, entry] of this.rooms) {
      if (!entry.joined) continue; // its own room.join is still queued
      if (entry.copy) entry.copy.needsSnapshot = true;
      const params = entry.position ? { room, since: entry.position } : { room };
      this.#internal({ method: 'room.join', params }).then((r) => this.#joined(room, r), (e) => { if (e instanceof RpcError) this.emit('error', e); });
    }
    this.setState('open');
    const queued = this.queue.splice(0);
    for (const c of queued) this.#send(c);
  }

  /** §8.4: a join that starts a stream for the client (a first join, or a rejoin answered
   * `recovered: false`) takes the reply's position, even a lower one; after `recovered:
   * true` the position stays at `since` and the replay moves it (it may come after the reply).
   * @param {string} room @param {any} r the join's result */
  #joined(room, r) {
    const entry = this.rooms.get(room);
    if (!entry) return;
    entry.joined = true;
    if (r.recovered !== true) entry.position = { offset: r.offset, epoch: r.epoch };
  }

  /** Keeps a `session.info` result, then, on the server's clock (§8.3), asks again at half
   * the recovery token's life, and plans the token's refresh (§8.1).
   * @param {WebSocket} ws @param {any} info */
  #adoptInfo(ws, info) {
    this.session = info;
    this.emit('session', info);
    this.#serverNow().then((now) => {
      if (this.ws !== ws) return;
      this.#after(Math.max(1000, (info.recovery_expires_at - now) / 2), () => this.#askInfo(ws));
      this.#planRefresh(ws, info.expires_at, now);
    }, () => {}); // no reply: liveness handles the link
  }

  /** @param {WebSocket} ws */
  #askInfo(ws) {
    this.#internal({ method: 'session.info' }).then((info) => this.#adoptInfo(ws, info), (e) => { if (e instanceof RpcError) this.#infoFailed(ws, e); });
  }

  /** §6.3: a failed `session.info` is reported and asked again soon.
   * @param {WebSocket} ws @param {RpcError} e */
  #infoFailed(ws, e) {
    this.emit('error', e);
    this.#after(5000, () => this.#askInfo(ws));
  }

  /** §8.1: with a token source, `session.refresh` at 80 % of the token's remaining life. A
   * refusal (reported) or a failed source leaves the 4001 at expiry, which gets a new token.
   * @param {WebSocket} ws @param {number | null} expiresAt server clock, ms @param {number} now server clock */
  #planRefresh(ws, expiresAt, now) {
    const source = this.options.token;
    clearTimeout(this.tokenTimer);
    if (typeof source !== 'function' || expiresAt === null || expiresAt === undefined) return;
    this.tokenTimer = setTimeout(async () => {
      try {
        const token = (await source()).trim();
        if (this.ws !== ws) return;
        const r = await this.#internal({ method: 'session.refresh', params: { token } });
        if (this.ws === ws) this.#planRefresh(ws, r.expires_at, Date.now() + this.clockOffset);
      } catch (e) {
        if (e instanceof RpcError) this.emit('error', e);
      }
    }, Math.max(0, 0.8 * (expiresAt - now)));
    this.timers.push(this.tokenTimer);
  }

  /** `sys.ping` (§7): resolves with the server's clock now, and keeps its offset to ours. */
  async #serverNow() {
    const sent = Date.now();
    const { time } = await this.#internal({ method: 'sys.ping' });
    const got = Date.now();
    this.clockOffset = time - (sent + got) / 2;
    return got + this.clockOffset;
  }

  /** §7 without WebSocket pings: a `sys.ping` every livenessInterval; the link is dead when
   * nothing at all (reply, notification) has arrived for livenessTimeout.
   * @param {WebSocket} ws */
  #liveness(ws) {
    if (Date.now() - this.lastHeard >= this.options.livenessTimeout) this.#dead(ws, 'no reply to sys.ping');
    else this.#serverNow().catch(() => {});
  }

  /** A call the client makes itself: sent now, never queued, lost with the connection.
   * @param {{method: string, params?: any}} c */
  #internal(c) {
    return new Promise((resolve, reject) => {
      /** @type {Call} */
      const call = { ...c, resolve, reject, timer: null };
      call.timer = setTimeout(() => this.#fail(call, new CallFailed('timed out')), this.options.callTimeout);
      this.#send(call);
    });
  }

  /** @param {Call} c */
  #send(c) {
    c.id = this.nextId++;
    this.pending.set(c.id, c);
    const msg = request(c.method, c.params, c.id);
    if (c.key) msg.idempotency_key = c.key;
    this.ws?.send(JSON.stringify(msg));
  }

  /** @param {Call} c @param {Error} e */
  #fail(c, e) {
    clearTimeout(c.timer);
    if (c.id !== undefined) this.pending.delete(c.id);
    const i = this.queue.indexOf(c);
    if (i >= 0) this.queue.splice(i, 1);
    c.reject(e);
  }

  /** @param {string} text */
  #receive(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      if (!isObject(m)) continue;
      if ('method' in m && !('id' in m)) { this.#notification(m.method, m.params); continue; }
      const c = this.pending.get(m.id);
      if (!c) continue;
      this.pending.delete(m.id);
      clearTimeout(c.timer);
      if ('error' in m) c.reject(new RpcError(m.error)); else c.resolve(m.result);
    }
  }

  /** @param {string} method @param {any} params */
  #notification(method, params) {
    if (method === 'room.message') {
      const entry = this.rooms.get(params.room);
      const p = entry?.position;
      if (p && p.epoch === params.epoch && params.offset <= p.offset) return; // duplicate (§8.4)
      if (entry) entry.position = { offset: params.offset, epoch: params.epoch };
      this.emit('room.message', params);
    } else if (method === 'state.patch') {
      this.#statePatch(params.room, params.message);
    }
    this.emit('notification', { method, params });
  }

  /** @param {string} room @param {any} message */
  #statePatch(room, message) {
    const entry = this.rooms.get(room);
    if (!entry?.copy) return;
    const outcome = entry.copy.apply(message);
    if (outcome === 'applied') this.emit('state.changed', { room, version: entry.copy.version });
    if (outcome === 'resync') this.#resync(room, entry, 0);
  }

  /** §9.4: at most one state.resync in flight per room; one asked for meanwhile follows it
   * if a snapshot is still needed. The first goes at once; one soon after another waits
   * §8.2's backoff (reset by 10 s without one), and after -32029 at least `retry_after_ms`
   * too (§6.3). @param {string} room @param {Room} entry @param {number} wait ms */
  #resync(room, entry, wait) {
    if (entry.resyncing) { entry.resyncAgain = true; return; }
    entry.resyncing = true;
    const b = entry.resyncBackoff;
    const now = Date.now();
    const delay = Math.max(wait, b.openedAt === null ? 0 : b.next(now));
    b.opened(now);
    /** @param {number} retryAfter */
    const settled = (retryAfter) => {
      const again = retryAfter > 0 || (entry.resyncAgain && entry.copy?.needsSnapshot);
      entry.resyncing = entry.resyncAgain = false;
      if (again && this.rooms.get(room) === entry) this.#resync(room, entry, retryAfter);
    };
    this.#after(delay, () => this.call('state.resync', { room }).then(() => settled(0), (e) => {
      settled(e instanceof RpcError && e.code === -32029 ? Math.min(60000, e.data?.retry_after_ms ?? 1000) : 0);
    }));
  }

  /** @param {number} ms @param {() => void} fn */
  #after(ms, fn) { this.timers.push(setTimeout(fn, ms)); }

  /** @param {number} ms @param {() => void} fn */
  #every(ms, fn) { this.timers.push(setInterval(fn, ms)); }

  /** The connection (or the upgrade) is gone: fail or keep its calls, then §6.3 decides.
   * @param {number} code @param {string} reason */
  #lost(code, reason) {
    if (this.state === 'closed') return;
    const opened = this.opened;
    this.#drop();
    const kind = classifyClose(code);
    this.emit('disconnect', { code, reason, kind });
    if (kind === 'server') return this.#finish(code, reason, kind);
    if (kind === 'auth') {
      // §6.3/§8.2: with a token source, reconnect at once with a new token, once in a row.
      if (typeof this.options.token !== 'function' || this.authRetry) return this.#finish(code, reason, kind);
      this.authRetry = true;
      return this.#open();
    }
    this.neverOpened = opened ? 0 : this.neverOpened + 1;
    if (this.neverOpened >= this.options.maxAttempts) return this.#finish(code, reason, kind); // §2.4
    this.setState('waiting');
    this.#after(this.backoff.next(Date.now()), () => this.#open());
  }

  /** Forgets the socket and its timers; keyed calls go back to the head of the queue. A
   * resync waiting for its turn is dropped: the rejoin brings a full state. */
  #drop() {
    for (const t of this.timers) { clearTimeout(t); clearInterval(t); }
    this.timers = [];
    for (const entry of this.rooms.values()) entry.resyncing = entry.resyncAgain = false;
    if (this.ws) this.ws.onopen = this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
    this.ws = null;
    this.opened = false;
    const keyed = [];
    for (const c of this.pending.values()) {
      if (c.key) keyed.push(c); else { clearTimeout(c.timer); c.reject(new CallFailed('connection lost')); }
    }
    this.pending.clear();
    this.queue.unshift(...keyed);
  }

  /** @param {number} code @param {string} reason @param {string} kind */
  #finish(code, reason, kind) {
    this.#drop();
    for (const c of this.queue.splice(0)) { clearTimeout(c.timer); c.reject(new CallFailed('client closed')); }
    this.setState('closed');
    this.emit('closed', { code, reason, kind });
  }
}

/** @param {string} method @param {any} params @param {number} [id] */
function request(method, params, id) {
  /** @type {Record<string, any>} */
  const msg = { jsonrpc: '2.0', method };
  if (params !== undefined && params !== null) msg.params = params;
  if (id !== undefined) msg.id = id;
  return msg;
}
