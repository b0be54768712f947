"""A daemon thread per process that runs one job periodically, restarted lazily after fork()."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger("django_sqla_pool")


class Loop:
    """Runs ``job`` every ``interval()`` seconds in a daemon thread named ``name``.

    ``ensure()`` starts the thread if this process has none; a forked child
    has no threads of its parent, so it starts its own on first use.
    """

    def __init__(self, name: str, job: Callable[[], object], interval: Callable[[], float]):
        self.name = name
        self._job = job
        self._interval = interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wakeup = threading.Event()
        self.pid = 0  # the process the running thread belongs to

    def _running(self) -> bool:
        return self._thread is not None and self.pid == os.getpid() and self._thread.is_alive()

    def ensure(self) -> None:
        if self._running():
            return
        with self._lock:
            if self._running():
                return
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self.pid = os.getpid()
            self._thread.start()

    def _run(self) -> None:
        while True:
            # A wake() cuts the sleep short (a new pool to warm up now).
            if self._wakeup.wait(self._interval()):
                self._wakeup.clear()
            try:
                self._job()
            except Exception:  # never let the thread die; the next round retries
                logger.exception("%s: periodic job failed", self.name)

    def wake(self) -> None:
        """Run the job now instead of at the end of the current interval."""
        self._wakeup.set()

    def after_fork_in_child(self) -> None:
        # The parent's lock may have been held at fork time.
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
