"""The pooled behaviour every ENGINE of this package shares, as one mixin.

Each ENGINE's ``DatabaseWrapper`` combines :class:`PooledDatabaseWrapperMixin`
with a Django wrapper (PostgreSQL's, PostGIS's) and names its database family
(``pool_family``, ``core/family.py``), through which the pool talks to the driver. Only the
hooks Django offers are overridden: the connection parameters, the moment a
new connection is needed, closing, and ``close_pool()`` (which Django calls
before cloning or dropping a test database). Everything else, including
Django's per-connection setup, runs unchanged.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.signals import connection_created
from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property

from ..conf import OUR_KEYS, PoolSettings, parse_pool_settings, pool_option_off
from ..core import registry
from ..core.family import Family
from ..core.pool import SqlaPool


class _HandOver:
    """Stands in for the driver module while Django's get_new_connection() runs.

    Django opens connections with ``self.Database.connect(**params)`` and then
    configures them; handing it the pooled connection here lets that
    configuration run as is, instead of copying it.
    """

    def __init__(self, connection: Any, database: Any) -> None:
        self._connection = connection
        self._database = database

    def connect(self, **params: Any) -> Any:
        return self._connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class _Lease:
    """The pooled connection a wrapper holds, kept apart from the wrapper.

    A finalizer on the wrapper holds this object, not the wrapper, so when a
    wrapper is garbage-collected with a connection checked out (a thread
    that ended without closing it, a forgotten wrapper) the connection still
    goes back to its pool.
    """

    __slots__ = ("parked", "pool", "record")

    def __init__(self) -> None:
        self.record: Any = None
        self.pool: SqlaPool | None = None
        #: (record, driver connection, pool, parameters marker) of the connection
        #: this wrapper returned last, which it may take back (see connect()).
        self.parked: tuple[Any, Any, SqlaPool, tuple[Any, ...]] | None = None


def _return_abandoned(lease: _Lease) -> None:
    """weakref.finalize callback: the wrapper is gone, its connection is not."""
    record, pool = lease.record, lease.pool
    lease.record = lease.pool = None
    # In a forked child the connection is the parent's: never reset or return it.
    if record is not None and pool is not None and pool.pid == os.getpid():
        pool.abandoned(record)


# Settings already validated when a wrapper was built: Django builds one
# wrapper per thread and alias from the same settings dict, and under ASGI
# every request runs in a new thread. Keyed by identity; the checks at
# connect time (get_connection_params) still see any change made in place.
_validated: set[tuple[str, int, int, Any]] = set()


def _validate_once(alias: str, settings_dict: dict[str, Any]) -> None:
    """Raise InvalidPoolSetting now, at construction, rather than at the first query."""
    options = settings_dict.get("OPTIONS")
    key = (alias, id(settings_dict), id(options), settings_dict.get("CONN_MAX_AGE", 0))
    if key not in _validated:
        parse_pool_settings(alias, settings_dict)
        if len(_validated) > 1000:  # wrappers built from throwaway dicts (tests)
            _validated.clear()
        if _hashable(key[3]):
            _validated.add(key)


class _CountingErrorWrapper(DatabaseErrorWrapper):
    """Django's error translation, watching the driver's errors on the way.

    It counts queries cancelled by statement_timeout, and tells the pool when
    the server refuses writes because it is no longer the primary (a
    switchover: every pooled connection must be replaced). Every cursor
    operation runs inside this context manager; on success ``__exit__``
    returns at its first test, exactly as Django's does, so this costs
    nothing unless a query failed.
    """

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is None:
            return
        wrapper: Any = self.wrapper  # type: ignore[attr-defined]
        pool, family = wrapper._lease.pool, wrapper.pool_family
        if pool is not None and isinstance(exc_value, family.Error):
            if isinstance(exc_value, family.query_canceled):
                pool.stats.statement_timed_out()
            elif family.is_failover_error(wrapper.connection, exc_value):
                record = wrapper._lease.record
                pool.server_read_only(record.info if record is not None else None, str(exc_value))
        super().__exit__(exc_type, exc_value, traceback)


class _Params(NamedTuple):
    """get_connection_params()'s result, and what it was computed from."""

    marker: tuple[Any, ...] | None
    params: dict[str, Any]
    settings: PoolSettings
    pool: SqlaPool | None


if TYPE_CHECKING:
    from django.db.backends.postgresql.base import DatabaseWrapper as _Base
else:
    _Base = object


class PooledDatabaseWrapperMixin(_Base):
    """Put first in the bases of a Django PostgreSQL-family ``DatabaseWrapper``."""

    #: What the pool needs from this database family (``core/family.py``); each
    #: ENGINE's DatabaseWrapper sets it, as Django's set ``features_class``.
    pool_family: Family

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _validate_once(self.alias, self.settings_dict)
        self._lease = _Lease()
        # Created once per wrapper: nothing per checkout. Not run at exit,
        # when a wrapper still alive may belong to a running daemon thread.
        weakref.finalize(self, _return_abandoned, self._lease).atexit = False
        self._params_cache: _Params | None = None
        registry.track(self)

    @cached_property
    def wrap_database_errors(self) -> DatabaseErrorWrapper:
        return _CountingErrorWrapper(self)

    @property
    def pool_settings(self) -> PoolSettings:
        """This alias's validated pool settings (ImproperlyConfigured if invalid)."""
        return parse_pool_settings(self.alias, self.settings_dict)

    @property
    def pool(self) -> Any:
        # Django's own pool, which must stay off under ours (any other value
        # of OPTIONS["pool"] is refused: E003). Django alone would take the
        # strings an env file gives ("false", "off") as on.
        if pool_option_off(self.settings_dict["OPTIONS"].get("pool")):
            return None
        return super().pool

    @property
    def uses_pool(self) -> bool:
        # Test database creation and deletion connect to the 'postgres'
        # database through a throwaway NO_DB_ALIAS wrapper: keeping such a
        # connection pooled would only hold a server slot.
        return self.alias != NO_DB_ALIAS

    def _params_marker(self) -> tuple[Any, ...]:
        # Everything get_connection_params() reads. Test database creation
        # changes NAME in place, tests swap OPTIONS or TIME_ZONE: any change
        # makes a new marker, hence new parameters and a new pool.
        sd = self.settings_dict
        return (
            sd.get("NAME"),
            sd.get("USER"),
            sd.get("PASSWORD"),
            sd.get("HOST"),
            sd.get("PORT"),
            sd.get("CONN_MAX_AGE", 0),
            sd.get("OPTIONS"),
            settings.USE_TZ,
            self.timezone,
        )

    def get_connection_params(self) -> dict[str, Any]:
        # Django calls this at every connect(), that is at every checkout;
        # computing it (and validating the pool settings) costs more than
        # taking a connection from the pool, so it is computed once per
        # wrapper and settings.
        marker = self._params_marker()
        cached = self._params_cache
        if cached is not None and cached.marker == marker:
            return dict(cached.params)
        pool_settings = self.pool_settings
        params = self._compute_connection_params(pool_settings)
        options = marker[6] or {}
        # The marker keeps a shallow copy of OPTIONS; a value that could be
        # changed in place (a nested dict) would go unnoticed, so such
        # parameters are recomputed at every connect() (marker None).
        if all(_hashable(v) for v in options.values()):
            cache_marker: tuple[Any, ...] | None = (*marker[:6], dict(options), *marker[7:])
        else:
            cache_marker = None
        self._params_cache = _Params(cache_marker, params, pool_settings, None)
        return dict(params)

    def _compute_connection_params(self, pool_settings: PoolSettings) -> dict[str, Any]:
        settings_dict = self.settings_dict
        if "pool" in settings_dict["OPTIONS"]:
            # Off (pool_settings validated it), but as a string Django would
            # take it as on (and refuse it under psycopg2): Django reads this
            # wrapper's own copy without the key. The shared dict is untouched.
            options = {k: v for k, v in settings_dict["OPTIONS"].items() if k != "pool"}
            self.settings_dict = {**settings_dict, "OPTIONS": options}
        try:
            params = super().get_connection_params()
        finally:
            self.settings_dict = settings_dict
        for key in OUR_KEYS:
            params.pop(key, None)
        return self.pool_family.prepare_params(params, self.alias, pool_settings)

    # Not @async_unsafe: connect() is, and so is the super() call below.
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self.uses_pool:
            return super().get_new_connection(conn_params)
        pool = self._pool_for(conn_params)
        record = pool.checkout()
        self.Database = _HandOver(record.dbapi_connection, type(self).Database)  # type: ignore[assignment]
        try:
            connection = super().get_new_connection(conn_params)
        except BaseException:
            pool.checkin(record)
            raise
        finally:
            del self.Database
        lease = self._lease
        lease.record, lease.pool = record, pool
        return connection

    def _pool_for(self, conn_params: dict[str, Any]) -> SqlaPool:
        cached = self._params_cache
        if cached is not None and cached.params == conn_params:
            pool = cached.pool
            if pool is None or pool.retired:
                pool = registry.get_pool(self.alias, conn_params, cached.settings, self.pool_family)
                self._params_cache = cached._replace(pool=pool)
            return pool
        return registry.get_pool(self.alias, conn_params, self.pool_settings, self.pool_family)

    def _set_autocommit(self, autocommit: bool) -> None:
        # Django sets autocommit at every connect(), i.e. every checkout; on an
        # idle connection already in that mode the driver would do nothing
        # but take its lock and run its wait loop.
        conn = self.connection
        if (
            self._lease.record is not None
            and conn.autocommit == autocommit
            and self.pool_family.idle_and_open(conn)
        ):
            return
        super()._set_autocommit(autocommit)  # type: ignore[misc]

    def _configure_timezone(self, connection: Any) -> bool:
        # Django runs this at every connect(), i.e. every checkout. When the
        # session's time zone already matches, libpq tells so without a
        # ConnectionInfo built and decoded; otherwise Django's own code
        # reads and sets it.
        timezone_name = self.timezone_name
        if (
            timezone_name
            and self._lease.record is not None
            and self.pool_family.time_zone_is(connection, timezone_name)
        ):
            return False
        return bool(super()._configure_timezone(connection))  # type: ignore[misc]

    def connect(self) -> None:
        # Thread affinity: a wrapper that returned a connection at the end of
        # the last request takes that same connection back if it is still idle
        # in the pool. Django's setup is already in place on it (only the
        # connection_created signal is sent again): this wrapper ran it on this driver
        # connection, the session was as that setup left it when parked
        # (_close()), and nobody has used it since (pool.reclaim() says so).
        # Django's state was clean when it was parked and is checked again
        # here; any doubt takes the full path.
        parked = self._lease.parked
        if parked is not None:
            self._lease.parked = None
            if self._take_back(*parked):
                return
        super().connect()

    def _take_back(self, record: Any, conn: Any, pool: SqlaPool, marker: tuple[Any, ...]) -> bool:
        settings_dict = self.settings_dict
        if (
            self.in_atomic_block
            or self.needs_rollback
            or self.closed_in_transaction
            or self.errors_occurred
            or self.autocommit != settings_dict["AUTOCOMMIT"]
            or self.health_check_enabled != settings_dict["CONN_HEALTH_CHECKS"]  # type: ignore[attr-defined]
            # Under load the connection went to a waiting thread: this fails
            # first, before the settings are compared.
            or not pool.reclaim(record, conn, self._lease)
        ):
            return False
        if self._params_marker() != marker:  # settings changed: new parameters, new pool
            pool.checkin(record)
            return False
        lease = self._lease
        lease.record, lease.pool = record, pool
        self.connection = conn
        self.health_check_done = True
        # As Django's connect() and its own pool do at every checkout: receivers
        # connected since this connection's setup must see it too (contrib.postgres
        # registers its type adapters here when installed later, e.g. by
        # modify_settings in tests). Under 1 µs with no receiver.
        connection_created.send(sender=self.__class__, connection=self)
        return True

    def _close(self) -> None:
        lease = self._lease
        record, pool = lease.record, lease.pool
        if record is None or pool is None:
            return super()._close()  # type: ignore[misc]
        lease.record = lease.pool = None
        conn = self.connection
        # The connection can no longer be used through this wrapper, even if
        # Django closes it inside an atomic block and keeps other state.
        self.connection = None
        # Not wrapped in wrap_database_errors: neither park() nor checkin()
        # raises a driver error (a failed reset invalidates the connection).
        # The wrapper may take a parked connection back at its next connect().
        marker = self._park_marker(conn, pool)
        if marker is not None and pool.park(record, lease):
            lease.parked = (record, conn, pool, marker)
        else:
            pool.checkin(record)

    def _park_marker(self, conn: Any, pool: SqlaPool) -> tuple[Any, ...] | None:
        """The parameters marker, if this connection may be parked; else None.

        It may when Django's state is clean and the session is as Django's
        setup left it.
        """
        cached = self._params_cache
        if cached is None or cached.marker is None:
            return None
        settings_dict = self.settings_dict
        timezone_name = self.timezone_name
        clean = (
            cached.pool is pool
            and not self.in_atomic_block
            and not self.needs_rollback
            and not self.errors_occurred
            and settings_dict["CONN_MAX_AGE"] == 0
            # Django sets the role at every checkout: SET ROLE, a round trip.
            and not settings_dict["OPTIONS"].get("assume_role")
            # A SET TIME ZONE in the request: Django's setup must run again.
            and (not timezone_name or self.pool_family.time_zone_is(conn, timezone_name))
        )
        return cached.marker if clean else None

    def pool_server_messages(self) -> list[Any]:
        """System check messages about the server's own limits (``checks.py``, database-tagged).

        An ENGINE whose server has such limits overrides this (MySQL's wait_timeout: W012).
        """
        return []

    def close_pool(self) -> None:
        try:
            super().close_pool()
        finally:
            # Even when Django's part raises (OPTIONS["pool"] set to a value
            # refused with E003): an idle connection left here would keep
            # DROP DATABASE of a test database from running.
            registry.close_pools(self.alias)

    def _forget_pooled_connection(self) -> None:
        """After fork(): drop the parent's connection without closing or resetting it."""
        # The parent's pools are gone, and application_name names the parent's pid.
        self._params_cache = None
        lease = self._lease
        lease.parked = None
        if lease.record is None:
            return
        # Forgotten, not returned: the garbage-collection hook then finds nothing to do.
        lease.record = lease.pool = None
        self.connection = None
        if self.in_atomic_block:
            self.closed_in_transaction = True
            self.needs_rollback = True
