"""One call, one connection: what ``rtctl call`` and scripts use.

For a game, use the reconnecting client instead; this opens a WebSocket,
sends one JSON-RPC 2.0 request, waits for its answer and closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from rtctl.client.endpoint import endpoint_url
from rtctl.client.errors import classify_status, refusal
from rtctl.exceptions import AuthError, RpcError, RtctlError
from rtctl.protocol import jsonrpc
from rtctl.protocol.upgrade import SUBPROTOCOL

__all__ = ["CallFailed", "call_once"]


class CallFailed(RtctlError):
    """The call could not be made (refused, unreachable, timed out)."""


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
    """Call ``method`` and return its result; raise :class:`RpcError` for an error reply.

    ``on_send`` is called once connected, right before the request is written
    (a tracer's timestamp).
    """
    target = endpoint_url(url)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    request = jsonrpc.encode_request(method, params, request_id)
    try:
        async with asyncio.timeout(timeout):
            async with connect(target, additional_headers=headers,
                               subprotocols=[Subprotocol(SUBPROTOCOL)],
                               compression=None, max_size=None) as ws:
                if on_send is not None:
                    on_send()
                await ws.send(jsonrpc.dumps(request), text=True)
                while True:
                    reply = jsonrpc.loads(await ws.recv(decode=True))
                    if isinstance(reply, dict) and reply.get("id") == request_id:
                        break
    except InvalidStatus as exc:
        status, body = refusal(exc)
        verdict = classify_status(status, body)
        if isinstance(verdict.error, AuthError):
            raise verdict.error from None
        raise CallFailed(f"{target} answered HTTP {status}: "
                         f"{body.get('detail', exc.response.reason_phrase)}") from None
    except TimeoutError:
        raise CallFailed(f"no answer from {target} within {timeout:g}s") from None
    except OSError as exc:
        raise CallFailed(f"cannot reach {target}: {exc.strerror or exc}") from None
    if "error" in reply:
        error = reply["error"]
        raise RpcError(error.get("code", 0), error.get("message", ""), error.get("data"))
    return reply.get("result")
