"""The rules every :class:`~rtctl.backends.base.HistoryStore` shares.

A reconnecting reader gets every message it missed or none (Centrifugo's
stream recovery: never a partial replay). The stores only differ in where the
stream lives; what a read means is decided here, once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from rtctl.backends.base import HistoryEntry, HistoryLimits, Replay, Unrecoverable
from rtctl.protocol.streams import StreamPosition

__all__ = ["new_epoch", "replay_after"]


def new_epoch() -> str:
    """A stream's epoch: random, so a stream started again never reuses an old one."""
    return secrets.token_urlsafe(6)


def replay_after(since: StreamPosition, end: StreamPosition, kept: Sequence[HistoryEntry],
                 limits: HistoryLimits) -> Replay | Unrecoverable:
    """The answer to a reader at ``since`` of a stream ending at ``end``: all or nothing.

    ``kept``: the stored entries from offset ``since.offset + 1`` on (all the missed ones,
    or at least the first when more than ``max_replay`` were missed). They are contiguous
    (one counter; a stream loses only its oldest entries, or all), so the first tells
    whether any is gone. The size limit is exact here, whatever an approximate trim (Redis
    ``MAXLEN ~``) kept, so every store answers alike.
    """
    if since.epoch != end.epoch:
        return Unrecoverable(end, "epoch_changed")
    missed = end.offset - since.offset
    if missed < 0:
        return Unrecoverable(end, "unknown_offset")
    if missed and (missed > limits.size or not kept or kept[0].offset != since.offset + 1):
        return Unrecoverable(end, "too_old")
    if missed > limits.max_replay:
        return Unrecoverable(end, "too_many")
    return Replay(end, tuple(kept[:missed]))
