"""fork() with pooled connections open: gunicorn --preload, Celery prefork."""

from __future__ import annotations

import gc
import threading

import pytest
from django.db import connection

from demo.models import Note
from django_sqla_pool.core import registry

from . import dialect
from .conftest import backend_pid, run_in_child

pytestmark = pytest.mark.django_db(transaction=True)


def test_child_opens_its_own_connections_and_the_parent_keeps_working(server) -> None:
    Note.objects.create(text="before fork")
    parent_pid = backend_pid(connection)  # checked out by this thread at fork time
    pool = connection._lease.pool  # the pool this thread's connection came from
    assert pool is not None and pool in registry.pools("default")
    invalidated = sum(pool.stats.invalidations.values())  # earlier tests may have drained
    idle_pids: list[int] = []
    idle = threading.Thread(
        target=lambda: (idle_pids.append(backend_pid(connection)), connection.close())
    )
    idle.start()
    idle.join()  # leaves an idle pooled connection too
    assert idle_pids[0] != parent_pid

    def child() -> int:
        child_pid = backend_pid(connection)
        assert connection.connection is not None
        count = Note.objects.count()
        connection.close()
        gc.collect()  # garbage-collect the inherited objects: must not touch the sockets
        return 0 if child_pid != parent_pid and count == 1 else 3

    assert run_in_child(child) == 0
    # The parent's session survived: same server process, still answering.
    assert backend_pid(connection) == parent_pid
    assert Note.objects.count() == 1
    # The idle pooled connection inherited by the child is alive as well.
    assert dialect.alive(server, [parent_pid, idle_pids[0]]) == 2
    assert connection._lease.pool is pool
    assert sum(pool.stats.invalidations.values()) == invalidated
