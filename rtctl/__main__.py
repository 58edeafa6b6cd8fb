"""``python -m rtctl`` is ``rtctl``."""

from rtctl.cli import main

main()
