"""Counters and timings of one pool, fed by the pool's events and checkout path.

Kept apart from the snapshot users read (``observe/stats.py``): the pool
writes here; observers read through the registry.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from typing import Any

#: Causes an invalidation is counted under.
INVALIDATION_CAUSES = ("pre_ping", "disconnect", "recycle", "error", "drained", "failover")

_RECENT = 1024  # samples kept for the recent percentiles

#: Upper bounds, in seconds, of the histogram buckets of wait, use (held) and
#: create (connect) times; a last bucket takes everything above. From 100 µs
#: (a checkout with nothing to wait for) to pool_timeout's usual 30 s.
HISTOGRAM_BOUNDS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


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
        self.statement_timeouts = 0
        self.server_waits = 0
        self.server_unreachable_errors = 0
        self.last_timeout_at: float | None = None
        # One count per bucket (not cumulative): a checkout adds one bisect
        # and one increment under the lock it already takes.
        self.wait_buckets = [0] * (len(HISTOGRAM_BOUNDS) + 1)
        self.held_buckets = [0] * (len(HISTOGRAM_BOUNDS) + 1)
        self.connect_buckets = [0] * (len(HISTOGRAM_BOUNDS) + 1)
        self.last_connect_error_at: float | None = None
        self._recent_waits: deque[float] = deque(maxlen=_RECENT)
        self._recent_holds: deque[float] = deque(maxlen=_RECENT)
        #: When the pool was created (Unix seconds): the span rates are computed over.
        self.created_at = time.time()
        #: Connections closed by the idle rule (also counted in connections_closed).
        self.connections_closed_idle = 0
        #: The most connections open at once (checked out, idle and being opened).
        self.connections_open_peak = 0
        #: Times a connection found its server refusing writes (a switchover).
        self.failovers = 0
        #: Open connections by the host:port they reached (several with a multi-host HOST).
        self._servers: dict[str, int] = {}

    def opened(self, seconds: float) -> None:
        with self._lock:
            self.connections_opened += 1
            self.connect_seconds_total += seconds
            self.connect_buckets[bisect_left(HISTOGRAM_BOUNDS, seconds)] += 1
            if seconds > self.connect_seconds_max:
                self.connect_seconds_max = seconds

    def saw_open(self, count: int) -> None:
        # Called when a connection opens (not on checkout): the peak costs requests nothing.
        with self._lock:
            if count > self.connections_open_peak:
                self.connections_open_peak = count

    def closed_idle(self) -> None:
        with self._lock:
            self.connections_closed_idle += 1

    def connect_failed(self) -> None:
        with self._lock:
            self.connect_errors += 1
            self.last_connect_error_at = time.time()

    def waited_for_server(self) -> None:
        with self._lock:
            self.server_waits += 1

    def server_unreachable(self) -> None:
        with self._lock:
            self.server_unreachable_errors += 1

    def server_opened(self, server: str | None) -> None:
        if server is None:
            return
        with self._lock:
            self._servers[server] = self._servers.get(server, 0) + 1

    def closed(self, server: str | None = None) -> None:
        with self._lock:
            self.connections_closed += 1
            if server is not None and self._servers.get(server):
                self._servers[server] -= 1
                if not self._servers[server]:
                    del self._servers[server]

    def servers(self) -> dict[str, int]:
        with self._lock:
            return dict(self._servers)

    def failed_over(self) -> None:
        with self._lock:
            self.failovers += 1

    def invalidated(self, cause: str) -> None:
        with self._lock:
            self.invalidations[cause] += 1

    def checked_out(self, waited: float) -> None:
        with self._lock:
            self.checkouts += 1
            self.wait_seconds_total += waited
            self.wait_buckets[bisect_left(HISTOGRAM_BOUNDS, waited)] += 1
            if waited > self.wait_seconds_max:
                self.wait_seconds_max = waited
            self._recent_waits.append(waited)

    def timed_out(self, waited: float) -> None:
        with self._lock:
            self.timeouts += 1
            self.last_timeout_at = time.time()
            self.wait_seconds_total += waited
            self.wait_buckets[bisect_left(HISTOGRAM_BOUNDS, waited)] += 1
            if waited > self.wait_seconds_max:
                self.wait_seconds_max = waited
            self._recent_waits.append(waited)

    def checked_in(self, held: float) -> None:
        with self._lock:
            self.checkins += 1
            self.held_seconds_total += held
            self.held_buckets[bisect_left(HISTOGRAM_BOUNDS, held)] += 1
            if held > self.held_seconds_max:
                self.held_seconds_max = held
            self._recent_holds.append(held)

    def leak_reported(self) -> None:
        with self._lock:
            self.leaks_reported += 1

    def statement_timed_out(self) -> None:
        with self._lock:
            self.statement_timeouts += 1

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
                "statement_timeouts": self.statement_timeouts,
                "server_waits": self.server_waits,
                "server_unreachable_errors": self.server_unreachable_errors,
                "connections_closed_idle": self.connections_closed_idle,
                "connections_open_peak": self.connections_open_peak,
                "failovers": self.failovers,
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

    def histograms(self) -> dict[str, dict[str, Any]]:
        """Wait, held and connect times as cumulative bucket counts (Prometheus-style).

        ``le``: the buckets' upper bounds in seconds; ``counts``: how many
        values were at most each bound; ``count``: all values (the +Inf
        bucket); ``sum``: their total in seconds.
        """
        with self._lock:
            parts = (
                ("wait_s", list(self.wait_buckets), self.wait_seconds_total),
                ("held_s", list(self.held_buckets), self.held_seconds_total),
                ("connect_s", list(self.connect_buckets), self.connect_seconds_total),
            )
        histograms = {}
        for key, buckets, total in parts:
            cumulative, running = [], 0
            for count in buckets:
                running += count
                cumulative.append(running)
            histograms[key] = {
                "le": list(HISTOGRAM_BOUNDS),
                "counts": cumulative[:-1],
                "count": cumulative[-1],
                "sum": total,
            }
        return histograms
