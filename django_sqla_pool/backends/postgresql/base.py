"""Django's PostgreSQL backend, with physical connections taken from a pool.

Only the hooks Django offers are overridden: the connection parameters, the
moment a new connection is needed, closing, and ``close_pool()`` (which
Django calls before cloning or dropping a test database). Everything else,
including Django's per-connection setup, runs unchanged.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from django.utils.asyncio import async_unsafe

from ... import driver, registry
from ...conf import APP_NAME_MARK, OUR_KEYS, PoolSettings, parse_pool_settings
from ...pool import SqlaPool

_HOSTNAME = socket.gethostname()[:20]


def application_name(alias: str, prefix: str | None) -> str:
    """``[prefix ]sqlapool:<alias>:<host>:<pid>``, within PostgreSQL's 63 bytes.

    It tells the server (and ``poolstats``) which process holds each
    connection; the user's own application_name stays in front.
    """
    suffix = f"{APP_NAME_MARK}:{alias[:16]}:{_HOSTNAME}:{os.getpid()}"
    if not prefix:
        return suffix
    room = 63 - len(suffix.encode()) - 1
    return f"{prefix.encode()[: max(room, 0)].decode(errors='ignore')} {suffix}".lstrip()


class _HandOver:
    """Stands in for the driver module while Django's get_new_connection() runs.

    Django opens connections with ``self.Database.connect(**params)`` and then
    configures them; handing it the pooled connection here lets that
    configuration run as is, instead of copying it.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def connect(self, **params: Any) -> Any:
        return self._connection

    def __getattr__(self, name: str) -> Any:
        return getattr(driver.Database, name)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pooled: Any = None
        self._pooled_from: SqlaPool | None = None
        self._settings_cache: tuple[Any, PoolSettings] | None = None
        registry.track(self)

    @property
    def pool_settings(self) -> PoolSettings:
        """This alias's validated pool settings (ImproperlyConfigured if invalid)."""
        options = self.settings_dict.get("OPTIONS") or {}
        marker = (
            tuple(sorted((k, repr(v)) for k, v in options.items())),
            self.settings_dict.get("CONN_MAX_AGE", 0),
        )
        cached = self._settings_cache
        if cached is None or cached[0] != marker:
            cached = (marker, parse_pool_settings(self.alias, self.settings_dict))
            self._settings_cache = cached
        return cached[1]

    @property
    def uses_pool(self) -> bool:
        # Test database creation and deletion connect to the 'postgres'
        # database through a throwaway NO_DB_ALIAS wrapper: keeping such a
        # connection pooled would only hold a server slot.
        return self.alias != NO_DB_ALIAS

    def get_connection_params(self) -> dict[str, Any]:
        pool_settings = self.pool_settings
        params = super().get_connection_params()
        for key in OUR_KEYS:
            params.pop(key, None)
        params["application_name"] = application_name(self.alias, params.get("application_name"))
        server_options = pool_settings.server_options()
        if server_options:
            # Sent in the startup packet: no round trip, survives DISCARD ALL.
            params["options"] = f"{params.get('options') or ''} {server_options}".strip()
        return params

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self.uses_pool:
            return super().get_new_connection(conn_params)
        pool = registry.get_pool(self.alias, conn_params, self.pool_settings)
        fairy = pool.checkout()
        self.Database = _HandOver(fairy.dbapi_connection)  # type: ignore[assignment]
        try:
            connection = super().get_new_connection(conn_params)
        except BaseException:
            pool.checkin(fairy)
            raise
        finally:
            del self.Database
        self._pooled, self._pooled_from = fairy, pool
        return connection

    def _close(self) -> None:
        fairy, pool = self._pooled, self._pooled_from
        if fairy is None or pool is None:
            return super()._close()  # type: ignore[misc]
        self._pooled = self._pooled_from = None
        # The connection can no longer be used through this wrapper, even if
        # Django closes it inside an atomic block and keeps other state.
        self.connection = None
        with self.wrap_database_errors:
            pool.checkin(fairy)

    def close_pool(self) -> None:
        super().close_pool()
        registry.close_pools(self.alias)

    def _forget_pooled_connection(self) -> None:
        """After fork(): drop the parent's connection without closing or resetting it."""
        fairy = self._pooled
        if fairy is None:
            return
        record = getattr(fairy, "_connection_record", None)
        if record is not None:
            # Without this SQLAlchemy's garbage-collection hook would return
            # the connection to the (discarded) pool, rolling back over the
            # parent's socket.
            record.fairy_ref = None
        self._pooled = self._pooled_from = None
        self.connection = None
        if self.in_atomic_block:
            self.closed_in_transaction = True
            self.needs_rollback = True
