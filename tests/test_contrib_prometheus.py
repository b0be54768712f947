"""Prometheus exposition: names, values equal to pool_stats(), workers, access."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import OperationalError

from django_sqla_pool import PoolTimeout, pool_stats
from django_sqla_pool.observe import metrics
from django_sqla_pool.observe import snapshots as shared

from .conftest import backend_pid
from .workers import start_worker, stop_worker

prometheus_client = pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from django_sqla_pool.contrib.prometheus import PoolCollector  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-0123456789abcdef"
OWN = f"{socket.gethostname()}:{os.getpid()}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def _token(settings: Any) -> None:
    settings.DJANGO_SQLA_POOL_STATS_TOKEN = TOKEN


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """(family name -> type, {(sample name, labels): value}), by prometheus_client's parser."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return types, samples


def scrape(client: Any) -> tuple[dict[str, str], Samples]:
    response = client.get("/metrics/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


def expected_series(pool: dict[str, Any], process: str) -> Samples:
    """What the documentation promises for one pool_stats() pool entry, written out by hand."""
    base = {"pool_name": pool["name"], "process": process}
    gauges, counters = pool["gauges"], pool["counters"]

    def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
        return name, frozenset({**base, **labels}.items())

    series: Samples = {
        key("db_client_connection_count", state="idle"): gauges["idle"],
        key("db_client_connection_count", state="used"): gauges["checked_out"],
        key("db_client_connection_max"): gauges["pool_size"] + gauges["max_overflow"],
        key("db_client_connection_idle_max"): gauges["pool_size"],
        key("db_client_connection_pending_requests"): gauges["waiting"],
        key("db_client_connection_timeouts_total"): counters["timeouts"],
        key("django_sqla_pool_leaks_reported_total"): counters["leaks_reported"],
        key("django_sqla_pool_connect_errors_total"): counters["connect_errors"],
        key("django_sqla_pool_statement_timeouts_total"): counters["statement_timeouts"],
        key("django_sqla_pool_failovers_total"): counters["failovers"],
        key("django_sqla_pool_server_waits_total"): counters["server_waits"],
        key("django_sqla_pool_server_unreachable_errors_total"): counters[
            "server_unreachable_errors"
        ],
        key("django_sqla_pool_connections_opened_total"): counters["connections_opened"],
        key("django_sqla_pool_connections_closed_total"): counters["connections_closed"],
    }
    for cause, count in counters["invalidations"].items():
        series[key("django_sqla_pool_invalidations_total", cause=cause)] = count
    for name, histogram in (
        ("db_client_connection_wait_time_seconds", pool["histograms"]["wait_s"]),
        ("db_client_connection_use_time_seconds", pool["histograms"]["held_s"]),
        ("db_client_connection_create_time_seconds", pool["histograms"]["connect_s"]),
    ):
        for le, count in zip(histogram["le"], histogram["counts"], strict=True):
            series[key(f"{name}_bucket", le=repr(le))] = count
        series[key(f"{name}_bucket", le="+Inf")] = histogram["count"]
        series[key(f"{name}_count")] = histogram["count"]
        series[key(f"{name}_sum")] = histogram["sum"]
    return series


def of_process(samples: Samples, process: str) -> Samples:
    return {k: v for k, v in samples.items() if ("process", process) in k[1]}


def test_metrics_parse_back_with_the_documented_names_and_equal_pool_stats(
    client, make_wrapper, server, settings
) -> None:
    settings.DJANGO_SQLA_POOL_STATS_DIR = ""  # this process only, whatever the environment says
    options = {"pool_size": 1, "max_overflow": 1, "pool_timeout": 0.05, "statement_timeout": 30}
    db, other, third = (make_wrapper("prom", **options) for _ in range(3))
    with pytest.raises(OperationalError), db.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(5)")  # a statement timeout
    victim = backend_pid(db)
    backend_pid(other)
    with pytest.raises(PoolTimeout):
        third.ensure_connection()  # both connections out: a timeout
    db.close()
    server.execute("SELECT pg_terminate_backend(%s)", [victim])
    time.sleep(0.1)  # let the server end it
    backend_pid(third)  # gets the dead idle one, finds it dead: an invalidation
    third.close()
    other.close()
    stats = pool_stats()
    types, samples = scrape(client)
    [prom] = [p for p in stats["pools"] if p["alias"] == "prom"]
    assert prom["counters"]["statement_timeouts"] == 1
    assert prom["counters"]["timeouts"] == 1
    assert sum(prom["counters"]["invalidations"].values()) >= 1
    assert stats["pools"], "no pools"
    expected: Samples = {}
    for pool in stats["pools"]:
        expected.update(expected_series(pool, OWN))
    expected[("django_sqla_pool_snapshot_age_seconds", frozenset({("process", OWN)}))] = 0.0
    assert samples == expected
    assert types == {
        **{m.prometheus.removesuffix("_total"): m.kind for m in metrics.METRICS},
        "django_sqla_pool_snapshot_age_seconds": "gauge",
    }


def test_every_metric_is_documented_with_its_unit() -> None:
    doc = (ROOT / "docs" / "observability.md").read_text()
    for metric in metrics.METRICS:
        rows = [line for line in doc.splitlines() if f"`{metric.prometheus}`" in line]
        assert rows, f"{metric.prometheus} is not in docs/observability.md"
        assert f"`{metric.name}`" in rows[0] and f"`{metric.unit}`" in rows[0], rows[0]


def test_the_collector_registers_on_a_users_registry(make_wrapper) -> None:
    backend_pid(make_wrapper("own_registry"))
    registry = prometheus_client.CollectorRegistry()
    registry.register(PoolCollector())
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(PoolCollector())  # describe() names every series
    [pool] = pool_stats("own_registry")["pools"]
    labels = {"pool_name": pool["name"], "process": OWN}
    assert registry.get_sample_value("db_client_connection_count", {**labels, "state": "used"}) == 1
    assert registry.get_sample_value("db_client_connection_max", labels) == (
        pool["gauges"]["pool_size"] + pool["gauges"]["max_overflow"]
    )
    # Read at scrape time: no second set of counters to keep in step.
    make_wrapper("own_registry").close()
    assert registry.get_sample_value("db_client_connection_count", {**labels, "state": "used"}) == 1


def test_metrics_need_the_token_or_the_permission(client, django_user_model) -> None:
    response = client.get("/metrics/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics/", headers={"Authorization": "Bearer nope"}).status_code == 401
    user = django_user_model.objects.create_user("scraper", password="pw")
    client.force_login(user)
    assert client.get("/metrics/").status_code == 403
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="django_sqla_pool", codename="view_poolstats"
        )
    )
    response = client.get("/metrics/")
    assert response.status_code == 200 and b"db_client_connection_max" in response.content


def test_openmetrics_is_served_when_the_scraper_asks(client) -> None:
    response = client.get(
        "/metrics/",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/openmetrics-text"},
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_every_live_workers_snapshot_is_scraped_and_dead_ones_dropped(
    client, settings, tmp_path
) -> None:
    settings.DJANGO_SQLA_POOL_STATS_DIR = str(tmp_path)
    shared._last_written = None
    workers = [start_worker(3, tmp_path), start_worker(5, tmp_path)]
    try:
        deadline = time.monotonic() + 30
        pids = {w.pid for w in workers}
        while {s["pid"] for s in shared.read_snapshots(tmp_path)} & pids != pids:
            assert time.monotonic() < deadline, "the workers wrote no snapshots"
            time.sleep(0.05)
        _, samples = scrape(client)
        for worker, checkins in zip(workers, (3, 5), strict=True):
            process = f"{socket.gethostname()}:{worker.pid}"
            [snapshot] = [s for s in shared.read_snapshots(tmp_path) if s["pid"] == worker.pid]
            [pool] = snapshot["pools"]
            mine = of_process(samples, process)
            assert pool["counters"]["checkins"] == checkins
            expected = expected_series(pool, process)
            assert {k: mine[k] for k in expected} == expected
            age = mine["django_sqla_pool_snapshot_age_seconds", frozenset({("process", process)})]
            assert 0 <= age < 30
        # A worker killed without cleaning up: its series and its file go.
        workers[0].kill()
        workers[0].wait(30)
        _, samples = scrape(client)
        assert not of_process(samples, f"{socket.gethostname()}:{workers[0].pid}")
        assert of_process(samples, f"{socket.gethostname()}:{workers[1].pid}")
        assert not (tmp_path / f"{socket.gethostname()}-{workers[0].pid}.json").exists()
    finally:
        for worker in workers:
            stop_worker(worker)
