"""Overflow connections: kept when returned, closed by the idle rule like any other."""

from __future__ import annotations

import time

import pytest

from django_sqla_pool.core import housekeeping

from .conftest import backend_pid, pool_of

pytestmark = pytest.mark.django_db(transaction=True)


def burst(make_wrapper, **options) -> tuple:
    first = make_wrapper("burst", pool_size=1, max_overflow=1, **options)
    second = make_wrapper("burst", pool_size=1, max_overflow=1, **options)
    pids = {backend_pid(first), backend_pid(second)}  # two at once: one is overflow
    first.close()
    second.close()
    return pool_of(first), pids


def test_overflow_connection_stays_pooled_when_returned(make_wrapper) -> None:
    pool, pids = burst(make_wrapper)
    assert len(pids) == 2
    assert (pool.checkedin(), pool.stats.connections_closed) == (2, 0)
    assert pool.checkedout() == 0 and pool.overflow() == 1


def test_overflow_connection_is_closed_once_unused_for_the_idle_timeout(make_wrapper) -> None:
    pool, _ = burst(make_wrapper, pool_idle_timeout=600)
    housekeeping.tend(pool, time.monotonic() + 500)  # before the timeout: kept
    assert (pool.checkedin(), pool.stats.connections_closed) == (2, 0)
    housekeeping.tend(pool, time.monotonic() + 601)
    assert (pool.checkedin(), pool.stats.connections_closed) == (0, 2)
    assert pool.stats.connections_closed_idle == 2 and housekeeping.open_count(pool) == 0
