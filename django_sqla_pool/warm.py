"""``open_pools()``: create this process's pools when a worker starts, to warm them up early."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from .conf import is_pooled

if TYPE_CHECKING:
    from .core.pool import SqlaPool


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
    names = list(aliases) if aliases is not None else None
    if names is None:
        names = [alias for alias, db in settings.DATABASES.items() if is_pooled(db)]
    pools = []
    for alias in names:
        if alias not in settings.DATABASES or not is_pooled(settings.DATABASES[alias]):
            raise ImproperlyConfigured(
                f"open_pools({alias!r}): DATABASES[{alias!r}] does not use a django_sqla_pool "
                "ENGINE; pass the aliases of pooled databases, or nothing for all of them."
            )
        wrapper: Any = connections[alias]  # a PooledDatabaseWrapperMixin
        # The same parameters, hence the same pool, as this wrapper's next connect().
        pools.append(wrapper._pool_for(wrapper.get_connection_params()))
    return pools
