"""The load generator behind ``rtctl bench``: scenarios, HDR histograms, reports.

Build a :class:`~rtctl.bench.plan.Plan` and :func:`~rtctl.bench.runner.run` it;
the result (:class:`~rtctl.bench.results.BenchResult`) has the percentiles,
the per-second timeline and the errors by class. See ``docs/bench.md``.
"""
