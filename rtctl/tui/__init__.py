"""``rtctl tui``: the devtools app over the whole stack (the README's ``make run``).

* :mod:`~rtctl.tui.demo` starts gateway, simulator and bots in one process;
* :mod:`~rtctl.tui.bots` are the bot players, plain :class:`~rtctl.client.Client` users;
* :mod:`~rtctl.tui.stack` is what the screens read, embedded or attached;
* :mod:`~rtctl.tui.watched_room` is the stateful room the state screen shows;
* :mod:`~rtctl.tui.app` is the Textual app, with its screens and widgets.

Importing this package does not import Textual: the demo and the bots are
usable (and tested) without a terminal.
"""

__all__: list[str] = []
