"""The backends' one error (drawn in :mod:`rtctl.backends.base`, which re-exports it), in a
module of its own so that :mod:`rtctl.backends.stats` can catch it without importing the
interfaces that name the stats.
"""

from __future__ import annotations

from rtctl.exceptions import RpcError
from rtctl.protocol.codes import ErrorCode

__all__ = ["BackendUnavailable"]


class BackendUnavailable(RpcError):
    """A call needed Redis or NATS and could not reach it in time (-32050)."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(ErrorCode.BACKEND_UNAVAILABLE,
                         f"Backend unavailable: {backend} ({detail})", {"backend": backend})
        self.backend = backend
