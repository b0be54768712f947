"""A multi-host HOST through the pool: libpq tries each host in turn, each within connect_timeout.

docs/managed.md says a checkout can wait the number of hosts that do not answer times
connect_timeout; two listeners that accept TCP connections and never answer (the kernel
completes the handshake from the backlog) stand in front of the suite's server here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from django_sqla_pool import pool_stats

from .aliases import extra_aliases


@pytest.fixture
def aliases() -> Iterator[Any]:
    yield from extra_aliases()


@pytest.fixture
def silent_ports() -> Iterator[list[int]]:
    listeners = []
    for _ in range(2):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))  # any free port: nothing else connects to it
        listener.listen(16)
        listeners.append(listener)
    try:
        yield [listener.getsockname()[1] for listener in listeners]
    finally:
        for listener in listeners:
            listener.close()


@pytest.fixture
def _unblocked(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():  # SELECT 1 only: no test data
        yield


@pytest.mark.usefixtures("_unblocked")
def test_each_silent_host_costs_its_own_connect_timeout(
    aliases: Any, silent_ports: list[int]
) -> None:
    base = connections["default"].settings_dict
    host = base["OPTIONS"].get("host") or base["HOST"] or ""
    if host.startswith("/") or "," in host:
        pytest.skip("the suite's server is not on a single TCP host")
    port = str(base["PORT"] or 5432)
    aliases(
        "hosts",
        {"connect_timeout": 2, "connect_grace": 0},
        HOST=",".join([host] * 3),
        PORT=",".join([*map(str, silent_ports), port]),
    )
    started = time.monotonic()
    with connections["hosts"].cursor() as cursor:
        cursor.execute("SELECT 1")
    elapsed = time.monotonic() - started
    connections["hosts"].close()
    assert 2 * 2 <= elapsed < 2 * 2 + 2  # two hosts x connect_timeout, then the third answers
    assert pool_stats("hosts")["pools"][0]["servers"] == {f"{host}:{port}": 1}
