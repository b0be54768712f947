"""OpenTelemetry instruments, collected by the SDK's in-memory reader."""

from __future__ import annotations

from typing import Any

import pytest

from django_sqla_pool import PoolTimeout, pool_stats

from .conftest import backend_pid

pytest.importorskip("opentelemetry.sdk.metrics")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Sum

from django_sqla_pool.contrib.otel import SCOPE, instrument

pytestmark = pytest.mark.django_db(transaction=True)

POOL = "db.client.connection.pool.name"


def collect(reader: InMemoryMetricReader) -> dict[str, Any]:
    """{instrument name: metric} of our scope, from one collection."""
    data = reader.get_metrics_data()
    assert data is not None
    found = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name == SCOPE:
                found.update({m.name: m for m in scope_metrics.metrics})
    return found


def points(metric: Any, pool_name: str) -> dict[tuple[tuple[str, Any], ...], float]:
    return {
        tuple(sorted((k, v) for k, v in p.attributes.items() if k != POOL)): p.value
        for p in metric.data.data_points
        if p.attributes[POOL] == pool_name
    }


@pytest.fixture
def reader() -> Any:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrument(meter_provider=provider)
    yield reader
    provider.shutdown()


def test_instruments_have_the_semantic_convention_names_units_and_values(
    reader, make_wrapper
) -> None:
    holder = make_wrapper("otel", pool_size=1, max_overflow=1, pool_timeout=0.05)
    second = make_wrapper("otel", pool_size=1, max_overflow=1, pool_timeout=0.05)
    third = make_wrapper("otel", pool_size=1, max_overflow=1, pool_timeout=0.05)
    backend_pid(holder)
    backend_pid(second)
    with pytest.raises(PoolTimeout):
        third.ensure_connection()
    second.close()
    [pool] = pool_stats("otel")["pools"]
    metrics = collect(reader)
    name = pool["name"]

    count = metrics["db.client.connection.count"]
    assert count.unit == "{connection}"
    assert isinstance(count.data, Sum) and not count.data.is_monotonic  # an UpDownCounter
    assert points(count, name) == {
        (("db.client.connection.state", "idle"),): 1,
        (("db.client.connection.state", "used"),): 1,
    }
    assert points(metrics["db.client.connection.max"], name) == {(): 2}
    assert points(metrics["db.client.connection.idle.max"], name) == {(): 1}
    assert metrics["db.client.connection.pending_requests"].unit == "{request}"
    assert points(metrics["db.client.connection.pending_requests"], name) == {(): 0}
    timeouts = metrics["db.client.connection.timeouts"]
    assert timeouts.data.is_monotonic and points(timeouts, name) == {(): 1}
    assert points(metrics["django_sqla_pool.connections.opened"], name) == {
        (): pool["counters"]["connections_opened"]
    }
    assert points(metrics["django_sqla_pool.invalidations"], name) == {
        (("django_sqla_pool.invalidation.cause", cause),): n
        for cause, n in pool["counters"]["invalidations"].items()
    }
    assert points(metrics["django_sqla_pool.statement_timeouts"], name) == {(): 0}
    # Read at collection time: the next collection sees the connection returned.
    holder.close()
    assert points(collect(reader)["db.client.connection.count"], name) == {
        (("db.client.connection.state", "idle"),): 2,
        (("db.client.connection.state", "used"),): 0,
    }


def test_every_non_histogram_metric_is_an_instrument(reader, make_wrapper) -> None:
    from django_sqla_pool.observe.metrics import HISTOGRAM, METRICS

    backend_pid(make_wrapper("otel"))
    assert set(collect(reader)) == {m.name for m in METRICS if m.kind != HISTOGRAM}
