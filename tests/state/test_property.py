"""Hypothesis: random mutation sequences on a schema with every kind of field, committed at
random points, keep every decoder's state equal to the server's.

After every ``delta()``: the binary decoder equals the server bit for bit and in map
order; a JSON decoder fed ``since_json(previous)`` equals it as JSON can carry it
(any NaN, any map order). At random commits: decoders left behind at older versions
catch up with ``since(v)`` / ``since_json(v)``, and a fresh decoder given ``full()`` /
``full_json()`` equals the server too. A commit that only followed no-op assignments
sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rtctl.state import Decoder, Encoder, Schema, versions
from rtctl.state.nodes import ListOf, MapOf, Node, SchemaOf
from rtctl.state.types import Primitive
from tests.fuzz.strategies import FUZZ
from tests.state.schemas import EDGES, Leaf, Unit, World, exact, loose

STATE = settings(FUZZ, max_examples=100)
KEYS = st.sampled_from(["a", "b", "c", "d", "é", "🙂"])


def _ints(bits: int, *, signed: bool) -> st.SearchStrategy[int]:
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    near = st.integers(-3, 3).filter(lambda step: low <= step <= high)  # small relative steps
    return st.integers(low, high) | st.sampled_from([low, high]) | near


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "str": st.text(max_size=6) | st.sampled_from(EDGES["text"]),
    "float32": st.floats(width=32) | st.sampled_from(EDGES["f32"]),
    "float64": st.floats() | st.sampled_from(EDGES["f64"]),
    **{f"int{bits}": _ints(bits, signed=True) for bits in (8, 16, 32, 64)},
    **{f"uint{bits}": _ints(bits, signed=False) for bits in (8, 16, 32, 64)},
}


def _strategy(kind: Any) -> st.SearchStrategy[Any]:
    if isinstance(kind, Primitive):
        return VALUES[kind.name]
    if isinstance(kind, SchemaOf):
        return instances(kind.cls)
    if isinstance(kind, MapOf):
        return st.dictionaries(KEYS, _strategy(kind.item), max_size=3)
    assert isinstance(kind, ListOf)
    return st.lists(_strategy(kind.item), max_size=3)


def instances(cls: type[Schema]) -> st.SearchStrategy[Any]:
    """Fresh instances of ``cls`` with some fields set (the others at their defaults)."""
    return st.fixed_dictionaries(
        {}, optional={field.name: _strategy(field.type) for field in cls.fields()},
    ).map(lambda values: cls(**values))


UNITS = instances(Unit)


def _nodes(world: World) -> list[Schema]:
    return [world, world.leaf, *world.units.values(), *world.squad]


def _units(world: World) -> list[Unit]:
    return [*world.units.values(), *world.squad]


# Each mutation returns False when it is a no-op assignment (nothing may be sent for it).
Mutation = Callable[[World, st.DataObject], bool]


def set_field(world: World, data: st.DataObject) -> bool:
    node = data.draw(st.sampled_from(_nodes(world)))
    field = data.draw(st.sampled_from([f for f in node.fields() if isinstance(f.type, Primitive)]))
    setattr(node, field.name, data.draw(VALUES[field.type.name]))  # type: ignore[union-attr]
    return True


def assign_same(world: World, data: st.DataObject) -> bool:
    """Assign what is already there: a field, a nested schema, a map entry, a list element."""
    node = data.draw(st.sampled_from(_nodes(world)))
    names = [f.name for f in node.fields() if not isinstance(f.type, MapOf | ListOf)]
    name = data.draw(st.sampled_from(names))
    setattr(node, name, getattr(node, name))
    for mapping in (world.units, world.scores):
        for key in list(mapping):
            mapping[key] = mapping[key]
    for items in (world.squad, world.path):
        for index in range(len(items)):
            items[index] = items[index]
    return False


def replace_leaf(world: World, data: st.DataObject) -> bool:
    world.leaf = data.draw(instances(Leaf))
    return True


def put_unit(world: World, data: st.DataObject) -> bool:
    world.units[data.draw(KEYS)] = data.draw(UNITS)  # an add, or a replacement
    return True


def remove_unit(world: World, data: st.DataObject) -> bool:
    if world.units:
        del world.units[data.draw(st.sampled_from(list(world.units)))]
    return True


def readd_unit(world: World, data: st.DataObject) -> bool:
    """Remove a key and add it again: the same instance (now detached) or a new one."""
    if world.units:
        key = data.draw(st.sampled_from(list(world.units)))
        unit = world.units.pop(key)
        world.units[key] = unit if data.draw(st.booleans()) else data.draw(UNITS)
    return True


def move_unit(world: World, data: st.DataObject) -> bool:
    """Take a unit out of the map and put it elsewhere: another key or the squad."""
    if world.units:
        unit = world.units.pop(data.draw(st.sampled_from(list(world.units))))
        if data.draw(st.booleans()):
            world.units[data.draw(KEYS)] = unit
        else:
            world.squad.append(unit)
    return True


def edit_unit(world: World, data: st.DataObject) -> bool:
    """Inside an entry: its own map and list."""
    units = _units(world)
    if units:
        unit = data.draw(st.sampled_from(units))
        key = data.draw(KEYS)
        if key in unit.bag and data.draw(st.booleans()):
            del unit.bag[key]
        else:
            unit.bag[key] = data.draw(VALUES["int8"])
        if unit.tags and data.draw(st.booleans()):
            unit.tags[data.draw(st.integers(0, len(unit.tags) - 1))] = data.draw(VALUES["str"])
        else:
            unit.tags.append(data.draw(VALUES["str"]))
    return True


def edit_scores(world: World, data: st.DataObject) -> bool:
    key = data.draw(KEYS)
    if key in world.scores and data.draw(st.booleans()):
        del world.scores[key]
    else:
        world.scores[key] = data.draw(VALUES["float32"])
    return True


def edit_squad(world: World, data: st.DataObject) -> bool:
    """Appends, pops, slices, a reordering of the same elements."""
    squad, size = world.squad, len(world.squad)
    choice = data.draw(st.sampled_from(["append", "pop", "slice", "reverse"]))
    if choice == "append" or not size:
        squad.append(data.draw(UNITS))
    elif choice == "pop":
        squad.pop(data.draw(st.integers(-size, size - 1)))
    elif choice == "slice":
        start = data.draw(st.integers(0, size))
        end = data.draw(st.integers(start, size))
        squad[start:end] = data.draw(st.lists(UNITS, max_size=2))
    else:
        squad[:] = list(reversed(squad))
    return True


def replace_member(world: World, data: st.DataObject) -> bool:
    """An element of the squad replaced in place (the list keeps its shape)."""
    if world.squad:
        world.squad[data.draw(st.integers(0, len(world.squad) - 1))] = data.draw(UNITS)
    return True


def edit_path(world: World, data: st.DataObject) -> bool:
    path, size = world.path, len(world.path)
    choice = data.draw(st.sampled_from(["append", "pop", "delslice", "set"]))
    if choice == "append" or not size:
        path.append(data.draw(VALUES["int16"]))
    elif choice == "pop":
        path.pop()
    elif choice == "delslice":
        del path[data.draw(st.integers(0, size)):]
    else:
        path[data.draw(st.integers(0, size - 1))] = data.draw(VALUES["int16"])
    return True


def reassign_containers(world: World, data: st.DataObject) -> bool:
    """Assign whole maps and lists (fields replaced in place, entry by entry)."""
    world.scores = data.draw(st.dictionaries(KEYS, VALUES["float32"], max_size=3))
    world.path = data.draw(st.lists(VALUES["int16"], max_size=4))
    if data.draw(st.booleans()):
        world.units = {key: world.units.pop(key) for key in reversed(list(world.units))}
    return True


MUTATIONS: list[Mutation] = [set_field, set_field, assign_same, replace_leaf, put_unit,
                             remove_unit, readd_unit, move_unit, edit_unit, edit_scores,
                             edit_squad, replace_member, edit_path, reassign_containers]


def _resolve(state: Schema, path: tuple[str | int, ...]) -> Any:
    node: Any = state
    for step in path:
        node = getattr(node, step) if isinstance(node, Schema) else node[step]
    return node


def _plain(value: Any) -> Any:
    if isinstance(value, Node):
        return value.to_plain()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _check_changes(decoder: Decoder, changes: list[Any]) -> None:
    """What a message reports it set, added or replaced is what the state now holds."""
    for change in changes:
        if change.kind != "remove":
            held = _resolve(decoder.state, change.path)
            assert exact(_plain(held)) == exact(_plain(change.value))


class Mirror:
    """A pair of decoders (binary and JSON) at one version."""

    def __init__(self, binary: list[bytes], json: list[str]) -> None:
        self.binary, self.json = Decoder(World), Decoder(World)
        for message in binary:
            self.binary.apply(message)
        for text in json:
            self.json.apply(text)

    def catch_up(self, enc: Encoder, world: World) -> None:
        base = self.binary.version
        assert base is not None
        self.binary.apply(enc.since(base))
        self.json.apply(enc.since_json(base))
        assert self.binary.version == self.json.version == enc.version
        assert exact(self.binary.state.to_dict()) == exact(world.to_dict())
        assert loose(self.json.state.to_dict()) == loose(world.to_dict())


@STATE
@given(instances(World), st.data())
def test_decoders_follow_random_mutations(world: World, data: st.DataObject) -> None:
    enc = Encoder(world, history=1000)
    first = enc.delta()
    assert first[0] == 0x01  # nothing sent yet: the first delta is a full state
    binary_log, json_log = [first], [enc.full_json()]
    live = Mirror(binary_log, json_log)
    behind: list[Mirror] = []
    changed = False
    for _ in range(data.draw(st.integers(1, 40), label="steps")):
        if data.draw(st.integers(0, 3), label="commit?") != 0:
            changed |= data.draw(st.sampled_from(MUTATIONS))(world, data)
            continue
        previous = enc.version
        step = data.draw(st.none() | st.integers(1, 3), label="version step")
        message = enc.delta(None if step is None else previous + step)
        if not changed:
            assert message == b""
        changed = False
        changes = live.binary.apply(message)
        _check_changes(live.binary, changes)
        live.json.apply(enc.since_json(previous))
        if message:
            assert versions(message) == (enc.version, previous)
            binary_log.append(message)
            json_log.append(enc.since_json(previous))
        assert live.binary.version == live.json.version == enc.version
        assert exact(live.binary.state.to_dict()) == exact(world.to_dict())
        assert loose(live.json.state.to_dict()) == loose(world.to_dict())
        if data.draw(st.booleans(), label="leave a decoder behind"):
            behind.append(Mirror(binary_log, json_log))
        if behind and data.draw(st.booleans(), label="catch one up"):
            behind[data.draw(st.integers(0, len(behind) - 1))].catch_up(enc, world)
        if data.draw(st.booleans(), label="a fresh decoder"):
            fresh = Mirror([enc.full()], [enc.full_json()])
            assert exact(fresh.binary.state.to_dict()) == exact(world.to_dict())
            assert loose(fresh.json.state.to_dict()) == loose(world.to_dict())
    for mirror in behind:
        enc.commit()
        mirror.catch_up(enc, world)
