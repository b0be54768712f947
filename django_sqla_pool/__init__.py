"""Real connection pooling for Django, built on SQLAlchemy's QueuePool.

The public API is imported lazily (PEP 562), so that importing any module of
the package (an ENGINE, the pool core) does not load the rest of it.

The layers, lowest first (docs/architecture.md; the import contract in
pyproject.toml keeps them): ``core/`` the pool; ``backends/``, ``conf``,
``release``, ``operations``, ``dburl`` the Django side; ``observe/`` what reads the
pools; the Django entry points (``apps``, ``checks``, ``admin``, ``views``,
``urls``, ``management``); ``contrib/`` the optional integrations.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    # One place to bump: pyproject.toml's version, read back from the installed metadata.
    __version__ = version("django-sqla-pool")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

# name -> module that defines it
_PUBLIC = {
    "PoolConnectError": "django_sqla_pool.core.errors",
    "PoolTimeout": "django_sqla_pool.core.errors",
    "ServerSettingsError": "django_sqla_pool.core.errors",
    "drain": "django_sqla_pool.operations",
    "open_pools": "django_sqla_pool.operations",
    "pool_stats": "django_sqla_pool.observe.stats",
    "release_connections": "django_sqla_pool.release",
}

__all__ = [
    "PoolConnectError",
    "PoolTimeout",
    "ServerSettingsError",
    "__version__",
    "drain",
    "open_pools",
    "pool_stats",
    "release_connections",
]

if TYPE_CHECKING:
    from .core.errors import PoolConnectError, PoolTimeout, ServerSettingsError
    from .observe.stats import pool_stats
    from .operations import drain, open_pools
    from .release import release_connections


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'django_sqla_pool' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
