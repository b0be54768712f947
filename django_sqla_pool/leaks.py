"""Leak detection: report connections held longer than ``leak_detection_threshold``.

One daemon thread per process scans the pools that ask for it; each
over-long checkout is logged once at WARNING with the stack that took it.
"""

from __future__ import annotations

import logging
import os
import time

from .background import Loop

logger = logging.getLogger("django_sqla_pool")


def scan() -> int:
    """Report every unreported over-long checkout now; return how many were reported."""
    from . import registry

    reported = 0
    now = time.monotonic()
    for pool in registry.pools():
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


def _interval() -> float:
    from . import registry

    thresholds = [p.settings.leak_detection_threshold for p in registry.pools()]
    shortest = min((t for t in thresholds if t is not None), default=10.0)
    return min(5.0, max(0.05, shortest / 4))


_loop = Loop("django_sqla_pool-leaks", scan, _interval)
#: Start the watcher thread in this process if it is not running.
ensure_watcher = _loop.ensure
os.register_at_fork(after_in_child=_loop.after_fork_in_child)
