// The Client class against an in-process stand-in for the WHATWG WebSocket (the `WebSocket`
// option). Every wait is on an event: no sleeps stand in for synchronisation.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Client, BACKOFF, CallFailed } from '../rtctl.mjs';

const FAST = { ...BACKOFF, base: 1, cap: 2 };
/** A test that fails, rather than hangs, when the event it waits for never comes.
 * @param {string} name @param {() => Promise<void>} fn */
const it = (name, fn) => test(name, { timeout: 5000 }, fn);
const SUBPROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 6455 token, as browsers check it

/** A scripted server. `handlers[method](msg, socket)` returns a result, `{error}`, or
 * undefined for no reply; notifications a handler puts in `socket.after` come after the reply. */
class Server {
  /** @param {Record<string, Function>} [handlers] */
  constructor(handlers = {}) {
    this.autoOpen = true;
    /** @type {any[]} */ this.sockets = [];
    /** @type {{method: string, params?: any, idempotency_key?: string, socket: number}[]} */ this.calls = [];
    /** @type {Set<() => void>} */ this.watchers = new Set();
    this.handlers = {
      'session.info': () => ({ recovery_token: `r${this.sockets.length}`, recovery_expires_at: Date.now() + 3600e3, expires_at: null }),
      'sys.ping': () => ({ time: Date.now() }),
      ...handlers,
    };
    const server = this;
    this.WebSocket = class MockWebSocket {
      /** @param {string} url @param {string[]} protocols */
      constructor(url, protocols) {
        if (protocols.some((p) => !SUBPROTOCOL.test(p))) throw new SyntaxError(`invalid subprotocol ${JSON.stringify(protocols)}`);
        Object.assign(this, { url, protocols, closeCode: undefined, onopen: null, onmessage: null, onclose: null, onerror: null });
        server.sockets.push(this);
        if (server.autoOpen) queueMicrotask(() => this.onopen?.());
        server.changed();
      }
      /** @param {string} text */
      send(text) {
        const m = JSON.parse(text);
        server.calls.push({ ...m, socket: server.sockets.indexOf(this) });
        const h = server.handlers[m.method];
        const answer = h?.(m, this);
        if (answer !== undefined && m.id !== undefined) {
          const reply = answer?.error ? { error: answer.error } : { result: answer };
          const after = this.after?.splice(0) ?? [];
          queueMicrotask(() => this.push({ jsonrpc: '2.0', id: m.id, ...reply }));
          // in a later task: the client has handled the reply by then
          if (after.length) setImmediate(() => { for (const n of after) this.push(n); });
        }
        server.changed();
      }
      /** @param {any} msg */
      push(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
      /** @param {number} [code] */
      close(code) { this.closeCode = code; }
      /** The server ends the connection. @param {number} code */
      drop(code) { this.onclose?.({ code, reason: '' }); }
    };
  }
  changed() { for (const w of this.watchers) w(); }
  /** Resolves once `pred()` holds, checked on every socket and call. @param {() => any} pred */
  until(pred) {
    return new Promise((resolve) => {
      const check = () => { const v = pred(); if (v) { this.watchers.delete(check); resolve(v); } };
      this.watchers.add(check);
      check();
    });
  }
  /** @param {string} method @param {number} [socket] */
  callsOf(method, socket) { return this.calls.filter((c) => c.method === method && (socket === undefined || c.socket === socket)); }
}

/** Resolves with the first `name` event whose value passes `pred`.
 * @param {Client} client @param {string} name @param {(v: any) => boolean} [pred] */
function event(client, name, pred = () => true) {
  return new Promise((resolve) => { const off = client.on(name, (v) => { if (pred(v)) { off(); resolve(v); } }); });
}

/** @type {Client[]} */
const clients = [];
afterEach(() => { for (const c of clients.splice(0)) c.close(); }); // a failed test leaves no timers

/** @param {Server} server @param {object} [options] */
function client(server, options = {}) {
  const c = new Client('ws://gw.test/ws', { token: 't', WebSocket: server.WebSocket, backoff: FAST, livenessInterval: 0, ...options });
  clients.push(c);
  return c;
}

const msg = (/** @type {number} */ offset, epoch = 'E') => ({ jsonrpc: '2.0', method: 'room.message', params: { room: 'lobby', from: 'bob', data: offset, offset, epoch } });

it('an upgrade that never opens times out, is closed, retried, and given up on (§2.4, §6.3)', async () => {
  const server = new Server();
  server.autoOpen = false;
  const c = client(server, { openTimeout: 10, maxAttempts: 3 });
  const reasons = [];
  c.on('disconnect', (e) => reasons.push(e.reason));
  const closed = event(c, 'closed');
  c.connect();
  assert.equal((await closed).kind, 'transport');
  assert.deepEqual(reasons, ['open timed out', 'open timed out', 'open timed out']);
  assert.deepEqual(server.sockets.map((s) => s.closeCode), [3000, 3000, 3000]);
});

it('an attempt that opened resets the count of attempts that never opened', async () => {
  const server = new Server();
  server.autoOpen = false;
  const c = client(server, { maxAttempts: 2 });
  c.connect();
  server.sockets[0].onerror(); // never opened: 1 of 2
  await server.until(() => server.sockets.length === 2);
  server.sockets[1].onopen();
  await event(c, 'state', (s) => s === 'open');
  server.sockets[1].drop(1006);
  await server.until(() => server.sockets.length === 3);
  server.sockets[2].onerror(); // never opened: 1 of 2 again
  assert.equal(c.state, 'waiting');
  const closed = event(c, 'closed');
  await server.until(() => server.sockets.length === 4);
  server.sockets[3].onerror();
  await closed;
});

it('session.info without a reply: the link is closed with 3000 and the client reconnects (§6.3)', async () => {
  let silent = true;
  const server = new Server({ 'session.info': () => (silent ? undefined : { recovery_token: 'r', recovery_expires_at: Date.now() + 3600e3, expires_at: null }) });
  const c = client(server, { callTimeout: 20 });
  const lost = event(c, 'disconnect');
  c.connect();
  assert.equal((await lost).reason, 'session.info timed out');
  silent = false;
  await event(c, 'state', (s) => s === 'open');
  assert.equal(server.sockets[0].closeCode, 3000);
});

it('a session.info error reply is reported and the other steps go on (§6.3)', async () => {
  const server = new Server({ 'session.info': () => ({ error: { code: -32603, message: 'boom' } }) });
  const c = client(server);
  const error = event(c, 'error');
  c.connect();
  assert.equal((await error).code, -32603);
  assert.equal(await c.call('sys.ping').then((r) => typeof r.time), 'number');
});

it('calls time out with CallFailed', async () => {
  const c = client(new Server(), { callTimeout: 10 });
  c.connect();
  await assert.rejects(c.call('sys.nothing'), (e) => e instanceof CallFailed && e.message === 'timed out');
});

it('a token with a newline is trimmed; one the WebSocket refuses fails the attempt, not the process', async () => {
  const server = new Server();
  const a = client(server, { token: async () => 'abc\n' });
  a.connect();
  await event(a, 'state', (s) => s === 'open');
  assert.deepEqual(server.sockets[0].protocols, ['rtctl.v1', 'rtctl.bearer.abc']);
  a.close();
  const b = client(server, { token: 'a b', maxAttempts: 2 });
  const closed = event(b, 'closed');
  b.connect();
  assert.match((await closed).reason, /^cannot open: invalid subprotocol/);
  assert.equal(server.sockets.length, 1);
});

it('§8.4 positions: a first join takes the reply\'s, duplicates are dropped', async () => {
  const server = new Server({ 'room.join': () => ({ offset: 5, epoch: 'E', total: 1 }) });
  const c = client(server);
  const got = [];
  c.on('room.message', (m) => got.push(m.offset));
  c.connect();
  await c.join('lobby');
  const ws = server.sockets[0];
  for (const o of [4, 5, 6, 6, 7, 5]) ws.push(msg(o));
  ws.push(msg(1, 'F')); // a new epoch starts a new stream
  assert.deepEqual(got, [6, 7, 1]);
  assert.deepEqual(c.rooms.get('lobby')?.position, { offset: 1, epoch: 'F' });
});

it('§8.4 positions: after recovered: true the replay, even after the reply, moves the position', async () => {
  const server = new Server({
    'room.join': (/** @type {any} */ m, /** @type {any} */ ws) => {
      if (!m.params.since) return { offset: 3, epoch: 'E' };
      assert.deepEqual(m.params.since, { offset: 4, epoch: 'E' });
      ws.after = [msg(5), msg(6)];
      return { offset: 6, epoch: 'E', recovered: true, replayed: 2 };
    },
  });
  const c = client(server);
  const got = [];
  c.on('room.message', (m) => got.push(m.offset));
  c.connect();
  await c.join('lobby');
  server.sockets[0].push(msg(4));
  const replayed = event(c, 'room.message', (m) => m.offset === 6);
  server.sockets[0].drop(1006);
  await replayed;
  assert.deepEqual(got, [4, 5, 6]);
});

it('§8.4 positions: recovered: false takes the reply\'s position, even a lower one', async () => {
  const server = new Server({ 'room.join': () => ({ offset: 1, epoch: 'E', recovered: false, reason: 'unknown_offset' }) });
  const c = client(server);
  const got = [];
  c.on('room.message', (m) => got.push(m.offset));
  c.connect();
  await c.join('lobby', { since: { offset: 50, epoch: 'E' } });
  server.sockets[0].push(msg(2));
  assert.deepEqual(got, [2]);
});

it('§8.3 reconnect order: session.info, re-subscribe, rejoin, keyed re-sends, then the queue', async () => {
  const server = new Server({
    'presence.subscribe': () => ({}),
    'room.join': () => ({ offset: 0, epoch: 'E' }),
    // the first connection never answers a publish: its reply is lost with it
    'room.publish': (/** @type {any} */ _m, /** @type {any} */ ws) => (server.sockets.indexOf(ws) === 0 ? undefined : { offset: 1, epoch: 'E' }),
    'sys.echo': (/** @type {any} */ m) => m.params,
  });
  const c = client(server);
  c.connect();
  await c.call('presence.subscribe', { users: ['bob'] });
  await c.join('lobby');
  const keyed = c.call('room.publish', { room: 'lobby', data: 1 }, { idempotencyKey: 'k1' });
  const plain = c.call('room.publish', { room: 'lobby', data: 2 });
  await server.until(() => server.callsOf('room.publish', 0).length === 2);
  server.sockets[0].drop(1006);
  await assert.rejects(plain, /connection lost/);
  const echoed = c.call('sys.echo', [1]);
  assert.deepEqual(await keyed, { offset: 1, epoch: 'E' });
  assert.deepEqual(await echoed, [1]);
  const order = server.calls.filter((m) => m.socket === 1 && m.method !== 'sys.ping').map((m) => m.method);
  assert.deepEqual(order, ['session.info', 'presence.subscribe', 'room.join', 'room.publish', 'sys.echo']);
  assert.deepEqual(server.callsOf('presence.subscribe', 1)[0].params, { users: ['bob'] });
  assert.equal(server.callsOf('room.publish', 1)[0].idempotency_key, 'k1');
});

const schema = { root: 'A', types: { A: [{ name: 'n', type: 'uint8' }, { name: 'm', type: 'map', of: 'uint8' }] } };
/** @param {any} message */
const patch = (message) => ({ jsonrpc: '2.0', method: 'state.patch', params: { room: 'arena', message } });

it('§9.4: a gap calls state.resync; sync() resolves once a full state of the join\'s version is held', async () => {
  const server = new Server({
    'state.schema': () => schema,
    'room.join': (/** @type {any} */ _m, /** @type {any} */ ws) => { ws.after = [patch({ version: 1, state: { n: 1, m: {} } })]; return { offset: 0, epoch: 'E', version: 1 }; },
    'state.resync': (/** @type {any} */ _m, /** @type {any} */ ws) => { ws.after = [patch({ version: 6, state: { n: 6, m: {} } })]; return { version: 6 }; },
  });
  const c = client(server);
  c.connect();
  assert.equal((await c.sync('arena')).version, 1);
  const resynced = event(c, 'state.changed', (e) => e.version === 6);
  server.sockets[0].push(patch({ version: 6, base: 5, patch: { n: 6 } }));
  await resynced;
  assert.equal(server.callsOf('state.resync').length, 1);
  assert.deepEqual(c.roomState('arena')?.toJSON(), { n: 6, m: {} });
});

it('repeated resyncs back off instead of looping', async () => {
  const server = new Server({
    'state.schema': () => schema,
    'room.join': (/** @type {any} */ _m, /** @type {any} */ ws) => { ws.after = [patch({ version: 1, state: { n: 1, m: {} } })]; return { offset: 0, epoch: 'E', version: 1 }; },
    // every full state it sends is corrupt (a uint8 out of range)
    'state.resync': (/** @type {any} */ _m, /** @type {any} */ ws) => { ws.after = [patch({ version: 2, state: { n: 300, m: {} } })]; return { version: 2 }; },
  });
  const c = client(server, { backoff: { ...BACKOFF, base: 40, cap: 40 } });
  c.connect();
  await c.sync('arena');
  const t0 = Date.now();
  server.sockets[0].push(patch({ version: 3, base: 2, patch: { n: 3 } }));
  await server.until(() => server.callsOf('state.resync').length === 4);
  // the first at once, then three more each at least 20 ms (half of 40, the jitter) apart
  assert.ok(Date.now() - t0 >= 60, `${Date.now() - t0} ms for 4 resyncs`);
});

it('sync() rejects a schema with a type the client does not know, before joining', async () => {
  const server = new Server({ 'state.schema': () => ({ root: 'A', types: { A: [{ name: 'v', type: 'float16' }] } }) });
  const c = client(server);
  c.connect();
  await assert.rejects(c.sync('arena'), /A\.v: type "float16"/);
  assert.equal(server.callsOf('room.join').length, 0);
});

it('sync() rejects when the client closes before the full state, and leaves no listener', async () => {
  const server = new Server({ 'state.schema': () => schema, 'room.join': () => ({ offset: 0, epoch: 'E', version: 3 }) });
  const c = client(server);
  const on = c.on.bind(c);
  const waiting = new Promise((resolve) => { c.on = (name, fn) => { if (name === 'closed') resolve(undefined); return on(name, fn); }; });
  c.connect();
  const synced = c.sync('arena');
  await waiting; // joined; now waiting for the full state
  c.close();
  await assert.rejects(synced, (e) => e instanceof CallFailed && e.message === 'client closed');
  assert.equal(c.listeners.get('state.changed')?.size, 0);
  assert.equal(c.listeners.get('closed')?.size, 0);
});

it('a throwing listener is reported asynchronously; the batch and the other listeners go on', async () => {
  const server = new Server({ 'room.join': () => ({ offset: 0, epoch: 'E' }) });
  const c = client(server);
  c.connect();
  await c.join('lobby');
  const got = [];
  c.on('room.message', (m) => { if (m.offset === 1) throw new Error('a bug in a handler'); });
  c.on('room.message', (m) => got.push(m.offset));
  const saved = process.rawListeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const reported = new Promise((resolve) => process.once('uncaughtException', resolve));
  try {
    server.sockets[0].onmessage({ data: JSON.stringify([msg(1).params, msg(2).params].map((params) => ({ jsonrpc: '2.0', method: 'room.message', params }))) });
    assert.deepEqual(got, [1, 2]);
    assert.equal(/** @type {Error} */ (await reported).message, 'a bug in a handler');
  } finally {
    for (const l of saved) process.on('uncaughtException', /** @type {any} */ (l));
  }
  assert.deepEqual(c.rooms.get('lobby')?.position, { offset: 2, epoch: 'E' });
});

it('§8.1: with a token source, session.refresh comes at 80 % of the token\'s life, on the server\'s clock', async () => {
  const skew = 3600e3; // the server's clock is an hour ahead of ours
  const server = new Server({
    'session.info': () => ({ recovery_token: 'r', recovery_expires_at: Date.now() + skew + 3600e3, expires_at: Date.now() + skew + 50 }),
    'sys.ping': () => ({ time: Date.now() + skew }),
    'session.refresh': () => ({ user: 'alice', expires_at: Date.now() + skew + 3600e3 }),
  });
  let n = 0;
  const c = client(server, { token: () => `t${++n}\n` });
  const t0 = Date.now();
  c.connect();
  const [refresh] = await server.until(() => server.callsOf('session.refresh').length && server.callsOf('session.refresh'));
  assert.deepEqual(refresh.params, { token: 't2' });
  assert.ok(Date.now() - t0 >= 35, `refreshed after ${Date.now() - t0} ms of a 50 ms token`);
});

it('§7 liveness: any traffic keeps the link; nothing for livenessTimeout closes it with 3000', async () => {
  let chatty = true;
  const server = new Server({
    'sys.ping': (/** @type {any} */ _m, /** @type {any} */ ws) => { if (chatty) ws.push({ jsonrpc: '2.0', method: 'presence.changed', params: {} }); },
  });
  const c = client(server, { livenessInterval: 5, livenessTimeout: 30 });
  let drops = 0;
  c.on('disconnect', () => drops++);
  c.connect();
  await server.until(() => server.callsOf('sys.ping', 0).length >= 15); // > 75 ms without a ping reply
  assert.equal(drops, 0);
  chatty = false;
  const lost = await event(c, 'disconnect');
  assert.equal(lost.reason, 'no reply to sys.ping');
  assert.equal(server.sockets[0].closeCode, 3000);
});

it('close() rejects what waits and leaves no timer running', async () => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const server = new Server({ 'room.join': () => ({ offset: 0, epoch: 'E' }) });
  const c = client(server, { livenessInterval: 5000, token: () => 't' });
  c.connect();
  await c.join('lobby');
  const inFlight = c.call('sys.nothing');
  assert.ok(timers() > before);
  c.close();
  await assert.rejects(inFlight, /connection lost/);
  await assert.rejects(c.call('sys.echo'), /client closed/);
  assert.equal(timers(), before);
  assert.equal(server.sockets[0].closeCode, 1000);
});
