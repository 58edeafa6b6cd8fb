"""Server-side netcode for any :class:`~rtctl.services.state_room.StateRoom`, sans-I/O.

:class:`InputQueue` applies one player's numbered inputs in order, one a tick on average,
and says which one was processed last (the ack a client reconciles against: Gambetta,
"Fast-Paced Multiplayer", part 2). :class:`LagCompensation` keeps a short history of
positions so a hit check can rewind the other entities to what the shooter saw (Valve,
"Source Multiplayer Networking", §Lag Compensation). Both take values and tick numbers,
never a clock, so they are tested exactly::

    class ArenaRoom(StateRoom[Arena]):
        def on_create(self) -> None:
            self.tick = 0
            self.queues: dict[str, InputQueue[Input]] = {}
            self.history = LagCompensation[str](tick_rate=self.tick_rate)

        def on_join(self, user: str) -> None:
            self.queues[user] = InputQueue()

        def on_input(self, user: str, data: Any) -> Any:
            # each message re-sends the client's last few unacknowledged inputs
            self.queues[user].receive((seq, parse(raw)) for seq, raw in data["inputs"])

        def on_tick(self, dt: float) -> None:
            self.tick += 1
            for user, queue in self.queues.items():
                for _seq, command in queue.take():
                    self.state.players[user].move(command)
                self.state.players[user].ack = queue.last
            self.history.record(self.tick, {u: (p.x, p.y) for u, p in
                                            self.state.players.items()})

        def shoot(self, user: str, view_tick: float) -> None:
            # view_tick: the server tick the shooter's screen showed (its render time
            # times the tick rate); anything older than max_rewind is clamped
            seen = self.history.at(view_tick, self.tick)
            ...  # test the shot against seen.positions
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Generic, TypeVar

__all__ = ["DEFAULT_BURST", "DEFAULT_INPUT_LIMIT", "DEFAULT_MAX_REWIND", "DEFAULT_PER_TICK",
           "InputQueue", "LagCompensation", "Rewound"]

DEFAULT_INPUT_LIMIT = 32  # inputs held per player: 1.6 s at 20 Hz
DEFAULT_PER_TICK = 3  # inputs applied per player in one tick, draining a backlog
DEFAULT_BURST = 32  # credits kept: a stall this long (1.1 s at 30 Hz) drains unthrottled
DEFAULT_MAX_REWIND = 1.0  # s: Valve's sv_maxunlag default

In = TypeVar("In")
K = TypeVar("K", bound=Hashable)

Position = tuple[float, float]


class InputQueue(Generic[In]):
    """One player's inputs, numbered upwards, applied in order, each at most once, at one
    a tick on average.

    The queue starts at the first input it receives (the lowest of the first batch):
    a client numbers its inputs from 1, but one that comes back to a room where its
    player was made afresh goes on from where it was, and the inputs before are not
    this player's to count as lost.

    A client re-sends its unacknowledged inputs in every message, so one lost message
    costs nothing; the copies of an input already held, taken or throttled are
    ``duplicates``.
    Delivery is ordered (TCP), so when seq n+k arrives without n, n was never sent (the
    client dropped it from its window) and will not come: :meth:`take` skips the gap at
    once, counted in ``lost``, rather than wait. A copy that still arrives for a skipped
    seq is ``late`` and ignored.

    Speed is a budget, not a cap (Valve's ``sv_maxusrcmdprocessticks``): each
    :meth:`take` (one a tick) earns one credit, credits are kept up to ``burst``, and each
    input applied spends one, at most ``per_tick`` a tick. A new queue has none, so
    however a client sends, or rejoins, it applies no more inputs than ticks have passed:
    one a tick on average, and at most ``burst`` ahead over any stretch. An honest client
    that sends one a tick and stalls for k ticks earns k credits meanwhile (up to
    ``burst``): its backlog and its credits then fall together, by ``per_tick - 1`` a tick,
    so the backlog is gone by the time the credits are. A backlog the credits cannot pay
    for (a stall longer than ``burst``, or a client that sends faster than the tick rate)
    would otherwise be lag kept for good, as a client sending one a tick never gets ahead
    again; so once the queue has not emptied for ``burst`` ticks running, its oldest input
    is skipped unapplied (``throttled``), as CoDel drops from a queue that stays above its
    floor for an interval (RFC 8289). A client that floods fills the queue to ``limit``;
    the newest inputs beyond are refused (``dropped``), so memory stays bounded.
    """

    def __init__(self, *, limit: int = DEFAULT_INPUT_LIMIT, per_tick: int = DEFAULT_PER_TICK,
                 burst: int = DEFAULT_BURST) -> None:
        if limit < 1 or per_tick < 1 or burst < 1:
            raise ValueError(f"limit, per_tick and burst must be at least 1, got {limit}, "
                             f"{per_tick}, {burst}")
        self.limit, self.per_tick, self.burst = limit, per_tick, burst
        self.last = 0  # the last seq taken: the ack sent back
        self._started = False
        self.lost = self.duplicates = self.late = self.dropped = self.throttled = 0
        self._held: dict[int, In] = {}
        self._credits = 0
        self._standing = 0  # takes in a row that left inputs held
        # Skipped gaps as (first, last) seqs, oldest first, to tell a late copy from a
        # duplicate; only the newest `limit` are remembered (an older one counts as a
        # duplicate).
        self._skipped: deque[tuple[int, int]] = deque(maxlen=limit)

    @property
    def pending(self) -> int:
        """How many inputs are held, waiting for :meth:`take`."""
        return len(self._held)

    def receive(self, inputs: Iterable[tuple[int, In]]) -> None:
        """Hold the new ones of ``inputs`` ((seq, input) pairs; a list pair, as JSON
        decodes it, will do). A bad pair or seq raises ValueError naming it, and then
        nothing of the batch is kept."""
        batch = list(inputs)
        for index, pair in enumerate(batch):
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ValueError(f"input {index} must be a (seq, input) pair, got {pair!r}")
            seq = pair[0]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
                raise ValueError(f"input {index}: seq must be an integer from 1, got {seq!r}")
        if batch and not self._started:
            self._started = True
            self.last = min(seq for seq, _ in batch) - 1
        for seq, value in batch:
            if seq <= self.last:
                if self._was_skipped(seq):
                    self.late += 1
                else:
                    self.duplicates += 1
            elif seq in self._held:
                self.duplicates += 1
            elif len(self._held) < self.limit:
                self._held[seq] = value
            else:
                newest = max(self._held)
                self.dropped += 1
                if seq < newest:  # keep the oldest `limit`: they are the next to apply
                    del self._held[newest]
                    self._held[seq] = value

    def take(self) -> list[tuple[int, In]]:
        """This tick's inputs to apply, in seq order: as many as the credits pay for, at
        most ``per_tick``. Call it once a tick, held inputs or not: it earns the credit."""
        self._credits = min(self._credits + 1, self.burst)
        taken = [self._pop(seq) for seq in sorted(self._held)[:min(self.per_tick,
                                                                   self._credits)]]
        self._credits -= len(taken)
        self._standing = self._standing + 1 if self._held else 0
        if self._standing >= self.burst:
            self._pop(min(self._held))
            self.throttled += 1
            self._standing = 0
        return taken

    def _pop(self, seq: int) -> tuple[int, In]:
        """Take the lowest held ``seq`` out, skipping the gap before it."""
        if seq > self.last + 1:
            self.lost += seq - self.last - 1
            self._skipped.append((self.last + 1, seq - 1))
        self.last = seq
        return seq, self._held.pop(seq)

    def _was_skipped(self, seq: int) -> bool:
        for first, last in reversed(self._skipped):
            if last < seq:  # the gaps are in seq order: no older one holds it either
                return False
            if first <= seq:
                return True
        return False


@dataclass(frozen=True)
class Rewound(Generic[K]):
    """Where the entities were at ``tick_used`` (a fractional tick); ``clamped`` when that
    is not the tick asked for (outside the rewind window or the recorded history)."""

    positions: dict[K, Position]
    tick_used: float
    clamped: bool


class LagCompensation(Generic[K]):
    """The last ``max_rewind`` seconds of entity positions, tick by tick.

    Valve's lag compensation ("Source Multiplayer Networking", §Lag Compensation): when
    a shot arrives, the server moves the other entities back to where the shooter saw
    them (their render time, which is in the past by latency plus interpolation delay),
    tests the hit there, and puts them back. The rewind is bounded by ``sv_maxunlag``
    (1 s by default): a client cannot claim to have seen further back, so a lagging or
    cheating shooter cannot hit someone who has long since taken cover.

    Between two recorded ticks an entity is taken on the straight line from one position
    to the next, unless it moved more than ``snap`` world units between them: then it
    teleported (a respawn), stood at no point between, and is taken where it was until
    the later tick put it elsewhere, which is also where a client interpolating with the
    same ``snap`` drew it (:class:`~rtctl.client.interpolation.Interpolator`).
    """

    def __init__(self, *, max_rewind: float = DEFAULT_MAX_REWIND, tick_rate: float,
                 snap: float | None = None) -> None:
        if not tick_rate > 0 or not max_rewind >= 0:
            raise ValueError(f"tick_rate must be positive and max_rewind not negative, got "
                             f"{tick_rate}, {max_rewind}")
        if snap is not None and not snap >= 0:
            raise ValueError(f"snap must be a distance (not negative), got {snap}")
        self.max_rewind, self.tick_rate, self.snap = max_rewind, tick_rate, snap
        self._window = max_rewind * tick_rate  # in ticks
        self._ring: deque[tuple[int, dict[K, Position]]] = deque()

    def __len__(self) -> int:
        """How many ticks are kept: at most ``ceil(max_rewind * tick_rate) + 1``."""
        return len(self._ring)

    def record(self, tick: int, positions: Mapping[K, Position]) -> None:
        """Remember the positions at ``tick`` (after the tick's moves); ticks must rise."""
        if self._ring and tick <= self._ring[-1][0]:
            raise ValueError(f"tick {tick} is not after the last recorded tick "
                             f"{self._ring[-1][0]}")
        self._ring.append((tick, dict(positions)))
        # Keep the newest tick at or before the window's start: the lower end of the
        # interpolation at the oldest tick a shot may ask for.
        oldest = tick - self._window
        while len(self._ring) > 1 and self._ring[1][0] <= oldest:
            self._ring.popleft()

    def at(self, tick: float, now_tick: int) -> Rewound[K]:
        """The positions at the fractional ``tick``, linear between the two recorded ticks
        around it; clamped to ``[now_tick - max_rewind * tick_rate, now_tick]``, then to
        what is recorded (the nearest end's positions). An entity recorded at only one of
        the two ticks is where it was at that one. A NaN ``tick`` raises ValueError."""
        if math.isnan(tick):
            raise ValueError("tick must be a number, got nan")
        used = min(max(tick, now_tick - self._window), float(now_tick))
        if not self._ring:
            return Rewound({}, used, used != tick)
        after = bisect.bisect_left(self._ring, used, key=itemgetter(0))
        if after == len(self._ring):
            used, positions = self._ring[-1]
        elif self._ring[after][0] == used or after == 0:
            used, positions = self._ring[after]
        else:
            (start, a), (end, b) = self._ring[after - 1], self._ring[after]
            positions = _blend(a, b, (used - start) / (end - start), self.snap)
        return Rewound(dict(positions), used, used != tick)


def _blend(a: Mapping[K, Position], b: Mapping[K, Position], t: float,
           snap: float | None) -> dict[K, Position]:
    blended = {}
    for key in dict.fromkeys((*a, *b)):  # a's order, then b's newcomers
        if key in a and key in b:
            (ax, ay), (bx, by) = a[key], b[key]
            if snap is not None and math.hypot(bx - ax, by - ay) > snap:
                blended[key] = a[key]  # the later tick itself is not blended: exact
            else:
                blended[key] = (ax + (bx - ax) * t, ay + (by - ay) * t)
        else:
            blended[key] = a[key] if key in a else b[key]
    return blended
