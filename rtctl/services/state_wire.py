"""What ``state.*`` answers and sends, field by field (for ``rtctl spec`` and its tests).

The replies of :class:`~rtctl.services.state.StateService` and the JSON twin of the
state frame, ``state.patch`` (sent by :mod:`~rtctl.services.state_live` to a member on
``rtctl.v1``; ``docs/protocol.md`` §9.3), as TypedDicts.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = ["FullState", "Resynced", "SchemaDescription", "StateDelta", "StateInfo",
           "StatePatch", "Updated"]


class SchemaDescription(TypedDict):
    """``rtctl.state.reflect.describe``: each type's fields ``{name, type, of?}``."""

    root: str
    types: dict[str, list[dict[str, str]]]


class StateInfo(TypedDict):
    room: str
    type: str
    version: int
    tick_rate: float
    ticks: int
    members: int
    patches: int
    bytes_per_patch: float
    encode_us_per_patch: float
    coalesced: int
    catch_ups: int
    fulls: int
    snapshot_version: int | None


class Resynced(TypedDict):
    version: int


class Updated(TypedDict):
    """``clock`` (``[ms, counter, node]``) only for a last-writer-wins field."""

    applied: bool
    version: int
    value: Any
    clock: NotRequired[list[int | str]]


class FullState(TypedDict):
    version: int
    state: dict[str, Any]


class StateDelta(TypedDict):
    """An RFC 7386 merge patch from ``base`` to ``version``."""

    version: int
    base: int
    patch: dict[str, Any]


class StatePatch(TypedDict):
    room: str
    message: FullState | StateDelta
