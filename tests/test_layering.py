"""Import hygiene: what the client SDK loads, who may import the gateway, no cycles.

A game embeds :mod:`rtctl.client`; it must not load (or break with) the
server: JWT and crypto, the server half of websockets, Prometheus, Redis, NATS,
the gateway and the services, nor picows until it chooses that transport. The
tools (simulator, inspector, bench, profiler) and the client talk to a gateway
over the network and never import it. And no two modules of ``rtctl`` and
``simulator`` import each other, directly or around a loop.

The static checks read every import statement anywhere in a file (inside
functions and under ``TYPE_CHECKING`` too): ``import a.b`` names ``a.b``;
``from a import b`` names ``a.b`` when that is a module, else ``a`` -- and, for
a name ``a`` re-exports lazily (PEP 562, see ``rtctl/__init__.py``), also the
module the name comes from. A package's ``__init__`` counts like any module.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import rtctl

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rtctl", "simulator")

# Never loaded by ``import rtctl.client``: a name and everything below it.
CLIENT_MUST_NOT_LOAD = (
    "jwt", "cryptography", "websockets.asyncio.server", "websockets.server",
    "prometheus_client", "redis", "nats", "picows", "rtctl.gateway", "rtctl.services",
)
# Reach the gateway over the network only.
NETWORK_ONLY = ("rtctl.client", "simulator", "rtctl.inspect", "rtctl.bench", "rtctl.profiler")


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def find_modules() -> dict[str, Path]:
    """Every module of ``rtctl`` and ``simulator`` by dotted name; a package by its own."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = find_modules()


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def lazy_exports(tree: ast.Module) -> dict[str, str]:
    """Names a package ``__init__`` imports only under ``if TYPE_CHECKING:``, and from where."""
    return {alias.asname or alias.name: node.module
            for block in tree.body if isinstance(block, ast.If) and is_type_checking(block.test)
            for node in block.body if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


LAZY = {name: lazy_exports(parse(path)) for name, path in MODULES.items()
        if path.name == "__init__.py"}


def absolute(module: str, path: Path, target: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        assert target is not None
        return target
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{target}" if target else package


def imports(module: str, path: Path) -> Iterator[str]:
    """Every module the file's import statements name (module docstring)."""
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(module, path, node.module, node.level)
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}"
                else:
                    yield base
                    if alias.name in LAZY.get(base, {}):
                        yield LAZY[base][alias.name]


def graph() -> dict[str, set[str]]:
    """Module → the modules of ``rtctl`` and ``simulator`` it imports (no self-loops)."""
    return {module: {t for t in imports(module, path) if t in MODULES and t != module}
            for module, path in MODULES.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(found)


# -- what `import rtctl.client` loads -------------------------------------------------


def test_importing_the_client_loads_no_server_code() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, rtctl.client; print(*sorted(sys.modules))"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()
    assert "rtctl.client.connection" in loaded  # the probe itself works
    unwanted = [m for m in loaded if any(within(m, bad) for bad in CLIENT_MUST_NOT_LOAD)]
    assert not unwanted, f"import rtctl.client loaded {unwanted}"


def test_the_top_level_names_are_lazy_and_typed() -> None:
    """``rtctl.__all__`` = the TYPE_CHECKING imports; each resolves to the same object."""
    declared = LAZY["rtctl"]
    assert set(rtctl.__all__) == {*declared, "__version__"}
    for name, module in declared.items():
        assert getattr(rtctl, name) is getattr(importlib.import_module(module), name), name
    assert set(rtctl.__all__) <= set(dir(rtctl))


# -- who imports what -------------------------------------------------------------------


def test_the_probe_sees_every_kind_of_import() -> None:
    """The parser is the test's own code: check it on the shapes it must catch."""
    assert "rtctl.gateway.server" in set(imports("rtctl", MODULES["rtctl"]))  # TYPE_CHECKING
    edges = graph()
    assert "rtctl.client.picows_link" in edges["rtctl.client.transport"]  # inside a function
    assert "rtctl.client.errors" in edges["rtctl.client"]  # a package's own submodule
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_client_and_the_tools_never_import_the_gateway() -> None:
    edges = graph()
    offenders = sorted(f"{module} -> {target}" for module in edges
                       if any(within(module, tool) for tool in NETWORK_ONLY)
                       for target in edges[module] if within(target, "rtctl.gateway"))
    assert not offenders, "imports of the gateway:\n" + "\n".join(offenders)


def test_no_import_cycles() -> None:
    edges = graph()
    found = cycles(edges)
    report = [f"{' '.join(component)}: "
              + ", ".join(f"{a} -> {b}" for a in component for b in sorted(edges[a])
                          if b in component)
              for component in found]
    assert not report, "import cycles:\n" + "\n".join(report)
