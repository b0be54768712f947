"""Connections through Django's real request cycle, sync and async."""

from __future__ import annotations

import pytest
from django.db import connection

from django_sqla_pool.core import registry

from .helpers import asgi_get, wsgi_get

pytestmark = pytest.mark.django_db(transaction=True)


def test_sequential_requests_reuse_one_server_connection() -> None:
    connection.close()
    registry.close_pools("default")  # start from an empty pool
    pids = set()
    for _ in range(5):
        status, body = wsgi_get("/notes/count/")
        assert status == 200
        pids.add(body["backend_pid"])
        # Back in the pool at the end of each request; the thread keeps nothing.
        assert connection.connection is None
        assert all(p.checkedout() == 0 for p in registry.pools("default"))
    assert len(pids) == 1


def test_request_writes_are_committed_and_visible_to_the_next_request() -> None:
    wsgi_get("/notes/add/", "text=one")
    wsgi_get("/notes/add/", "text=two")
    status, body = wsgi_get("/notes/count/")
    assert (status, body["count"]) == (200, 2)


def test_async_view_under_asgi_returns_its_connection() -> None:
    wsgi_get("/notes/add/")
    status, body = asgi_get("/async/count/")
    assert (status, body) == (200, {"count": 1})
    # The sync_to_async worker thread's connection was returned at request end.
    assert sum(p.checkedout() for p in registry.pools("default")) == 0
    assert sum(p.checkedin() for p in registry.pools("default")) >= 1
