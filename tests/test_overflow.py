"""Overflow connections: kept while the load that needed them lasts, then closed."""

from __future__ import annotations

import pytest

from django_sqla_pool import pool as pool_module

from .conftest import backend_pid, pool_of

pytestmark = pytest.mark.django_db(transaction=True)


def burst(make_wrapper) -> tuple:
    first = make_wrapper("burst", pool_size=1, max_overflow=1)
    second = make_wrapper("burst", pool_size=1, max_overflow=1)
    pids = {backend_pid(first), backend_pid(second)}  # two at once: one is overflow
    first.close()
    second.close()
    return pool_of(first), pids


def test_overflow_connection_stays_pooled_right_after_the_load_that_needed_it(
    make_wrapper,
) -> None:
    pool, pids = burst(make_wrapper)
    assert len(pids) == 2
    assert (pool.checkedin(), pool.stats.connections_closed) == (2, 0)
    assert pool.checkedout() == 0 and pool.overflow() == 1


def test_overflow_connection_is_closed_when_returned_once_the_linger_expired(
    make_wrapper, monkeypatch
) -> None:
    monkeypatch.setattr(pool_module, "OVERFLOW_LINGER", 0.0)
    pool, _ = burst(make_wrapper)
    assert (pool.checkedin(), pool.stats.connections_closed) == (1, 1)
    assert pool.overflow() == 0
