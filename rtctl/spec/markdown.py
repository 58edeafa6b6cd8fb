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

from rtctl.protocol.codes import CLOSE_DESCRIPTIONS, ERROR_DESCRIPTIONS, CloseCode, ErrorCode

__all__ = ["REGIONS", "RegionError", "regions", "rewrite"]

REGIONS = ("methods", "notifications", "errors", "closes")

_WIDTH = 88  # columns of a JSON block line, where a part fits on one

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
        "methods": "\n\n".join(_method(n, m, document["components"]["errors"])
                              for n, m in enumerate(document["methods"], 1)),
        "notifications": "\n\n".join(_notification(n, note) for n, note in
                                     enumerate(document["x-notifications"], 1)),
        "errors": _table(ERROR_DESCRIPTIONS),
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
        parts.append("**Params**: any JSON value, handed to the method exactly as sent.")
    elif method["params"]:
        listed = ", ".join(f"`{p['name']}`" + ("" if p["required"] else " (optional)")
                           for p in method["params"])
        parts.append(f"**Params**, {_STRUCTURE[method['paramStructure']]}: {listed}.")
        parts.append(_json(_params_object(method["params"])))
    else:
        parts.append("**Params**: none (omit `params`, or send `[]` or `{}`).")
    parts.append("**Result**:")
    parts.append(_json(method["result"]["schema"]))
    codes = ", ".join(f"{errors[name]['code']} `{name}`" for name in
                      (error["$ref"].rsplit("/", 1)[-1] for error in method["errors"]))
    parts.append(f"**Errors**: {codes}, as any call may; §6.1 lists every code.")
    return "\n\n".join(parts)


def _params_object(params: list[dict[str, Any]]) -> dict[str, Any]:
    """The params as one object schema, as they look sent by name."""
    out: dict[str, Any] = {"type": "object",
                           "properties": {p["name"]: p["schema"] for p in params}}
    required = [p["name"] for p in params if p["required"]]
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


def _notification(number: int, note: Mapping[str, Any]) -> str:
    parts = [f"### 5.{number} {note['name']}"]
    if note["description"]:
        parts.append(note["description"])
    parts.append("**Params**, by name:")
    parts.append(_json(note["x-params-schema"]))
    return "\n\n".join(parts)


def _table(descriptions: Mapping[ErrorCode, str] | Mapping[CloseCode, str]) -> str:
    rows = ["| Code | Name | Meaning |", "|---:|---|---|"]
    rows += [f"| {int(code)} | `{code.name}` | {text} |" for code, text in descriptions.items()]
    return "\n".join(rows)
