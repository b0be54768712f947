"""SqlaPool.checkout(timeout=...): one checkout bounded tighter than pool_timeout."""

from __future__ import annotations

import threading
import time

import pytest

from django_sqla_pool.core.errors import PoolTimeout

from .conftest import pool_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_checkout_timeout_bounds_the_wait_for_a_free_connection(make_wrapper) -> None:
    holder = make_wrapper("probe", pool_size=1, max_overflow=0, pool_timeout=60)
    holder.ensure_connection()
    pool = pool_of(holder)
    start = time.monotonic()
    with pytest.raises(PoolTimeout, match="no connection free"):
        pool.checkout(timeout=0.2)
    # Far below pool_timeout (60 s): the per-call bound applied, not the pool's.
    assert time.monotonic() - start < 30
    assert pool.stats.timeouts == 1
    assert pool.waiting == 0


def test_checkout_timeout_leaves_the_default_bound_of_later_checkouts(make_wrapper) -> None:
    holder = make_wrapper("probe", pool_size=1, max_overflow=0, pool_timeout=60)
    holder.ensure_connection()
    pool = pool_of(holder)
    with pytest.raises(PoolTimeout):
        pool.checkout(timeout=0.05)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(pool.checkout()))
    waiter.start()
    deadline = time.monotonic() + 10
    while pool.waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    # Still waiting after the short bound of the earlier call has long passed.
    time.sleep(0.2)
    assert waiter.is_alive() and pool.waiting == 1
    holder.close()
    waiter.join(10)
    assert len(got) == 1
    pool.checkin(got[0])


def test_checkout_timeout_returns_a_free_connection_at_once(make_wrapper) -> None:
    wrapper = make_wrapper("probe", pool_size=1, max_overflow=0)
    wrapper.ensure_connection()
    wrapper.close()
    pool = pool_of(wrapper)
    record = pool.checkout(timeout=2)
    try:
        assert record.dbapi_connection is not None
    finally:
        pool.checkin(record)
