"""Exhaustion warnings: one line per interval per pool, with the count and the worst wait."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from django_sqla_pool.core import pool as pool_module
from django_sqla_pool.core.errors import PoolTimeout

from .conftest import pool_of
from .throwaway import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def lines(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def exhausted(
    make_wrapper, caplog, monkeypatch, alias: str, interval: float, timeout: float
) -> tuple[Any, Any]:
    """A pool of one connection, held by a wrapper (returned too); a warning line per interval."""
    monkeypatch.setattr(pool_module, "WARNING_INTERVAL", interval)
    holder = make_wrapper(alias, pool_size=1, max_overflow=0, pool_timeout=timeout)
    holder.ensure_connection()
    caplog.set_level(logging.WARNING, logger="django_sqla_pool")
    return holder, pool_of(holder)


def test_timeouts_log_one_line_per_interval_and_are_all_counted(
    make_wrapper, caplog, monkeypatch
) -> None:
    _, pool = exhausted(make_wrapper, caplog, monkeypatch, "storm", interval=0.5, timeout=0.01)
    for _ in range(20):
        with pytest.raises(PoolTimeout):
            pool.checkout()
    assert pool.stats.timeouts == 20  # every one counted
    [first] = lines(caplog, "no connection free")
    assert "1 timed out since the last such line" in first
    start = time.monotonic()
    wait_until(lambda: time.monotonic() - start > 0.5, what="the interval to pass")
    with pytest.raises(PoolTimeout):
        pool.checkout()
    summary = lines(caplog, "no connection free")[1]
    # The 19 held back, and this one.
    assert "20 timed out since the last such line, longest wait" in summary
    assert pool.stats.timeouts == 21


def test_slow_checkouts_log_one_line_with_the_count_and_the_worst_wait(
    make_wrapper, caplog, monkeypatch
) -> None:
    holder, pool = exhausted(make_wrapper, caplog, monkeypatch, "crowd", interval=60.0, timeout=10)
    pool._slow_wait = 0.2  # as with pool_timeout 0.4, without risking timeouts

    def take_and_return() -> None:
        pool.checkin(pool.checkout())

    waiters = [threading.Thread(target=take_and_return) for _ in range(5)]
    for thread in waiters:
        thread.start()
    wait_until(lambda: pool.waiting == 5, what="5 waiting threads")
    start = time.monotonic()
    wait_until(lambda: time.monotonic() - start > 0.3, what="the waits to become slow")
    holder.close()
    for thread in waiters:
        thread.join(10)
    assert pool.stats.checkouts == 6
    [line] = lines(caplog, "slow checkout")
    assert "1 slow checkouts since the last such line" in line
