"""Log lines on the django_sqla_pool logger, and leak detection."""

from __future__ import annotations

import logging
import time

import pytest

from django_sqla_pool.core import leaks, registry

from .conftest import backend_pid, pool_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_debug_lines_name_the_pool_and_the_server_pid(make_wrapper, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="django_sqla_pool")
    db = make_wrapper("logged", pool_recycle=600)
    pid = backend_pid(db)
    db.close()
    pool = pool_of(db)
    registry.close_pools("logged")  # closes the idle connection: the "close" line
    lines = [r.getMessage() for r in caplog.records if r.name == "django_sqla_pool"]
    for event in ("connect", "checkout", "checkin", "close"):
        assert any(
            line.startswith(event) and pool.name in line and f"backend_pid={pid}" in line
            for line in lines
        ), (event, lines)


def test_connection_held_past_the_threshold_is_reported_once_with_its_stack(
    make_wrapper, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="django_sqla_pool")
    db = make_wrapper("leaky", leak_detection_threshold=0.05)
    pid = backend_pid(db)  # checked out here, and held
    deadline = time.monotonic() + 10
    while pool_of(db).stats.leaks_reported == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the watcher thread scans every 50 ms here
    leaks.scan(registry.pools())  # a further scan must not report it again
    reports = [
        r.getMessage() for r in caplog.records if "possible connection leak" in r.getMessage()
    ]
    assert len(reports) == 1
    assert f"backend_pid={pid}" in reports[0]
    assert "test_connection_held_past_the_threshold_is_reported_once_with_its_stack" in reports[0]
    assert pool_of(db).stats.leaks_reported == 1
    db.close()
