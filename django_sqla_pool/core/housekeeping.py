"""Warm start and idle shrink: one background thread keeps every pool between its bounds.

The rule, for every pool of this process, at every round of the housekeeper
(README, "Sizing"):

- a connection that has sat unused in the pool for ``pool_idle_timeout``
  seconds (shortened by a random 0-10 % per connection, so a fleet does not
  close in lockstep) is closed, oldest first, as long as more than
  ``pool_min_size`` connections are open. Overflow connections are no
  different: nothing is closed when it is returned;
- while fewer than ``pool_min_size`` connections are open (a new pool, or
  after the server dropped some), connections are opened and queued. A
  failure is logged and counted (``connect_errors``) and retried with
  backoff; it never reaches a request.

The registry's housekeeper thread runs the round right after a pool is
created (warm start), then every ``interval()`` seconds. It reads what
checkout and checkin already record (``record.info["returned"]``), so
requests pay nothing for it. No lock is held
while a connection is opened or closed. A forked child starts with no pools
and no housekeeper; its own pools, created by its first query or by
``open_pools()``, are warmed by its own housekeeper, and it never touches the
connections it inherited.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pool import SqlaPool

logger = logging.getLogger("django_sqla_pool")

#: Bounds of the seconds between two rounds: a quarter of the shortest
#: pool_idle_timeout, so connections close within 1.25 x the timeout.
INTERVAL_MIN = 0.05
INTERVAL_MAX = 5.0
#: Each connection's idle timeout is shortened by up to this fraction.
IDLE_JITTER = 0.10
#: Seconds before the first retry of a failed background connect; doubles up to RETRY_MAX.
RETRY_FIRST = 1.0
RETRY_MAX = 30.0


class _State:
    """A pool's background connect failures: when to try again, how many in a row."""

    __slots__ = ("failures", "retry_at")

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = -math.inf


_states: weakref.WeakKeyDictionary[SqlaPool, _State] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def _state(pool: SqlaPool) -> _State:
    with _states_lock:
        state = _states.get(pool)
        if state is None:
            state = _states[pool] = _State()
        return state


def needs_housekeeping(pool: SqlaPool) -> bool:
    settings = pool.settings
    return settings.pool_min_size > 0 or settings.pool_idle_timeout is not None


def open_count(pool: SqlaPool) -> int:
    """Connections open or being opened: checked out plus idle (QueuePool's accounting)."""
    return pool.size() + pool._overflow


def _idle_deadline(record: Any, timeout: float) -> float:
    info = record.info
    factor = info.get("idle_jitter")
    if factor is None:
        factor = info["idle_jitter"] = 1.0 - random.uniform(0.0, IDLE_JITTER)
    last_used = info.get("returned") or info.get("born") or 0.0
    return float(last_used + timeout * factor)


def close_idle(pool: SqlaPool, now: float) -> int:
    """Close the connections unused past their idle timeout, down to pool_min_size."""
    timeout = pool.settings.pool_idle_timeout
    if timeout is None:
        return 0
    surplus = open_count(pool) - pool.settings.pool_min_size
    doomed = pool._pool.remove_idle(  # type: ignore[attr-defined]
        lambda record: _idle_deadline(record, timeout) <= now, surplus
    )
    for record in doomed:
        # As QueuePool does with a connection it does not keep: close, then
        # free its place in the overflow accounting.
        try:
            record.close()
        finally:
            pool._dec_overflow()
        pool.stats.closed_idle()
    if doomed and logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "idle shrink pool=%s closed=%s open=%s", pool.name, len(doomed), open_count(pool)
        )
    return len(doomed)


def _open_one(pool: SqlaPool, now: float) -> bool:
    """Open one connection and queue it (or hand it to a waiter); False if none was opened."""
    state = _state(pool)
    if now < state.retry_at or pool.retired:
        return False
    # During an outage one thread at a time tries to connect (outage.py);
    # when a checkout has that turn, this round waits for its outcome.
    outage = pool._outage
    if not outage.claim():
        return False
    if not pool._inc_overflow():
        outage.release()
        return False
    try:
        record = pool._create_connection()
    except Exception as error:  # never raised: a request may succeed where this failed
        outage.release()  # a no-op when the failure was recorded (it ends the turn)
        pool._dec_overflow()
        state.failures += 1
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (state.failures - 1))
        state.retry_at = time.monotonic() + delay * random.uniform(0.9, 1.1)
        logger.warning(
            "background connect failed: pool=%s (pool_min_size=%s, %s failures in a row, "
            "next try in %.1f s): %s",
            pool.name,
            pool.settings.pool_min_size,
            state.failures,
            delay,
            str(error).strip() or type(error).__name__,
        )
        return False
    if state.failures:
        logger.info("background connect works again: pool=%s", pool.name)
        state.failures = 0
        state.retry_at = -math.inf
    pool._do_return_conn(record)
    if pool.retired:  # closed while this connection was being opened: it must not stay
        pool.dispose()
        return False
    return True


def fill(pool: SqlaPool, now: float) -> int:
    """Open connections for threads left waiting while there is room, then up to the minimum.

    A thread that decided to wait (every connection in use) just before a
    connection was closed here, or a failed connect elsewhere freed a place,
    would otherwise wait until someone returns one.
    """
    opened = 0
    queue: Any = pool._pool
    while queue.waiting and _open_one(pool, now):
        opened += 1
    while open_count(pool) < pool.settings.pool_min_size and _open_one(pool, now):
        opened += 1
    return opened


def tend(pool: SqlaPool, now: float | None = None) -> None:
    """One round for one pool: close what has been idle too long, then open what is missing."""
    if pool.retired or pool.pid != os.getpid():
        return
    now = time.monotonic() if now is None else now
    close_idle(pool, now)
    fill(pool, now)


def run(pools: Iterable[SqlaPool]) -> None:
    """One round over these pools (the registry's housekeeper passes every pool it has)."""
    for pool in pools:
        if not needs_housekeeping(pool):
            continue
        try:
            tend(pool)
        except Exception:  # one pool's trouble must not stop the others'
            logger.exception("housekeeping failed: pool=%s", pool.name)


def interval(pools: list[SqlaPool]) -> float:
    """Seconds until the next round: a quarter of the shortest idle timeout, or a retry."""
    timeouts = [p.settings.pool_idle_timeout for p in pools]
    shortest = min((t for t in timeouts if t is not None), default=4 * INTERVAL_MAX) / 4
    # A failed background connect is retried when its backoff says, not a round later.
    now = time.monotonic()
    with _states_lock:
        retries = [s.retry_at - now for p, s in _states.items() if s.failures and p in pools]
    return min(INTERVAL_MAX, max(INTERVAL_MIN, min([shortest, *retries])))


def forget_after_fork() -> None:
    """In a forked child: the parent's retry states (the registry calls this)."""
    global _states_lock
    _states_lock = threading.Lock()
    _states.clear()
