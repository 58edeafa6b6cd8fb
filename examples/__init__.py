"""Small, runnable examples of game code on rtctl."""
