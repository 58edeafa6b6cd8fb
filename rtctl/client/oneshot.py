"""One call, one connection: what ``rtctl call``, the tracer and scripts use.

A tool's helper, not part of the game-facing :mod:`rtctl.client` namespace:
a game uses the reconnecting :class:`~rtctl.client.Client`. This opens a
WebSocket as the client does (:mod:`rtctl.client.websockets_link`: the same
upgrade, the same classified refusals), sends one JSON-RPC 2.0 request, waits
for the Response object with its id (§5) and closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rtctl.client.endpoint import endpoint_url
from rtctl.client.errors import AuthRefused, ClientError, server_error
from rtctl.client.link import LinkClosed, OpenFailed
from rtctl.client.websockets_link import open_websockets
from rtctl.protocol import jsonrpc

__all__ = ["CallFailed", "call_once"]


class CallFailed(ClientError):
    """The call could not be made (refused, unreachable, timed out, cut off)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


async def call_once(
    url: str,
    method: str,
    params: list[Any] | dict[str, Any] | None = None,
    *,
    token: str | None = None,
    timeout: float = 10.0,
    request_id: str | int = 1,
    on_send: Callable[[], None] | None = None,
) -> Any:
    """Call ``method`` and return its result.

    Raises :class:`~rtctl.client.ServerError` (an ``RpcError``) for an error
    reply, :class:`~rtctl.client.AuthRefused` for a refused token and
    :class:`CallFailed` otherwise. ``on_send`` is called once connected, right
    before the request is written (a tracer's timestamp).
    """
    target = endpoint_url(url)
    request = jsonrpc.dumps(jsonrpc.encode_request(method, params, request_id))
    try:
        async with asyncio.timeout(timeout):
            link = await open_websockets(target, token, timeout, None)  # no size limit
            try:
                if on_send is not None:
                    on_send()
                await link.send(request)
                while True:
                    reply = jsonrpc.loads(await link.recv())
                    if isinstance(reply, dict) and reply.get("id") == request_id:
                        break
            finally:
                await link.close()
    except OpenFailed as exc:
        error = exc.verdict.error
        if isinstance(error, AuthRefused):
            raise error from None
        raise CallFailed(str(error), retryable=exc.verdict.reconnect) from None
    except TimeoutError:
        raise CallFailed(f"no answer from {target} within {timeout:g}s", retryable=True) from None
    except LinkClosed:
        code, reason = link.closed_with
        raise CallFailed(f"{target} closed with {code} ({reason}) before answering",
                         retryable=True) from None
    except ValueError as exc:
        raise CallFailed(f"{target} answered with something that is not JSON: {exc}",
                         retryable=False) from None
    if "error" in reply:
        raise server_error(reply["error"], frozenset())
    return reply.get("result")
