"""Which library carries the client's WebSocket: ``Client(..., transport=...)``.

``websockets`` (the default)
    :mod:`rtctl.client.websockets_link`, on ``websockets.asyncio.client``.
``picows``
    :mod:`rtctl.client.picows_link`: a Cython WebSocket that costs far less per
    message, for bots and load generators. Imported only when it is chosen,
    so a game that does not use it never loads it.

Both keep the contract of :mod:`rtctl.client.link`, so a client behaves the
same over either; ``tests/client/test_transport.py`` holds them to it.
"""

from __future__ import annotations

from functools import partial
from typing import Literal, get_args

from rtctl.client.link import Opener
from rtctl.client.websockets_link import open_websockets
from rtctl.exceptions import ConfigError

__all__ = ["TRANSPORTS", "TransportName", "opener"]

TransportName = Literal["websockets", "picows"]
TRANSPORTS: tuple[TransportName, ...] = get_args(TransportName)


def opener(name: TransportName, *, compression: bool = False) -> Opener:
    """The function that opens a :class:`~rtctl.client.link.Link` with transport ``name``.

    ``compression`` offers permessage-deflate (RFC 7692), which only websockets does.
    """
    if name == "websockets":
        return partial(open_websockets, compression=True) if compression else open_websockets
    if compression:
        raise ConfigError(f"permessage-deflate needs the websockets transport; "
                          f"{name} does not offer it")
    if name == "picows":
        from rtctl.client.picows_link import open_picows  # only when chosen: keeps imports light

        return open_picows
    raise ConfigError(f"unknown client transport {name!r} (choose from {', '.join(TRANSPORTS)})")
