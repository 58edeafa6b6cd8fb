"""A game router whose one method spends its time in a function of its own.

``rtctl serve --router tests.profiler.game_router:router`` serves it; a CPU
profile of that gateway under load must name :func:`burn_cpu_in_the_handler`.
"""

from __future__ import annotations

import time

from rtctl import Router

__all__ = ["BURN_S", "burn_cpu_in_the_handler", "router"]

BURN_S = 0.0005  # seconds each ``game.step`` spends in its own function

router = Router()


def burn_cpu_in_the_handler(seconds: float) -> int:
    """Pure Python arithmetic for ``seconds``: the work a CPU profile must find."""
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        total += sum(range(50))
    return total


@router.method("game.step")
def game_step() -> int:
    return burn_cpu_in_the_handler(BURN_S)
