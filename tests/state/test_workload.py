"""The seeded state-sync workload (benchmarks/state_workload.py) has the shape its
docstring states, and is the same for every encoder that replays it.

Frequencies are checked over 4,000 seeded ticks: the hp-change rate (1/2 per tick)
within ±0.04 and the add/remove rate (1/10) within ±0.025, each over 5 binomial
standard deviations (0.0079 and 0.0047).
"""

from __future__ import annotations

import importlib.util
import json
import string
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

MODULE = Path(__file__).resolve().parents[2] / "benchmarks" / "state_workload.py"
STEP_SLACK = 1e-3  # a float32 near 1000 is within 3.1e-5 of the float64 sum it rounds


def _load() -> ModuleType:
    """benchmarks/ is not a package: load the module from its file (registered in
    sys.modules so its dataclass and schema annotations resolve)."""
    spec = importlib.util.spec_from_file_location("state_workload", MODULE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sw = _load()


def _floats(op: tuple[Any, ...]) -> list[float]:
    return [value for value in op if isinstance(value, float)]


def test_same_seed_same_workload_other_seed_other() -> None:
    assert sw.workload(5) == sw.workload(5)
    assert sw.workload(5).ticks != sw.workload(6).ticks


def test_initial_entities() -> None:
    work = sw.workload(3, entities=120)
    assert [op[1] for op in work.initial] == [f"e{i}" for i in range(120)]
    for _, _, x, y, hp, name in work.initial:
        assert 0 <= x < 1000
        assert 0 <= y < 1000
        assert 0 <= hp <= 255
        assert len(name) == 8
        assert set(name) <= set(string.ascii_letters)


def test_every_tick_moves_ten_live_entities_by_at_most_five() -> None:
    work = sw.workload(7, ticks=500)
    positions = {op[1]: (op[2], op[3]) for op in work.initial}
    used = set(positions)
    counts = set()
    for ops in work.ticks:
        kinds = Counter(op[0] for op in ops)
        assert kinds["move"] == 10
        assert kinds["hp"] <= 1
        assert kinds["add"] + kinds["remove"] <= 1
        for op in ops:
            if op[0] == "add":
                assert op[1] not in used  # keys are never reused
                used.add(op[1])
                positions[op[1]] = op[2], op[3]
            elif op[0] == "remove":
                del positions[op[1]]
        moved = [op for op in ops if op[0] == "move"]
        assert len({op[1] for op in moved}) == 10
        for _, key, x, y in moved:
            old_x, old_y = positions[key]
            assert abs(x - old_x) <= 5 + STEP_SLACK
            assert abs(y - old_y) <= 5 + STEP_SLACK
            positions[key] = x, y
        assert all(op[1] in positions for op in ops if op[0] == "hp")
        counts.add(len(positions))
    assert counts == {99, 100, 101}  # adds and removes both happen, around the target


def test_rates_of_hp_changes_and_structural_changes() -> None:
    ticks = sw.workload(11, ticks=4000).ticks
    hp = sum(any(op[0] == "hp" for op in ops) for ops in ticks) / len(ticks)
    structural = sum(any(op[0] in ("add", "remove") for op in ops) for ops in ticks) / len(ticks)
    assert hp == pytest.approx(0.5, abs=0.04)
    assert structural == pytest.approx(0.1, abs=0.025)


def test_floats_are_float32_and_survive_json() -> None:
    work = sw.workload(2, ticks=50)
    ops = [*work.initial, *(op for tick in work.ticks for op in tick)]
    assert all(sw.to_float32(value) == value for op in ops for value in _floats(op))
    parsed = json.loads(work.to_json())
    assert parsed["seed"] == 2
    assert parsed["initial"] == [list(op) for op in work.initial]
    assert parsed["ticks"] == [[list(op) for op in tick] for tick in work.ticks]


def test_too_few_entities_to_move_ten() -> None:
    with pytest.raises(ValueError, match="more than 10"):
        sw.workload(entities=10)


def test_apply_to_an_arena_matches_the_plain_state() -> None:
    work = sw.workload(4, ticks=100)
    arena, plain = sw.Arena(), {}
    sw.apply(arena, work.initial)
    sw.apply_plain(plain, work.initial)
    for ops in work.ticks:
        sw.apply(arena, ops)
        sw.apply_plain(plain, ops)
        state = arena.to_dict()
        assert state == plain
        assert list(state["entities"]) == list(plain["entities"])
