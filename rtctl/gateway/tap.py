"""The gateway's side of the tap: the :class:`Connected` event of one of its connections.

The events and their JSON are :mod:`rtctl.protocol.tap`; the hub that fans them
out to listeners is :mod:`rtctl.tap`; each transport driver streams a
subscription to an admin listener that upgraded on ``/tap``.
"""

from __future__ import annotations

from rtctl.gateway.connection import Connection
from rtctl.protocol.tap import Connected

__all__ = ["connected_event"]


def connected_event(conn: Connection, *, path: str, t_us: int | None = None) -> Connected:
    """The :class:`Connected` event of ``conn``, by default stamped when it connected."""
    when = int(conn.connected_at * 1_000_000) if t_us is None else t_us
    return Connected(t_us=when, conn=conn.id, user=conn.user, remote=conn.remote_address,
                     local=conn.local_address, path=path, subprotocol=conn.subprotocol)
