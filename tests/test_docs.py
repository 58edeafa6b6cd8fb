"""docs/api.md and docs/observability.md must not drift from the code they document.

The error-code and close-code tables are compared with ``rtctl.protocol.codes``
row by row (code, name and description text verbatim, nothing extra), and the
names the code defines (built-in methods, 401 reasons, config keys) must all
appear in the guide; every metric family a gateway and the simulator expose is
in docs/observability.md with its type and labels, and nothing else is.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

import rtctl.gateway.auth
import rtctl.services.system
from rtctl import config
from rtctl.backends import connect_backends
from rtctl.gateway.server import Gateway
from rtctl.protocol.codes import CLOSE_DESCRIPTIONS, ERROR_DESCRIPTIONS, CloseCode, ErrorCode
from rtctl.services.system import system_router
from simulator.link import Outcome
from simulator.metrics import ProxyMetrics
from tests.conftest import client, gateway_config, rpc
from tests.gateway.test_server import refused
from tests.servers import ServerProcess, unique_prefix

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"
OBSERVABILITY_MD = API_MD.with_name("observability.md")

Row = tuple[int, str, str]


@pytest.fixture(scope="module")
def api_md() -> str:
    return API_MD.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Fence:
    """One fenced code block: its info string (``python``, ``console``, ``""``), the
    line numbers (from 1) of its opening and closing fences, and the lines between."""

    info: str
    opening: int
    closing: int
    body: str


def fences(text: str) -> Iterator[Fence]:
    """The fenced code blocks of a Markdown text, in order."""
    opened: tuple[str, int] | None = None
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.lstrip().startswith("```"):
            continue
        if opened is None:
            opened = line.lstrip().removeprefix("```").strip(), number
        else:
            info, opening = opened
            yield Fence(info, opening, number, "\n".join(lines[opening:number - 1]) + "\n")
            opened = None


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section, up to the next ``#`` or ``##`` heading.

    Lines inside fenced code blocks are never headings (``# comment`` in a
    Python or TOML example must not end a section).
    """
    body: list[str] | None = None
    fenced = {number for fence in fences(text)
              for number in range(fence.opening, fence.closing + 1)}
    for number, line in enumerate(text.splitlines(), 1):
        if number not in fenced and re.match(r"#{1,2} ", line):
            if body is not None:
                break
            if line[line.index(" ") + 1 :].strip() == title:
                body = []
                continue
        if body is not None:
            body.append(line)
    assert body is not None, f"docs/api.md has no '## {title}' section"
    return "\n".join(body)


def _cells(line: str) -> list[str]:
    # Split on pipes that are not escaped (\|), then drop the outer empty cells.
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def _unquote(cell: str) -> str:
    return cell[1:-1] if len(cell) >= 2 and cell[0] == cell[-1] == "`" else cell


def table_rows(body: str) -> Iterator[Row]:
    """Rows of the first ``code | name | meaning`` table in a section."""
    lines = [line for line in body.splitlines() if line.lstrip().startswith("|")]
    header = next((i for i, line in enumerate(lines)
                   if [c.lower() for c in _cells(line)] == ["code", "name", "meaning"]), None)
    assert header is not None, "no table with the columns code | name | meaning"
    separator = _cells(lines[header + 1])
    assert all(re.fullmatch(r":?-{3,}:?", cell) for cell in separator), lines[header + 1]
    for line in lines[header + 2 :]:
        cells = _cells(line)
        if len(cells) != 3:
            break  # the next table in the section
        code, name, meaning = cells
        yield int(_unquote(code)), _unquote(name), meaning


def expected_rows(enum: type[IntEnum], descriptions: dict[ErrorCode, str] | dict[CloseCode, str]
                  ) -> list[Row]:
    return [(int(member), member.name, descriptions[member]) for member in enum]  # type: ignore[index]


@pytest.mark.parametrize(
    ("title", "enum", "descriptions"),
    [
        ("Error codes", ErrorCode, ERROR_DESCRIPTIONS),
        ("Close codes", CloseCode, CLOSE_DESCRIPTIONS),
    ],
)
def test_code_table_matches_codes_py(
    api_md: str, title: str, enum: type[IntEnum],
    descriptions: dict[ErrorCode, str] | dict[CloseCode, str],
) -> None:
    # Every member needs a description in the first place, or the table has a hole.
    assert set(descriptions) == set(enum), f"{enum.__name__} members without a description"
    documented = list(table_rows(section(api_md, title)))
    expected = expected_rows(enum, descriptions)

    by_code = {code: (name, meaning) for code, name, meaning in documented}
    assert len(by_code) == len(documented), f"{title}: a code is listed twice"
    for code, name, meaning in expected:
        assert code in by_code, f"{title}: {code} {name} is missing from docs/api.md"
        assert by_code[code] == (name, meaning), (
            f"{title}: row {code} differs from codes.py\n"
            f"  doc:  {by_code[code]}\n  code: {(name, meaning)}")
    extra = sorted(set(by_code) - {code for code, _, _ in expected})
    assert not extra, f"{title}: docs/api.md lists codes that codes.py does not: {extra}"
    assert documented == expected, f"{title}: rows are not in the order of {enum.__name__}"


def test_fences_keep_their_info_lines_and_body() -> None:
    text = "# a\n```python\nx = 1\n# not a heading\n```\ntext\n```\nplain\n```\n"
    assert list(fences(text)) == [Fence("python", 2, 5, "x = 1\n# not a heading\n"),
                                  Fence("", 7, 9, "plain\n")]
    assert section(text, "a") == "```python\nx = 1\n# not a heading\n```\ntext\n```\nplain\n```"


def test_table_parser_sees_escaped_pipes_and_stops_at_the_table_end() -> None:
    body = ("| code | name | meaning |\n|---|---|---|\n| 1 | `A` | x \\| y |\n"
            "\ntext\n| other | table |\n|---|---|\n")
    assert list(table_rows(body)) == [(1, "A", "x | y")]


def system_method_names() -> list[str]:
    """The names the system router registers, built without a Gateway.

    ``system_router`` only captures its gateway in closures, so a stub with the
    attributes the handlers would use is enough to build the routing table.
    """
    stub = SimpleNamespace(clock=lambda: 0.0, registry=None, authenticator=None,
                           reauthenticate=lambda conn, identity: None)
    return system_router(stub).methods  # type: ignore[arg-type]


def test_system_router_is_found() -> None:
    names = system_method_names()
    assert "sys.ping" in names
    # The stub saw every registration: the module source names no other method.
    source = inspect.getsource(rtctl.services.system)
    assert sorted(re.findall(r'@router\.method\(\s*"([^"]+)"', source)) == names


def builtin_method_names() -> list[str]:
    """Every method a gateway offers before any game method (all rtctl.services)."""
    return Gateway(gateway_config()).router.methods


def test_every_built_in_method_is_documented(api_md: str) -> None:
    body = section(api_md, "Built-in methods")
    headings = re.findall(r"^### `([^`]+)`", body, flags=re.MULTILINE)
    assert set(system_method_names()) < set(builtin_method_names())
    assert sorted(headings) == builtin_method_names(), (
        "the '### `name`' headings under '## Built-in methods' must be exactly "
        "the methods of rtctl.services")


def auth_reasons() -> set[str]:
    """Every ``reason`` word auth.py can put in an AuthError, found in its source.

    That is the first argument of each ``AuthError(...)`` call, plus the values
    of the claim -> reason table in ``Authenticator._refusal``.
    """
    tree = ast.parse(inspect.getsource(rtctl.gateway.auth))
    reasons: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AuthError":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                reasons.add(first.value)
        elif isinstance(node, ast.FunctionDef) and node.name == "_refusal":
            for table in ast.walk(node):
                if isinstance(table, ast.Dict):
                    reasons.update(v.value for v in table.values
                                   if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return reasons


def test_every_401_reason_is_documented(api_md: str) -> None:
    reasons = auth_reasons()
    assert {"missing", "expired", "bad_signature"} <= reasons  # the scan works
    body = section(api_md, "Connecting")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.MULTILINE))
    assert reasons <= documented, f"undocumented 401 reasons: {sorted(reasons - documented)}"
    assert documented <= reasons, f"documented reasons auth.py never gives: " \
                                  f"{sorted(documented - reasons)}"


def test_every_config_key_is_documented(api_md: str) -> None:
    body = section(api_md, "Limits and heartbeat")
    sections = config._SECTIONS
    rows = set(re.findall(r"^\| `\[(\w+)\]` \| `(\w+)` \|", body, flags=re.MULTILINE))
    expected = {(name, key) for name, keys in sections.items() for key in keys}
    assert rows == expected, (
        f"config keys missing from the table: {sorted(expected - rows)}; "
        f"documented but unknown: {sorted(rows - expected)}")


Family = tuple[str, frozenset[str]]  # type, label names


def documented_families(text: str) -> dict[str, Family]:
    """The ``| `name` | type | labels | meaning |`` rows under ``## Metrics``, by family name
    as the text parser gives it (a counter without ``_total``); a label is a backticked word."""
    families: dict[str, Family] = {}
    for line in section(text, "Metrics").splitlines():
        cells = _cells(line) if line.startswith("| `") else []
        if len(cells) == 4:
            name, kind, labels = _unquote(cells[0]), cells[1], cells[2]
            name = name.removesuffix("_total") if kind == "counter" else name
            families[name] = kind, frozenset(re.findall(r"`(\w+)`", labels))
    return families


def scraped_families(scrape: str) -> dict[str, Family]:
    """The families of a ``/metrics`` text; labels as far as samples show them (a family
    with no sample yet shows its type only)."""
    return {family.name: (family.type, frozenset(
                label for sample in family.samples for label in sample.labels
                if label not in ("le", "quantile")))
            for family in text_string_to_metric_families(scrape)}


def test_documented_families_are_read_with_their_labels() -> None:
    text = ("## Metrics\n| name | type | labels | meaning |\n|---|---|---|---|\n"
            "| `a_total` | counter | `x`: 1, 2; `y`: `<unknown>` | a \\| b |\n"
            "| `b_seconds` | histogram | | c |\n## Next\n| `c` | gauge | | d |\n")
    assert documented_families(text) == {"a": ("counter", frozenset({"x", "y"})),
                                         "b_seconds": ("histogram", frozenset())}


async def _scrape(gateway: Gateway) -> str:
    url = f"http://127.0.0.1:{gateway.port}/metrics"
    with await asyncio.to_thread(urllib.request.urlopen, url) as response:
        body: bytes = response.read()
    return body.decode()


async def _one_of_each(gateway: Gateway) -> None:
    """What gives a sample to each family a fresh gateway exposes without one: a recovery
    token offered (here a bad one), a call, an error reply, a close, a refused upgrade."""
    async with client(f"{gateway.url}?recover=not-a-token") as ws:
        assert "result" in await rpc(ws, "sys.ping")
        assert "error" in await rpc(ws, "no.such.method", id=2)
    assert (await refused(gateway.url))[0] == 401  # no token


async def test_every_metric_is_documented(redis_server: ServerProcess,
                                          nats_server: ServerProcess) -> None:
    """A gateway on Redis and NATS (so the backend families are there) and a simulator:
    every family they expose before any connection is in docs/observability.md with its
    type, and every family documented there is exposed. Then, once every family has a
    sample (label names come only from samples), its labels are exactly the documented."""
    gateway = Gateway(gateway_config(), backends=connect_backends(
        redis_url=redis_server.url, nats_url=nats_server.url, prefix=unique_prefix()))
    await gateway.start()
    try:
        fresh = await _scrape(gateway)
        await _one_of_each(gateway)
        busy = await _scrape(gateway)
    finally:
        await gateway.shutdown(drain=0)
    simulator = ProxyMetrics()
    fresh_simulator = simulator.render().decode()
    simulator.record("up", 10, Outcome(sent_at=0.0, deliveries=(), dropped="loss"))
    exposed = scraped_families(fresh) | scraped_families(fresh_simulator)
    assert {"rtctl_connections", "rtctl_backend_up", "rtctl_sessions", "process_cpu_seconds",
            "rtctl_sim_dropped"} <= set(exposed)  # every family from start-up, and the scan
    documented = documented_families(OBSERVABILITY_MD.read_text(encoding="utf-8"))
    assert sorted(set(exposed) - set(documented)) == [], "undocumented metrics"
    assert sorted(set(documented) - set(exposed)) == [], "documented metrics that do not exist"
    busy_simulator = simulator.render().decode()
    sampled = scraped_families(busy) | scraped_families(busy_simulator)
    unsampled = sorted(family.name for text in (busy, busy_simulator)
                       for family in text_string_to_metric_families(text) if not family.samples)
    assert unsampled == [], "families whose labels this test cannot see: give them a sample"
    wrong = {name: (documented.get(name), family) for name, family in sampled.items()
             if family != documented.get(name)}
    assert wrong == {}, "(documented type and labels, exposed) differ"


def test_api_md_points_at_the_metrics_reference(api_md: str) -> None:
    body = section(api_md, "HTTP endpoints")
    assert "(observability.md#metrics)" in body
    assert not re.search(r"^\| `rtctl_", body, flags=re.MULTILINE), \
        "the metrics table lives in docs/observability.md only"
