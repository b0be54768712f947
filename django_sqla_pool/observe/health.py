"""Readiness of each pooled alias: one bounded probe (a checkout and ``SELECT 1``) per pool.

The probe runs in a thread of its own, so the caller waits at most the bound
(``DJANGO_SQLA_POOL_HEALTH_TIMEOUT``, 2 s by default) even when the server
accepts connections but never answers; the checkout inside it is bounded too
(three quarters of the bound, leaving the rest for ``SELECT 1``), never by
``pool_timeout``. A pool has at most one probe running: a probe still stuck
on a silent server is reported, not joined by another one, so health checks
can never use more than one connection per pool, even when the server hangs.

Statuses: ``ok``; ``degraded`` when the server answers but the pool is
saturated (threads waiting, every connection in use, a ``PoolTimeout`` in
the last minute), or when the probe itself got no connection because the
pool is exhausted; ``down`` when no connection can be had or ``SELECT 1``
fails or does not answer in time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from ..conf import HEALTH_TIMEOUT_SETTING, HEALTH_WINDOW, health_timeout, is_pooled
from ..core import registry
from ..core.errors import PoolConnectError, PoolTimeout
from ..core.pool import SqlaPool
from .fleet import read_fleet
from .report import pooled_aliases, saturation

logger = logging.getLogger("django_sqla_pool")

OK = "ok"
DEGRADED = "degraded"
DOWN = "down"
_SEVERITY = {OK: 0, DEGRADED: 1, DOWN: 2}

#: Share of the bound the probe's checkout may wait; the rest is for SELECT 1.
CHECKOUT_SHARE = 0.75


def worst(statuses: list[str]) -> str:
    """The most severe of these statuses (``ok`` for none)."""
    return max(statuses, key=_SEVERITY.__getitem__, default=OK)


def configured_timeout() -> float:
    """The probe's bound from settings (ImproperlyConfigured naming the setting if invalid)."""
    return health_timeout(getattr(settings, HEALTH_TIMEOUT_SETTING, None))


@dataclass
class Probe:
    """One alias's health. ``reason`` and the numbers are for permitted callers only."""

    alias: str
    status: str
    reason: str
    #: How long the probe ran, or was waited for if it is still running.
    probe_ms: float = 0.0
    #: The fleet view's server section (headroom), when asked for and reachable.
    server: dict[str, Any] | None = None
    pool: SqlaPool | None = field(default=None, repr=False)

    @property
    def summary(self) -> str:
        """The reason without its details (no host, port or driver message): safe to show."""
        return self.reason.split(":", 1)[0]


class _Attempt:
    """A probe running in its own thread, one per pool at a time."""

    def __init__(self, pool: SqlaPool, bound: float, numbers: bool) -> None:
        self.pool = pool
        self.bound = bound
        self.numbers = numbers
        self.started = time.monotonic()
        self.finished: float | None = None
        self.done = threading.Event()
        self.stage = "checkout"
        self.status = DOWN
        self.reason = "not run"
        self.server: dict[str, Any] | None = None

    def run(self) -> None:
        try:
            self.status, self.reason = self._probe()
        except BaseException as error:  # a thread's error must not vanish silently
            logger.exception("health probe of pool %s failed", self.pool.name)
            self.status, self.reason = DOWN, f"probe failed: {type(error).__name__}: {error}"
        finally:
            self.finished = time.monotonic()
            with _lock:
                if _running.get(self.pool) is self:
                    del _running[self.pool]
            self.done.set()

    def _probe(self) -> tuple[str, str]:
        pool = self.pool
        try:
            record = pool.checkout(timeout=self.bound * CHECKOUT_SHARE)
        except PoolTimeout:
            return DEGRADED, _exhausted(pool, self.bound * CHECKOUT_SHARE)
        except PoolConnectError as error:
            return DOWN, f"cannot connect: {error}"
        self.stage = "query"
        try:
            connection: Any = record.dbapi_connection
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                row = cursor.fetchone()
                read_only = pool.family.is_read_only(connection)
                if self.numbers:
                    self.server = read_fleet(cursor, pool.alias, pool.family)["server"]
        except pool.family.Error as error:
            return DOWN, f"SELECT 1 failed: {type(error).__name__}: {error}".strip()
        finally:
            pool.checkin(record)  # a broken connection is discarded there
        if row is None or row[0] != 1:
            return DOWN, f"SELECT 1 returned {row!r}"
        if read_only:
            # Reads work, writes fail: a standby, or a primary made read-only. With
            # target_session_attrs=read-write the connect itself would have failed.
            return DEGRADED, "read-only server: SELECT 1 answered, writes would fail"
        return OK, "SELECT 1 answered"


# Probes in flight, by pool: process-wide on purpose, so that concurrent health
# requests share one probe per pool instead of each taking a connection.
_lock = threading.Lock()
_running: dict[SqlaPool, _Attempt] = {}


def _forget_after_fork() -> None:
    # The parent's probe threads do not exist in the child (nor do its pools),
    # and the lock may have been held at fork time.
    global _lock
    _lock = threading.Lock()
    _running.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _exhausted(pool: SqlaPool, waited: float) -> str:
    return (
        f"pool exhausted: the probe got no connection within {waited:g} s "
        f"({pool.checkedout()} of {pool.settings.max_connections} in use, "
        f"{pool.waiting} threads waiting); the server may well be up"
    )


def _pool_of(alias: str) -> SqlaPool:
    """The pool this process's requests use for ``alias`` (created if none yet)."""
    if alias not in settings.DATABASES or not is_pooled(settings.DATABASES[alias]):
        raise ImproperlyConfigured(f"database alias {alias!r} does not use django_sqla_pool")
    wrapper: Any = connections[alias]
    return registry.get_pool(
        alias, wrapper.get_connection_params(), wrapper.pool_settings, wrapper.pool_family
    )


def _start(pool: SqlaPool, bound: float, numbers: bool) -> _Attempt:
    with _lock:
        attempt = _running.get(pool)
        if attempt is not None:
            return attempt
        attempt = _running[pool] = _Attempt(pool, bound, numbers)
    thread = threading.Thread(
        target=attempt.run, name=f"django_sqla_pool health {pool.alias}", daemon=True
    )
    thread.start()
    return attempt


def _judge(alias: str, attempt: _Attempt, now: float) -> Probe:
    pool = attempt.pool
    if not attempt.done.is_set():
        waited = now - attempt.started
        if attempt.stage == "checkout" and pool.checkedout() >= pool.settings.max_connections:
            status, reason = DEGRADED, _exhausted(pool, waited)
        elif attempt.stage == "checkout":
            status, reason = DOWN, f"no answer: no connection after {waited:.1f} s"
        else:
            status, reason = DOWN, f"no answer: SELECT 1 unanswered after {waited:.1f} s"
        return Probe(alias, status, reason, round(waited * 1000, 3), None, pool)
    assert attempt.finished is not None
    probe = Probe(
        alias,
        attempt.status,
        attempt.reason,
        round((attempt.finished - attempt.started) * 1000, 3),
        attempt.server,
        pool,
    )
    if probe.status == OK:
        entry = {"gauges": pool.gauges(), "last_timeout_at": pool.stats.last_timeout_at}
        reasons = saturation(entry, time.time(), HEALTH_WINDOW)
        if reasons:
            probe.status = DEGRADED
            probe.reason = f"reachable but saturated ({', '.join(reasons)})"
    return probe


def check(
    aliases: list[str] | None = None, *, timeout: float | None = None, numbers: bool = False
) -> list[Probe]:
    """Probe every pooled alias (or these) at once; returns within ``timeout`` seconds.

    ``numbers``: also read the server's headroom on the probe's connection.
    """
    bound = configured_timeout() if timeout is None else timeout
    aliases = pooled_aliases() if aliases is None else list(aliases)
    deadline = time.monotonic() + bound
    started: list[tuple[str, _Attempt | Probe]] = []
    for alias in aliases:
        try:
            pool = _pool_of(alias)
        except ImproperlyConfigured as error:
            started.append((alias, Probe(alias, DOWN, f"invalid settings: {error}")))
            continue
        started.append((alias, _start(pool, bound, numbers)))
    probes = []
    for alias, attempt in started:
        if isinstance(attempt, _Attempt):
            attempt.done.wait(max(0.0, deadline - time.monotonic()))
            probes.append(_judge(alias, attempt, time.monotonic()))
        else:
            probes.append(attempt)
    return probes
