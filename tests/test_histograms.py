"""Wait, held and connect time histograms in pool_stats(): cumulative buckets that add up."""

from __future__ import annotations

import time

import pytest

from django_sqla_pool import PoolTimeout, pool_stats
from django_sqla_pool.core.counters import HISTOGRAM_BOUNDS, PoolStats

from .conftest import backend_pid

pytestmark = pytest.mark.django_db(transaction=True)


def bucket_of(histogram: dict, bound: float) -> int:
    return int(histogram["counts"][histogram["le"].index(bound)])


def test_values_land_in_the_first_bucket_whose_bound_is_not_below_them() -> None:
    stats = PoolStats()
    for held in (0.00005, 0.0001, 0.0002, 0.04, 120.0):
        stats.checked_in(held)
    held_s = stats.histograms()["held_s"]
    assert held_s["le"] == list(HISTOGRAM_BOUNDS)
    assert bucket_of(held_s, 0.0001) == 2  # le is inclusive: 0.0001 itself counts here
    assert bucket_of(held_s, 0.00025) == 3
    assert bucket_of(held_s, 0.025) == 3
    assert bucket_of(held_s, 0.05) == 4
    assert bucket_of(held_s, 30.0) == 4  # 120 s is only in the +Inf bucket, i.e. count
    assert held_s["count"] == 5
    assert held_s["sum"] == pytest.approx(0.00005 + 0.0001 + 0.0002 + 0.04 + 120.0)
    assert held_s["counts"] == sorted(held_s["counts"])  # cumulative


def test_histograms_agree_with_the_counters_and_timings(make_wrapper) -> None:
    holder = make_wrapper("hist", pool_size=1, max_overflow=0, pool_timeout=0.05)
    for _ in range(3):
        backend_pid(holder)
        holder.close()
    backend_pid(holder)
    time.sleep(0.06)  # one hold longer than 50 ms: in no bucket up to 0.05
    waiter = make_wrapper("hist", pool_size=1, max_overflow=0, pool_timeout=0.05)
    with pytest.raises(PoolTimeout):
        waiter.ensure_connection()
    holder.close()
    [pool] = pool_stats("hist")["pools"]
    counters, timings, histograms = pool["counters"], pool["timings"], pool["histograms"]
    wait, held, connect = histograms["wait_s"], histograms["held_s"], histograms["connect_s"]
    # A timed-out wait is a wait too, as in timings.wait_ms_total.
    assert wait["count"] == counters["checkouts"] + counters["timeouts"] == 5
    assert wait["count"] - bucket_of(wait, 0.025) >= 1  # the timed-out wait: >= 50 ms
    assert held["count"] == counters["checkins"] == 4
    assert held["count"] - bucket_of(held, 0.05) == 1  # the 60 ms hold
    assert connect["count"] == counters["connections_opened"] == 1
    assert round(held["sum"] * 1000, 3) == timings["held_ms_total"]
    assert round(wait["sum"] * 1000, 3) == timings["wait_ms_total"]
    assert round(connect["sum"] * 1000, 3) == timings["connect_ms_total"]
