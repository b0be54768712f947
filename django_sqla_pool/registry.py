"""The process-wide registry of pools, and what happens to it across fork().

The registry is global on purpose: a pool must outlive the per-thread
DatabaseWrapper objects Django creates, and every thread of the process must
share it. Pools are keyed by alias, effective connection parameters and pool
settings, so changing NAME (test databases, --parallel clones, xdist) gets
a new pool instead of reusing connections to the old database.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Any

from . import housekeeping
from .conf import PoolSettings
from .pool import SqlaPool

_lock = threading.Lock()
_pools: dict[tuple[Any, ...], SqlaPool] = {}
# Every wrapper of ours, so a forked child can forget the connections they hold.
_wrappers: weakref.WeakSet[Any] = weakref.WeakSet()


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _pool_name(alias: str, params: dict[str, Any]) -> str:
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    user = params.get("user") or ""
    dbname = params.get("dbname") or ""
    return f"{alias}:{user}@{host}:{port}/{dbname}"


def get_pool(alias: str, params: dict[str, Any], settings: PoolSettings) -> SqlaPool:
    """The pool for these parameters, created on first use (safe when threads race)."""
    key = (alias, settings, tuple(sorted((k, _hashable(v)) for k, v in params.items())))
    pool = _pools.get(key)
    created = False
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = SqlaPool(
                    alias=alias,
                    name=_pool_name(alias, params),
                    settings=settings,
                    connect_params=dict(params),
                )
                _pools[key] = pool
                created = True
    if created:
        housekeeping.pool_created(pool)  # warm start, in the background
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
    for wrapper in list(_wrappers):
        wrapper._forget_pooled_connection()


os.register_at_fork(after_in_child=_forget_inherited)
# Close idle connections cleanly at exit instead of leaving the server to
# notice dropped sockets ("unexpected EOF on client connection").
atexit.register(close_pools)
