"""Django's PostGIS backend (GeoDjango), with physical connections taken from a pool.

Django's PostGIS wrapper registers the geometry types on each new connection
in its get_new_connection() (psycopg 3; psycopg2 adapts geometries globally);
the mixin hands it the pooled connection there, so that setup runs at every
full checkout. A connection taken back by the wrapper that returned it keeps
the adapters registered on it.
"""

from __future__ import annotations

from django.contrib.gis.db.backends.postgis import base

from ...core.postgresql import POSTGRESQL
from ..pooled import PooledDatabaseWrapperMixin


class DatabaseWrapper(PooledDatabaseWrapperMixin, base.DatabaseWrapper):
    pool_family = POSTGRESQL
