"""A cable between one bench client and the server that the bench can cut.

A client's link must drop the way a network drops it: no closing handshake,
so the gateway holds the session for its grace period and the client
recovers. A client cannot do that to its own WebSocket (it would close it,
RFC 6455 §7.1.2, and a deliberate close ends the session), so each client
connects through its own :class:`~simulator.stream.TcpProxy` on
127.0.0.1, unimpaired: bytes pass straight through. :meth:`Cable.cut` is
the simulator's own ``reset`` outage, of no duration: both TCP connections
are aborted now, the client sees its connection end without a Close frame
(1006, §7.1.5), the gateway sees it vanish, and the client may reconnect at
once. The hop costs a few tens of microseconds per message on this
generator's loop, against recoveries of tens of milliseconds.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from simulator.scenario import Conditions, Outage
from simulator.stream import TcpProxy

__all__ = ["Cable"]


class Cable:
    """A loopback relay to ``url``'s server; :attr:`url` is ``url`` through it."""

    def __init__(self, url: str) -> None:
        self._target = urlsplit(url)
        self._relay = TcpProxy(url, Conditions(), host="127.0.0.1", port=0)

    async def start(self) -> None:
        await self._relay.start()

    @property
    def url(self) -> str:
        """The server's URL, path and query kept, with the relay's address."""
        return urlunsplit(self._target._replace(netloc=f"127.0.0.1:{self._relay.port}"))

    def cut(self) -> None:
        """Abort every connection through the cable now; new ones go through at once."""
        relay = self._relay
        relay.add_outage(Outage(relay.elapsed(), 0.0, "reset"))

    async def close(self) -> None:
        await self._relay.stop()
