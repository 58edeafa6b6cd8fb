"""Bytes per tick of state deltas, side by side: Colyseus, JSON merge patch, rtctl.state.

Issue 11's anchor, measured on one seeded workload (``state_workload.py``: 100
entities, 200 ticks, 10 movers per tick at ±5 units, 0–1 hp changes, an add or a
remove about every 10 ticks). Each encoder sends the initial state once (not
counted), then one delta per tick; a decoder applies every delta and must equal
the server's state after each tick, else the run fails.

* **Colyseus**: ``@colyseus/schema`` 5.0.34 under Node (``colyseus/replay.mjs``;
  ``npm ci`` installs it into ``colyseus/node_modules`` on first use), x and y
  declared as ``float32`` and as ``number``; ``encoder.encode()`` per tick.
* **JSON merge patch** (RFC 7396) of the plain-dict state (``Arena.to_dict()``'s
  shape): the patch from the previous tick's state to this one's (changed fields,
  added entities whole, removed entities as ``null``; keys in the order the state
  holds them), as compact JSON (no spaces) in UTF-8. Floats print as Python's (and
  JavaScript's) shortest round-trip text of the double a float32 holds.
* **merge patch, deflated**: that JSON compressed as permessage-deflate would
  (RFC 7692 §7.2.1): raw DEFLATE (no zlib header), level 6, 15-bit window, each
  message ended with a sync flush whose trailing ``00 00 ff ff`` is dropped. Two
  rows: each message compressed alone (``no_context_takeover``) and with the
  window carried from message to message (context takeover, the default).
* **rtctl**: ``rtctl.state``'s ``Encoder.delta()`` (binary) and ``delta_json()``
  (its JSON encoding, UTF-8 bytes), decoded by ``Decoder(Arena)``.

Time per tick (rtctl and Colyseus): one untimed checked replay, then ``--runs``
timed replays from a fresh state; per replay, the time spent in the encoder's
delta call (``delta()``; Colyseus ``encode()`` + ``discardChanges()``) and in the
decoder's apply, summed over the ticks and divided by their number
(``time.perf_counter_ns``; Node ``process.hrtime.bigint``); the median over
replays. Mutating the state (the ops) is not timed.

Prints a markdown table; ``--json FILE`` writes every figure, per-tick sizes
included. Exit status 0 only if the issue's targets hold: rtctl's binary mean at
most both 121 and Colyseus float32's measured mean, its JSON mean at most both
533 and the merge patch's measured mean.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from state_workload import Arena, Workload, apply, apply_plain, workload

from rtctl.state import Decoder, Encoder

COLYSEUS_DIR = Path(__file__).resolve().parent / "colyseus"
BINARY_TARGET = 121.0  # Colyseus float32 bytes/tick in the issue
JSON_TARGET = 533.0  # JSON merge-patch bytes/tick in the issue
DEFLATE_LEVEL = 6
SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"  # dropped from each message, RFC 7692 §7.2.1


@dataclass(frozen=True)
class Column:
    """One encoder's figures: bytes per tick and, where timed, µs per tick."""

    name: str
    sizes: tuple[int, ...]
    encode_us: float | None = None
    decode_us: float | None = None

    @property
    def mean(self) -> float:
        return statistics.fmean(self.sizes)

    @property
    def median(self) -> float:
        return statistics.median(self.sizes)


# -- Colyseus (Node) ---------------------------------------------------------------


def ensure_colyseus() -> None:
    """Install ``@colyseus/schema`` from the lockfile on first use; exit with one
    clear line when Node or npm is missing."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"state_bytes: {' and '.join(missing)} not found; the Colyseus baseline needs "
                 "Node 20+ and npm on PATH")
    if (COLYSEUS_DIR / "node_modules" / "@colyseus" / "schema" / "package.json").exists():
        return
    print("state_bytes: npm ci in benchmarks/colyseus (first use)", file=sys.stderr)
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=COLYSEUS_DIR,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"state_bytes: npm ci failed in {COLYSEUS_DIR}:\n{done.stderr.strip()}")


def measure_colyseus(work: Workload, runs: int) -> tuple[dict[str, Any], list[Column]]:
    """Replay ``work`` through ``replay.mjs``: its metadata and one column per declaration."""
    ensure_colyseus()
    done = subprocess.run(["node", "replay.mjs", "--runs", str(runs)], cwd=COLYSEUS_DIR,
                          input=work.to_json(), capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"state_bytes: the Colyseus replay failed:\n{done.stderr.strip()}")
    result = json.loads(done.stdout)
    columns = [Column(f"Colyseus {result['version']}, {kind}", tuple(result[kind]["sizes"]),
                      result[kind]["encode_us"], result[kind]["decode_us"])
               for kind in ("float32", "number")]
    return {"version": result["version"], "node": result["node"]}, columns


# -- JSON merge patch (RFC 7396) ---------------------------------------------------


def merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``old`` into ``new`` (RFC 7396 §1: members to set,
    ``null`` for members to remove; an object member patched recursively)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif isinstance(value, dict) and isinstance(old[key], dict):
            if nested := merge_diff(old[key], value):
                patch[key] = nested
        elif old[key] != value:
            patch[key] = value
    patch.update((key, None) for key in old if key not in new)
    return patch


def merge_apply(target: Any, patch: Any) -> Any:
    """``MergePatch(Target, Patch)`` exactly as RFC 7396 §2 gives it (``target`` is
    changed in place when it is an object)."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_apply(target.get(key), value)
    return target


def deflated(messages: Sequence[bytes], *, takeover: bool) -> tuple[int, ...]:
    """Each message's size once compressed by permessage-deflate (module docstring)."""
    sizes = []
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    for message in messages:
        if not takeover:
            compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        sizes.append(len(data.removesuffix(SYNC_FLUSH_TAIL)))
    return tuple(sizes)


def measure_merge_patch(work: Workload) -> list[Column]:
    """Merge-patch sizes per tick, plain and deflated; a client applying each patch
    must end each tick equal to the server (key order included)."""
    server: dict[str, Any] = {}
    apply_plain(server, work.initial)
    client: dict[str, Any] = json.loads(json.dumps(server))
    messages = []
    for tick, ops in enumerate(work.ticks):
        apply_plain(server, ops)
        message = json.dumps(merge_diff(client, server), separators=(",", ":")).encode()
        merge_apply(client, json.loads(message))
        if json.dumps(client) != json.dumps(server):
            raise AssertionError(f"merge patch: client differs from server after tick {tick}")
        messages.append(message)
    return [
        Column("JSON merge patch", tuple(map(len, messages))),
        Column("merge patch, deflate per message", deflated(messages, takeover=False)),
        Column("merge patch, deflate with context takeover", deflated(messages, takeover=True)),
    ]


# -- rtctl.state -------------------------------------------------------------------


def replay_rtctl(work: Workload, *, binary: bool, check: bool) -> tuple[list[int], int, int]:
    """One replay through rtctl's encoder and decoder: per-tick sizes, total encode ns,
    total decode ns. With ``check``, the decoder's state must equal the server's
    (``to_dict()``, entity order included) after every tick."""
    arena = Arena()
    apply(arena, work.initial)
    encoder, decoder = Encoder(arena), Decoder(Arena)
    delta: Callable[[], bytes | str] = encoder.delta if binary else encoder.delta_json
    decoder.apply(encoder.full() if binary else encoder.full_json())
    sizes, encode_ns, decode_ns = [], 0, 0
    for tick, ops in enumerate(work.ticks):
        apply(arena, ops)
        started = time.perf_counter_ns()
        message = delta()
        encoded = time.perf_counter_ns()
        decoder.apply(message)
        decode_ns += time.perf_counter_ns() - encoded
        encode_ns += encoded - started
        sizes.append(len(message) if isinstance(message, bytes) else len(message.encode()))
        if check:
            expected, got = arena.to_dict(), decoder.state.to_dict()
            if got != expected or list(got["entities"]) != list(expected["entities"]):
                raise AssertionError(f"rtctl: decoder differs from server after tick {tick}")
    return sizes, encode_ns, decode_ns


def measure_rtctl(work: Workload, runs: int) -> list[Column]:
    """rtctl's binary and JSON deltas: sizes from a checked replay, medians of ``runs``
    timed ones."""
    columns = []
    for binary, name in ((True, "rtctl.state binary"), (False, "rtctl.state JSON")):
        sizes, _, _ = replay_rtctl(work, binary=binary, check=True)
        timed = [replay_rtctl(work, binary=binary, check=False) for _ in range(runs)]
        ticks = len(work.ticks)
        columns.append(Column(name, tuple(sizes),
                              statistics.median(run[1] for run in timed) / ticks / 1000,
                              statistics.median(run[2] for run in timed) / ticks / 1000))
    return columns


# -- report ------------------------------------------------------------------------


def targets(colyseus: Column, merge: Column, binary: Column, text: Column
            ) -> list[tuple[str, bool]]:
    """The issue's byte targets, against its figures and the baselines measured here."""
    return [
        (f"rtctl binary {binary.mean:.1f} <= {BINARY_TARGET:.0f} and <= Colyseus float32 "
         f"{colyseus.mean:.1f}", binary.mean <= min(BINARY_TARGET, colyseus.mean)),
        (f"rtctl JSON {text.mean:.1f} <= {JSON_TARGET:.0f} and <= merge patch {merge.mean:.1f}",
         text.mean <= min(JSON_TARGET, merge.mean)),
    ]


def table(columns: Sequence[Column], baseline: Column) -> str:
    def us(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    lines = ["| encoding | bytes/tick mean | median | vs Colyseus float32 | encode µs/tick "
             "| decode µs/tick |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {c.name} | {c.mean:.1f} | {c.median:g} | {c.mean / baseline.mean:.2f} "
              f"| {us(c.encode_us)} | {us(c.decode_us)} |" for c in columns]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5, help="timed replays (median)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    work = workload(args.seed, args.entities, args.ticks)
    meta, colyseus = measure_colyseus(work, args.runs)
    merge = measure_merge_patch(work)
    rtctl = measure_rtctl(work, args.runs)
    columns = [*colyseus, *merge, *rtctl]
    checks = targets(colyseus[0], merge[0], *rtctl)
    print(f"workload: seed {args.seed}, {args.entities} entities, {args.ticks} ticks; "
          f"Colyseus {meta['version']} on Node {meta['node']}, Python "
          f"{platform.python_version()}; times are medians of {args.runs} runs\n")
    print(table(columns, colyseus[0]))
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")
    if args.json:
        report = {"workload": {"seed": args.seed, "entities": args.entities,
                               "ticks": args.ticks},
                  "runs": args.runs, "colyseus": meta, "python": platform.python_version(),
                  "columns": [{**asdict(c), "mean": c.mean, "median": c.median}
                              for c in columns],
                  "targets": [{"target": text, "pass": ok} for text, ok in checks]}
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
