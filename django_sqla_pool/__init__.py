"""Real connection pooling for Django on PostgreSQL, built on SQLAlchemy's QueuePool."""

from .exceptions import PoolConnectError, PoolTimeout, ServerSettingsError
from .release import release_connections
from .stats import pool_stats

__version__ = "0.1.0"
__all__ = [
    "PoolConnectError",
    "PoolTimeout",
    "ServerSettingsError",
    "__version__",
    "pool_stats",
    "release_connections",
]
