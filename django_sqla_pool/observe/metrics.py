"""The metrics every exporter publishes, in one table: names, units, meaning, where to read them.

Names follow OpenTelemetry's semantic conventions for database client
connection pools (``db.client.connection.*``); the Prometheus names are the
same translated (dots to underscores, ``_total`` on counters, ``_seconds`` on
histograms of seconds). What the conventions do not cover is under the
package's own prefix. Values come from a :func:`~django_sqla_pool.pool_stats`
pool entry, so an exporter reads them at collection time and keeps no
counters of its own. ``contrib/prometheus.py`` and ``contrib/otel.py`` use
this table; docs/observability.md lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The pool's name (``alias:user@host:port/db``): OpenTelemetry attribute, Prometheus label.
POOL_ATTRIBUTE = "db.client.connection.pool.name"
POOL_LABEL = "pool_name"

GAUGE = "gauge"
COUNTER = "counter"
HISTOGRAM = "histogram"

Series = list[tuple[dict[str, str], float]]


@dataclass(frozen=True)
class Metric:
    """One metric. ``read`` turns a pool entry into series: (extra labels, value)."""

    name: str  # OpenTelemetry name
    prometheus: str  # Prometheus name, suffixes included
    kind: str
    unit: str  # UCUM, as OpenTelemetry wants it
    description: str
    read: Callable[[dict[str, Any]], Any]
    #: Extra label: (OpenTelemetry attribute, Prometheus label), or None.
    label: tuple[str, str] | None = None


def _one(value: Any) -> Series:
    return [({}, float(value))]


def _counter(key: str) -> Callable[[dict[str, Any]], Series]:
    # .get: a worker running an older version may lack a newer counter.
    return lambda pool: _one(pool["counters"].get(key, 0))


METRICS: tuple[Metric, ...] = (
    Metric(
        "db.client.connection.count",
        "db_client_connection_count",
        GAUGE,
        "{connection}",
        "Open connections, by state: idle (in the pool) or used (checked out).",
        lambda pool: [
            ({"state": "idle"}, float(pool["gauges"]["idle"])),
            ({"state": "used"}, float(pool["gauges"]["checked_out"])),
        ],
        label=("db.client.connection.state", "state"),
    ),
    Metric(
        "db.client.connection.max",
        "db_client_connection_max",
        GAUGE,
        "{connection}",
        "The most connections the pool may open: pool_size + max_overflow.",
        lambda pool: _one(pool["gauges"]["pool_size"] + pool["gauges"]["max_overflow"]),
    ),
    Metric(
        "db.client.connection.idle.max",
        "db_client_connection_idle_max",
        GAUGE,
        "{connection}",
        "The most idle connections the pool keeps: pool_size.",
        lambda pool: _one(pool["gauges"]["pool_size"]),
    ),
    Metric(
        "db.client.connection.pending_requests",
        "db_client_connection_pending_requests",
        GAUGE,
        "{request}",
        "Threads waiting for a connection now.",
        lambda pool: _one(pool["gauges"]["waiting"]),
    ),
    Metric(
        "db.client.connection.timeouts",
        "db_client_connection_timeouts_total",
        COUNTER,
        "{timeout}",
        "Checkouts that gave up after pool_timeout (PoolTimeout).",
        _counter("timeouts"),
    ),
    Metric(
        "db.client.connection.wait_time",
        "db_client_connection_wait_time_seconds",
        HISTOGRAM,
        "s",
        "Time spent waiting for a connection, timed-out waits included.",
        lambda pool: pool.get("histograms", {}).get("wait_s"),
    ),
    Metric(
        "db.client.connection.use_time",
        "db_client_connection_use_time_seconds",
        HISTOGRAM,
        "s",
        "Time between a connection's checkout and its return.",
        lambda pool: pool.get("histograms", {}).get("held_s"),
    ),
    Metric(
        "db.client.connection.create_time",
        "db_client_connection_create_time_seconds",
        HISTOGRAM,
        "s",
        "Time it took to open a new connection.",
        lambda pool: pool.get("histograms", {}).get("connect_s"),
    ),
    Metric(
        "django_sqla_pool.invalidations",
        "django_sqla_pool_invalidations_total",
        COUNTER,
        "{connection}",
        "Connections discarded, by cause: pre_ping, disconnect, recycle, error, drained, failover.",
        lambda pool: [
            ({"cause": cause}, float(count))
            for cause, count in pool["counters"]["invalidations"].items()
        ],
        label=("django_sqla_pool.invalidation.cause", "cause"),
    ),
    Metric(
        "django_sqla_pool.leaks_reported",
        "django_sqla_pool_leaks_reported_total",
        COUNTER,
        "{checkout}",
        "Checkouts held longer than leak_detection_threshold, reported once each.",
        _counter("leaks_reported"),
    ),
    Metric(
        "django_sqla_pool.connect_errors",
        "django_sqla_pool_connect_errors_total",
        COUNTER,
        "{error}",
        "Failed attempts to open a connection.",
        _counter("connect_errors"),
    ),
    Metric(
        "django_sqla_pool.statement_timeouts",
        "django_sqla_pool_statement_timeouts_total",
        COUNTER,
        "{query}",
        "Queries cancelled by statement_timeout (SQLSTATE 57014).",
        _counter("statement_timeouts"),
    ),
    Metric(
        "django_sqla_pool.server_waits",
        "django_sqla_pool_server_waits_total",
        COUNTER,
        "{checkout}",
        "Checkouts that waited for an unreachable server to come back (connect_grace).",
        _counter("server_waits"),
    ),
    Metric(
        "django_sqla_pool.server_unreachable_errors",
        "django_sqla_pool_server_unreachable_errors_total",
        COUNTER,
        "{checkout}",
        "Checkouts that failed (PoolConnectError): the server stayed unreachable.",
        _counter("server_unreachable_errors"),
    ),
    Metric(
        "django_sqla_pool.failovers",
        "django_sqla_pool_failovers_total",
        COUNTER,
        "{event}",
        "Times a connection found its server refusing writes (SQLSTATE 25006 from a "
        "read-only server, 0A000 in recovery): every older connection was replaced.",
        _counter("failovers"),
    ),
    Metric(
        "django_sqla_pool.connections.opened",
        "django_sqla_pool_connections_opened_total",
        COUNTER,
        "{connection}",
        "Connections opened since the pool was created.",
        _counter("connections_opened"),
    ),
    Metric(
        "django_sqla_pool.connections.closed",
        "django_sqla_pool_connections_closed_total",
        COUNTER,
        "{connection}",
        "Connections closed: recycled, invalidated, overflow returned, pool closed.",
        _counter("connections_closed"),
    ),
)
