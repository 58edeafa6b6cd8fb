"""Rollback for a deterministic game step: guess the missing inputs, re-run when they arrive.

GGPO's scheme: every peer runs the game at once with the inputs it has and a
guess for the others' (by default, that each player keeps doing what they
last did); it keeps the state and inputs of the last ``capacity`` frames, and
when a remote input arrives that differs from the guess it rewinds to that
frame and re-simulates to the present. GGPO allows up to 8 frames of
prediction, :data:`DEFAULT_CAPACITY`; an input older than the window cannot be
taken (:class:`RollbackTooFar`), nor one more than ``capacity`` frames ahead of
the present (keeping it would let a careless or hostile sender grow the memory
without bound).

The step must be a pure function of the state and the frame's inputs, and must
not depend on the mapping's order (iterate players in a fixed order): then,
once every input has arrived, :attr:`Rollback.state` equals (``==``) folding
the step over the complete schedule, as the server computes it. Python's float
arithmetic is IEEE 754, correctly rounded, so the same operations give the
same bits everywhere; ``math`` functions come from each platform's libm and
may not, so a step shared across machines rounds their results (the demo arena
rounds to float32). No I/O, no clock: frames are numbers the caller counts.

:class:`~rtctl.client.prediction.Predictor` is this with one player, frames
numbered by input sequence number, and the server's state in :meth:`Rollback.correct`.

Errors: ``ValueError`` ─ :class:`RollbackTooFar`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeAlias, TypeVar

from rtctl.client.errors import ClientError

__all__ = ["DEFAULT_CAPACITY", "Rollback", "RollbackTooFar", "Step", "repeat_last"]

DEFAULT_CAPACITY = 8  # frames: GGPO's maximum prediction window

St = TypeVar("St")
In = TypeVar("In")
Step: TypeAlias = Callable[[St, Mapping[Hashable, In]], St]


def repeat_last(last: In | None) -> In | None:
    """The default prediction: a player keeps doing what they last did (GGPO)."""
    return last


class RollbackTooFar(ClientError, ValueError):
    """An input or state for a frame older than the frames kept, or an input too far
    ahead of the present: it cannot be taken."""


class Rollback(Generic[St, In]):
    """The game's state at :attr:`frame`, re-run whenever a late input changes the past.

    ``predict`` gets a player's last known input and returns the input to
    assume for a frame whose input has not arrived; None leaves the player out
    of that frame.
    """

    def __init__(self, step: Step[St, In], state: St, *, frame: int = 0,
                 capacity: int = DEFAULT_CAPACITY,
                 predict: Callable[[In | None], In | None] = repeat_last) -> None:
        if capacity < 1:
            raise ValueError(f"a rollback window needs at least one frame, got {capacity}")
        self.frame = frame  # the next frame to simulate; `state` is the state at its start
        self.state = state
        self.capacity = capacity
        self.resimulated = 0  # frames re-run, in total
        self.rollbacks = 0  # rewinds that re-ran at least one frame
        self._step = step
        self._predict = predict
        # the kept frames, oldest first: their starting states and the inputs they ran with
        self._states: deque[St] = deque()
        self._used: deque[dict[Hashable, In]] = deque()
        self._known: dict[int, dict[Hashable, In]] = {}  # kept and future frames' inputs
        self._base: dict[Hashable, In] = {}  # each player's last input before the kept frames
        self._latest: dict[Hashable, In] = {}  # ... and before `frame`

    @property
    def start(self) -> int:
        """The oldest frame that can still be rewound to."""
        return self.frame - len(self._states)

    def advance(self, inputs: Mapping[Hashable, In]) -> St:
        """Run frame :attr:`frame` with these known inputs, the other players' predicted."""
        self._known.setdefault(self.frame, {}).update(inputs)
        used = self._inputs(self.frame, self._latest)
        state = self._step(self.state, used)
        self._states.append(self.state)
        self._used.append(used)
        self.state = state
        self.frame += 1
        if len(self._states) > self.capacity:
            self._forget()
        return state

    def add_input(self, frame: int, player: Hashable, input: In) -> int:
        """Take ``player``'s input for ``frame``; return the frames re-simulated.

        A future frame's input is kept for it (0), up to ``capacity`` frames ahead.
        A past one that matches what the frames since ran with changes nothing (0);
        otherwise the frames from the first one it changes to the present are run again.
        """
        self._check_kept(frame)
        if frame > self.frame + self.capacity:
            raise RollbackTooFar(f"frame {frame} is too far ahead: inputs are kept for frames "
                                 f"up to {self.frame + self.capacity} "
                                 f"(capacity {self.capacity} past the present {self.frame})")
        self._known.setdefault(frame, {})[player] = input
        return self._resimulate(len(self._states)) if frame < self.frame else 0

    def correct(self, frame: int, state: St) -> int:
        """Adopt ``state`` (authoritative) as the state at the start of ``frame``.

        The frames since are re-run with the inputs they ran with (re-predicted
        where needed); the count is returned. Frames before ``frame`` are
        forgotten: the authority will not go back past its own state.
        """
        index = self._index(frame)
        for _ in range(index):
            self._forget()
        if self._states:
            self._states[0] = state
        else:
            self.state = state
        return self._resimulate(0)

    def state_at(self, frame: int) -> St:
        """The state at the start of ``frame``: a kept frame's, or the present one."""
        index = self._index(frame)
        return self._states[index] if index < len(self._states) else self.state

    def _check_kept(self, frame: int) -> None:
        if frame < self.start:
            raise RollbackTooFar(f"frame {frame} is older than the rollback window: frames "
                                 f"{self.start}..{self.frame} are kept "
                                 f"(capacity {self.capacity})")

    def _index(self, frame: int) -> int:
        self._check_kept(frame)
        if frame > self.frame:
            raise ValueError(f"frame {frame} is ahead of the present frame {self.frame}")
        return frame - self.start

    def _forget(self) -> None:
        self._base.update(self._known.pop(self.start, {}))
        self._states.popleft()
        self._used.popleft()

    def _inputs(self, frame: int, last: dict[Hashable, In]) -> dict[Hashable, In]:
        """The inputs ``frame`` runs with, given each player's ``last`` known (then updated)."""
        known = self._known.get(frame, {})
        inputs: dict[Hashable, In] = {}
        for player, previous in last.items():
            if player not in known and (guess := self._predict(previous)) is not None:
                inputs[player] = guess
        inputs.update(known)
        last.update(known)
        return inputs

    def _resimulate(self, forced: int) -> int:
        """Re-plan the kept frames' inputs; re-run from the first whose inputs changed, or
        from kept frame ``forced`` on; return how many frames ran."""
        last = dict(self._base)
        first: int | None = None
        state = self.state
        for index, used in enumerate(self._used):
            inputs = self._inputs(self.start + index, last)
            if first is None:
                if index < forced and inputs == used:
                    continue
                first, state = index, self._states[index]
            else:
                self._states[index] = state
            self._used[index] = inputs
            state = self._step(state, inputs)
        self._latest = last
        if first is None:
            return 0
        self.state = state
        count = len(self._used) - first
        self.resimulated += count
        self.rollbacks += 1
        return count
