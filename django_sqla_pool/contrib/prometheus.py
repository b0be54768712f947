"""Prometheus exposition of the pools: a collector and a view (extra: ``prometheus``).

:class:`PoolCollector` reads the numbers when Prometheus scrapes, from
:func:`~django_sqla_pool.pool_stats` for this process and, when
``DJANGO_SQLA_POOL_STATS_DIR`` is set, from every other live worker's
snapshot there (dead workers' files are skipped and removed). Every series
carries ``pool_name`` and ``process`` (``host:pid``), so one scrape of one
gunicorn worker shows them all. It keeps no counters of its own.

Register it on your own registry, or serve :func:`metrics_view`::

    from prometheus_client import REGISTRY
    from django_sqla_pool.contrib.prometheus import PoolCollector

    REGISTRY.register(PoolCollector())

    # urls.py
    path("metrics/", django_sqla_pool.contrib.prometheus.metrics_view)

prometheus_client's multiprocess mode skips collectors registered on the
global registry; register this one on the registry you build for the scrape
next to ``MultiProcessCollector``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from ..access import may_see_numbers
from ..observe import snapshots as shared
from ..observe.metrics import COUNTER, GAUGE, METRICS, POOL_LABEL
from ..observe.stats import pool_stats

#: The label naming the process (``host:pid``) a series comes from.
PROCESS_LABEL = "process"
#: Gauge: how old each process's numbers are (0 for the process answering).
SNAPSHOT_AGE = "django_sqla_pool_snapshot_age_seconds"


def snapshots(workers: bool = True) -> list[dict[str, Any]]:
    """This process's stats, live, then (``workers``) every other live worker's snapshot."""
    own = {**pool_stats(), "age_s": 0.0}
    found = [own]
    if workers:
        directory = shared.stats_dir()
        if directory is not None:
            found += [
                snapshot
                for snapshot in shared.read_snapshots(directory)
                if (snapshot["hostname"], snapshot["pid"]) != (own["hostname"], own["pid"])
            ]
    return found


def _family(metric: Any) -> Any:
    labels = [POOL_LABEL, PROCESS_LABEL] + ([metric.label[1]] if metric.label else [])
    if metric.kind == GAUGE:
        return GaugeMetricFamily(metric.prometheus, metric.description, labels=labels)
    if metric.kind == COUNTER:
        return CounterMetricFamily(metric.prometheus, metric.description, labels=labels)
    return HistogramMetricFamily(metric.prometheus, metric.description, labels=labels)


class PoolCollector:
    """Every pool's metrics (see ``django_sqla_pool.metrics``), read at scrape time.

    ``workers=False`` leaves out other processes' snapshots even when the
    stats directory is configured.
    """

    def __init__(self, *, workers: bool = True) -> None:
        self.workers = workers

    def describe(self) -> Iterator[Metric]:
        # Names only: registering the collector reads no stats.
        for metric in METRICS:
            yield _family(metric)
        yield GaugeMetricFamily(SNAPSHOT_AGE, "", labels=[PROCESS_LABEL])

    def collect(self) -> Iterator[Metric]:
        found = snapshots(self.workers)
        families = [(metric, _family(metric)) for metric in METRICS]
        age = GaugeMetricFamily(
            SNAPSHOT_AGE,
            "Age of the numbers of each process: 0 for the one answering, "
            "up to a few seconds for workers read from the stats directory.",
            labels=[PROCESS_LABEL],
        )
        for snapshot in found:
            process = f"{snapshot['hostname']}:{snapshot['pid']}"
            age.add_metric([process], float(snapshot.get("age_s", 0.0)))
            for pool in snapshot["pools"]:
                for metric, family in families:
                    value = metric.read(pool)
                    if value is None:
                        continue  # a histogram missing from an older worker's snapshot
                    if isinstance(family, HistogramMetricFamily):
                        buckets = [
                            (floatToGoString(le), float(count))
                            for le, count in zip(value["le"], value["counts"], strict=True)
                        ]
                        buckets.append(("+Inf", float(value["count"])))
                        family.add_metric([pool["name"], process], buckets, float(value["sum"]))
                        continue
                    for extra, number in value:
                        family.add_metric([pool["name"], process, *extra.values()], number)
        yield from (family for _, family in families)
        yield age


@transaction.non_atomic_requests
@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The pools' metrics in Prometheus' text format (or OpenMetrics if the scraper asks).

    Needs ``Authorization: Bearer <DJANGO_SQLA_POOL_STATS_TOKEN>`` or a user
    with ``django_sqla_pool.view_poolstats``: 401 without either, 403 for a
    logged-in user without the permission.
    """
    if not may_see_numbers(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return HttpResponse(
                "403 Forbidden: needs the permission django_sqla_pool.view_poolstats.\n",
                status=403,
                content_type="text/plain",
            )
        response = HttpResponse(
            "401 Unauthorized: send Authorization: Bearer <DJANGO_SQLA_POOL_STATS_TOKEN>, "
            "or log in as a user with django_sqla_pool.view_poolstats.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="django_sqla_pool"'
        return response
    registry = CollectorRegistry()
    registry.register(PoolCollector())
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry), content_type=content_type)
