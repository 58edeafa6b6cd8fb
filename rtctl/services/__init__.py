"""Built-in features, each a :class:`~rtctl.router.Router` like a game's own."""
