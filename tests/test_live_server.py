"""The README's note on live servers: a test with a live server needs two connections."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from demo.models import Note
from django_sqla_pool.core import registry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pool_options() -> Iterator[Any]:
    """Set the test database's pool options; the server's threads read the same dict."""
    original = connection.settings_dict["OPTIONS"]

    def use(**options: Any) -> None:
        connection.close()
        connection.settings_dict["OPTIONS"] = {**original, **options}

    yield use
    connection.close()
    connection.settings_dict["OPTIONS"] = original
    registry.close_pools("default")


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def timeouts(pool_size: int) -> int:
    return sum(
        p.stats.timeouts for p in registry.pools("default") if p.settings.pool_size == pool_size
    )


def test_a_live_server_needs_a_second_connection_besides_the_tests_own(
    live_server, pool_options
) -> None:
    pool_options(pool_size=1, max_overflow=0, pool_timeout=0.5)
    Note.objects.create(text="the test's thread now holds the only connection")
    # The request waits pool_timeout for a connection and fails (PoolTimeout: a 500).
    assert get(f"{live_server.url}/notes/count/") == 500
    assert timeouts(pool_size=1) == 1

    pool_options(pool_size=2, max_overflow=0, pool_timeout=0.5)
    Note.objects.create(text="held again, from a pool of two")
    assert get(f"{live_server.url}/notes/count/") == 200
    assert timeouts(pool_size=2) == 0
