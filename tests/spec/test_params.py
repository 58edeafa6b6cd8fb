"""The published params are exactly what the Router binds, for every kind of signature.

For each signature shape the ``x-params-schema`` accepts a candidate ``params``
value iff :meth:`~rtctl.router.Method.bind` binds it, over every array of up to
four items and every object over the parameter names plus one stranger, with
values of the right and a wrong type (integers only as integers: a fraction is
§1's rule, a schema cannot say it). The example a reader builds from the
listed params, in the published ``paramStructure``, binds too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from rtctl.exceptions import InvalidParams
from rtctl.router import CallContext, Method, Router
from rtctl.spec.markdown import regions
from rtctl.spec.openrpc import openrpc
from rtctl.spec.params import SpecError, describe_params

CTX = CallContext(connection_id="c", user="u", claims={}, remote_address=None)
VALUES = (7, "s")  # an int and a str: each param below takes one of them


def plain(a: int, b: str = "") -> None: ...
def positional(a: int, b: str = "", /) -> None: ...
def variadic(a: int, *rest: str) -> None: ...
def extras(a: int, **rest: str) -> None: ...
def keyword(a: int, *, b: str) -> None: ...
def keyword_optional(a: int, *, b: str = "") -> None: ...
def both_ways(a: int, /, *, b: str = "") -> None: ...
def named_past_positional(a: int = 0, /, *, b: str) -> None: ...
def positional_extras(a: int = 0, /, **rest: str) -> None: ...
def everything(ctx: CallContext, a: int, *rest: str, b: str = "", **more: int) -> None: ...
def nothing(ctx: CallContext) -> None: ...


SHAPES: list[Callable[..., None]] = [plain, positional, variadic, extras, keyword,
                                     keyword_optional, both_ways, named_past_positional,
                                     positional_extras, everything, nothing]


def binds(method: Method, params: Any) -> bool:
    try:
        method.bind(params, CTX)
    except InvalidParams:
        return False
    return True


def candidates(names: list[str]) -> Iterator[Any]:
    for size in range(5):
        yield from (list(values) for values in itertools.product(VALUES, repeat=size))
    keys = [*names, "zz"]
    for count in range(len(keys) + 1):
        for chosen in itertools.combinations(keys, count):
            for values in itertools.product(VALUES, repeat=count):
                yield dict(zip(chosen, values, strict=True))


@pytest.mark.parametrize("func", SHAPES, ids=lambda f: f.__name__)
def test_the_schema_accepts_exactly_what_binds(func: Callable[..., None]) -> None:
    method = Method(func.__name__, func)
    validator = Draft202012Validator(describe_params(method)["x-params-schema"])
    names = list(method.signature.parameters)
    wrong = [(p, validator.is_valid(p), binds(method, p)) for p in candidates(names)
             if validator.is_valid(p) != binds(method, p)]
    assert not wrong, wrong[:5]


def example(described: dict[str, Any], everything: bool) -> list[Any] | dict[str, Any]:
    """The params a reader writes from the listed params: the required ones, or all."""
    listed = [p for p in described["params"] if everything or p["required"]]
    value = {"integer": 1, "string": "s"}
    if described["paramStructure"] == "by-name":
        return {p["name"]: value[p["schema"]["type"]] for p in listed}
    extra = [value[described["x-variadic"]["schema"]["type"]]] * 2 if (
        everything and "x-variadic" in described) else []
    return [value[p["schema"]["type"]] for p in listed] + extra


@pytest.mark.parametrize("func", SHAPES, ids=lambda f: f.__name__)
def test_the_listed_params_bind_in_the_published_structure(func: Callable[..., None]) -> None:
    method = Method(func.__name__, func)
    described = describe_params(method)
    for everything in (False, True):
        params = example(described, everything)
        assert binds(method, params), params
        if described["paramStructure"] == "either":
            assert binds(method, dict(zip((p["name"] for p in described["params"]),
                                          params, strict=False)) if isinstance(params, list)
                         else list(params.values()))


def test_only_keyword_only_and_extras_make_a_method_by_name() -> None:
    structure = {f.__name__: describe_params(Method(f.__name__, f))["paramStructure"]
                 for f in SHAPES}
    assert structure == {
        "plain": "either", "positional": "by-position", "variadic": "by-position",
        "extras": "by-name", "keyword": "by-name", "keyword_optional": "by-name",
        "both_ways": "by-position", "named_past_positional": "by-name",
        "positional_extras": "by-name",
        "everything": "by-position", "nothing": "either"}
    kept = describe_params(Method("everything", everything))
    assert [p["name"] for p in kept["params"]] == ["a"]  # b and **more: by name only
    assert kept["x-variadic"]["name"] == "rest"


def test_a_signature_no_json_can_call_is_refused_by_name() -> None:
    def stuck(a: int, /, *, b: str) -> None: ...
    router = Router()
    router.add_method(stuck, name="game.stuck")
    with pytest.raises(SpecError, match=r"game\.stuck: no JSON params can call it"):
        openrpc(router)


def test_markdown_says_how_extras_are_sent() -> None:
    router = Router()
    router.add_method(variadic, name="game.variadic")
    router.add_method(extras, name="game.extras")
    rendered = regions(openrpc(router))["methods"]
    assert ("**Params**, by position (an array, in this order): `a`, then any number of "
            "`rest`.") in rendered
    assert ("**Params**, by name (an object): `a`, and any further named params."
            ) in rendered
