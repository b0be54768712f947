"""Real connection pooling for Django on PostgreSQL, built on SQLAlchemy's QueuePool."""

from importlib.metadata import PackageNotFoundError, version

from .exceptions import PoolConnectError, PoolTimeout, ServerSettingsError
from .release import release_connections
from .stats import pool_stats
from .warm import open_pools

try:
    # One place to bump: pyproject.toml's version, read back from the installed metadata.
    __version__ = version("django-sqla-pool")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
__all__ = [
    "PoolConnectError",
    "PoolTimeout",
    "ServerSettingsError",
    "__version__",
    "open_pools",
    "pool_stats",
    "release_connections",
]
