"""The client's copy of a room's state: versions checked, changes announced per path.

Sans-I/O: a :class:`StateStore` is fed the room's state messages (binary ones
from :class:`rtctl.state.Encoder`, or their JSON form) and keeps the state
they describe; :class:`~rtctl.client.synced_room.SyncedRoom` feeds it from a
live :class:`~rtctl.client.Client`. Offline::

    store = StateStore(Arena)
    unsubscribe = store.on_change("entities.*.hp", lambda c: print(c.path[1], c.value))
    store.on_change("entities.*", lambda c: print(c.kind, c.path[1]))  # add / remove
    for message in messages:            # never raises: what went wrong is counted
        store.apply(message)
    store.state, store.version, store.stats.bytes_per_patch

**Versions** (docs/state-sync.md). A patch whose version is not above the one
held (the network duplicated it) is ignored as *stale*. A patch from another
base than the version held is a *gap*; a message that cannot be read is
*corrupt*. Either way :attr:`StateStore.needs_resync` turns on and every patch
is dropped until a full snapshot arrives: nothing is skipped silently, each
case has its counter in :attr:`StateStore.stats`. A store starts out needing
one too (it holds nothing yet). A snapshot is taken whatever its version while
one is needed (a room restored on another node may be behind); otherwise only
when it is newer than the state held.

**Change events.** A pattern is a path of segments separated by ``.``
(``"entities.*.hp"``), ``*`` matching any one segment; a tuple of segments
(``("entities", "a.b", "hp")``) names map keys that contain a dot. A callback
sees every :class:`~rtctl.state.Change` whose path has exactly the pattern's
segments: ``"entities.*"`` gets the ``add``, ``remove`` and ``replace`` of
entities, ``"entities.*.hp"`` their hp's ``set``. When a whole nested state is
replaced -- an entity sent whole, or the root by a full snapshot (a ``replace``
at path ``()``, matched by the pattern ``""``) -- the store also reports what
differs below it, as the patches would have: entries added and removed, values
that changed. So a UI bound to paths stays right across a resync without
rebuilding; the comparison costs O(state) and runs only when some pattern is
deeper than the replacement. Values are bit-exact (``-0.0`` differs from
``0.0``) and a list whose length changed is reported as one ``replace``.
Callbacks run inline, in registration order; one that raises is logged and the
store carries on.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import orjson

from rtctl.state import Change, Decoder, Schema, StateError, VersionGap, versions
from rtctl.state.containers import StateList, StateMap
from rtctl.state.nodes import FieldType, ItemType, ListOf, MapOf, SchemaOf
from rtctl.state.types import Primitive

__all__ = ["ApplyOutcome", "StateStore", "StoreStats"]

logger = logging.getLogger("rtctl.client")

Message = bytes | str | Mapping[str, Any]
Callback = Callable[[Change], object]
Path = tuple[str | int, ...]
S = TypeVar("S", bound=Schema)


class ApplyOutcome(enum.Enum):
    """What :meth:`StateStore.apply` did with a message."""

    PATCH = "patch"  # applied
    SNAPSHOT = "snapshot"  # a full state, applied
    EMPTY = "empty"  # an empty message: nothing changed
    STALE = "stale"  # not newer than the state held: ignored
    DROPPED = "dropped"  # a patch while a snapshot is awaited
    GAP = "gap"  # a patch from another version: a snapshot is now needed
    CORRUPT = "corrupt"  # unreadable: a snapshot is now needed


@dataclass(slots=True)
class StoreStats:
    """Counters since the store was made; sizes are of the state messages alone
    (binary: the encoder's bytes; JSON: the compact UTF-8 of the message object)."""

    messages: int = 0
    bytes: int = 0
    patches: int = 0
    snapshots: int = 0
    stale: int = 0
    dropped: int = 0
    gaps: int = 0
    corrupt: int = 0
    resyncs: int = 0  # snapshots that repaired a state held before (after a gap, a reconnect)
    last_patch_bytes: int = 0
    patch_bytes: int = 0

    @property
    def bytes_per_patch(self) -> float:
        """The mean size of the patches applied so far (0.0 before the first)."""
        return self.patch_bytes / self.patches if self.patches else 0.0


@dataclass(frozen=True, slots=True)
class _Subscription:
    pattern: tuple[str, ...]
    callback: Callback


class StateStore(Generic[S]):
    """The state of one room, of type ``schema``, kept by the messages applied to it."""

    def __init__(self, schema: type[S]) -> None:
        self._decoder = Decoder(schema)
        self.schema = schema
        self.stats = StoreStats()
        self.snapshot: Message | None = None  # the last full message applied, as it came
        self.needs_resync = True
        self.resync_reason: str | None = "no snapshot yet"
        self._corrupt_logged = False  # one warning until a snapshot mends things
        # Patterns by their number of segments (only those can match a path), copied on
        # write so a callback may subscribe or unsubscribe while changes are announced.
        self._subscriptions: dict[int, tuple[_Subscription, ...]] = {}

    @property
    def state(self) -> S:
        """The state held: replaced by each snapshot, so read it here, don't keep it."""
        return cast(S, self._decoder.state)

    @property
    def version(self) -> int | None:
        """The version of the state held; None until the first snapshot."""
        return self._decoder.version

    def apply(self, message: Message) -> ApplyOutcome:
        """Apply one state message (binary, JSON text, or parsed JSON); never raises."""
        size = _size(message)
        self.stats.messages += 1
        self.stats.bytes += size
        if isinstance(message, bytes | bytearray | memoryview | str) and not message:
            return ApplyOutcome.EMPTY  # what an encoder writes when nothing changed
        try:
            parsed, version, full = _header(message)
        except StateError as exc:
            return self._corrupt(exc)
        held = self._decoder.version
        if self.needs_resync:
            if not full:
                self.stats.dropped += 1
                return ApplyOutcome.DROPPED
        elif held is not None and version <= held:
            self.stats.stale += 1
            return ApplyOutcome.STALE
        try:
            changes = self._decoder.apply(parsed)
        except VersionGap as exc:
            self.stats.gaps += 1
            logger.info("state of %s: %s; waiting for a snapshot", self.schema.__name__, exc)
            self.expect_snapshot(str(exc))
            return ApplyOutcome.GAP
        except StateError as exc:
            return self._corrupt(exc)
        if full:
            self.stats.snapshots += 1
            if held is not None and self.needs_resync:
                self.stats.resyncs += 1
            self.snapshot = parsed if isinstance(parsed, bytes) else message
            self.needs_resync, self.resync_reason = False, None
            self._corrupt_logged = False
        else:
            self.stats.patches += 1
            self.stats.patch_bytes += size
            self.stats.last_patch_bytes = size
        for change in changes:
            self._announce(change)
        return ApplyOutcome.SNAPSHOT if full else ApplyOutcome.PATCH

    def expect_snapshot(self, reason: str) -> None:
        """Drop patches until a full snapshot arrives (the state held is no longer kept
        current: a gap, or a connection lost and its room membership with it)."""
        self.needs_resync, self.resync_reason = True, reason

    def on_change(self, pattern: str | tuple[str | int, ...], callback: Callback
                  ) -> Callable[[], None]:
        """Call ``callback(change)`` for each change at a path ``pattern`` matches
        (module docstring); returns the function that unsubscribes it.

        A pattern that can match nothing in the schema (a misspelt field, a path
        below a number) is a :class:`ValueError`.
        """
        segments = _segments(pattern)
        if not _reaches(SchemaOf(self.schema), segments):
            raise ValueError(f"state pattern {pattern!r} matches nothing in "
                             f"{self.schema.__name__}: check the field names")
        subscription = _Subscription(segments, callback)
        depth = len(segments)
        self._subscriptions[depth] = (*self._subscriptions.get(depth, ()), subscription)

        def unsubscribe() -> None:
            kept = tuple(s for s in self._subscriptions.get(depth, ()) if s is not subscription)
            if kept:
                self._subscriptions[depth] = kept
            else:
                self._subscriptions.pop(depth, None)

        return unsubscribe

    def _corrupt(self, error: StateError) -> ApplyOutcome:
        self.stats.corrupt += 1
        logger.log(logging.DEBUG if self._corrupt_logged else logging.WARNING,
                   "state of %s: corrupt message dropped (%s); waiting for a snapshot",
                   self.schema.__name__, error)
        self._corrupt_logged = True
        self.expect_snapshot(f"corrupt message: {error}")
        return ApplyOutcome.CORRUPT

    def _announce(self, change: Change) -> None:
        if not self._subscriptions:
            return
        depth = len(change.path)
        for subscription in self._subscriptions.get(depth, ()):
            if _matches(subscription.pattern, change.path):
                try:
                    subscription.callback(change)
                except Exception:  # the game's callback must not stop the store
                    logger.exception("state change callback %r failed on %r",
                                     subscription.callback, change)
        if (change.kind == "replace" and isinstance(change.previous, Schema)
                and max(self._subscriptions, default=0) > depth):
            for inner in _diff(change.previous, change.value, change.path):
                self._announce(inner)


def _size(message: Message) -> int:
    if isinstance(message, bytes | bytearray | memoryview):
        return len(message)
    if isinstance(message, str):
        return len(message.encode())
    try:
        return len(orjson.dumps(message))
    except TypeError:  # not JSON data at all: _header says so
        return 0


def _header(message: Message) -> tuple[bytes | Mapping[str, Any], int, bool]:
    """The message to decode, its version, and whether it is a full state."""
    if isinstance(message, bytes | bytearray | memoryview):
        data = bytes(message)
        version, base = versions(data)
        return data, version, base is None
    if isinstance(message, str):
        try:
            message = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise StateError(f"state message is not JSON: {exc}") from None
    if not isinstance(message, Mapping) or type(message.get("version")) is not int:
        raise StateError("a JSON state message is an object with an integer 'version'")
    return message, message["version"], "state" in message


# -- patterns ----------------------------------------------------------------------


def _segments(pattern: str | tuple[str | int, ...]) -> tuple[str, ...]:
    if isinstance(pattern, tuple):
        return tuple(str(segment) for segment in pattern)
    if not pattern:
        return ()
    segments = tuple(pattern.split("."))
    if "" in segments:
        raise ValueError(f"state pattern {pattern!r} has an empty segment (a map key with "
                         "a dot or an empty key is named with a tuple of segments)")
    return segments


def _reaches(kind: FieldType, pattern: tuple[str, ...]) -> bool:
    """Whether some path below a value of type ``kind`` can match ``pattern``."""
    if not pattern:
        return True
    head, rest = pattern[0], pattern[1:]
    if isinstance(kind, SchemaOf):
        return any(_reaches(field.type, rest) for field in kind.cls.fields()
                   if head in ("*", field.name))
    if isinstance(kind, MapOf):
        return _reaches(kind.item, rest)
    if isinstance(kind, ListOf):
        return (head == "*" or head.isdecimal()) and _reaches(kind.item, rest)
    return False  # nothing lies below a primitive


def _matches(pattern: tuple[str, ...], path: Path) -> bool:
    return all(want == "*" or want == (got if isinstance(got, str) else str(got))
               for want, got in zip(pattern, path, strict=True))


# -- what differs between two states -------------------------------------------------


def _diff(old: Schema, new: Schema, path: Path) -> Iterator[Change]:
    """The changes that take ``old`` to ``new``, in the order a patch reports them."""
    for field in new.fields():
        where = (*path, field.name)
        before, after = getattr(old, field.name), getattr(new, field.name)
        kind = field.type
        if isinstance(kind, MapOf):
            yield from _diff_map(kind.item, before, after, where)
        elif isinstance(kind, ListOf):
            yield from _diff_list(kind.item, before, after, where)
        else:
            yield from _diff_item(kind, before, after, where)


def _diff_item(item: ItemType, before: Any, after: Any, where: Path) -> Iterator[Change]:
    if isinstance(item, Primitive):
        if not item.same(before, after):
            yield Change(where, "set", after, before)
    else:
        yield from _diff(before, after, where)


def _diff_map(item: ItemType, before: StateMap, after: StateMap, where: Path
              ) -> Iterator[Change]:
    for key, value in before.items():
        if key not in after:
            yield Change((*where, key), "remove", None, value)
    for key, value in after.items():
        if key in before:
            yield from _diff_item(item, before[key], value, (*where, key))
        else:
            yield Change((*where, key), "add", value, None)


def _diff_list(item: ItemType, before: StateList, after: StateList, where: Path
               ) -> Iterator[Change]:
    if len(before) != len(after):
        yield Change(where, "replace", list(after), list(before))
        return
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        yield from _diff_item(item, old, new, (*where, index))
