"""Leak detection: report connections held longer than ``leak_detection_threshold``.

The registry's watcher thread (one per process, started by the first pool
that asks for it) scans the pools; each over-long checkout is logged once at
WARNING with the stack that took it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pool import SqlaPool

logger = logging.getLogger("django_sqla_pool")


def scan(pools: Iterable[SqlaPool]) -> int:
    """Report every unreported over-long checkout now; return how many were reported."""
    reported = 0
    now = time.monotonic()
    for pool in pools:
        threshold = pool.settings.leak_detection_threshold
        if threshold is None:
            continue
        for holding in list(pool.held.values()):
            if holding.reported or now - holding.since < threshold:
                continue
            holding.reported = True
            pool.stats.leak_reported()
            reported += 1
            logger.warning(
                "possible connection leak: pool=%s backend_pid=%s held for %.1f s "
                "(leak_detection_threshold=%s s) by thread %r, checked out at:\n%s",
                pool.name,
                holding.backend_pid,
                now - holding.since,
                threshold,
                holding.thread,
                holding.stack or "(stack not recorded)",
            )
    return reported


def interval(pools: Iterable[SqlaPool]) -> float:
    """Seconds between scans: a quarter of the shortest threshold, within 0.05-5 s."""
    thresholds = [p.settings.leak_detection_threshold for p in pools]
    shortest = min((t for t in thresholds if t is not None), default=10.0)
    return min(5.0, max(0.05, shortest / 4))
