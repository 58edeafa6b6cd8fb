"""The Grafana dashboards as data: what each panel asks Prometheus, and in which unit.

Plain frozen dataclasses, so the dashboards can be read, tested and rendered (Grafana JSON
by :mod:`rtctl.observability.grafana`, PNGs for the docs) without any Grafana library.
The panels follow the RED method for requests (rate, errors, duration) and the USE method
for resources (utilisation, saturation, errors), with the metric names of
docs/observability.md.

Every selector names its scrape job (``job="rtctl"`` for the gateways,
``job="rtctl-simulator"`` for the simulator: deploy/prometheus/prometheus.yml), because
``process_*`` and other common names are exposed by nearly every exporter, Prometheus
included: with the Instance selector at "All" a panel would otherwise mix them in.
Expressions use only two Grafana variables, ``$__rate_interval`` and ``$instance``
(always as ``instance=~"$instance"``), so :func:`concrete` can turn each into the
PromQL that Prometheus runs. Quantiles aggregate the buckets first
(``sum by (le, …)(rate(…_bucket[…]))``): a quantile of per-instance quantiles means
nothing, a quantile of summed buckets is the fleet's (Prometheus docs, "Histograms and
summaries").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

__all__ = ["DASHBOARDS", "GATEWAY_JOB", "SIMULATOR_JOB", "Dashboard", "Panel", "Query",
           "concrete"]

# The scrape jobs of deploy/prometheus/prometheus.yml: every query keeps to one, since
# process_* and other common names come from nearly every exporter.
GATEWAY_JOB = "rtctl"
SIMULATOR_JOB = "rtctl-simulator"

INSTANCE = 'instance=~"$instance"'
RATE_INTERVAL = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel; ``legend`` is Grafana's legendFormat."""

    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A time series panel; ``unit`` is a Grafana unit id (``s``, ``reqps``, ``Bps``, …)."""

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]


def _series(metric: str, job: str, *matchers: str) -> str:
    """The metric's series from one scrape job's targets, narrowed by any ``matchers``."""
    scope = ", ".join(m for m in (f'job="{job}"', *matchers) if m)
    return f"{metric}{{{scope}}}"


@dataclass(frozen=True)
class Dashboard:
    """``instance_source`` selects the series whose ``instance`` labels fill the dashboard's
    $instance list: one that every target of the dashboard's job exposes from start-up."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    instance_source: str = _series("rtctl_build_info", GATEWAY_JOB)


def concrete(expr: str, *, rate_interval: str = "1m", instance: str = ".*") -> str:
    """The expression as Prometheus runs it: Grafana's ``$__rate_interval`` and
    ``$instance`` substituted (``instance`` is a regular expression, as the variable's
    "All" value is)."""
    return expr.replace(RATE_INTERVAL, rate_interval).replace("$instance", instance)


def _selector(metric: str, matchers: str = "", job: str = GATEWAY_JOB) -> str:
    return _series(metric, job, INSTANCE, matchers)


def _rate(metric: str, by: str = "", matchers: str = "", job: str = GATEWAY_JOB) -> str:
    """The per-second rate of a counter, summed (``by`` the labels given)."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({_selector(metric, matchers, job)}[{RATE_INTERVAL}]))"


def _gauge(metric: str, by: str = "", aggregation: str = "sum", job: str = GATEWAY_JOB) -> str:
    grouping = f" by ({by})" if by else ""
    return f"{aggregation}{grouping}({_selector(metric, job=job)})"


def _quantile(q: float, histogram: str, by: str = "") -> str:
    return f"histogram_quantile({q}, {_rate(histogram + '_bucket', f'le, {by}' if by else 'le')})"


def _latencies(histogram: str, by: str = "") -> tuple[Query, ...]:
    """p50, p95 and p99 of a histogram, per the ``by`` labels."""
    prefix = "".join(f"{{{{{label.strip()}}}}} " for label in by.split(",") if label.strip())
    return tuple(Query(_quantile(q, histogram, by), f"{prefix}p{round(q * 100)}")
                 for q in (0.5, 0.95, 0.99))


def _ratio(numerator: str, denominator: str) -> str:
    return f"{numerator} / {denominator}"


SERVER_ERRORS = 'code=~"-32603|-32050"'
# On the overview and on the connections dashboard.
CONNECTIONS_OPEN = Panel("Connections open", "Open WebSocket connections, per gateway.",
                         "short", (Query(_gauge("rtctl_connections", "instance"),
                                         "{{instance}}"),))

OVERVIEW = Dashboard(
    uid="rtctl-overview",
    title="rtctl / Overview",
    description="The gateways at a glance: traffic, errors, latency, saturation, health.",
    panels=(
        CONNECTIONS_OPEN,
        Panel("RPC calls /s", "Requests and notifications dispatched, all methods.", "reqps",
              (Query(_rate("rtctl_rpc_calls_total"), "calls"),)),
        Panel("RPC error ratio", "Share of calls answered with a JSON-RPC error, and of "
              "server-side errors (-32603, -32050) that spend the error budget.",
              "percentunit",
              (Query(_ratio(_rate("rtctl_rpc_calls_total", matchers='code!="ok"'),
                            _rate("rtctl_rpc_calls_total")), "all errors"),
               Query(_ratio(_rate("rtctl_rpc_calls_total", matchers=SERVER_ERRORS),
                            _rate("rtctl_rpc_calls_total")), "server errors"))),
        Panel("RPC latency", "Handler time over all methods.", "s",
              _latencies("rtctl_rpc_duration_seconds")),
        Panel("Messages /s", "WebSocket messages in and out.", "short",
              (Query(_rate("rtctl_messages_received_total"), "received"),
               Query(_rate("rtctl_messages_sent_total"), "sent"))),
        Panel("Bytes /s", "WebSocket payload bytes in and out.", "Bps",
              (Query(_rate("rtctl_received_bytes_total"), "received"),
               Query(_rate("rtctl_sent_bytes_total"), "sent"))),
        Panel("Event-loop lag", "How late a probe timer wakes: a busy loop delays every "
              "connection of the gateway.", "s", _latencies("rtctl_event_loop_lag_seconds")),
        Panel("CPU", "Process CPU time per second (1 = one core busy), per gateway.",
              "percentunit",
              (Query(_rate("process_cpu_seconds_total", "instance"), "{{instance}}"),)),
        Panel("Resident memory", "Process RSS, per gateway.", "bytes",
              (Query(_gauge("process_resident_memory_bytes", "instance"), "{{instance}}"),)),
        Panel("Ready and backends up", "1 while a gateway answers /readyz with 200, and while "
              "each configured backend is reachable.", "short",
              (Query(_gauge("rtctl_ready", "instance", "max"), "{{instance}} ready"),
               Query(_gauge("rtctl_backend_up", "instance, backend", "max"),
                     "{{instance}} {{backend}}"))),
    ),
)

RPC = Dashboard(
    uid="rtctl-rpc",
    title="rtctl / RPC",
    description="JSON-RPC calls by method: rate, latency, errors, rate limiting.",
    panels=(
        Panel("Calls /s by method", "Requests and notifications dispatched, by method.",
              "reqps", (Query(_rate("rtctl_rpc_calls_total", "method"), "{{method}}"),)),
        Panel("Error ratio by method", "Share of each method's calls answered with an error.",
              "percentunit",
              (Query(_ratio(_rate("rtctl_rpc_calls_total", "method", 'code!="ok"'),
                            _rate("rtctl_rpc_calls_total", "method")), "{{method}}"),)),
        Panel("Latency p50", "Median handler time, by method.", "s",
              (Query(_quantile(0.5, "rtctl_rpc_duration_seconds", "method"), "{{method}}"),)),
        Panel("Latency p95", "95th percentile handler time, by method.", "s",
              (Query(_quantile(0.95, "rtctl_rpc_duration_seconds", "method"), "{{method}}"),)),
        Panel("Latency p99", "99th percentile handler time, by method.", "s",
              (Query(_quantile(0.99, "rtctl_rpc_duration_seconds", "method"), "{{method}}"),)),
        Panel("Mean latency", "Average handler time, by method.", "s",
              (Query(_ratio(_rate("rtctl_rpc_duration_seconds_sum", "method"),
                            _rate("rtctl_rpc_duration_seconds_count", "method")),
                     "{{method}}"),)),
        Panel("Errors /s by code", "JSON-RPC error replies by code (docs/api.md lists them).",
              "reqps", (Query(_rate("rtctl_rpc_errors_total", "code"), "{{code}}"),)),
        Panel("Rate limited /s", "Inbound calls over a connection's rate: calls answered "
              "-32029, notifications dropped.", "short",
              (Query(_rate("rtctl_inbound_limited_total", "kind"), "{{kind}}"),)),
    ),
)

CONNECTIONS = Dashboard(
    uid="rtctl-connections",
    title="rtctl / Connections",
    description="Upgrades, connections and their closes, resumes, and the outbox lanes.",
    panels=(
        CONNECTIONS_OPEN,
        Panel("Upgrades /s by outcome", "Upgrade requests: ok, or the HTTP status answered.",
              "reqps", (Query(_rate("rtctl_upgrades_total", "outcome"), "{{outcome}}"),)),
        Panel("Upgrades refused /s by reason", "Why upgrades were refused.", "reqps",
              (Query(_rate("rtctl_upgrades_refused_total", "reason"), "{{reason}}"),)),
        Panel("Opened and closed /s", "Connections accepted, and closes by close code "
              "(RFC 6455 §7.4; 4xxx are rtctl's).", "short",
              (Query(_rate("rtctl_connections_opened_total"), "opened"),
               Query(_rate("rtctl_connections_closed_total", "code"), "closed {{code}}"))),
        Panel("Session resumes /s by result", "Recovery tokens offered at the upgrade.",
              "short",
              (Query(_rate("rtctl_session_resumes_total", "result"), "{{result}}"),)),
        Panel("Outbox depth by lane", "Messages waiting to be written.", "short",
              (Query(_gauge("rtctl_outbox_queued_messages", "lane"), "{{lane}}"),)),
        Panel("Outbox bytes by lane", "Bytes waiting to be written.", "bytes",
              (Query(_gauge("rtctl_outbox_queued_bytes", "lane"), "{{lane}}"),)),
        Panel("Outbox wait by lane", "Time from put to write.", "s",
              _latencies("rtctl_outbox_wait_seconds", "lane")),
        Panel("Outbox sent /s by lane", "Queued messages taken out to be written.", "short",
              (Query(_rate("rtctl_outbox_sent_total", "lane"), "{{lane}}"),)),
        Panel("Outbox dropped and coalesced /s", "Droppable messages shed under pressure, "
              "and waiting ones replaced by a newer one with the same key.", "short",
              (Query(_rate("rtctl_outbox_dropped_total", "lane"), "dropped {{lane}}"),
               Query(_rate("rtctl_outbox_coalesced_total", "lane"), "coalesced {{lane}}"))),
    ),
)

CLUSTER = Dashboard(
    uid="rtctl-cluster",
    title="rtctl / Cluster and backends",
    description="Redis and NATS health and latency, node heartbeats, and what the nodes hold.",
    panels=(
        Panel("Backends up", "1 while the backend is reachable, per gateway.", "short",
              (Query(_gauge("rtctl_backend_up", "instance, backend", "max"),
                     "{{instance}} {{backend}}"),)),
        Panel("Backend operation p99", "99th percentile time of each store call.", "s",
              (Query(_quantile(0.99, "rtctl_backend_operation_duration_seconds",
                               "backend, operation"), "{{backend}} {{operation}}"),)),
        Panel("Backend errors /s", "Operations that failed, by backend and operation.",
              "short", (Query(_rate("rtctl_backend_errors_total", "backend, operation"),
                              "{{backend}} {{operation}}"),)),
        Panel("Backend reconnects /s", "Times a backend came back after being unreachable.",
              "short", (Query(_rate("rtctl_backend_reconnects_total", "backend"),
                              "{{backend}}"),)),
        Panel("Heartbeat age vs TTL", "Seconds since each node's last heartbeat, and how "
              "long its heartbeat key lives in the store (half its --node-ttl; nodes may "
              "differ): other nodes clean up after one whose age passes its own TTL.", "s",
              (Query(_gauge("rtctl_node_heartbeat_age_seconds", "instance", "max"),
                     "{{instance}}"),
               Query(_gauge("rtctl_node_ttl_seconds", "instance", "max"),
                     "{{instance}} TTL"))),
        Panel("Heartbeats /s by result", "Heartbeat renewals: kept, found lapsed, failed.",
              "short", (Query(_rate("rtctl_node_heartbeats_total", "result"), "{{result}}"),)),
        Panel("Cleanups /s", "Dead nodes cleaned up after, and the sessions that ended.",
              "short", (Query(_rate("rtctl_node_cleanups_total"), "nodes"),
                        Query(_rate("rtctl_node_cleaned_sessions_total"), "sessions"))),
        Panel("Sessions by state", "Sessions the nodes own: connected, or held for a resume.",
              "short", (Query(_gauge("rtctl_sessions", "state"), "{{state}}"),)),
        Panel("Online users", "Distinct users with a connection, per node.", "short",
              (Query(_gauge("rtctl_presence_online_users", "instance"), "{{instance}}"),)),
        Panel("Rooms and members", "Rooms with a member on a node, and memberships "
              "(a room spread over n nodes counts n times).", "short",
              (Query(_gauge("rtctl_rooms"), "rooms"),
               Query(_gauge("rtctl_room_members"), "members"))),
        Panel("Room recoveries /s by result", "room.join with since: replayed, or why not.",
              "short",
              (Query(_rate("rtctl_room_recoveries_total", "result"), "{{result}}"),)),
        Panel("Replayed messages /s", "Messages replayed by recovering joins.", "short",
              (Query(_rate("rtctl_room_replayed_messages_total"), "replayed"),)),
    ),
)

# The simulator's control API is scraped as its own job.
_sim_rate = partial(_rate, job=SIMULATOR_JOB)
_sim_gauge = partial(_gauge, job=SIMULATOR_JOB)

SIMULATOR = Dashboard(
    uid="rtctl-simulator",
    title="rtctl / Simulator",
    description="What the traffic-shaping proxy (rtctl simulate) did to the traffic, by "
                "direction (up: client to server).",
    instance_source=_series("rtctl_sim_connections", SIMULATOR_JOB),
    panels=(
        Panel("Messages /s", "Messages entering the proxy (tcp mode: reads).", "short",
              (Query(_sim_rate("rtctl_sim_messages_total", "direction"), "{{direction}}"),)),
        Panel("Bytes /s", "Payload bytes entering the proxy.", "Bps",
              (Query(_sim_rate("rtctl_sim_bytes_total", "direction"), "{{direction}}"),)),
        Panel("Mean added delay", "Delay added per delayed message.", "s",
              (Query(_ratio(_sim_rate("rtctl_sim_delay_seconds_total", "direction"),
                            _sim_rate("rtctl_sim_delayed_total", "direction")),
                     "{{direction}}"),)),
        Panel("Dropped /s", "Messages dropped, by direction and cause.", "short",
              (Query(_sim_rate("rtctl_sim_dropped_total", "direction, reason"),
                     "{{direction}} {{reason}}"),)),
        Panel("Duplicated, reordered, retransmitted /s", "Messages delivered twice, held back "
              "so later ones overtook them, and simulated TCP retransmissions.", "short",
              tuple(Query(_sim_rate(f"rtctl_sim_{what}_total", "direction"),
                          f"{what} {{{{direction}}}}")
                    for what in ("duplicated", "reordered", "retransmits"))),
        Panel("Connections", "Connections open through the proxy, and opened and reset "
              "per second.", "short",
              (Query(_sim_gauge("rtctl_sim_connections"), "open"),
               Query(_sim_rate("rtctl_sim_connections_opened_total"), "opened /s"),
               Query(_sim_rate("rtctl_sim_resets_total"), "reset /s"))),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW, RPC, CONNECTIONS, CLUSTER, SIMULATOR)
