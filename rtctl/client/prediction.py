"""Client-side prediction and server reconciliation of the player's own entity. No I/O.

Gambetta, "Fast-Paced Multiplayer" part II: waiting a round trip for the
server to move the player feels like lag, so the client applies each input at
once with the game's own step function and numbers it. The server applies the
inputs in order and says, with each state it sends, the last one it processed.
On such a state the client rewinds to it and re-applies the inputs the server
has not processed yet, which lands where the prediction was whenever the step
is deterministic and nothing else pushed the player (error exactly 0).

When the server did disagree (another player pushed this one, an input was
lost), the present jumps. :meth:`Predictor.view` hides the jump by adding the
difference back and letting it decay linearly to nothing over ``smoothing``
seconds; a jump larger than ``snap`` (a respawn) is shown at once.

:class:`Predictor` is a :class:`~rtctl.client.rollback.Rollback` with one
player, whose frame ``n`` is the frame that input ``n + 1`` moves, so the
state after input ``ack`` is the state at the start of frame ``ack``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rtctl.client.interpolation import Layout, linear_distance
from rtctl.client.rollback import Rollback

__all__ = ["DEFAULT_CAPACITY", "DEFAULT_SMOOTHING", "Predictor", "Reconciliation"]

DEFAULT_SMOOTHING = 0.1  # s: a few frames, long enough to read as motion rather than a jump
DEFAULT_CAPACITY = 256  # unacknowledged inputs kept: over 4 s at 60 Hz

St = TypeVar("St")
In = TypeVar("In")

_OWN = "own"  # the rollback's one player


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What one authoritative state did to the prediction; distances in world units."""

    ack: int  # the last input the server had processed
    error: float  # the predicted state after input ``ack`` vs the server's
    replayed: int  # inputs re-applied on top of the server's state
    correction: float  # how far the present moved: what the smoothing hides


class Predictor(Generic[St, In]):
    """The player's own entity: moved at once by each input, corrected by the server's state.

    ``move`` is the game's step for one input (the server's own, so that the
    prediction is exact); ``fields`` gives the state's visible fields, blended
    by their kinds in ``layout``. Distances are Euclidean over the
    :data:`~rtctl.client.interpolation.LINEAR` fields.
    """

    def __init__(self, move: Callable[[St, In], St], state: St, *, layout: Layout,
                 fields: Callable[[St], Mapping[str, Any]],
                 smoothing: float = DEFAULT_SMOOTHING, snap: float | None = None,
                 capacity: int = DEFAULT_CAPACITY) -> None:
        def step(state: St, inputs: Mapping[Hashable, In]) -> St:
            return move(state, inputs[_OWN])

        self.layout = layout
        self.fields = fields
        self.smoothing = smoothing
        self.snap = snap
        self.acked = 0
        self._rollback: Rollback[St, In] = Rollback(step, state, capacity=capacity)
        self._pending: deque[tuple[int, In]] = deque(maxlen=capacity)
        self._offset: dict[str, Any] = {}  # field -> what the view adds back, fully
        self._since = 0.0  # when the offset started decaying

    @property
    def seq(self) -> int:
        """The number of the last input applied (inputs are numbered from 1)."""
        return self._rollback.frame

    @property
    def state(self) -> St:
        """The predicted present."""
        return self._rollback.state

    def apply(self, input: In) -> int:
        """Move by ``input`` at once; return its number, to send with it."""
        self._rollback.advance({_OWN: input})
        self._pending.append((self.seq, input))
        return self.seq

    def unacked(self, limit: int) -> list[tuple[int, In]]:
        """The newest ``limit`` inputs the server has not acknowledged, oldest first: each
        message carries them all, so that a lost message costs nothing."""
        pending = list(self._pending)
        return pending[len(pending) - min(max(limit, 0), len(pending)):]

    def reconcile(self, ack: int, state: St, now: float) -> Reconciliation | None:
        """Take the server's ``state`` after input ``ack``, received at ``now`` (seconds).

        None, and nothing changes, when ``ack`` is older than the last one
        taken (a reordered state). An ``ack`` past the last input applied is a
        ``ValueError``; one older than the last ``capacity`` inputs is a
        :class:`~rtctl.client.rollback.RollbackTooFar` (the inputs after it are
        gone): both change nothing.
        """
        if ack < self.acked:
            return None
        if ack > self.seq:
            raise ValueError(f"ack {ack} is ahead of the last input applied, {self.seq}")
        predicted = self.fields(self._rollback.state_at(ack))
        shown = self.view(now)
        before = self.fields(self.state)
        replayed = self._rollback.correct(ack, state)
        after = self.fields(self.state)
        self.acked = ack
        while self._pending and self._pending[0][0] <= ack:
            self._pending.popleft()
        correction = self._distance(before, after)
        if after != before:  # else a smoothing under way goes on as it was
            snapped = self.snap is not None and correction > self.snap
            self._offset = {} if snapped else {
                name: kind.diff(shown[name], after[name])
                for name, kind in self.layout.items() if name in after}
            self._since = now
        return Reconciliation(ack, self._distance(predicted, self.fields(state)), replayed,
                              correction)

    def view(self, now: float) -> dict[str, Any]:
        """The fields to draw at ``now``: the prediction plus what is left of the offset."""
        values = dict(self.fields(self.state))
        elapsed = max(now - self._since, 0.0)
        if elapsed >= self.smoothing:
            return values
        scale = 1 - elapsed / self.smoothing
        for name, diff in self._offset.items():
            values[name] = self.layout[name].shift(values[name], diff, scale)
        return values

    def _distance(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
        return linear_distance(self.layout, a, b)
