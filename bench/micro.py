"""What a checkout plus checkin costs, with and without the stats, one thread.

    python bench/micro.py

No request, no query: one pooled connection taken and returned in a loop,
so only the pool's own work is timed. "park + reclaim" is the return and
take-back of thread affinity, "checkout + checkin" the full path. "stats
off" makes the two PoolStats methods called on these paths do nothing: the
difference is what the counters and timings cost. On and off alternate, so
drift on a busy machine hits both. Plain QueuePool and psycopg_pool are
shown for scale. Minimum of several runs, in microseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worker


def _without_checkout_stats(stats_class: type) -> type:
    class NoStats(stats_class):
        def checked_out(self, *args: Any) -> None:
            pass

        def checked_in(self, *args: Any) -> None:
            pass

    return NoStats


def timed(step: Callable[[], None], number: int = 20000, repeats: int = 7) -> float:
    for _ in range(number // 10):
        step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            step()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conn", default=None, help="JSON: host, port, user, dbname")
    args = parser.parse_args()
    conn = (
        json.loads(args.conn)
        if args.conn
        else {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "sqla_pool_bench"}
    )
    worker.setup_django("sqla_pool", conn)
    from django.core.signals import request_finished, request_started
    from django.db import connections
    from psycopg_pool import ConnectionPool
    from sqlalchemy.pool import QueuePool

    from django_sqla_pool.core import registry
    from django_sqla_pool.core.postgresql import driver

    wrapper = connections["default"]
    wrapper.ensure_connection()
    wrapper.close()
    [pool] = registry.pools("default")

    def pool_cycle() -> None:
        pool.checkin(pool.checkout())

    owner = object()

    def park_cycle() -> None:
        # The return and take-back of thread affinity: one record, parked and reclaimed.
        if not pool.park(record, owner) or not pool.reclaim(record, record.dbapi_connection, owner):
            raise RuntimeError("park() or reclaim() refused a clean idle connection")

    def wrapper_cycle() -> None:
        # What Django does per request around the view: signals, connect, close.
        request_started.send(sender=None)
        wrapper.ensure_connection()
        request_finished.send(sender=None)

    real_stats = pool.stats
    no_stats = _without_checkout_stats(type(real_stats))()
    best: dict[str, float] = {}
    for _ in range(3):
        for label, stats in (("on", real_stats), ("off", no_stats)):
            pool.stats = stats
            record = pool.checkout()
            timings = (("SqlaPool park + reclaim", park_cycle),)
            for name, step in timings:
                key = f"{name}, stats {label}"
                best[key] = min(best.get(key, float("inf")), timed(step, repeats=3))
            pool.checkin(record)
            for name, step in (
                ("SqlaPool checkout + checkin", pool_cycle),
                ("Django connect + close via request signals", wrapper_cycle),
            ):
                key = f"{name}, stats {label}"
                best[key] = min(best.get(key, float("inf")), timed(step, repeats=3))
    pool.stats = real_stats
    rows: list[tuple[str, float]] = sorted(best.items())

    params = wrapper.get_connection_params()
    plain = QueuePool(lambda: driver.connect(params), pool_size=1, max_overflow=0)
    rows.append(
        ("plain SQLAlchemy QueuePool connect + close", timed(lambda: plain.connect().close()))
    )
    plain.dispose()
    dsn = " ".join(f"{k}={params[k]}" for k in ("host", "port", "user", "dbname") if k in params)
    with ConnectionPool(dsn, min_size=1, max_size=1, open=True) as psycopg_pool:
        psycopg_pool.wait()

        def psycopg_cycle() -> None:
            psycopg_pool.putconn(psycopg_pool.getconn())

        rows.append(("psycopg_pool getconn + putconn", timed(psycopg_cycle)))
    connections.close_all()
    registry.close_pools()

    width = max(len(name) for name, _ in rows)
    for name, micros in rows:
        print(f"{name.ljust(width)}  {micros:6.2f} µs")
    for name in (
        "SqlaPool park + reclaim",
        "SqlaPool checkout + checkin",
        "Django connect + close via request signals",
    ):
        cost = best[f"{name}, stats on"] - best[f"{name}, stats off"]
        print(f"{f'stats cost: {name}'.ljust(width)}  {cost:6.2f} µs")


if __name__ == "__main__":
    main()
