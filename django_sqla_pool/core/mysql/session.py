"""The session settings a MySQL pool asks for, set and verified on every new connection.

``statement_timeout`` becomes MariaDB's ``max_statement_time`` (seconds,
every statement) or MySQL's ``max_execution_time`` (milliseconds, read-only
SELECT statements only); ``lock_timeout`` becomes ``innodb_lock_wait_timeout``
(whole seconds, rounded up, at least 1). They are set with one ``SET
SESSION`` right after connecting, not in ``init_command``: the user's own
init_command stays as it is, and a refused value is reported by name
instead of failing the connect. The same round trip that verifies them
reads ``wait_timeout``, the server's idle limit.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from ..errors import ServerSettingsError
from ..settings import PoolSettings
from . import driver

logger = logging.getLogger("django_sqla_pool")

#: innodb_lock_wait_timeout's largest value: what lock_timeout=0 (no limit) becomes.
INNODB_LOCK_WAIT_MAX = 1073741824

# The wait_timeout each pool's first connection read, by pool ("where").
_wait_timeouts: dict[str, int] = {}
_lock = threading.Lock()


def is_mariadb(conn: Any) -> bool:
    """From the version string of the server's greeting (no round trip)."""
    return "mariadb" in str(conn.get_server_info()).lower()


def wanted(conn: Any, settings: PoolSettings) -> dict[str, float | int]:
    """The server variables to set, by name, in the server's units."""
    values: dict[str, float | int] = {}
    if settings.statement_timeout is not None:
        if is_mariadb(conn):
            values["max_statement_time"] = settings.statement_timeout / 1000
        else:
            values["max_execution_time"] = settings.statement_timeout
    if settings.lock_timeout is not None:
        seconds = math.ceil(settings.lock_timeout / 1000)
        values["innodb_lock_wait_timeout"] = seconds if seconds else INNODB_LOCK_WAIT_MAX
    return values


def idle_limit_problems(settings: PoolSettings, wait_timeout: int) -> list[str]:
    """What in these settings lets the server close idle pooled connections (wait_timeout)."""
    problems = []
    if settings.pool_idle_timeout is None or settings.pool_idle_timeout >= wait_timeout:
        problems.append(f"pool_idle_timeout={settings.pool_idle_timeout}")
    if settings.pool_recycle is not None and settings.pool_recycle >= wait_timeout:
        problems.append(f"pool_recycle={settings.pool_recycle:g}")
    return problems


def apply_and_verify(conn: Any, settings: PoolSettings, where: str) -> None:
    """SET the timeouts (if any) and read them back with wait_timeout: one round trip each.

    Raises ServerSettingsError when the server does not have what was asked.
    A pool's first connection reads wait_timeout even with no timeout set,
    and logs a warning when idle connections could outlive it.
    """
    values = wanted(conn, settings)
    first = where not in _wait_timeouts
    if not values and not first:
        return
    if values:
        assignments = ", ".join(f"{name} = {value}" for name, value in values.items())
        driver.execute(conn, f"SET SESSION {assignments}")
    columns = ", ".join(f"@@SESSION.{name}" for name in [*values, "wait_timeout"])
    row = driver.fetch_one(conn, f"SELECT {columns}")
    shown = dict(zip([*values, "wait_timeout"], row, strict=True))
    if first:
        _note_wait_timeout(where, settings, int(shown["wait_timeout"]))
    wrong = {
        name: shown[name]
        for name, value in values.items()
        if shown[name] is None or abs(float(shown[name]) - float(value)) > 1e-6
    }
    if wrong:
        asked = ", ".join(f"{name}={values[name]}" for name in wrong)
        got = ", ".join(f"{name}={value!r}" for name, value in wrong.items())
        raise ServerSettingsError(
            f"django_sqla_pool: {where}: the server applied {got}, but {asked} was asked for "
            "with SET SESSION after connecting (from statement_timeout / lock_timeout in "
            "OPTIONS). A proxy in front of the server (ProxySQL, MaxScale) may not keep "
            "session variables; set them for the user on the server instead (SET GLOBAL, "
            "or the server's configuration) and remove them from OPTIONS."
        )


def _note_wait_timeout(where: str, settings: PoolSettings, wait_timeout: int) -> None:
    with _lock:
        if where in _wait_timeouts:
            return
        _wait_timeouts[where] = wait_timeout
    problems = idle_limit_problems(settings, wait_timeout)
    if problems:
        logger.warning(
            "%s: the server closes connections idle for wait_timeout=%d s, and %s is not "
            "below it: such connections are replaced at checkout (the liveness check sees "
            "them closed), at the cost of a new connection. Set pool_idle_timeout (and "
            "pool_recycle) below wait_timeout (check django_sqla_pool.W012).",
            where,
            wait_timeout,
            " and ".join(problems),
        )


def wait_timeout_seen(where: str) -> int | None:
    """The wait_timeout the first connection of this pool read, if it connected."""
    return _wait_timeouts.get(where)


def reset_connection(conn: Any, settings: PoolSettings, where: str) -> None:
    """The full reset of ``pool_reset_on_return="discard"`` (COM_RESET_CONNECTION).

    Only offered where the driver exposes it (``options.refuse`` says so
    otherwise); it resets the session variables too, so they are set again.
    """
    conn.rollback()
    conn.reset_connection()
    values = wanted(conn, settings)
    if values:
        assignments = ", ".join(f"{name} = {value}" for name, value in values.items())
        driver.execute(conn, f"SET SESSION {assignments}")
