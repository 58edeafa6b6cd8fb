"""Every example of the JSON-RPC 2.0 specification (§7), over a real WebSocket.

The gateway runs as ``rtctl serve --router tests.fixtures.spec_router:router``
in a subprocess, exactly as a game team would start it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rtctl.config import TRANSPORTS
from rtctl.protocol import jsonrpc
from tests.conftest import SECRET, TIMING, client

ROOT = Path(__file__).resolve().parents[2]
NOTHING = object()  # the spec says: no response at all

# (request text, expected reply or NOTHING), from the specification §7 in order.
EXAMPLES: list[tuple[str, Any]] = [
    ('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
     {"jsonrpc": "2.0", "result": 19, "id": 1}),
    ('{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
     {"jsonrpc": "2.0", "result": -19, "id": 2}),
    ('{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, '
     '"id": 3}', {"jsonrpc": "2.0", "result": 19, "id": 3}),
    ('{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, '
     '"id": 4}', {"jsonrpc": "2.0", "result": 19, "id": 4}),
    ('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', NOTHING),
    ('{"jsonrpc": "2.0", "method": "foobar"}', NOTHING),
    ('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
     {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found: foobar"},
      "id": "1"}),
    ('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]', -32700),
    ('{"jsonrpc": "2.0", "method": 1, "params": "bar"}', -32600),
    ('[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
     '  {"jsonrpc": "2.0", "method"\n]', -32700),
    ("[]", -32600),
    ("[1]", [-32600]),
    ("[1,2,3]", [-32600, -32600, -32600]),
    ('''[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]''', [
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        -32600,
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found: foo.get"},
         "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
    ]),
    ('''[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]''', NOTHING),
]


@pytest.fixture(scope="module", params=TRANSPORTS)
def served_url(request: pytest.FixtureRequest) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtctl", "serve", "--port", "0", "--jwt-secret", SECRET,
         "--router", "tests.fixtures.spec_router:router", "--transport", request.param],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    try:
        assert banner.startswith("rtctl gateway listening on "), banner
        yield banner.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10 * TIMING)


def _matches(actual: Any, expected: Any) -> bool:
    """An int stands for "an error object with this code and a null id"."""
    if isinstance(expected, int):
        return (isinstance(actual, dict) and actual.get("id") is None
                and actual.get("error", {}).get("code") == expected
                and set(actual) == {"jsonrpc", "error", "id"})
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(_matches(a, e) for a, e in zip(actual, expected, strict=True)))
    return bool(actual == expected)


@pytest.mark.parametrize(("request_text", "expected"), EXAMPLES,
                         ids=[f"example-{i}" for i in range(len(EXAMPLES))])
async def test_specification_example(served_url: str, request_text: str, expected: Any) -> None:
    async with client(served_url) as ws:
        await ws.send(request_text)
        # The gateway answers in order, so a ping sent next proves what came before it.
        await ws.send('{"jsonrpc": "2.0", "method": "sys.ping", "id": "fence"}')
        first = jsonrpc.loads(await ws.recv())
        if expected is NOTHING:
            assert first["id"] == "fence", f"a reply came where none is allowed: {first}"
            return
        assert _matches(first, expected), first
        fence = jsonrpc.loads(await ws.recv())
        assert fence["id"] == "fence"
        assert "time" in fence["result"]
