"""Counters and timings of one pool, fed by the pool's events and checkout path."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections import deque
from typing import Any

#: Causes an invalidation is counted under.
INVALIDATION_CAUSES = ("pre_ping", "disconnect", "recycle", "error")

_RECENT = 1024  # samples kept for the recent percentiles


def _percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class PoolStats:
    """Mutable, thread-safe counters; :meth:`snapshot` gives the public view."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections_opened = 0
        self.connections_closed = 0
        self.connect_errors = 0
        self.connect_seconds_total = 0.0
        self.connect_seconds_max = 0.0
        self.checkouts = 0
        self.checkins = 0
        self.timeouts = 0
        self.invalidations = dict.fromkeys(INVALIDATION_CAUSES, 0)
        self.wait_seconds_total = 0.0
        self.wait_seconds_max = 0.0
        self.held_seconds_total = 0.0
        self.held_seconds_max = 0.0
        self.leaks_reported = 0
        self.last_timeout_at: float | None = None
        self.last_connect_error_at: float | None = None
        self._recent_waits: deque[float] = deque(maxlen=_RECENT)
        self._recent_holds: deque[float] = deque(maxlen=_RECENT)

    def opened(self, seconds: float) -> None:
        with self._lock:
            self.connections_opened += 1
            self.connect_seconds_total += seconds
            if seconds > self.connect_seconds_max:
                self.connect_seconds_max = seconds

    def connect_failed(self) -> None:
        with self._lock:
            self.connect_errors += 1
            self.last_connect_error_at = time.time()

    def closed(self) -> None:
        with self._lock:
            self.connections_closed += 1

    def invalidated(self, cause: str) -> None:
        with self._lock:
            self.invalidations[cause] += 1

    def checked_out(self, waited: float) -> None:
        with self._lock:
            self.checkouts += 1
            self.wait_seconds_total += waited
            if waited > self.wait_seconds_max:
                self.wait_seconds_max = waited
            self._recent_waits.append(waited)

    def timed_out(self, waited: float) -> None:
        with self._lock:
            self.timeouts += 1
            self.last_timeout_at = time.time()
            self.wait_seconds_total += waited
            if waited > self.wait_seconds_max:
                self.wait_seconds_max = waited
            self._recent_waits.append(waited)

    def checked_in(self, held: float) -> None:
        with self._lock:
            self.checkins += 1
            self.held_seconds_total += held
            if held > self.held_seconds_max:
                self.held_seconds_max = held
            self._recent_holds.append(held)

    def leak_reported(self) -> None:
        with self._lock:
            self.leaks_reported += 1

    def counters(self) -> dict[str, Any]:
        """Counters since the pool was created, as plain JSON-serialisable values."""
        with self._lock:
            return {
                "connections_opened": self.connections_opened,
                "connections_closed": self.connections_closed,
                "connect_errors": self.connect_errors,
                "checkouts": self.checkouts,
                "checkins": self.checkins,
                "timeouts": self.timeouts,
                "invalidations": dict(self.invalidations),
                "leaks_reported": self.leaks_reported,
            }

    def timings(self) -> dict[str, float]:
        """Timings in milliseconds: totals and maxima since creation, percentiles recent."""
        with self._lock:
            waits = list(self._recent_waits)
            holds = list(self._recent_holds)
            totals = (
                self.wait_seconds_total,
                self.wait_seconds_max,
                self.held_seconds_total,
                self.held_seconds_max,
                self.connect_seconds_total,
                self.connect_seconds_max,
            )
        # Sorted outside the lock: checkouts never wait for a reader's percentiles.
        wait_total, wait_max, held_total, held_max, connect_total, connect_max = totals
        return {
            "wait_ms_total": round(wait_total * 1000, 3),
            "wait_ms_max": round(wait_max * 1000, 3),
            "wait_ms_p50": round(_percentile(waits, 0.50) * 1000, 3),
            "wait_ms_p99": round(_percentile(waits, 0.99) * 1000, 3),
            "held_ms_total": round(held_total * 1000, 3),
            "held_ms_max": round(held_max * 1000, 3),
            "held_ms_p50": round(_percentile(holds, 0.50) * 1000, 3),
            "held_ms_p99": round(_percentile(holds, 0.99) * 1000, 3),
            "connect_ms_total": round(connect_total * 1000, 3),
            "connect_ms_max": round(connect_max * 1000, 3),
        }


def pool_stats(alias: str | None = None) -> dict[str, Any]:
    """Everything this process knows about its pools, JSON-serialisable.

    The keys are documented in docs/observability.md; they are stable.
    """
    from . import registry  # registry imports this module

    pools = []
    for pool in registry.pools(alias):
        pools.append(
            {
                "alias": pool.alias,
                "name": pool.name,
                # Every field of PoolSettings, so a new option shows up here, in
                # poolstats --format json and on the admin page without a second list.
                "config": dataclasses.asdict(pool.settings),
                "gauges": pool.gauges(),
                "counters": pool.stats.counters(),
                "timings": pool.stats.timings(),
                "last_timeout_at": pool.stats.last_timeout_at,
                "last_connect_error_at": pool.stats.last_connect_error_at,
            }
        )
    return {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "time": time.time(),
        "pools": pools,
    }
