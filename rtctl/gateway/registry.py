"""The registry of live connections, with lookup by user and connection limits."""

from __future__ import annotations

from collections.abc import Iterator

from rtctl.config import Limits
from rtctl.exceptions import ConnectionRefused
from rtctl.gateway.connection import Connection

__all__ = ["ConnectionRegistry"]


class ConnectionRegistry:
    """Connections by id and by user; enforces the total and per-user limits."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._by_id: dict[str, Connection] = {}
        self._by_user: dict[str, dict[str, Connection]] = {}

    def check(self, user: str, *, replacing: str | None = None) -> None:
        """Raise :class:`ConnectionRefused` if ``user`` may not connect now.

        ``replacing`` is a connection of the user that the new one takes over
        (a resumed session): it does not count, as it closes when the new one opens.
        """
        mine = self._by_user.get(user, {})
        replaced = int(replacing is not None and replacing in mine)
        if len(self._by_id) - replaced >= self._limits.max_connections:
            raise ConnectionRefused(
                503, "too_many_connections",
                f"the gateway holds its limit of {self._limits.max_connections} connections",
            )
        if len(mine) - replaced >= self._limits.max_connections_per_user:
            raise ConnectionRefused(
                429, "too_many_connections_for_user",
                f"user {user!r} already has {self._limits.max_connections_per_user} "
                "connections, the per-user limit",
            )

    def add(self, connection: Connection) -> None:
        """Register ``connection``, checking the limits again (handshakes race)."""
        self.check(connection.user, replacing=connection.identity.session)
        self._by_id[connection.id] = connection
        self._by_user.setdefault(connection.user, {})[connection.id] = connection

    def remove(self, connection: Connection) -> None:
        """Forget ``connection``; removing twice (or one whose id a resume took) is harmless."""
        if self._by_id.get(connection.id) is not connection:
            return
        del self._by_id[connection.id]
        mine = self._by_user[connection.user]
        del mine[connection.id]
        if not mine:
            del self._by_user[connection.user]

    def get(self, connection_id: str) -> Connection | None:
        return self._by_id.get(connection_id)

    def by_user(self, user: str) -> list[Connection]:
        """The user's live connections, oldest first."""
        return list(self._by_user.get(user, {}).values())

    def users(self) -> list[str]:
        return list(self._by_user)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._by_id.values()))
