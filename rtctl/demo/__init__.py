"""The demo arena: a small deterministic shooter that shows what netcode is for.

:mod:`~rtctl.demo.game` holds the rules both sides run, :mod:`~rtctl.demo.room`
the server's room type (``arena``), :mod:`~rtctl.demo.player` a client-side
player with prediction, interpolation and its netcode numbers, and
:mod:`~rtctl.demo.bots` the brains that play by themselves. ``rtctl tui
--demo`` shows it; ``rtctl bench --scenario arena`` measures it.
"""
