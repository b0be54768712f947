"""Django's MySQL backend (MySQL, MariaDB; mysqlclient), its connections taken from a pool."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Warning
from django.db import DatabaseError
from django.db.backends.mysql import base

from ...core.mysql import MYSQL
from ...core.mysql.session import idle_limit_problems
from ..pooled import PooledDatabaseWrapperMixin

#: The server closes pooled connections that sit idle longer than its wait_timeout.
W_IDLE_LIMIT = "django_sqla_pool.W012"


class _OpensThroughSelfDatabase(base.DatabaseWrapper):
    """Django's MySQL wrapper, opening connections with ``self.Database.connect()``.

    Django's own opens them with its module's ``Database.connect()``, where
    the PostgreSQL wrapper uses ``self.Database``; the mixin hands the pooled
    connection over through ``self.Database`` (``_HandOver``), so without
    this Django would open a second, unpooled connection at every checkout.
    Django's method also removes the ``bytes`` encoder of mysqlclient < 2.1.
    """

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = self.Database.connect(**conn_params)
        if connection.encoders.get(bytes) is bytes:
            connection.encoders.pop(bytes)
        return connection

    def is_usable(self) -> bool:
        # After _close() the mixin has given the connection back to the pool
        # (self.connection is None): there is nothing of this wrapper's to ping.
        return self.connection is not None and bool(super().is_usable())

    def close_pool(self) -> None:
        # Django's MySQL wrapper has no pool of its own (PostgreSQL's and
        # Oracle's do); the mixin closes ours.
        pass


# The mixin is typed against Django's PostgreSQL wrapper (its first family),
# whose ops, features, ... classes differ from the MySQL wrapper's.
class DatabaseWrapper(PooledDatabaseWrapperMixin, _OpensThroughSelfDatabase):  # type: ignore[misc]
    pool_family = MYSQL

    def pool_server_messages(self) -> list[CheckMessage]:
        """W012: pool_idle_timeout or pool_recycle not below the server's wait_timeout."""
        settings = self.pool_settings
        was_open = self.connection is not None
        try:
            with self.cursor() as cursor:
                cursor.execute("SELECT @@SESSION.wait_timeout")
                (wait_timeout,) = cursor.fetchone()
        except DatabaseError:
            return []  # the capacity check reports an unreachable server (W011)
        finally:
            if not was_open:
                self.close()
        problems = idle_limit_problems(settings, int(wait_timeout))
        if not problems:
            return []
        return [
            Warning(
                f"django_sqla_pool: database alias {self.alias!r}: the server closes "
                f"connections idle for more than wait_timeout={int(wait_timeout)} s, and "
                f"{' and '.join(problems)} is not below it. Such connections are found "
                "closed at checkout and replaced (no request fails), but each costs a new "
                "connection.",
                hint=(
                    f"Set OPTIONS['pool_idle_timeout'] (and pool_recycle, if set) below "
                    f"{int(wait_timeout)}, e.g. {max(1, int(wait_timeout) // 2)}; or raise "
                    "the server's wait_timeout."
                ),
                id=W_IDLE_LIMIT,
            )
        ]
