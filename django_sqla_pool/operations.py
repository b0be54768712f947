"""What an operator does to this process's pools: open them early, drain them.

``open_pools()`` creates a worker's pools when it starts, so they warm up
before the first request; ``drain()`` replaces every connection (planned
maintenance, a rotated secret, a switchover) without failing a request.
Both act on the process they run in only.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from .conf import is_pooled
from .core import registry

if TYPE_CHECKING:
    from .core.pool import SqlaPool

logger = logging.getLogger("django_sqla_pool")


def open_pools(aliases: Iterable[str] | None = None) -> list[SqlaPool]:
    """Create the pools of these aliases (default: every pooled alias) in this process.

    Returns at once: each pool opens its ``pool_min_size`` connections in the
    background (a failure is logged and counted, never raised), and is the
    very pool the requests of this thread and of every other thread use.
    Call it where a worker starts, after Django is set up: gunicorn's
    ``post_fork`` hook, Celery's ``worker_process_init`` signal, or ``wsgi.py``
    when the server does not preload the application. A pool created before
    a fork stays the parent's.
    """
    pools = []
    for alias in _pooled("open_pools", aliases):
        wrapper: Any = connections[alias]  # a PooledDatabaseWrapperMixin
        # The same parameters, hence the same pool, as this wrapper's next connect().
        pools.append(wrapper._pool_for(wrapper.get_connection_params()))
    return pools


def drain(alias: str | None = None) -> dict[str, int]:
    """Replace every connection of this process's pools (of ``alias``, or all).

    Idle connections are closed now; busy ones finish their request and are
    closed when returned; the next checkouts open new ones, so no request
    fails. Returns, per pool, how many idle connections were closed now.
    It acts on this process only: to drain a fleet, run it in every worker
    (docs/managed.md shows a gunicorn signal handler).
    """
    if alias is None:
        return registry.drain()
    [name] = _pooled("drain", [alias])
    return registry.drain(name)


def _pooled(caller: str, aliases: Iterable[str] | None) -> list[str]:
    """The aliases asked for, all of them pooled (default: every pooled alias)."""
    if aliases is None:
        return [alias for alias, db in settings.DATABASES.items() if is_pooled(db)]
    names = list(aliases)
    for alias in names:
        if alias not in settings.DATABASES or not is_pooled(settings.DATABASES[alias]):
            raise ImproperlyConfigured(
                f"{caller}({alias!r}): DATABASES[{alias!r}] does not use a django_sqla_pool "
                "ENGINE; pass the alias of a pooled database, or nothing for all of them."
            )
    return names


# -- Fleet-wide drain, through the stats directory ----------------------------

#: The file in DJANGO_SQLA_POOL_STATS_DIR whose every rewrite asks every process
#: sharing the directory to drain (``poolstats --drain``).
DRAIN_REQUEST = "drain.request"  # not *.json: no snapshot

# Per directory, the modification time of the last request this process acted on
# (absent: not looked there yet).
_seen: dict[str, float] = {}


def request_drain(directory: Path, alias: str | None) -> Path:
    """Ask every process that shares ``directory`` to drain ``alias`` (None: all)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DRAIN_REQUEST
    request = {
        "alias": alias,
        "time": time.time(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    with os.fdopen(fd, "w") as file:
        json.dump(request, file)
    os.replace(temporary, path)  # readers never see half a file
    return path


def follow_drain_requests(directory: Path | None) -> dict[str, int] | None:
    """Drain if a request newer than the last one seen was written; what was drained.

    The stats sampler calls this once a second. A request made before this
    process first looked is not for it: a worker started after a drain has
    nothing old to replace.
    """
    if directory is None:
        return None
    path = directory / DRAIN_REQUEST
    try:
        written = path.stat().st_mtime
    except OSError:
        written = 0.0
    seen = _seen.setdefault(str(directory), written)
    if written <= seen:
        return None
    _seen[str(directory)] = written
    try:
        alias = json.loads(path.read_text())["alias"]
    except (OSError, ValueError, KeyError, TypeError):
        alias = None  # unreadable: drain everything rather than nothing
    drained = registry.drain(alias)
    logger.warning(
        "drain requested in %s: pools=%s (idle connections closed now: %s; busy ones when "
        "returned)",
        path,
        sorted(drained),
        sum(drained.values()),
    )
    return drained
