"""Which network profiles a 30 Hz shooter like the arena can be played on, and why not.

A rule, not a list, so a new profile is judged the same way: a profile is
*unplayable* when, in any of its phases,

* its round trip (both latencies plus both jitters, the worst the link adds)
  exceeds :data:`MAX_ROUND_TRIP`: inputs then take over half a second to be
  confirmed, corrections follow a player for as long, and the shots judged by
  lag compensation reach half of its one-second rewind window, where a target
  is hit well after it took cover; or
* it loses :data:`MAX_LOSS` or more of the messages either way: over a
  reliable delta stream each lost patch costs a resync (a round trip without
  new state), several a second at 30 patches per second.

Outages are not counted: a 3 s blackhole is a disconnection the game
recovers from, not a network it is played on. The measured consequences are
in docs/netcode.md (``rtctl bench --scenario arena --through PROFILE``).
"""

from __future__ import annotations

import random

from simulator.models import GilbertElliottLoss
from simulator.profiles import Profile
from simulator.spec import DirectionSpec, LinkSpec, apply_settings

__all__ = ["MAX_LOSS", "MAX_ROUND_TRIP", "unplayable"]

MAX_ROUND_TRIP = 0.5  # seconds
MAX_LOSS = 0.10


def _loss(direction: DirectionSpec) -> float:
    if direction.gemodel is not None:  # the chain's long-run rate; its rng is never drawn
        return GilbertElliottLoss(*direction.gemodel, rng=random.Random()).stationary_loss
    return direction.loss


def _why(spec: LinkSpec) -> str | None:
    rtt = spec.up.latency + spec.down.latency + spec.up.jitter + spec.down.jitter
    if rtt > MAX_ROUND_TRIP:
        return (f"a round trip of up to {rtt * 1000:.0f} ms (over "
                f"{MAX_ROUND_TRIP * 1000:.0f} ms)")
    loss = max(_loss(spec.up), _loss(spec.down))
    if loss >= MAX_LOSS:
        return f"{loss:.0%} of messages lost (from {MAX_LOSS:.0%} on)"
    return None


def unplayable(profile: Profile) -> str | None:
    """Why ``profile`` is not playable for the arena, or None when it is."""
    base = profile.conditions().base
    for spec in (base, *(apply_settings(base, phase.settings) for phase in profile.phases)):
        if (why := _why(spec)) is not None:
            return why
    return None
