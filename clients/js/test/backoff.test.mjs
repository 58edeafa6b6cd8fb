import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, classifyClose } from '../rtctl.mjs';

test('nominal delays follow §8.2 (u = 0 gives the nominal value)', () => {
  const b = new Backoff(undefined, () => 0);
  const delays = Array.from({ length: 9 }, () => b.next(0));
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
});

test('jitter keeps every delay in (nominal / 2, nominal]', () => {
  const nominal = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
  for (const u of [0, 0.5, 0.999999]) {
    const b = new Backoff(undefined, () => u);
    for (const n of nominal) {
      const d = b.next(0);
      assert.ok(d > n / 2 && d <= n, `u=${u}: ${d} not in (${n / 2}, ${n}]`);
    }
  }
});

test('the count resets only after a connection stayed open 10 s', () => {
  const b = new Backoff(undefined, () => 0);
  b.next(0); b.next(0); // attempts 1, 2
  b.opened(1000);
  assert.equal(b.next(1000 + 9999), 400, 'open 9.999 s: no reset');
  b.opened(20000);
  assert.equal(b.next(30000), 100, 'open 10 s: reset');
  assert.equal(b.next(60000), 200, 'a failed upgrade (never opened) does not reset');
});

test('close codes are classified as §6.3 says', () => {
  const kinds = Object.fromEntries([1000, 1001, 1005, 1006, 1011, 1013, 4008, 1002, 1003, 1007, 1009, 4001, 4003, 4009, 4321, 3000]
    .map((c) => [c, classifyClose(c)]));
  assert.deepEqual(kinds, {
    1000: 'transport', 1001: 'transport', 1005: 'transport', 1006: 'transport', 1011: 'transport',
    1013: 'transport', 4008: 'transport', 1002: 'protocol', 1003: 'protocol', 1007: 'protocol',
    1009: 'protocol', 4001: 'auth', 4003: 'server', 4009: 'server', 4321: 'server', 3000: 'transport',
  });
});
