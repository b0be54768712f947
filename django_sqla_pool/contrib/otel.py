"""OpenTelemetry instruments for the pools (extra: ``otel``, i.e. opentelemetry-api).

:func:`instrument` registers observable instruments, named and measured as
OpenTelemetry's semantic conventions for database client connection pools
say (``db.client.connection.count`` and the rest, every one with
``db.client.connection.pool.name``), plus the package's own counters. Their
callbacks read the pools when the SDK collects: nothing runs per checkout.
Call it once per process, e.g. in your ``AppConfig.ready()``, after the SDK's
MeterProvider is set up::

    from django_sqla_pool.contrib.otel import instrument

    instrument()  # or instrument(meter_provider=provider)

The three time histograms (``wait_time``, ``use_time``, ``create_time``) are
not among them: OpenTelemetry has no asynchronous histogram, and recording
every checkout synchronously would add work to every request. Prometheus
(``contrib/prometheus.py``) and ``pool_stats()["pools"][i]["histograms"]``
have them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from .. import __version__
from ..core import registry
from ..observe.metrics import COUNTER, GAUGE, METRICS, POOL_ATTRIBUTE, Metric

#: The instrumentation scope's name.
SCOPE = "django_sqla_pool"


def _entries() -> list[dict[str, Any]]:
    # What the instruments read of a pool_stats() entry, without the
    # percentiles and histograms they do not need.
    return [
        {"name": pool.name, "gauges": pool.gauges(), "counters": pool.stats.counters()}
        for pool in registry.pools()
    ]


def _callback(metric: Metric) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        for entry in _entries():
            for extra, value in metric.read(entry):
                attributes = {POOL_ATTRIBUTE: entry["name"]}
                if metric.label is not None:
                    attributes[metric.label[0]] = extra[metric.label[1]]
                yield Observation(value, attributes)

    return observe


def instrument(meter_provider: MeterProvider | None = None) -> list[Any]:
    """Register the pools' instruments on the meter provider (default: the global one)."""
    meter = otel_metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
    instruments = []
    for metric in METRICS:
        if metric.kind == GAUGE:
            # The conventions make these UpDownCounters (they go up and down).
            create: Any = meter.create_observable_up_down_counter
        elif metric.kind == COUNTER:
            create = meter.create_observable_counter
        else:
            continue  # histograms: see the module docstring
        instruments.append(
            create(
                metric.name,
                callbacks=[_callback(metric)],
                unit=metric.unit,
                description=metric.description,
            )
        )
    return instruments
