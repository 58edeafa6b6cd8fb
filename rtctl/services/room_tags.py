"""How a room's notifications wait in each member's outbox: lane, policy, coalescing key.

``room.publish {room, data, lane?, policy?, key?}`` tags its message
(:class:`Tags`, issue 14): a game may send chat on the ``chat`` lane, or
positions nobody needs late as ``droppable`` telemetry, or a score board as
``coalescible`` with a ``key``, so that a slow member gets only the newest one
still waiting. The tags ride with the message on the bus and in history, so
every node delivers it the same way; a message written without them (before
issue 14, or by an untagged publish) reads as :data:`UNTAGGED`.

The room's fast path survives: a notification is encoded once for every member
and pushed with the same tags to each (:class:`Outgoing`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Literal, NamedTuple, TypeAlias

from rtctl.exceptions import InvalidParams
from rtctl.protocol.lanes import DEFAULT_POLICIES, Lane, Policy, parse_lane, parse_policy
from rtctl.router import Peer

__all__ = ["MAX_KEY", "UNTAGGED", "Outgoing", "PublishLane", "Tags"]

# control, state: the gateway's. None (null) is an absent lane: events. It is one Literal, not
# ``Literal[...] | None``, so that a bad value's -32602 names the choices.
PublishLane: TypeAlias = Literal["events", "chat", "telemetry", None]
MAX_KEY = 64  # characters of a coalescing key


class Outgoing(NamedTuple):
    """One notification, encoded once for all, and how it waits in each member's outbox."""

    data: bytes
    lane: Lane
    policy: Policy | None = None  # None: the lane's
    key: Hashable | None = None

    def send(self, peers: Iterable[Peer], skip: str | None = None) -> None:
        """Push it to each of ``peers`` but the one whose id is ``skip`` (the sender)."""
        data, lane, policy, key = self
        for peer in peers:
            if peer.id != skip:
                peer.push(data, lane=lane, policy=policy, key=key)


class Tags(NamedTuple):
    """A published message's lane, policy and coalescing key (the room's own: the same key
    in two rooms is two keys, :meth:`outgoing`)."""

    lane: Lane = Lane.EVENTS
    policy: Policy = Policy.RELIABLE
    key: str | None = None

    @classmethod
    def published(cls, lane: str | None, policy: Any, key: Any) -> Tags:
        """``room.publish``'s ``lane`` (a name, as the method's annotation checked; None,
        like an absent one, is events), ``policy`` (None: the lane's) and ``key``, which
        goes with (and only with) a coalescible policy: -32602 naming the member otherwise.
        """
        lane_ = Lane.EVENTS if lane is None else parse_lane(lane)
        try:
            policy_ = DEFAULT_POLICIES[lane_] if policy is None else parse_policy(policy)
        except ValueError:
            choices = ", ".join(repr(p.value) for p in Policy)
            raise InvalidParams(f"Invalid params: 'policy' must be one of {choices}",
                                {"policy": policy}) from None
        if policy_ is not Policy.COALESCIBLE:
            if key is not None:
                raise InvalidParams("Invalid params: 'key' goes only with policy "
                                    "'coalescible'", {"key": key, "policy": policy_.value})
        elif key is None:
            raise InvalidParams("Invalid params: 'key' is required with policy 'coalescible'")
        elif not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
            raise InvalidParams(f"Invalid params: 'key' must be a string of 1 to {MAX_KEY} "
                                "characters", {"key": key})
        return cls(lane_, policy_, key)

    @classmethod
    def read(cls, fields: Mapping[str, Any]) -> Tags:
        """The tags :meth:`fields` wrote beside a message (on the bus, in history); a
        message without them, or with ones this version cannot read, is untagged: it is
        delivered all the same."""
        if "lane" not in fields:
            return UNTAGGED
        try:
            return cls.published(fields["lane"], fields.get("policy"), fields.get("key"))
        except (ValueError, InvalidParams):
            return UNTAGGED

    def fields(self) -> dict[str, Any]:
        """What to write beside the message: nothing for an untagged one (so it reads as
        every message did before issue 14), else all three."""
        if self == UNTAGGED:
            return {}
        return {"lane": self.lane.label, "policy": self.policy.value, "key": self.key}

    def outgoing(self, room: str, data: bytes) -> Outgoing:
        """``data`` (the ``room.message``) as it is pushed to each member of ``room``: a
        key is the room's own, so two rooms' messages never replace each other."""
        return Outgoing(data, self.lane, self.policy,
                        None if self.key is None else ("room", room, self.key))


UNTAGGED = Tags()
