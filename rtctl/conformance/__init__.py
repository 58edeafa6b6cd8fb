"""Conformance kits: check any gateway (``rtctl conformance server``) or any client SDK
(``rtctl conformance client``) against docs/protocol.md; both report
:mod:`rtctl.conformance.results`."""
