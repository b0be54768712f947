"""Django's PostgreSQL backend, with physical connections taken from a pool."""

from __future__ import annotations

from django.db.backends.postgresql import base

from ...core.postgresql import POSTGRESQL
from ..pooled import PooledDatabaseWrapperMixin


class DatabaseWrapper(PooledDatabaseWrapperMixin, base.DatabaseWrapper):
    pool_family = POSTGRESQL
