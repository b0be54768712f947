"""The process-wide registry of pools, and what happens to it across fork().

The registry is global on purpose: a pool must outlive the per-thread
DatabaseWrapper objects Django creates, and every thread of the process must
share it. Pools are keyed by alias, effective connection parameters and pool
settings, so changing NAME (test databases, --parallel clones, xdist) gets
a new pool instead of reusing connections to the old database. The password
is not part of the key: a rotated one (a token put in by an overridden
get_connection_params()) updates the pool's next connects instead of
starting a second pool that would hold connections until the process ends.

The registry is the top of the pool core: it owns the two background loops
(housekeeping, leak watch) and hands them its pools, so the modules below it
never import it.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Any

from . import housekeeping, leaks
from .background import Loop
from .family import Family
from .pool import SqlaPool
from .settings import PoolSettings

_lock = threading.Lock()
_pools: dict[tuple[Any, ...], SqlaPool] = {}
# Every wrapper of ours, so a forked child can forget the connections they hold.
_wrappers: weakref.WeakSet[Any] = weakref.WeakSet()
# Retired pools that still have connections out (see close_pools()).
_retiring: weakref.WeakSet[SqlaPool] = weakref.WeakSet()


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def get_pool(
    alias: str, params: dict[str, Any], settings: PoolSettings, family: Family
) -> SqlaPool:
    """The pool for these parameters, created on first use (safe when threads race)."""
    key = (
        alias,
        settings,
        tuple(sorted((k, _hashable(v)) for k, v in params.items() if k != "password")),
    )
    pool = _pools.get(key)
    created = False
    if pool is not None:
        if pool.password != params.get("password"):
            pool.set_password(params.get("password"))
    else:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = SqlaPool(
                    alias=alias,
                    name=family.pool_name(alias, params),
                    settings=settings,
                    connect_params=dict(params),
                    family=family,
                )
                _pools[key] = pool
                created = True
    if created:
        if housekeeping.needs_housekeeping(pool):
            _housekeeper.ensure()
            _housekeeper.wake()  # warm start, in the background, now
        if settings.leak_detection_threshold is not None:
            _leak_watch.ensure()
    return pool


def pools(alias: str | None = None) -> list[SqlaPool]:
    """Live pools of this process, of one alias or all."""
    return [p for p in list(_pools.values()) if alias is None or p.alias == alias]


def close_pools(alias: str | None = None) -> None:
    """Close the pools of one alias (or all): idle connections now, the rest when returned."""
    with _lock:
        doomed = [key for key, p in _pools.items() if alias is None or p.alias == alias]
        retired = [_pools.pop(key) for key in doomed]
    for pool in retired:
        pool.retire()
        if pool.held:  # (checkedout() reads 0 once a pool is disposed)
            # A connection still out may come back through the garbage-collection
            # hook (its wrapper dropped): a retired pool sees no more checkouts or
            # checkins to return it, so the housekeeper does (_sweep_retired).
            _retiring.add(pool)
    if _retiring:
        _housekeeper.ensure()


def drain(alias: str | None = None) -> dict[str, int]:
    """Replace every connection of this process's pools (of one alias, or all).

    Idle connections are closed now, busy ones when returned; no request fails.
    Returns, per pool name, how many were closed now.
    """
    closed = {pool.name: pool.drain() for pool in pools(alias)}
    if closed:
        _housekeeper.ensure()
        _housekeeper.wake()  # pool_min_size: reopen in the background, now
    return closed


def _sweep_retired() -> None:
    """Close what the garbage-collection hook handed back to retired pools."""
    for pool in list(_retiring):
        if pool.pid != os.getpid():
            continue
        pool.reclaim_abandoned()
        if not pool.held:
            _retiring.discard(pool)


def _housekeeping_round() -> None:
    housekeeping.run(pools())
    _sweep_retired()


_housekeeper = Loop(
    "django_sqla_pool-housekeeper",
    _housekeeping_round,
    lambda: housekeeping.interval(pools()),
)
_leak_watch = Loop(
    "django_sqla_pool-leaks",
    lambda: leaks.scan(pools()),
    lambda: leaks.interval(pools()),
)


def track(wrapper: Any) -> None:
    _wrappers.add(wrapper)


def _forget_inherited() -> None:
    # In a forked child every socket is shared with the parent. Closing one
    # here would send Terminate and end the parent's session, and even a
    # rollback would interleave with the parent's traffic, so the child drops
    # its references without touching the connections (both drivers skip
    # closing on garbage collection in a process other than their creator).
    global _lock
    _lock = threading.Lock()
    _pools.clear()
    _retiring.clear()
    for wrapper in list(_wrappers):
        wrapper._forget_pooled_connection()
    housekeeping.forget_after_fork()
    _housekeeper.after_fork_in_child()
    _leak_watch.after_fork_in_child()


os.register_at_fork(after_in_child=_forget_inherited)
# Close idle connections cleanly at exit instead of leaving the server to
# notice dropped sockets ("unexpected EOF on client connection").
atexit.register(close_pools)
