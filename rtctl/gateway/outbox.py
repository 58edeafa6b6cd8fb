"""The outbound queue of one connection: what waits to be written, and what may go now. No I/O.

Replies are written directly by the connection's reader (the fast path, with
the socket's own backpressure). Everything pushed from elsewhere (presence,
rooms, a handler's ``ctx.peer.notify``) waits here, in its lane
(:class:`~rtctl.protocol.lanes.LaneQueue`: control, state, events, chat,
telemetry, highest first, each in order), so the pusher never blocks on a slow
client and a room's flood never holds up a reply or a state patch. Binary
messages (``rtctl.v1.binary``'s state frames) wait the same way as
:class:`BinaryMessage`\\ s; text, the common case, waits as plain bytes.

This module decides; the transport driver only writes. :meth:`Outbox.next`
hands out the next frame the socket may take now, or says how long to wait:

- *shaping* (``routing.outbound_rate``): a frame goes only while the
  connection's :class:`~rtctl.protocol.shaping.Bucket` holds a token, and is
  charged its size. Replies never wait for tokens but are charged too
  (:meth:`Outbox.reply`), so what a client receives stays within its budget; a
  batch holds no more than the tokens there (or its first message alone);
- *batching* (``routing.batch_window`` / ``batch_bytes``): the first message
  into an empty outbox opens a window; when it ends (or ``batch_bytes`` wait)
  the text notifications waiting go as one JSON-RPC batch array (JSON-RPC 2.0
  §6: a batch of notifications, which needs no answer). Without a window, the
  messages that are waiting when the socket can take more go together. A
  binary message or a control-lane one (a reply, with lanes off) ends a batch
  and goes alone; one message alone goes as itself, never as ``[x]``;
- *pressure*: above the pressure mark droppable messages are shed, oldest and
  lowest lane first (counted). A connection still above it is :attr:`behind`:
  the driver closes it 4008 once it stays behind for ``slow_consumer_grace``.
  A put past the hard bound (``limits.max_outbox_bytes``) is refused and the
  connection is closed 4008 at once: memory per connection stays bounded.

With ``routing.lanes`` off it is one FIFO, replies included once anything
waits (the comparison run). A client that stops reading altogether fills its
socket before any queue; the drivers' write deadline handles that.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

from rtctl.config import DEFAULT_MAX_MESSAGE_SIZE, Limits, Routing
from rtctl.protocol.frames import BinaryMessage
from rtctl.protocol.lanes import DEFAULT_POLICIES, Entry, Lane, LaneQueue, LaneStats, Policy
from rtctl.protocol.shaping import Bucket

__all__ = ["BinaryMessage", "Outbox", "direct_replies"]

# Read once: an enum attribute costs a lookup per message.
_COALESCIBLE, _RELIABLE = Policy.COALESCIBLE, Policy.RELIABLE
_RELIABLE_LANES = frozenset(lane for lane, policy in DEFAULT_POLICIES.items()
                            if policy is Policy.RELIABLE)


def direct_replies(routing: Routing) -> bool:
    """Do replies skip the outbox altogether (lanes on and no outbound rate to charge)?"""
    return routing.lanes and routing.outbound_rate is None


class Outbox:
    """Per-lane queues of encoded messages under a byte bound; once it overflows it takes
    nothing more (the connection is being closed)."""

    __slots__ = ("_batch_bytes", "_bucket", "_clock", "_counters", "_express", "_express_bytes",
                 "_express_lane", "_frame_bytes", "_lanes", "_mark", "_max_bytes", "_opened",
                 "_plain", "_queue", "_window", "overflowed")

    def __init__(self, *, max_bytes: int, stats: LaneStats | None = None,
                 clock: Callable[[], float] = time.monotonic, lanes: bool = True,
                 mark: int | None = None, bucket: Bucket | None = None,
                 batch_window: float | None = None, batch_bytes: int | None = None) -> None:
        self._max_bytes = max_bytes
        self._mark = max_bytes // 2 if mark is None else mark
        self._clock = clock
        self._lanes = lanes
        self._queue: LaneQueue[bytes] = LaneQueue(stats or LaneStats(), clock, lanes=lanes)
        self._bucket = bucket
        self._window = batch_window
        self._batch_bytes = batch_bytes
        self._frame_bytes = batch_bytes or DEFAULT_MAX_MESSAGE_SIZE  # a batch frame's most
        self._opened = 0.0  # when the first message came into the empty outbox (a window)
        self._plain = bucket is None and batch_window is None and batch_bytes is None
        # The express queue: while everything waiting is reliable, keyless and of one lane
        # (a room's fan-out, most of the time), it waits here as (data, size, since) and
        # costs what a plain FIFO costs; anything else moves it into the lanes first.
        self._express: deque[tuple[bytes, int, float]] = deque()
        self._express_lane = Lane.EVENTS
        self._express_bytes = 0
        self._counters = self._queue.stats.by_lane
        self.overflowed = False

    @classmethod
    def configured(cls, limits: Limits, routing: Routing, stats: LaneStats,
                   clock: Callable[[], float]) -> Outbox:
        """The outbox every connection of a gateway gets (both drivers make it here)."""
        mark = limits.max_outbox_bytes // 2
        bucket = None
        if routing.outbound_rate is not None:
            burst = routing.burst_bytes
            assert burst is not None  # Routing gives a rate its burst
            mark = min(mark, burst)  # a shaped client is behind once a burst's worth waits
            bucket = Bucket(rate=routing.outbound_rate, burst=burst, now=clock())
        return cls(max_bytes=limits.max_outbox_bytes, stats=stats, clock=clock,
                   lanes=routing.lanes, mark=mark, bucket=bucket,
                   batch_window=routing.batch_window, batch_bytes=routing.batch_bytes)

    @property
    def queued_bytes(self) -> int:
        return self._queue.bytes + self._express_bytes

    def lane_bytes(self, lane: Lane) -> int:
        express = self._express_bytes if lane is self._express_lane else 0
        return self._queue.lane_bytes(lane) + express

    def __len__(self) -> int:
        return len(self._queue) + len(self._express)

    @property
    def behind(self) -> bool:
        """Over the pressure mark with nothing left to shed: the slow consumer's clock runs."""
        return self._queue.bytes + self._express_bytes > self._mark

    def put(self, data: bytes, binary: bool = False, lane: Lane = Lane.EVENTS,
            policy: Policy | None = None, key: Hashable | None = None) -> bool:
        """Queue ``data`` (text or ``binary``) in ``lane``; False (nothing queued) past the
        hard bound. Above the pressure mark, droppable messages are shed."""
        queue = self._queue
        if self.overflowed:
            return False
        express = self._express
        if (self._plain and self._lanes and key is None and not len(queue)
                and (policy is _RELIABLE or (policy is None and lane in _RELIABLE_LANES))
                and (not express or lane is self._express_lane)):
            size = len(data)  # the express queue's put, inlined: this runs once per message
            if self._express_bytes + size > self._max_bytes:
                self.overflowed = True
                return False
            if binary and type(data) is not BinaryMessage:
                data = BinaryMessage(data)
            express.append((data, size, self._clock()))
            self._express_lane = lane
            self._express_bytes += size
            counters = self._counters[lane]
            counters.queued += 1
            counters.depth += 1
            counters.depth_bytes += size
            return True
        if express:
            self._settle()
        growth = len(data)
        if policy is _COALESCIBLE and (old := queue.waiting(lane, key)) is not None:
            growth -= old.size  # it takes the place of the one waiting: only the difference
        if queue.bytes + growth > self._max_bytes:
            self.overflowed = True
            return False
        if binary and type(data) is not BinaryMessage:
            data = BinaryMessage(data)  # a frame made for many is one already: no copy
        if self._window is not None and not len(queue):
            self._opened = self._clock()
        queue.put(data, len(data), lane, policy, key)
        if queue.bytes > self._mark:
            queue.shed(self._mark)
        return True

    def _settle(self) -> None:
        """Move the express queue into its lane, in order, each keeping its wait so far."""
        lane, queue = self._express_lane, self._queue
        counters = self._counters[lane]
        for data, size, since in self._express:
            counters.queued -= 1  # counted again as it is put in its lane
            counters.depth -= 1
            counters.depth_bytes -= size
            queue.put(data, size, lane, _RELIABLE, since=since)  # as it was put: reliable
        self._express.clear()
        self._express_bytes = 0

    def reply(self, size: int) -> bool:
        """May a reply of ``size`` bytes be written now? It is charged to the bucket (into
        debt if need be: replies never wait for tokens). False with lanes off while
        anything waits: the reply must be queued behind it, in the control lane."""
        if not self._lanes and len(self._queue):
            return False
        if self._bucket is not None:
            self._bucket.charge(size, self._clock())
        return True

    def pop(self) -> bytes | None:
        """The next message alone (a :class:`BinaryMessage` if binary), or None when empty."""
        express = self._express
        if express:  # then the lanes are empty
            data, size, since = express.popleft()
            self._express_bytes -= size
            counters = self._counters[self._express_lane]
            counters.depth -= 1
            counters.depth_bytes -= size
            counters.sent += 1
            counters.sent_bytes += size
            counters.wait.observe(self._clock() - since)
            return data
        entry = self._queue.pop()
        return None if entry is None else entry.value

    def next(self) -> bytes | float | None:
        """The next frame to write now (taken out and charged), or the seconds until one
        may go (tokens to earn, a batch window to close), or None when nothing waits."""
        if self._plain:
            return self.pop()
        queue = self._queue
        head = queue.peek()
        if head is None:
            return None
        now = self._clock()
        if self._bucket is not None and (wait := self._bucket.wait(now)):
            return wait
        frame = self._batch(head, now)
        if isinstance(frame, float):
            return frame
        if self._bucket is not None:
            self._bucket.charge(len(frame), now)
        return frame

    def _batch(self, head: Entry[bytes], now: float) -> bytes | float:
        """The next frame: a batch of the text notifications waiting, or one message alone;
        the seconds until the window closes while it is open."""
        queue = self._queue
        if not _batchable(head) or (self._window is None and self._batch_bytes is None):
            return self._take()
        if (self._window is not None and now < self._opened + self._window
                and (self._batch_bytes is None or queue.bytes < self._batch_bytes)):
            return self._opened + self._window - now
        most = self._frame_bytes
        if self._bucket is not None:
            # Up to the tokens there: a batch overdraws the bucket no more than its first
            # message alone would (a 64 KiB frame would silence a small budget for seconds).
            most = int(min(most, self._bucket.tokens(now)))
        parts = [self._take()]
        size = len(parts[0]) + 2  # the brackets
        while (entry := queue.peek()) is not None and _batchable(entry) and (
                size + entry.size + 1 <= most):
            parts.append(self._take())
            size += entry.size + 1
        return parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"

    def _take(self) -> bytes:
        data = self.pop()
        assert data is not None  # peeked first
        return data

    def clear(self) -> None:
        """Drop what waits (the connection is gone)."""
        self._settle()
        self._queue.clear()


def _batchable(entry: Entry[bytes]) -> bool:
    """A text notification: binary messages and the control lane (replies) go alone."""
    return entry.lane is not Lane.CONTROL and type(entry.value) is not BinaryMessage
