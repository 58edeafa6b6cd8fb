"""The sans-I/O core of rtctl: JSON-RPC 2.0 codec and the error/close code table.

Nothing in this package opens a socket, reads a clock or touches asyncio.
"""
