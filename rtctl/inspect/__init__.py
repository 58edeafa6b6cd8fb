"""The inspector: what ``rtctl inspect`` shows, records and exports, as a library.

* :mod:`~rtctl.inspect.listener` reads a gateway's tap (``/tap``) as events;
* :mod:`~rtctl.inspect.filters` parses ``--filter`` expressions;
* :mod:`~rtctl.inspect.pairing` matches replies to requests and times them;
* :mod:`~rtctl.inspect.states` decodes state frames into what they changed, with
  schemas given or fetched by :mod:`~rtctl.inspect.schemas`;
* :mod:`~rtctl.inspect.view` renders events for people (rich) or pipes (JSON lines);
* :mod:`~rtctl.inspect.recorder` writes and reads JSONL recordings;
* :mod:`~rtctl.inspect.pcap` exports a pcap that Wireshark decodes as WebSocket.

The events themselves are defined where they happen, in :mod:`rtctl.gateway.tap`.
"""
