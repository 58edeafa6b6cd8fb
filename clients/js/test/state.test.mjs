import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoomState } from '../rtctl.mjs';

// protocol.md §9.2/§9.3's worked example, as state.schema would describe it
const schema = {
  root: 'Arena',
  types: {
    Arena: [{ name: 'tick', type: 'uint32' }, { name: 'entities', type: 'map', of: 'Entity' }],
    Entity: [{ name: 'x', type: 'float32' }, { name: 'y', type: 'float32' }, { name: 'hp', type: 'uint8' }, { name: 'name', type: 'str' }],
  },
};
const full = { version: 1, state: { tick: 0, entities: { a: { x: 10.0, y: 1.5, hp: 100, name: 'aa' }, b: { x: 20.0, y: 1.5, hp: 100, name: 'bb' }, c: { x: 30.0, y: 1.5, hp: 100, name: 'cc' }, d: { x: 500.25, y: 1.5, hp: 100, name: 'dd' } } } };
const delta = { version: 2, base: 1, patch: { tick: 1, entities: { a: null, e: { x: 0.0, y: 0.0, hp: 7, name: 'eve' }, b: { hp: 90 }, d: { x: 500.75 } } } };
const v2 = { tick: 1, entities: { b: { x: 20.0, y: 1.5, hp: 90, name: 'bb' }, c: { x: 30.0, y: 1.5, hp: 100, name: 'cc' }, d: { x: 500.75, y: 1.5, hp: 100, name: 'dd' }, e: { x: 0.0, y: 0.0, hp: 7, name: 'eve' } } };

test('the worked example: full state, then the delta, gives state-v2 in map order b, c, d, e', () => {
  const room = new RoomState(schema);
  assert.equal(room.apply(full), 'applied');
  assert.equal(room.apply(delta), 'applied');
  assert.equal(room.version, 2);
  assert.deepEqual(room.toJSON(), v2);
  assert.deepEqual(Object.keys(room.state.entities), ['b', 'c', 'd', 'e']);
});

test('§9.4: deltas before a snapshot are dropped, duplicates ignored, gaps ask for a resync', () => {
  const room = new RoomState(schema);
  assert.equal(room.apply(delta), 'ignored', 'needs snapshot');
  room.apply(full);
  room.apply(delta);
  assert.equal(room.apply(delta), 'ignored', 'duplicate');
  assert.equal(room.apply({ version: 9, base: 7, patch: { tick: 9 } }), 'resync', 'gap');
  assert.equal(room.needsSnapshot, true);
  assert.equal(room.version, 2, 'nothing applied');
  assert.equal(room.apply({ ...full, version: 1 }), 'applied', 'a full state is taken while a snapshot is needed');
});

test('corrupt messages change nothing and ask for a resync', () => {
  for (const bad of [
    { version: 2, base: 1, patch: { tick: 1, nope: 2 } }, // unknown field
    { version: 2, base: 1, patch: { entities: { zz: null } } }, // removes a key not held
    { version: 2, base: 1, patch: { tick: 1, entities: { b: { hp: 300 } } } }, // uint8 overflow
    { version: 2, base: 1, patch: { entities: { e: { x: 1 } } } }, // an added entry written partly
    { version: '2', base: 1, patch: {} }, // version not an integer
  ]) {
    const room = new RoomState(schema);
    room.apply(full);
    assert.equal(room.apply(bad), 'resync', JSON.stringify(bad));
    assert.deepEqual(room.toJSON(), full.state);
    assert.equal(room.version, 1);
  }
  const room = new RoomState(schema);
  assert.equal(room.apply({ version: 1, state: { tick: 0 } }), 'resync', 'a full state missing a field');
});

test('non-finite floats travel as strings and are read back as floats', () => {
  const room = new RoomState(schema);
  room.apply(full);
  room.apply({ version: 2, base: 1, patch: { entities: { a: { x: 'NaN', y: '-Infinity' } } } });
  assert.ok(Number.isNaN(room.state.entities.a.x));
  assert.equal(room.state.entities.a.y, -Infinity);
  assert.deepEqual(room.toJSON().entities.a, { x: 'NaN', y: '-Infinity', hp: 100, name: 'aa' });
  assert.equal(room.apply({ version: 3, base: 2, patch: { entities: { a: { name: 7 } } } }), 'resync');
});

test('map keys named like Object.prototype members are ordinary keys', () => {
  const room = new RoomState({ root: 'A', types: { A: [{ name: 'm', type: 'map', of: 'E' }], E: [{ name: 'hp', type: 'uint8' }] } });
  assert.equal(room.apply(JSON.parse('{"version":1,"state":{"m":{"__proto__":{"hp":1}}}}')), 'applied');
  assert.equal(room.apply(JSON.parse('{"version":2,"base":1,"patch":{"m":{"constructor":{"hp":2},"__proto__":{"hp":3}}}}')), 'applied');
  assert.deepEqual(Object.keys(room.state.m), ['__proto__', 'constructor']);
  assert.equal(room.toJSON().m.constructor.hp, 2);
  assert.equal(JSON.stringify(room.toJSON().m), '{"__proto__":{"hp":3},"constructor":{"hp":2}}');
  assert.equal(room.apply(JSON.parse('{"version":3,"base":2,"patch":{"m":{"toString":{"hp":1},"valueOf":{}}}}')), 'resync', 'an added entry written partly');
  room.apply(JSON.parse('{"version":2,"state":{"m":{}}}'));
  assert.equal(room.apply(JSON.parse('{"version":3,"base":2,"patch":{"m":{"toString":null}}}')), 'resync', 'removes a key not held');
  assert.equal(new RoomState({ root: 'A', types: { A: [{ name: 'f', type: 'float32' }] } }).apply({ version: 0, state: { f: 'toString' } }), 'resync');
});
