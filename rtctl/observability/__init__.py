"""Observability beyond ``/metrics``: dashboards, the Prometheus harness, ``rtctl top``.

The gateway's own families are built in :mod:`rtctl.gateway.metrics`; this package holds what
reads them: the Grafana dashboards' panels (:mod:`rtctl.observability.dashboards`), a real
Prometheus driven on loopback, and the terminal view behind ``rtctl top``.
"""
