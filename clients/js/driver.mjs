// The conformance driver (docs/conformance.md, "The driver contract") around rtctl.mjs.
// Run: rtctl conformance client -- node --experimental-websocket clients/js/driver.mjs
import { Client, RpcError, CallFailed } from './rtctl.mjs';

const url = process.env.RTCTL_URL;
const tokenUrl = process.env.RTCTL_TOKEN_URL;
if (!url || !tokenUrl) {
  console.error('driver.mjs: RTCTL_URL and RTCTL_TOKEN_URL must be set (rtctl conformance client sets them)');
  process.exit(2);
}

/** A new token for every connection (allowed by the contract; it covers 4001). */
async function token() {
  const r = await fetch(tokenUrl);
  if (!r.ok) throw new Error(`GET ${tokenUrl}: HTTP ${r.status}`);
  return (await r.text()).trim();
}

const client = new Client(url, { token });

/** @param {string} method @param {Promise<any>} settled */
async function report(method, settled) {
  let outcome;
  try {
    outcome = { method, result: await settled };
  } catch (e) {
    if (!(e instanceof RpcError || e instanceof CallFailed)) throw e;
    outcome = { method, error: e.toJSON() };
  }
  await client.call('conformance.outcome', outcome);
}

/** @param {any} p conformance.call's params */
function makeCall(p) {
  if (p.method === 'room.join') {
    const { room, options, since } = Array.isArray(p.params) ? { room: p.params[0], options: p.params[1], since: p.params[2] } : p.params;
    return client.join(room, { options, since });
  }
  return client.call(p.method, p.params, { idempotencyKey: p.idempotency_key });
}

const handlers = {
  /** @param {any} p */
  'conformance.call': (p) => report(p.method, makeCall(p)),
  /** @param {any} p */
  'conformance.sync': (p) => report('room.join', client.sync(p.room)),
  /** @param {any} p */
  'conformance.report': (p) => {
    const copy = client.roomState(p.room);
    return client.call('conformance.state', { room: p.room, version: copy?.version ?? null, state: copy?.toJSON() ?? null });
  },
  'conformance.done': () => {
    const ws = client.ws;
    client.close();
    if (ws) ws.addEventListener('close', () => process.exit(0)); else process.exit(0);
  },
};

client.on('notification', ({ method, params }) => {
  const handler = handlers[/** @type {keyof handlers} */ (method)];
  handler?.(params)?.catch((/** @type {Error} */ e) => console.error(`driver.mjs: ${method}: ${e.message}`));
});
client.on('disconnect', (e) => console.error(`driver.mjs: disconnected ${e.code} (${e.kind})`));
client.on('closed', (e) => console.error(`driver.mjs: stopped after ${e.code} (${e.kind})`));
client.connect();
