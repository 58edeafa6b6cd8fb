"""A run's counts are its workers' parts summed: what the scenarios' own totals share.

Each worker sends its part back (it pickles); the parent adds them up in
one fresh total, so the sum is the same whichever worker came first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, Self, TypeVar

__all__ = ["Part", "summed"]


class Part(Protocol):
    def add(self, other: Self) -> None:
        """Add ``other``'s counts to these."""


P = TypeVar("P", bound=Part)


def summed(parts: Sequence[P], make: Callable[[], P]) -> P | None:
    """``make()`` plus each of ``parts``; None if there are none (another scenario ran)."""
    if not parts:
        return None
    total = make()
    for part in parts:
        total.add(part)
    return total
