"""pool_stats() under a known load: the numbers match what happened.

Invalidation causes and single timeouts are covered in test_backend.py;
this file checks the snapshot as a whole under concurrent use.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from django_sqla_pool import PoolTimeout, pool_stats

from .conftest import backend_pid, pool_of

pytestmark = pytest.mark.django_db(transaction=True)

POOL_KEYS = {"alias", "name", "config", "gauges", "counters", "timings", "last_timeout_at"}
GAUGES = {"pool_size", "max_overflow", "checked_out", "idle", "overflow", "waiting"}
COUNTERS = {
    "connections_opened",
    "connections_closed",
    "connect_errors",
    "checkouts",
    "checkins",
    "timeouts",
    "invalidations",
    "leaks_reported",
}
TIMINGS = {
    f"{kind}_ms_{stat}" for kind in ("wait", "held") for stat in ("total", "max", "p50", "p99")
} | {"connect_ms_total", "connect_ms_max"}


def test_stats_count_every_checkout_wait_and_hold_of_concurrent_threads(make_wrapper) -> None:
    threads, rounds, hold = 6, 5, 0.01
    probe = make_wrapper("load", pool_size=2, max_overflow=0, pool_timeout=10)
    backend_pid(probe)
    probe.close()
    errors: list[BaseException] = []

    def work() -> None:
        db = make_wrapper("load", pool_size=2, max_overflow=0, pool_timeout=10)
        try:
            for _ in range(rounds):
                with db.cursor() as cursor:
                    cursor.execute("SELECT 1")
                time.sleep(hold)  # hold the connection, as a slow request does
                db.close()
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert not errors
    [snapshot] = pool_stats("load")["pools"]
    counters, timings, gauges = snapshot["counters"], snapshot["timings"], snapshot["gauges"]
    assert counters["checkouts"] == counters["checkins"] == 1 + threads * rounds
    assert counters["connections_opened"] == 2  # never more than pool_size
    assert counters["timeouts"] == 0 and snapshot["last_timeout_at"] is None
    assert gauges == {
        "pool_size": 2,
        "max_overflow": 0,
        "checked_out": 0,
        "idle": 2,
        "overflow": 0,
        "waiting": 0,
    }
    # Six threads on two connections, each held >= 10 ms: someone waited.
    assert timings["wait_ms_max"] >= hold * 1000 / 2
    assert timings["held_ms_max"] >= hold * 1000
    assert timings["held_ms_total"] >= threads * rounds * hold * 1000
    assert timings["held_ms_p50"] <= timings["held_ms_p99"] <= timings["held_ms_max"]
    assert timings["connect_ms_total"] > 0 and timings["connect_ms_max"] > 0


def test_snapshot_has_the_documented_keys_and_is_json(make_wrapper) -> None:
    holder = make_wrapper("keys", pool_size=1, max_overflow=0, pool_timeout=0.05)
    backend_pid(holder)
    waiter = make_wrapper("keys", pool_size=1, max_overflow=0, pool_timeout=0.05)
    before = time.time()
    for _ in range(2):
        with pytest.raises(PoolTimeout):
            waiter.ensure_connection()
    stats = pool_stats("keys")
    assert json.loads(json.dumps(stats)) == stats
    assert set(stats) == {"pid", "hostname", "time", "pools"}
    [snapshot] = stats["pools"]
    assert set(snapshot) == POOL_KEYS
    assert set(snapshot["gauges"]) == GAUGES
    assert set(snapshot["counters"]) == COUNTERS
    causes = {"pre_ping", "disconnect", "recycle", "error"}
    assert set(snapshot["counters"]["invalidations"]) == causes
    assert set(snapshot["timings"]) == TIMINGS
    assert snapshot["counters"]["timeouts"] == 2
    assert snapshot["counters"]["checkouts"] == 1
    assert before <= snapshot["last_timeout_at"] <= time.time()
    assert snapshot["gauges"]["checked_out"] == 1
    assert pool_of(holder).stats.timeouts == 2
