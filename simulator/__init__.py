"""The network simulator behind ``rtctl simulate``: pure impairment models and a shaping proxy.

Models (:mod:`simulator.models`, :mod:`simulator.impairments`, :mod:`simulator.link`,
:mod:`simulator.scenario`) are sans-I/O: seeded ``random.Random`` and ``now`` in,
delivery times out; so is ws mode's frame parser (:mod:`simulator.frames`). The
asyncio proxies (:mod:`simulator.proxy` and :mod:`simulator.relay` for ws mode,
:mod:`simulator.stream` for tcp mode) and the control API (:mod:`simulator.control`)
drive them. See ``docs/simulator.md``.
"""

__all__: list[str] = []
