"""The protocol, described from the code: ``rtctl spec`` and ``docs/protocol.md`` §4-§6.

:func:`~rtctl.spec.openrpc.openrpc` turns a :class:`~rtctl.router.Router` (methods
with their params and result types, declared notifications) into an OpenRPC 1.3.2
document; :mod:`~rtctl.spec.markdown` renders it, with the error and close codes,
as the generated regions of ``docs/protocol.md``; ``python -m rtctl.spec FILE``
rewrites those regions (``--check``: fail if they are stale).
"""
