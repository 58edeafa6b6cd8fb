"""What a game writes for a room whose state the server owns: a :class:`StateRoom`.

::

    class ArenaRoom(StateRoom[Arena]):
        schema = Arena
        tick_rate = 20                              # Hz; on_tick runs this often
        writable = {"entities.*.name": "cas"}       # everything else is server-only

        def on_join(self, user: str) -> None:
            self.state.entities[user] = Entity(x=0, y=0, hp=100, name=user)

        def on_leave(self, user: str) -> None:
            del self.state.entities[user]

        def on_input(self, user: str, data: Any) -> Any:
            self.state.entities[user].x += data["dx"]

        def on_tick(self, dt: float) -> None:
            ...

    Gateway(config, services=builtin_services(room_types={"arena": ArenaRoom}))
    # or: rtctl serve --room-type arena=mygame.rooms:ArenaRoom

Rooms named ``arena`` or ``arena:<anything>`` are then ``ArenaRoom``\\ s. Hooks
run on the event loop between ticks and must not block; whatever they change
goes out at the next tick as one delta (:mod:`rtctl.services.state`).

Clients write only what :attr:`StateRoom.writable` allows, per field pattern
(``*`` matches one path segment):

``"cas"``   compare-and-set: the write names the room version its client read
            (``expect_version``); if the entity holding the field (the schema
            node, e.g. ``entities.e1``) changed after that version, the write
            fails with -32009, the entity's version and the field's value, to
            read again and retry;
``"lww"``   last writer wins, ordered by hybrid logical clock stamps
            (:mod:`rtctl.state.hlc`) the clients send: a write older than the
            one held is answered ``applied: false``.

Any other field is server-only: a write is -32003 naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from rtctl.exceptions import InvalidParams, RpcError
from rtctl.protocol.codes import ErrorCode
from rtctl.state import Schema
from rtctl.state.containers import StateList, StateMap
from rtctl.state.hlc import Stamp
from rtctl.state.nodes import Node
from rtctl.state.types import Primitive

__all__ = ["DEFAULT_SNAPSHOT_EVERY", "DEFAULT_SNAPSHOT_TTL", "DEFAULT_TICK_RATE", "Policy",
           "StateRoom", "Target", "resolve"]

DEFAULT_TICK_RATE = 20.0  # Hz: Valve's default snapshot rate (cl_updaterate 20)
DEFAULT_SNAPSHOT_EVERY = 100  # versions between kept snapshots (5 s at 20 Hz)
DEFAULT_SNAPSHOT_TTL = 300.0  # s: players of a dead node have that long to come back

S = TypeVar("S", bound=Schema)


class Policy(enum.Enum):
    """Who may write a field, and how conflicts resolve."""

    SERVER = "server"
    CAS = "cas"
    LWW = "lww"


class StateRoom(Generic[S]):
    """Base class of a game's stateful room type; one instance per live room."""

    schema: ClassVar[type[Schema]]
    tick_rate: float = DEFAULT_TICK_RATE  # an instance may set its own in on_create
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY
    snapshot_ttl: float = DEFAULT_SNAPSHOT_TTL  # how long a kept snapshot outlives its room
    writable: ClassVar[Mapping[str, str]] = {}

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = options  # the first joiner's room.join options
        self.state: S = self.schema()  # type: ignore[assignment]
        self.version = 0  # the last version sent to the members
        self.clocks: dict[tuple[str, ...], Stamp] = {}  # the stamp of each LWW field's value

    def on_create(self) -> None:
        """The room was created (first join); ``self.options`` came with that join."""

    def on_restore(self) -> None:
        """The room resumed from a kept snapshot (its last node died): ``self.state`` is
        that snapshot's; on_create ran just before, on a fresh state it replaced."""

    def on_join(self, user: str) -> None:
        """A connection of ``user`` joined (raise an RpcError to refuse it)."""

    def on_leave(self, user: str) -> None:
        """A connection of ``user`` left, or was closed."""

    def on_input(self, user: str, data: Any) -> Any:
        """``state.input {room, data}`` from ``user``; the return value is the reply."""
        raise RpcError(ErrorCode.METHOD_NOT_FOUND,
                       f"room type {type(self).__name__} takes no input")

    def on_tick(self, dt: float) -> None:
        """Advance the simulation by ``dt`` seconds (the time since the last tick)."""

    @classmethod
    def policy(cls, path: Sequence[str]) -> Policy:
        """The write policy of the field at ``path``: the first pattern that matches."""
        for pattern, policy in cls.writable.items():
            parts = pattern.split(".")
            if len(parts) == len(path) and all(p in ("*", s) for p, s in zip(parts, path,
                                                                              strict=True)):
                return Policy(policy)
        return Policy.SERVER


class Target:
    """A primitive a client addressed: the node holding it and its key there."""

    __slots__ = ("key", "kind", "node", "path")

    def __init__(self, node: Node, key: Any, kind: Primitive, path: tuple[str, ...]) -> None:
        self.node, self.key, self.kind = node, key, kind
        self.path = path  # canonical: a list index as its decimal digits

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def value(self) -> Any:
        if isinstance(self.node, Schema):
            return self.node._values[self.key]
        return self.node[self.key]  # type: ignore[index]

    @property
    def version(self) -> int:
        """The last version that changed the entity holding the field (the schema node,
        such as ``entities.e1``). A field of the root, or an entry of a map or list of
        primitives, is its own entity: everything else in those changes every tick."""
        node = self.node
        if isinstance(node, Schema):
            return node._stamps[self.key] if node._parent is None else node._stamp
        if isinstance(node, StateMap):
            return node._meta[self.key][1]
        assert isinstance(node, StateList)
        return max(int(node._stamps[self.key]), node._structure)

    def set(self, value: Any) -> None:
        try:
            if isinstance(self.node, Schema):
                setattr(self.node, self.node._names[self.key], value)
            else:
                self.node[self.key] = value  # type: ignore[index]
        except (TypeError, ValueError) as exc:
            raise InvalidParams(f"Invalid params: 'value': {exc}", {"value": value}) from None


def _bad_path(path: Sequence[str], why: str) -> InvalidParams:
    return InvalidParams(f"Invalid params: 'path': {why}", {"path": ".".join(path)})


def resolve(state: Schema, path: Sequence[str]) -> Target:
    """The primitive at ``path`` (``("entities", "e1", "hp")``), or InvalidParams."""
    if not path:
        raise _bad_path(path, "it is empty")
    node: Any = state
    canonical: list[str] = []
    for depth, segment in enumerate(path):
        here = ".".join(path[:depth + 1])
        key: Any
        if isinstance(node, Schema):
            field = next((f for f in node.fields() if f.name == segment), None)
            if field is None:
                raise _bad_path(path, f"nothing at {here}")
            key, kind = field.index, field.type
        elif isinstance(node, StateMap):
            if segment not in node:
                raise _bad_path(path, f"nothing at {here}")
            key, kind = segment, node.item
        elif isinstance(node, StateList):
            if not (segment.isdecimal() and segment.isascii()) or int(segment) >= len(node):
                raise _bad_path(path, f"nothing at {here} (a list index is 0 to {len(node) - 1})")
            key, kind = int(segment), node.item
            segment = str(key)
        else:
            raise _bad_path(path, f"{'.'.join(path[:depth])} is a single value: it has no "
                                  f"{segment!r}")
        canonical.append(segment)
        if depth == len(path) - 1:
            if not isinstance(kind, Primitive):
                raise _bad_path(path, f"{here} is not a single value")
            return Target(node, key, kind, tuple(canonical))
        node = node._values[key] if isinstance(node, Schema) else node[key]
    raise AssertionError("unreachable: the last segment returns")
