"""The generated regions of ``docs/protocol.md``, rendered from the OpenRPC document.

``methods`` (§4: one ``### 4.N name`` per method), ``notifications`` (§5: one
``### 5.N name`` each), ``errors`` (§6.1, from ``ERROR_DESCRIPTIONS``) and
``closes`` (§6.2, from ``CLOSE_DESCRIPTIONS``). Schemas are printed whole, as
JSON Schema 2020-12 in ``json`` blocks, so a reader and a validator see the same
thing. In a file the regions sit between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->`` lines; :func:`rewrite` replaces what is between.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rtctl.protocol.codes import CLOSE_DESCRIPTIONS, ERROR_DESCRIPTIONS, CloseCode

__all__ = ["REGIONS", "RegionError", "regions", "rewrite"]

REGIONS = ("methods", "notifications", "errors", "closes")

_WIDTH = 88  # columns of a JSON block line, where a part fits on one

# Opens §4: what holds for every schema below (docs/protocol.md §1 says it too).
_INTRO = (
    "Params, results and error data are JSON Schema 2020-12, exactly what a server binds and "
    "sends. Integers (`\"type\": \"integer\"`) MUST be written without a fraction or an "
    "exponent: `2`, never `2.0` or `2e0` (JSON Schema accepts those; a server answers "
    "-32602). Omitting `params`, `[]` and `{}` all mean no params."
)

_STRUCTURE = {
    "either": "by name (an object) or by position (an array, in this order)",
    "by-name": "by name (an object)",
    "by-position": "by position (an array, in this order)",
}


class RegionError(ValueError):
    """A file's generated-region markers are missing, repeated or out of order."""


def regions(document: Mapping[str, Any]) -> dict[str, str]:
    """Each region's Markdown for an OpenRPC ``document`` (:func:`rtctl.spec.openrpc.openrpc`)."""
    return {
        "methods": "\n\n".join([_INTRO, *(_method(n, m, document["components"]["errors"])
                                         for n, m in enumerate(document["methods"], 1))]),
        "notifications": "\n\n".join(_notification(n, note) for n, note in
                                     enumerate(document["x-notifications"], 1)),
        "errors": _errors(document["components"]["errors"]),
        "closes": _table(CLOSE_DESCRIPTIONS),
    }


def rewrite(text: str, rendered: Mapping[str, str]) -> str:
    """``text`` with each region's body replaced by ``rendered[name]``."""
    lines = text.split("\n")
    for name, body in rendered.items():
        start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
        if lines.count(start) != 1 or lines.count(end) != 1:
            raise RegionError(f"expected one {start!r} line and one {end!r} line, found "
                              f"{lines.count(start)} and {lines.count(end)}")
        first, last = lines.index(start), lines.index(end)
        if last < first:
            raise RegionError(f"{end!r} comes before {start!r}")
        lines[first + 1:last] = ["", *body.split("\n"), ""]
    return "\n".join(lines)


def _json(value: Any) -> str:
    return f"```json\n{_compact(value, 0)}\n```"


def _compact(value: Any, indent: int, lead: int = 0) -> str:
    """Indented JSON that keeps a part on one line where it fits in :data:`_WIDTH`
    (``lead``: the columns its key takes before it on its first line)."""
    flat = json.dumps(value, ensure_ascii=False)
    if indent + lead + len(flat) <= _WIDTH or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + 2
    if isinstance(value, dict):
        items = [f"{json.dumps(k, ensure_ascii=False)}: "
                 f"{_compact(v, inner, len(json.dumps(k, ensure_ascii=False)) + 2)}"
                 for k, v in value.items()]
    else:
        items = [_compact(v, inner) for v in value]
    body = ",\n".join(" " * inner + item for item in items)
    brackets = "{}" if isinstance(value, dict) else "[]"
    return f"{brackets[0]}\n{body}\n{' ' * indent}{brackets[1]}"


def _method(number: int, method: Mapping[str, Any], errors: Mapping[str, Any]) -> str:
    parts = [f"### 4.{number} {method['name']}"]
    if method["description"]:
        parts.append(method["description"])
    if method.get("x-raw-params"):
        parts.append("**Params**: an array or an object, or none (§3.1), handed to the "
                     "method exactly as sent.")
    else:
        parts += _params(method)
    parts.append("**Result**:")
    parts.append(_json(method["result"]["schema"]))
    codes, own = [], []
    for error in method["errors"]:
        if "$ref" in error:
            name = error["$ref"].rsplit("/", 1)[-1]
            codes.append(f"{errors[name]['code']} `{name}`")
        else:  # the game's own (Router errors=[ErrorDecl(...)])
            codes.append(f"{error['code']} ({error['message']})")
            if "x-data-schema" in error:
                own += [f"Error {error['code']} `data`:", _json(error["x-data-schema"])]
    whose = "each" if all("$ref" in error for error in method["errors"]) else "each of rtctl's"
    parts.append(f"**Errors**: {', '.join(codes)}; §6.1 says what {whose} means and its `data`.")
    return "\n\n".join(parts + own)


def _params(method: Mapping[str, Any]) -> list[str]:
    """The params in the form ``paramStructure`` names, with that form's exact schema."""
    structure = method["paramStructure"]
    form = _form(method["x-params-schema"], "array" if structure == "by-position" else "object")
    if form == _EMPTY[form["type"]]:
        return ["**Params**: none (omit `params`, or send `[]` or `{}`)."]
    listed = [f"`{p['name']}`" + ("" if p["required"] else " (optional)")
              for p in method["params"]]
    if "x-variadic" in method:
        listed.append(("then " if listed else "") +
                      f"any number of `{method['x-variadic']['name']}`")
    if form["type"] == "object" and form["additionalProperties"] is not False:
        listed.append("and any further named params")
    return [f"**Params**, {_STRUCTURE[structure]}: {', '.join(listed)}.", _json(form)]


_EMPTY = {"object": {"type": "object", "properties": {}, "additionalProperties": False},
          "array": {"type": "array", "prefixItems": [], "items": False}}


def _form(params_schema: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    forms = params_schema.get("anyOf", [_body(params_schema)])
    return next(form for form in forms if form["type"] == kind)


def _body(params_schema: Mapping[str, Any]) -> dict[str, Any]:
    """Without ``$schema``: the reference says its dialect once (the intro)."""
    return {k: v for k, v in params_schema.items() if k != "$schema"}


def _notification(number: int, note: Mapping[str, Any]) -> str:
    parts = [f"### 5.{number} {note['name']}"]
    if note["description"]:
        parts.append(note["description"])
    parts.append("**Params**, by name:")
    parts.append(_json(_body(note["x-params-schema"])))
    return "\n\n".join(parts)


def _errors(components: Mapping[str, Any]) -> str:
    rows = ["| Code | Name | Meaning | `data` |", "|---:|---|---|---|"]
    for code, text in ERROR_DESCRIPTIONS.items():
        data = components[code.name].get("x-data-schema")
        shape = "" if data is None else "`{" + ", ".join(
            f'"{key}"{"" if key in data["required"] else "?"}: {sub.get("type", "any")}'
            for key, sub in data["properties"].items()) + "}`"
        rows.append(f"| {int(code)} | `{code.name}` | {text} | {shape} |")
    return "\n".join(rows)


def _table(descriptions: Mapping[CloseCode, str]) -> str:
    rows = ["| Code | Name | Meaning |", "|---:|---|---|"]
    rows += [f"| {int(code)} | `{code.name}` | {text} |" for code, text in descriptions.items()]
    return "\n".join(rows)
