"""``python -m rtctl.spec FILE [--check]``: rewrite FILE's generated regions.

The description is that of the router ``rtctl serve`` builds with no game router
(built-in services only). ``--check`` changes nothing and exits 1, printing a
unified diff, when the file differs from what would be written (CI, ``tests/spec``).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from rtctl.spec.markdown import RegionError, regions, rewrite
from rtctl.spec.openrpc import openrpc
from rtctl.spec.served import served_router


def generated(text: str) -> str:
    """``text`` (a protocol.md) with its regions as the built-in router renders them."""
    return rewrite(text, regions(openrpc(served_router())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtctl.spec", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 with a diff if FILE is stale; write nothing")
    args = parser.parse_args(argv)
    path: Path = args.file
    try:
        text = path.read_text(encoding="utf-8")
        new = generated(text)
    except (OSError, RegionError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    if new == text:
        return 0
    if args.check:
        sys.stdout.writelines(difflib.unified_diff(
            text.splitlines(keepends=True), new.splitlines(keepends=True),
            f"{path} (as it is)", f"{path} (generated)"))
        return 1
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
