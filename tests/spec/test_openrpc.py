"""The OpenRPC document, the Markdown regions, ``python -m rtctl.spec`` and ``rtctl spec``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import pytest
import typer
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from rtctl.cli import spec as spec_cli
from rtctl.exceptions import ConfigError, ErrorDecl
from rtctl.gateway.server import Gateway
from rtctl.protocol.codes import CLOSE_DESCRIPTIONS, ERROR_DESCRIPTIONS, ErrorCode
from rtctl.protocol.streams import POSITION_SCHEMA
from rtctl.router import CallContext, Router
from rtctl.spec.__main__ import main as spec_main
from rtctl.spec.jsonschema import DIALECT, schema
from rtctl.spec.markdown import REGIONS, RegionError, regions, rewrite
from rtctl.spec.openrpc import describe_text, openrpc
from rtctl.spec.served import served_router
from rtctl.state.hlc import STAMP_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
INTEGER = schema(int)
PROTOCOL = ROOT / "docs" / "protocol.md"


class Point(TypedDict):
    x: int


def game_router() -> Router:
    router = Router()

    @router.method("game.move", errors=[ErrorCode.FORBIDDEN,
                                        ErrorDecl(4100, "Not enough gold", Point)])
    def move(ctx: CallContext, x: int, *, fast: bool = False) -> Point:
        """Move somewhere; ``fast`` skips the animation (:class:`~a.b.Point`)."""
        return {"x": x}

    @router.method("game.pos")
    def pos(x: int, y: int = 0, /) -> None:
        return None

    @router.method("game.kw")
    def kw(*, x: int, **rest: str) -> None:
        return None

    @router.method("game.raw", raw_params=True)
    def raw(params: Any) -> Any:
        return params

    router.notification("game.moved", Point, doc="Someone moved.")
    return router


@pytest.fixture(scope="module")
def builtin() -> dict[str, Any]:
    return openrpc(served_router())


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {method["name"]: method for method in document["methods"]}


async def test_the_spec_lists_exactly_what_a_served_gateway_registers(
        gateway: Gateway, builtin: dict[str, Any]) -> None:
    assert [method["name"] for method in builtin["methods"]] == gateway.router.methods
    assert list(gateway.router.notifications) == [n["name"] for n in builtin["x-notifications"]]
    assert {"presence.changed", "room.message", "room.joined", "room.left", "room.diff",
            "state.patch"} == set(gateway.router.notifications)


def test_a_game_router_is_described_with_the_builtin_one() -> None:
    document = openrpc(served_router(game_router()))
    methods = by_name(document)
    assert {"game.move", "game.pos", "game.kw", "game.raw", "sys.ping"} <= set(methods)
    assert "game.moved" in [n["name"] for n in document["x-notifications"]]
    with pytest.raises(ValueError, match="registered twice"):
        served_router(served_router())  # every built-in method again


def test_each_method_is_described_in_a_form_the_router_binds() -> None:
    methods = by_name(openrpc(game_router()))
    move = methods["game.move"]
    assert move["paramStructure"] == "by-name"  # `fast` is keyword-only: no array reaches it
    assert move["params"] == [
        {"name": "x", "required": True, "schema": INTEGER},
        {"name": "fast", "required": False, "schema": {"type": "boolean", "default": False}},
    ]  # no ctx: the CallContext is not a param
    assert move["result"]["schema"]["title"] == "Point"
    assert move["description"] == "Move somewhere; `fast` skips the animation (`Point`)."
    assert methods["game.pos"]["paramStructure"] == "by-position"
    assert methods["game.pos"]["result"]["schema"] == {"type": "null"}
    kw = methods["game.kw"]
    assert kw["paramStructure"] == "by-name"
    assert [p["name"] for p in kw["params"]] == ["x"]  # **rest is no param: further members
    assert kw["x-params-schema"]["additionalProperties"] == {"type": "string"}
    raw = methods["game.raw"]
    assert raw["params"] == []
    assert raw["x-raw-params"] is True
    assert raw["result"]["schema"] == {}


def test_each_method_lists_the_errors_its_handler_declares(builtin: dict[str, Any]) -> None:
    def codes(method: dict[str, Any]) -> list[str]:
        return [error["$ref"].rsplit("/", 1)[-1] for error in method["errors"]]

    methods = by_name(builtin)
    generic = ["INVALID_PARAMS", "INTERNAL_ERROR", "RATE_LIMITED"]
    assert codes(methods["sys.ping"]) == generic
    assert codes(methods["state.update"]) == ["FORBIDDEN", "CONFLICT", *generic]
    assert codes(methods["session.refresh"]) == ["UNAUTHORIZED", *generic]
    game = by_name(openrpc(game_router()))["game.move"]
    own, *shared = game["errors"]
    assert own == {"code": 4100, "message": "Not enough gold", "x-data-schema": schema(Point)}
    assert codes({"errors": shared}) == ["FORBIDDEN", *generic]
    assert '4100 (Not enough gold), -32003 `FORBIDDEN`' in regions(openrpc(game_router()))[
        "methods"]
    conflict = Draft202012Validator(builtin["components"]["errors"]["CONFLICT"]["x-data-schema"])
    assert conflict.is_valid({"path": "title", "version": 3, "value": None})
    # Every raiser in rtctl gives version and value, not all a path; a game may add members.
    assert conflict.is_valid({"version": 3, "value": None, "why": "taken"})
    assert not conflict.is_valid({"path": "title"})
    assert "x-data-schema" not in builtin["components"]["errors"]["FORBIDDEN"]  # data varies
    rendered = regions(builtin)
    assert ("**Errors**: -32001 `UNAUTHORIZED`, -32602 `INVALID_PARAMS`, -32603 "
            "`INTERNAL_ERROR`, -32029 `RATE_LIMITED`;") in rendered["methods"]
    assert '| `{"retry_after_ms": integer}` |' in rendered["errors"]
    assert '`{"path"?: string, "version": integer, "value": any}`' in rendered["errors"]


def test_params_their_handler_parses_publish_the_parser_schema(builtin: dict[str, Any]) -> None:
    def param(method: str, name: str) -> dict[str, Any]:
        return next(p for p in by_name(builtin)[method]["params"] if p["name"] == name)

    assert param("room.join", "since")["schema"]["anyOf"] == [POSITION_SCHEMA, {"type": "null"}]
    assert param("state.update", "clock")["schema"]["anyOf"] == [STAMP_SCHEMA, {"type": "null"}]


def test_an_annotation_json_cannot_describe_is_refused_naming_the_method() -> None:
    result = CliRunner().invoke(cli(), ["--router", "tests.spec.test_openrpc:UNDESCRIBED"])
    assert isinstance(result.exception, ConfigError)
    assert "game.span: its return annotation: no JSON Schema for" in str(result.exception)
    with pytest.raises(TypeError, match=r"'game\.x': params must be a TypedDict"):
        Router().notification("game.x", dict)
    loose = Router()
    loose.add_method(bare, name="game.bare")  # a game's `-> dict` is any object: described
    assert openrpc(loose)["methods"][0]["result"]["schema"] == {"type": "object"}


def bare() -> dict:  # type: ignore[type-arg]
    return {}


def test_the_document_is_well_formed_openrpc(builtin: dict[str, Any]) -> None:
    assert builtin["openrpc"] == "1.3.2"
    assert builtin["info"]["version"]
    names = [method["name"] for method in builtin["methods"]]
    assert names == sorted(names)
    errors = builtin["components"]["errors"]
    assert {error["code"] for error in errors.values()} == {int(code) for code in ErrorCode}
    for method in [*builtin["methods"], *builtin["x-notifications"]]:
        assert method["paramStructure"] in ("by-name", "by-position", "either")
        if not method.get("x-raw-params"):  # OpenRPC's own schemas are draft-07; not this
            assert method["x-params-schema"]["$schema"] == DIALECT
        assert method["description"], f"{method['name']} has no description"
        for param in method["params"]:
            assert set(param) <= {"name", "required", "schema", "description"}
            Draft202012Validator.check_schema(param["schema"])
    for method in builtin["methods"]:
        Draft202012Validator.check_schema(method["result"]["schema"])
        for error in method["errors"]:
            assert error["$ref"].rsplit("/", 1)[-1] in errors
    json.dumps(builtin)  # all of it is JSON


def test_notifications_are_by_name_with_their_schema(builtin: dict[str, Any]) -> None:
    for note in builtin["x-notifications"]:
        body = note["x-params-schema"]
        assert body["additionalProperties"] is False
        assert [p["name"] for p in note["params"]] == list(body["properties"])
        assert {p["name"] for p in note["params"] if p["required"]} == set(body["required"])


def test_a_reply_with_an_undeclared_field_fails(builtin: dict[str, Any]) -> None:
    refresh = by_name(builtin)["session.refresh"]["result"]["schema"]
    assert Draft202012Validator(refresh).is_valid({"user": "a", "expires_at": None})
    assert not Draft202012Validator(refresh).is_valid({"user": "a", "expires_at": None,
                                                      "extra": 1})
    message = next(n for n in builtin["x-notifications"] if n["name"] == "room.message")
    assert not Draft202012Validator(message["x-params-schema"]).is_valid(
        {"room": "r", "from": "a", "data": 1, "offset": 1, "epoch": "e", "lane": "chat"})


def test_router_notifications_clash_like_methods() -> None:
    router = Router()
    router.notification("a.b", Point)
    with pytest.raises(ValueError, match="declared twice"):
        router.notification("a.b", Point)
    other = Router()
    other.notification("a.b", Point)
    with pytest.raises(ValueError, match="declared twice"):
        router.include(other)
    merged = Router()
    merged.include(other)
    assert merged.notifications["a.b"].params is Point


def test_describe_text_reads_sphinx_as_markdown() -> None:
    assert describe_text(None) == ""
    assert describe_text("``a`` and :data:`~x.y.LIMIT`, :meth:`Tags.published`") == (
        "`a` and `LIMIT`, `Tags.published`")


def test_the_markdown_regions_number_sections_and_list_every_code(
        builtin: dict[str, Any]) -> None:
    rendered = regions(builtin)
    assert list(rendered) == list(REGIONS)
    headings = [line for line in rendered["methods"].splitlines() if line.startswith("### ")]
    assert headings == [f"### 4.{n} {m['name']}" for n, m in enumerate(builtin["methods"], 1)]
    notes = [line for line in rendered["notifications"].splitlines() if line.startswith("###")]
    assert notes == [f"### 5.{n} {m['name']}"
                     for n, m in enumerate(builtin["x-notifications"], 1)]
    for code in ERROR_DESCRIPTIONS:
        assert f"| {int(code)} | `{code.name}` |" in rendered["errors"]
    for close in CLOSE_DESCRIPTIONS:
        assert f"| {int(close)} | `{close.name}` |" in rendered["closes"]
    intro = rendered["methods"].split("\n### 4.1 ", 1)[0]
    assert "Integers (`\"type\": \"integer\"`) MUST be written without a fraction" in intro
    block = rendered["methods"].split("```json\n", 1)[1].split("\n```", 1)[0]
    Draft202012Validator.check_schema(json.loads(block))


def marked(body: str = "") -> str:
    return "# T\n\n" + "\n\n".join(
        f"<!-- generated:{name} -->\n{body}<!-- /generated:{name} -->" for name in REGIONS) + "\n"


def test_rewrite_replaces_only_between_the_markers() -> None:
    text = rewrite(marked("stale\n"), dict.fromkeys(REGIONS, "NEW"))
    assert "stale" not in text
    assert text.count("\nNEW\n") == 4
    assert text.startswith("# T\n\n<!-- generated:methods -->\n\nNEW\n\n<!-- /generated:")
    assert rewrite(text, dict.fromkeys(REGIONS, "NEW")) == text  # idempotent
    with pytest.raises(RegionError, match="generated:methods"):
        rewrite("# nothing here\n", {"methods": "x"})
    with pytest.raises(RegionError, match="before"):
        rewrite("<!-- /generated:methods -->\n<!-- generated:methods -->\n", {"methods": "x"})


def test_python_m_rtctl_spec_writes_then_checks(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "protocol.md"
    path.write_text(marked(), encoding="utf-8")
    assert spec_main([str(path), "--check"]) == 1
    assert "+### 4.1 presence.get" in capsys.readouterr().out
    assert path.read_text(encoding="utf-8") == marked()  # --check writes nothing
    assert spec_main([str(path)]) == 0
    assert "### 5.1 presence.changed" in path.read_text(encoding="utf-8")
    assert spec_main([str(path), "--check"]) == 0
    path.write_text("no markers\n", encoding="utf-8")
    assert spec_main([str(path)]) == 2
    assert "generated:methods" in capsys.readouterr().err


def test_docs_protocol_md_is_as_generated() -> None:
    # docs/protocol.md is written by hand around regions this generator fills: it must
    # have every region's markers and their text must be current (`make spec` fixes it).
    assert PROTOCOL.exists(), "docs/protocol.md is missing"
    assert spec_main([str(PROTOCOL), "--check"]) == 0, "docs/protocol.md is stale: make spec"


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(spec_cli.spec)
    return app


def test_rtctl_spec_openrpc_prints_the_document_with_the_game_router() -> None:
    module = "tests.spec.test_openrpc:GAME"
    result = CliRunner().invoke(cli(), ["--openrpc", "--router", module,
                                        "--room-type", "drift"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document == openrpc(served_router(GAME))


def test_rtctl_spec_refuses_a_game_method_that_clashes() -> None:
    result = CliRunner().invoke(cli(), ["--router", "tests.spec.test_openrpc:CLASH"])
    assert isinstance(result.exception, ConfigError)
    assert "'sys.ping' is registered twice" in str(result.exception)


def test_rtctl_spec_prints_the_markdown_reference(builtin: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli(), [])
    assert result.exit_code == 0, result.output
    for name, body in regions(builtin).items():
        assert body in result.output, name
    assert result.output.index("## 4. Methods") < result.output.index("## 5. Notifications")


GAME = game_router()
CLASH = Router()
CLASH.add_method(lambda: None, name="sys.ping")
UNDESCRIBED = Router()


@UNDESCRIBED.method("game.span")
def span() -> tuple[int, int]:  # JSON has arrays, not tuples: the spec cannot guess
    return (0, 1)
