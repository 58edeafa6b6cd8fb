"""The live control API: HTTP + JSON to read and change a running proxy's impairments.

Changes apply to the next message of every open connection; no connection is
dropped. One request per connection (``Connection: close``), HTTP/1.1 (RFC 9112)
parsed just enough for these routes:

=======  ==============  ===================================================
GET      /impairments    the configuration in force (base, phase, outages, rules)
PATCH    /impairments    settings (same keys as the flags) on top of the base
PUT      /impairments    settings replacing the base (``{}`` clears everything)
POST     /outages        ``{"duration": "3s", "kind": "blackhole"|"reset", "at": "30s"}``
GET      /rules          the per-client rules
PUT      /rules          ``[{"user": "bob", "settings": {"loss": "20%"}}, ...]``
GET      /stats          the counters as JSON
GET      /metrics        the counters for Prometheus
GET      /tap            the tap: every connection and message, one JSON event a line,
                         each frame annotated with what the link did to it
=======  ==============  ===================================================

An error answers 400 with ``{"error": "..."}``. :func:`request` is the client
that ``rtctl simulate set``/``show`` use: a refusal is the caller's bad value
(:class:`~rtctl.exceptions.ConfigError`), no answer at all is
:class:`ControlUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rtctl.exceptions import ConfigError, RtctlError
from rtctl.protocol.tap import TAP_PATH
from simulator.base import ShapingProxy, connected_event
from simulator.scenario import Rule, parse_outage

__all__ = ["ControlServer", "ControlUnavailable", "request"]

_MAX_BODY = 1 << 20
_JSON = "application/json"


class ControlUnavailable(RtctlError):
    """No simulator answered at the control API's address."""


class ControlServer:
    """Serve the control API of ``proxy`` on ``host:port``."""

    def __init__(self, proxy: ShapingProxy, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.proxy = proxy
        self.host = host
        self.requested_port = port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the control API is not started"
        return f"http://{self.host}:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            method, path, _ = head.split("\r\n", 1)[0].split(" ", 2)
            length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")[1:]
                           if line.lower().startswith("content-length:")), 0)
            if length > _MAX_BODY:
                raise ConfigError("request body too large")
            body = json.loads(await reader.readexactly(length)) if length else None
            if method == "GET" and path.split("?", 1)[0] == TAP_PATH:
                await self._stream_tap(reader, writer)
                return
            status, content_type, payload = self.route(method, path.split("?", 1)[0], body)
        except (RtctlError, ValueError, TypeError, KeyError) as exc:
            status, content_type, payload = 400, _JSON, _dumps({"error": str(exc)})
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        writer.write(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                     f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
                     "Connection: close\r\n\r\n".encode() + payload)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _stream_tap(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        """``GET /tap``: the proxy's tap events as JSON lines until the listener hangs up.

        The body has no length: it ends when the connection closes (RFC 9112 §6.3).
        """
        proxy = self.proxy
        existing = [connected_event(pair) for pair in proxy.pairs]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                     b"Connection: close\r\n\r\n")
        hangup = asyncio.ensure_future(reader.read())  # the listener says nothing until EOF
        with proxy.tap.subscribe(existing=existing) as subscription:
            try:
                while not hangup.done():
                    batch = asyncio.ensure_future(subscription.next_batch())
                    await asyncio.wait({batch, hangup}, return_when=asyncio.FIRST_COMPLETED)
                    if not batch.done():
                        batch.cancel()
                        break
                    writer.write(b"".join(
                        json.dumps(event.to_json()).encode() + b"\n" for event in batch.result()))
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                hangup.cancel()
                writer.close()

    def route(self, method: str, path: str, body: Any) -> tuple[int, str, bytes]:
        """Answer one request: (status, content type, body)."""
        proxy, conditions = self.proxy, self.proxy.conditions
        if path == "/metrics" and method == "GET":
            return 200, CONTENT_TYPE_LATEST, proxy.metrics.render()
        if path == "/stats" and method == "GET":
            return 200, _JSON, _dumps(proxy.metrics.as_json())
        if path == "/impairments" and method in ("PATCH", "PUT"):
            if not isinstance(body, dict):
                raise ConfigError("send a JSON object of settings, e.g. {\"loss\": \"10%\"}")
            conditions.update(body, replace=method == "PUT")
        elif path == "/outages" and method == "POST":
            if not isinstance(body, dict) or "duration" not in body:
                raise ConfigError("send {\"duration\": \"3s\"} (optional: kind, at)")
            at = body.get("at")
            text = f"{body['duration']}@{at}" if at else str(body["duration"])
            proxy.add_outage(parse_outage(f"{text},{body.get('kind', 'blackhole')}",
                                          now=proxy.elapsed()))
        elif path == "/rules" and method == "PUT":
            if not isinstance(body, list):
                raise ConfigError("send a JSON array of rules")
            conditions.set_rules([Rule(settings=r.get("settings", {}), address=r.get("address"),
                                       user=r.get("user")) for r in body])
        elif path == "/rules" and method == "GET":
            return 200, _JSON, _dumps([r.as_json() for r in conditions.rules])
        elif not (path == "/impairments" and method == "GET"):
            return 404, _JSON, _dumps({"error": f"no route {method} {path}"})
        return 200, _JSON, _dumps(conditions.as_json(proxy.elapsed()))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, indent=2).encode() + b"\n"


def request(base_url: str, method: str, path: str, body: Any = None,
            *, timeout: float = 5.0) -> Any:
    """Call the control API at ``base_url`` and return the decoded JSON answer."""
    url = base_url if "://" in base_url else f"http://{base_url}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": _JSON})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise ConfigError(f"the simulator refused: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ControlUnavailable(f"cannot reach the simulator's control API at {url}: "
                                 f"{reason}") from None
