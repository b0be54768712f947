"""A first-come, first-served queue for SQLAlchemy's QueuePool.

SQLAlchemy's own queue wakes a waiter when a connection comes back, but a
thread arriving at that moment can take the connection before the woken
waiter runs again, so under oversubscription some waiters starve until they
time out. Here a returned connection is handed directly to the oldest waiter.

Returned connections are always queued, beyond ``maxsize`` too: an overflow
connection is not closed when it is returned but, like any other, when it has
been unused for ``pool_idle_timeout`` (``housekeeping.py``: one rule for all).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.util.queue import Empty, QueueCommon

_T = TypeVar("_T")


class _Waiter(Generic[_T]):
    """A thread blocked in get(): ``put()`` stores the item and releases ``ready``.

    A bare lock, acquired at creation, is the cheapest way to park a thread
    and wake exactly that one (an Event adds a Condition and a second lock).
    """

    __slots__ = ("handed", "item", "ready")

    def __init__(self) -> None:
        self.ready = threading.Lock()
        self.ready.acquire()
        self.handed = False
        self.item: _T | None = None


class FairQueue(QueueCommon[_T]):
    """Bounded queue of idle connections with FIFO hand-off to waiting threads."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False):
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self.mutex = threading.Lock()
        self._items: deque[_T] = deque()
        self._waiters: deque[_Waiter[_T]] = deque()
        #: ``local.deadline``, a time.monotonic() value set by the pool for one
        #: checkout, overrides get()'s timeout in this thread (read only when
        #: get() has to wait).
        self.local = threading.local()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return self.maxsize > 0 and len(self._items) >= self.maxsize

    @property
    def waiting(self) -> int:
        """Threads currently blocked in get()."""
        return len(self._waiters)

    def put_nowait(self, item: _T) -> None:
        self.put(item, block=False)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        with self.mutex:
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.item = item
                waiter.handed = True
                waiter.ready.release()
                return
            self._items.append(item)

    def take(self, item: _T) -> bool:
        """Remove this idle item, if it is still here; False if someone took it.

        Idle items and waiting threads never coexist (put() hands an item to a
        waiter instead of queueing it), so taking one overtakes nobody.
        """
        with self.mutex:
            try:
                self._items.remove(item)
            except ValueError:
                return False
            return True

    def remove_idle(self, expired: Callable[[_T], bool], limit: int) -> list[_T]:
        """Remove and return up to ``limit`` idle items for which ``expired(item)`` is true.

        Oldest first: with FIFO and with LIFO alike the left end holds the
        item returned longest ago. ``expired`` runs under the queue's lock.
        """
        removed: list[_T] = []
        if limit <= 0:
            return removed
        with self.mutex:
            for item in list(self._items):
                if expired(item):
                    self._items.remove(item)
                    removed.append(item)
                    if len(removed) >= limit:
                        break
        return removed

    def get_nowait(self) -> _T:
        return self.get(block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        with self.mutex:
            # Queued waiters go first: a newcomer never overtakes them.
            if self._items and not self._waiters:
                return self._items.pop() if self.use_lifo else self._items.popleft()
            if not block:
                raise Empty
            waiter: _Waiter[_T] = _Waiter()
            self._waiters.append(waiter)
        deadline = getattr(self.local, "deadline", None)
        if deadline is None and timeout is not None:
            deadline = time.monotonic() + timeout
        while True:
            remaining = -1 if deadline is None else max(0.0, deadline - time.monotonic())
            if waiter.ready.acquire(timeout=remaining):
                return waiter.item  # type: ignore[return-value]
            with self.mutex:
                # put() may have handed us an item between the timeout and here.
                if waiter.handed:
                    return waiter.item  # type: ignore[return-value]
                if deadline is not None and time.monotonic() >= deadline:
                    self._waiters.remove(waiter)
                    raise Empty
