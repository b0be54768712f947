"""At most one log line per interval for a repeated event, with what it summarises.

Under an exhaustion storm every checkout may wait too long or time out;
logging each one buries everything else (788 lines in 20 s were seen). The
first event is logged at once; later ones within the interval are counted,
with the worst value, and summarised by the first line after it. The
pool's counters stay exact: only the log is thinned.
"""

from __future__ import annotations

import math
import threading
import time


class Throttle:
    """Decides which occurrences of one event are logged."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._next_line = -math.inf
        self._count = 0
        self._worst = 0.0

    def note(self, value: float) -> tuple[int, float] | None:
        """Count one event; when it should be logged, the events and worst value it covers."""
        now = time.monotonic()
        with self._lock:
            self._count += 1
            if value > self._worst:
                self._worst = value
            if now < self._next_line:
                return None
            summary = (self._count, self._worst)
            self._count = 0
            self._worst = 0.0
            self._next_line = now + self.interval
            return summary
