"""A short in-process history of each pool, for the admin page's chart.

One daemon thread per process (started when a pool opens its first
connection, and again in a forked child) wakes once a second: it records a
sample of every pool's gauges and counters in a ring buffer and, when a
stats directory is configured, writes the process's snapshot (``snapshots.py``).
The checkout and checkin path does no extra work for any of this.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any, NamedTuple

from sqlalchemy import event

from .. import operations
from ..core import registry
from ..core.background import Loop
from ..core.pool import SqlaPool
from . import snapshots

logger = logging.getLogger("django_sqla_pool")

#: Seconds between two samples.
INTERVAL = 1.0
#: Samples kept per pool: ten minutes at one a second.
KEEP = 600


class Sample(NamedTuple):
    time: float  # Unix seconds
    checked_out: int
    capacity: int  # pool_size + max_overflow
    waiting: int
    checkouts: int
    timeouts: int
    wait_ms_total: float


_lock = threading.Lock()
_samples: dict[str, deque[Sample]] = {}  # by pool name, so a rebuilt pool continues its line


def sample(now: float | None = None) -> None:
    """Record one sample of every pool of this process."""
    now = time.time() if now is None else now
    for pool in registry.pools():
        counters = pool.stats
        point = Sample(
            time=now,
            checked_out=pool.checkedout(),
            capacity=pool.settings.max_connections,
            waiting=pool.waiting,
            checkouts=counters.checkouts,
            timeouts=counters.timeouts,
            wait_ms_total=round(counters.wait_seconds_total * 1000, 3),
        )
        with _lock:
            ring = _samples.get(pool.name)
            if ring is None:
                ring = _samples[pool.name] = deque(maxlen=KEEP)
            ring.append(point)


def samples(pool_name: str, since: float | None = None) -> list[Sample]:
    """The samples of one pool, oldest first, optionally only those after ``since``."""
    with _lock:
        ring = list(_samples.get(pool_name, ()))
    return ring if since is None else [s for s in ring if s.time >= since]


def reset() -> None:
    """Forget every sample (for tests)."""
    with _lock:
        _samples.clear()


def _tick() -> None:
    sample()
    directory = snapshots.stats_dir()
    snapshots.maybe_write()
    # The one periodic thread of every process with pools also carries the
    # fleet-wide drain requests of ``poolstats --drain`` (operations.py).
    operations.follow_drain_requests(directory)


_loop = Loop("django_sqla_pool-stats", _tick, lambda: INTERVAL)
#: Start the sampler thread in this process if it is not running.
ensure_sampler = _loop.ensure


def _on_connect(dbapi_conn: Any, record: Any) -> None:
    ensure_sampler()


def install() -> None:
    """Start the sampler with the first connection any pool opens (called from AppConfig)."""
    if not event.contains(SqlaPool, "connect", _on_connect):
        event.listen(SqlaPool, "connect", _on_connect)


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _samples.clear()
    _loop.after_fork_in_child()


os.register_at_fork(after_in_child=_forget_after_fork)
