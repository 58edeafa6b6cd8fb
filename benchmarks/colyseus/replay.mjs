// Replays benchmarks/state_workload.py's workload through @colyseus/schema 5.0.34 (issue 11's
// baseline) and prints, as JSON, the bytes per tick of its deltas and its encode/decode time.
//
//   node replay.mjs [WORKLOAD.json] [--runs N]      (the workload JSON on stdin without a path)
//
// The schema is declared twice: x and y as "float32" (4 bytes a value) and as "number" (which
// picks its encoding per value: a float32 that survives the round trip takes 5 bytes, a type
// byte then the value). hp is "uint8", name "string", the root a map of entities.
//
// Per tick, as a Colyseus room does it (SchemaSerializer: one encode() shared by every client,
// then discardChanges()): apply the tick's ops, `encoder.encode()` -> the delta, whose length is
// counted, then `encoder.discardChanges()`. The initial state goes to the decoder as
// `encoder.encodeAll()` (not counted) and its pending changes are discarded, as a joining
// client's full state. A Decoder applies every delta and must equal the server's state
// (toJSON(), key order included) after each tick, else the replay fails: the figure is honest.
//
// Time: WARMUP untimed replays (V8 compiles hot code in tiers; a replay takes about a millisecond,
// so a cold one times the compiler), then `--runs` timed replays (each a fresh state); per run,
// the total of encode()+discardChanges() (and of decoder.decode()) over all ticks divided by the
// tick count; the median over runs is printed, in microseconds.
import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { Decoder, Encoder, schema, t } from "@colyseus/schema";

const WARMUP = 50;

function schemas(coordinate) {
    const Entity = schema({
        x: t[coordinate](),
        y: t[coordinate](),
        hp: t.uint8(),
        name: t.string(),
    }, `Entity_${coordinate}`);
    const Arena = schema({ entities: t.map(Entity) }, `Arena_${coordinate}`);
    return { Entity, Arena };
}

function apply({ Entity }, state, ops) {
    for (const op of ops) {
        switch (op[0]) {
            case "move": {
                const entity = state.entities.get(op[1]);
                entity.x = op[2];
                entity.y = op[3];
                break;
            }
            case "hp":
                state.entities.get(op[1]).hp = op[2];
                break;
            case "add":
                state.entities.set(op[1], new Entity().assign({ x: op[2], y: op[3], hp: op[4], name: op[5] }));
                break;
            case "remove":
                state.entities.delete(op[1]);
                break;
            default:
                throw new Error(`unknown op ${JSON.stringify(op)}`);
        }
    }
}

// One replay of the whole workload: the delta sizes and the time spent encoding and decoding.
function replay(types, workload, check) {
    const state = new types.Arena();
    apply(types, state, workload.initial);
    const encoder = new Encoder(state);
    const decoder = new Decoder(new types.Arena());
    decoder.decode(encoder.encodeAll());
    encoder.discardChanges();
    const sizes = [];
    let encodeNs = 0n;
    let decodeNs = 0n;
    workload.ticks.forEach((ops, tick) => {
        apply(types, state, ops);
        const started = process.hrtime.bigint();
        const delta = encoder.encode(); // a view of the encoder's buffer, valid until the next encode
        encoder.discardChanges();
        const encoded = process.hrtime.bigint();
        decoder.decode(delta);
        decodeNs += process.hrtime.bigint() - encoded;
        encodeNs += encoded - started;
        sizes.push(delta.length);
        if (check && !isDeepStrictEqual(decoder.state.toJSON(), state.toJSON())) {
            throw new Error(`decoded state differs from the server's after tick ${tick}`);
        }
        if (check && Object.keys(decoder.state.toJSON().entities).join() !== [...state.entities.keys()].join()) {
            throw new Error(`decoded key order differs from the server's after tick ${tick}`);
        }
    });
    const ticks = BigInt(workload.ticks.length);
    return { sizes, encodeUs: Number(encodeNs / ticks) / 1000, decodeUs: Number(decodeNs / ticks) / 1000 };
}

function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = sorted.length >> 1;
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function measure(coordinate, workload, runs) {
    const types = schemas(coordinate);
    const { sizes } = replay(types, workload, true);
    for (let i = 0; i < WARMUP; i++) replay(types, workload, false);
    const timed = Array.from({ length: runs }, () => replay(types, workload, false));
    const total = sizes.reduce((a, b) => a + b, 0);
    return {
        mean: total / sizes.length,
        median: median(sizes),
        total,
        sizes,
        encode_us: median(timed.map((run) => run.encodeUs)),
        decode_us: median(timed.map((run) => run.decodeUs)),
    };
}

function main(argv) {
    let path = null;
    let runs = 5;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--runs") {
            runs = Number(argv[++i]);
            if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs wants a positive integer");
        } else if (path === null) {
            path = argv[i];
        } else {
            throw new Error(`unexpected argument ${argv[i]}`);
        }
    }
    const workload = JSON.parse(readFileSync(path ?? 0, "utf8"));
    const version = JSON.parse(readFileSync(new URL(
        "./node_modules/@colyseus/schema/package.json", import.meta.url), "utf8")).version;
    const result = { version, node: process.version, runs };
    for (const coordinate of ["float32", "number"]) {
        result[coordinate] = measure(coordinate, workload, runs);
    }
    process.stdout.write(JSON.stringify(result) + "\n");
}

main(process.argv.slice(2));
