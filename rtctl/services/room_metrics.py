"""The room service's families in ``/metrics``: rooms and members here, recoveries by result.

The gauges are read from what :class:`~rtctl.services.room_delivery.RoomDelivery`
holds at scrape time (nothing kept in parallel); the recovery counters are
bumped by ``room.join`` with ``since`` and start at zero for every result, so a
``rate()`` has both ends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from rtctl.backends.metrics import labelled
from rtctl.protocol.streams import REASONS
from rtctl.services.room_delivery import RoomDelivery

__all__ = ["RECOVERY_RESULTS", "RoomMetrics"]

RECOVERY_RESULTS = ("recovered", *REASONS)  # rtctl_room_recoveries_total's label values


class RoomMetrics:
    """Counts of one node's ``room.join`` recoveries, and its rooms as Prometheus families."""

    def __init__(self, delivery: RoomDelivery) -> None:
        self._delivery = delivery
        self.recoveries: Counter[str] = Counter(dict.fromkeys(RECOVERY_RESULTS, 0))
        self.replayed = 0  # messages pushed by recovered joins

    def recovery(self, result: str, replayed: int = 0) -> None:
        """A join with ``since`` ended: ``recovered`` (``replayed`` pushed) or a reason."""
        self.recoveries[result] += 1
        self.replayed += replayed

    def families(self) -> Iterator[Metric]:
        rooms = self._delivery.rooms()
        yield GaugeMetricFamily("rtctl_rooms", "Rooms with at least one member on this node",
                                value=len(rooms))
        yield GaugeMetricFamily("rtctl_room_members", "Room memberships on this node",
                                value=sum(len(local) for local in rooms))
        yield labelled(CounterMetricFamily, "rtctl_room_recoveries",
                       "room.join with since: replayed (recovered), or why not", "result",
                       self.recoveries)
        yield CounterMetricFamily("rtctl_room_replayed_messages",
                                  "Messages replayed by recovered room.join calls",
                                  value=self.replayed)
