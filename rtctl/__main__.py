"""``python -m rtctl`` is ``rtctl``."""

from rtctl.cli import main

if __name__ == "__main__":  # bench workers (spawn) import this module as __mp_main__
    main()
