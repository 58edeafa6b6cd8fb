"""docs/protocol.md's examples are true: they parse, decode and get the replies shown.

* Every ```json block is one JSON value, and every fence names its language
  (the page renders under mkdocs; a client author copies the blocks).
* The worked example of §9.2: the annotated hex dumps (``<!-- state-bytes: NAME -->``
  before the fence) are parsed from the page and decoded with rtctl's own
  decoder, with the page's schema; the result must be the state the page shows
  in §9.3 (``<!-- state-json: NAME -->``), which the JSON twin must decode to too.
* Every exchange (``<!-- exchange -->`` before the fence of what the client
  sends) is sent to a real gateway, and the reply must equal the next ```json block.
* The numbered headings are the outline other parts cite (``§8.3``), and the
  four generated regions are there for ``python -m rtctl.spec`` to fill.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rtctl.gateway.server import Gateway
from rtctl.protocol.frames import parse_state_frame
from rtctl.state import Decoder, versions
from rtctl.state.types import PRIMITIVE_TYPES
from tests.conftest import client
from tests.test_docs import Fence, fences

PAGE = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
TEXT = PAGE.read_text(encoding="utf-8")
FENCES = list(fences(TEXT))
LINES = TEXT.splitlines()

OUTLINE = [
    "1. Conventions", "2. Connecting", "2.1 URL and path", "2.2 Token carriers",
    "2.3 Subprotocols", "2.4 Refusals at the upgrade", "3. Framing",
    "3.1 Text frames carry JSON-RPC 2.0", "3.2 Batches", "3.3 Binary frames",
    "3.4 Idempotency keys", "4. Methods", "5. Notifications (server to client)", "6. Errors",
    "6.1 JSON-RPC error codes", "6.2 Close codes", "6.3 What a client does with each",
    "7. Heartbeats", "8. Session lifetime", "8.1 Token expiry and `session.refresh`",
    "8.2 Reconnection and backoff", "8.3 Recovery", "8.4 Room stream positions and replay",
    "9. State sync", "9.1 Joining a stateful room", "9.2 The binary frame byte by byte",
    "9.3 The JSON twin on `rtctl.v1`", "9.4 Versions, gaps and `state.resync`",
    "9.5 Client writes", "10. Ordering and delivery guarantees", "11. Limits",
    "12. Machine-readable description and conformance",
]


def marked(kind: str) -> dict[str, Fence]:
    """The fences right after a ``<!-- kind: NAME -->`` line, by NAME."""
    found = {}
    for fence in FENCES:
        match = re.fullmatch(rf"<!--\s*{kind}:\s*(\S+)\s*-->", LINES[fence.opening - 2].strip())
        if match:
            found[match.group(1)] = fence
    return found


def annotated_hex(fence: Fence) -> bytes:
    """The bytes of an annotated dump: each line's leading two-digit hex tokens."""
    data = bytearray()
    for line in fence.body.splitlines():
        for token in line.split():
            if not re.fullmatch(r"[0-9a-f]{2}", token):
                break
            data.append(int(token, 16))
    return bytes(data)


def page_schema() -> Any:
    """The worked example's ``Arena``, from the page's own python block."""
    source = next(f.body for f in FENCES if f.info == "python" and "class Arena(Schema)" in f.body)
    namespace: dict[str, Any] = {}
    exec(compile(source, f"{PAGE}:schema", "exec"), namespace)
    return namespace["Arena"]


def test_every_fence_names_its_language_and_every_json_block_parses() -> None:
    assert not [f.opening for f in FENCES if not f.info], "a fence without a language tag"
    blocks = [f for f in FENCES if f.info == "json"]
    assert len(blocks) >= 20
    for fence in blocks:
        json.loads(fence.body)  # one JSON value each


def test_headings_follow_the_outline_and_generated_regions_are_delimited() -> None:
    generated = False  # the regions' own headings (4.N, 5.N) are the generator's
    headings = []
    for line in LINES:
        if line.startswith("<!-- generated:") or line.startswith("<!-- /generated:"):
            generated = not line.startswith("<!-- /")
        elif not generated and re.match(r"#{2,3} \d+\.", line):
            headings.append(line.lstrip("#").strip())
    assert headings == OUTLINE
    for name in ("methods", "notifications", "errors", "closes"):
        assert LINES.count(f"<!-- generated:{name} -->") == 1
        assert LINES.count(f"<!-- /generated:{name} -->") == 1
        opening, closing = (LINES.index(f"<!-- {end}:{name} -->")
                            for end in ("generated", "/generated"))
        assert opening < closing


def test_the_worked_example_decodes_to_the_state_the_page_shows() -> None:
    dumps, shown = marked("state-bytes"), marked("state-json")
    full, delta = annotated_hex(dumps["full"]), annotated_hex(dumps["delta"])
    for name, data in (("full", full), ("delta", delta)):  # "..., 60 bytes:" before each dump
        said = re.search(rf"(\d+) bytes:\n\n<!-- state-bytes: {name} -->", TEXT)
        assert said is not None
        assert int(said.group(1)) == len(data)
    assert versions(full) == (1, None)
    assert versions(delta) == (2, 1)
    json_full, json_delta = (json.loads(shown[n].body) for n in ("full", "delta"))
    state_v2 = json.loads(shown["state-v2"].body)

    arena = page_schema()
    binary, twin = Decoder(arena), Decoder(arena)
    binary.apply(full)
    twin.apply(json_full)
    assert binary.state.to_dict() == twin.state.to_dict() == json_full["state"]
    binary.apply(delta)
    twin.apply(json_delta)
    assert binary.version == twin.version == json_delta["version"] == 2
    for decoded in (binary.state.to_dict(), twin.state.to_dict()):
        assert decoded == state_v2
        assert list(decoded["entities"]) == list(state_v2["entities"])  # map order too

    prefix = re.search(r"`(01 07(?: [0-9a-f]{2})+)` \+ the (\d+) bytes", TEXT)
    assert prefix is not None
    assert int(prefix.group(2)) == len(delta)
    assert parse_state_frame(bytes.fromhex(prefix.group(1)) + delta) == ("arena:1", delta)


def exchanges() -> list[tuple[str, Any]]:
    """(what the client sends, the reply the page shows) for each marked exchange."""
    pairs = []
    for index, fence in enumerate(FENCES):
        if LINES[fence.opening - 2].strip() == "<!-- exchange -->":
            reply = next(f for f in FENCES[index + 1:] if f.info == "json")
            pairs.append((fence.body.strip(), json.loads(reply.body)))
    return pairs


def test_there_are_exchanges_of_each_kind() -> None:
    sent = [request for request, _ in exchanges()]
    assert len(sent) >= 8
    assert any(request.startswith("[") for request in sent)  # a batch
    assert any(not _parses(request) for request in sent)  # not JSON at all


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def test_each_exchange_gets_the_reply_the_page_shows(gateway: Gateway) -> None:
    async with client(gateway.url, subprotocols=["rtctl.v1"]) as ws:
        for request, reply in exchanges():
            await ws.send(request)
            assert json.loads(await ws.recv()) == reply, request


def test_the_schema_type_table_lists_every_type_state_schema_can_answer() -> None:
    """§9.1's table: every primitive `describe` can name, map, list and a schema's name."""
    start = TEXT.index("A field's `type` is one of:")
    rows = TEXT[start:TEXT.index("\n\n", TEXT.index("| `type` |", start))].splitlines()[3:]
    cells = [re.sub(r"\(.*?\)|with `of`", "", row.split("|")[1]) for row in rows]
    named = {name for cell in cells for name in re.findall(r"`(\w+)`", cell)}
    assert named == {*PRIMITIVE_TYPES, "map", "list"}
    assert any("a schema's name" in row for row in rows)
