"""Many threads sharing a small pool through Django's request handler."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from django_sqla_pool.core import registry

from . import dialect
from .helpers import wsgi_get

pytestmark = pytest.mark.django_db(transaction=True)


def test_32_threads_share_a_5_plus_5_pool_without_errors_or_excess_connections(server) -> None:
    assert connection.settings_dict["OPTIONS"]["pool_size"] == 5
    assert connection.settings_dict["OPTIONS"]["max_overflow"] == 5
    connection.close()
    registry.close_pools()
    test_db = connection.settings_dict["NAME"]
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            count = dialect.connections_to(server, test_db)
            peak = max(peak, count)
            time.sleep(0.002)

    errors: list[BaseException] = []
    served = 0
    lock = threading.Lock()

    def client() -> None:
        nonlocal served
        try:
            for i in range(20):
                status, _ = wsgi_get("/sleep/" if i % 2 else "/notes/count/", "ms=2")
                assert status == 200
                with lock:
                    served += 1
        except BaseException as error:  # reported below, with the count
            errors.append(error)

    watcher = threading.Thread(target=watch)
    watcher.start()
    clients = [threading.Thread(target=client) for _ in range(32)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(60)
    stop.set()
    watcher.join(5)
    assert errors == []
    assert served == 32 * 20
    assert 1 <= peak <= 10
    [pool] = registry.pools("default")
    assert pool.checkedout() == 0
    assert pool.stats.checkouts == pool.stats.checkins == 32 * 20
