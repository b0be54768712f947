"""Real connection pooling for Django on PostgreSQL, built on SQLAlchemy's QueuePool."""

from importlib.metadata import PackageNotFoundError, version

from .exceptions import PoolConnectError, PoolTimeout
from .release import release_connections
from .stats import pool_stats

try:
    # One place to bump: pyproject.toml's version, read back from the installed metadata.
    __version__ = version("django-sqla-pool")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
__all__ = [
    "PoolConnectError",
    "PoolTimeout",
    "__version__",
    "pool_stats",
    "release_connections",
]
