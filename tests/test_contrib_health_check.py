"""The django-health-check plugin, run by django-health-check's own view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import RequestFactory

from django_sqla_pool.observe import health

from .aliases import CLOSED_PORT, extra_aliases

health_check = pytest.importorskip("health_check")

from health_check.views import HealthCheckView  # noqa: E402

from django_sqla_pool.contrib.health_check import ConnectionPool, pool_checks  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _short_bound(settings: Any) -> None:
    settings.DJANGO_SQLA_POOL_HEALTH_TIMEOUT = 1.0


@pytest.fixture
def add_alias() -> Iterator[Any]:
    yield from extra_aliases()


def run_view(checks: list[Any]) -> tuple[int, dict[str, str]]:
    """django-health-check's view, as its URL would run it, in JSON."""
    view = HealthCheckView.as_view(checks=checks)
    response = async_to_sync(view)(RequestFactory().get("/ht/", {"format": "json"}))
    return response.status_code, json.loads(response.content)


def test_a_healthy_alias_is_ok() -> None:
    assert run_view(pool_checks()) == (200, {"ConnectionPool(alias='default')": "OK"})


def test_one_check_per_pooled_alias_and_each_reports_its_own(add_alias) -> None:
    add_alias("gone", {"pool_timeout": 60}, PORT=CLOSED_PORT, HOST="127.0.0.1")
    add_alias("tiny", {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60})
    assert pool_checks() == [
        (ConnectionPool, {"alias": "default"}),
        (ConnectionPool, {"alias": "gone"}),
        (ConnectionPool, {"alias": "tiny"}),
    ]
    pool = health._pool_of("tiny")
    held = pool.checkout()  # the pool is exhausted while the checks run
    try:
        status, results = run_view(pool_checks())
    finally:
        pool.checkin(held)
    assert status == 500  # django-health-check fails the page for warnings too
    assert results == {
        "ConnectionPool(alias='default')": "OK",
        "ConnectionPool(alias='gone')": "Unavailable: cannot connect",
        "ConnectionPool(alias='tiny')": "Warning: pool exhausted",
    }
    # Nothing that locates the server: not the port, not the host.
    assert str(CLOSED_PORT) not in json.dumps(results) and "127.0.0.1" not in json.dumps(results)


def test_an_alias_named_in_the_view_settings_and_its_labels() -> None:
    check = ConnectionPool(alias="default")
    assert check.labels == {"check": "ConnectionPool", "alias": "default"}
    assert check.timeout.total_seconds() == 1.0
    status, results = run_view(
        [("django_sqla_pool.contrib.health_check.ConnectionPool", {"alias": "default"})]
    )
    assert status == 200 and results == {"ConnectionPool(alias='default')": "OK"}


def test_an_alias_without_the_pool_is_unavailable() -> None:
    status, results = run_view([(ConnectionPool, {"alias": "nope"})])
    assert status == 500
    assert results == {"ConnectionPool(alias='nope')": "Unavailable: invalid settings"}
