"""Where the time goes: the gateway's sampled stage timings and ``rtctl profile``'s report.

:mod:`rtctl.profiler.stages` is what the gateway records (cheap enough to stay
on); :mod:`rtctl.profiler.report` reads it from ``GET /profile`` and shows it,
with the outboxes' lanes from ``GET /metrics`` (:mod:`rtctl.profiler.lanes`).
"""
