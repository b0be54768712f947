"""Real connection pooling for Django on PostgreSQL, built on SQLAlchemy's QueuePool."""

from .exceptions import PoolConnectError, PoolTimeout, ServerSettingsError
from .release import release_connections
from .stats import pool_stats
from .warm import open_pools

__version__ = "0.1.0"
__all__ = [
    "PoolConnectError",
    "PoolTimeout",
    "ServerSettingsError",
    "__version__",
    "open_pools",
    "pool_stats",
    "release_connections",
]
