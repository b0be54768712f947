"""What the pool needs from the database driver, for whichever one Django chose.

Django's PostgreSQL backend imports psycopg 3 if it can and psycopg2
otherwise; this module follows that choice (``is_psycopg3``) instead of
probing imports of its own.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base as _django_pg
from django.db.backends.postgresql.psycopg_any import is_psycopg3

#: The driver module Django imported (psycopg or psycopg2).
Database: Any = _django_pg.Database  # type: ignore[attr-defined]

#: The exception every driver error derives from.
DriverError: type[Exception] = Database.Error

_POLL_FLAGS = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def connect(params: dict[str, Any]) -> Any:
    return Database.connect(**params)


def is_broken(conn: Any) -> bool:
    """True when the connection to the server is lost (not merely in a failed transaction)."""
    if is_psycopg3:
        return bool(conn.closed or conn.broken)
    return bool(conn.closed)


def backend_pid(conn: Any) -> int | None:
    """The server process id, read from the connection without a round trip."""
    try:
        return int(conn.info.backend_pid)
    except Exception:
        return None


def socket_readable(conn: Any) -> bool:
    """Whether the idle connection's socket has data or end-of-file waiting.

    An idle PostgreSQL connection receives nothing unless the server is
    ending it (an ErrorResponse, then EOF) or sends a notice or
    notification. A zero-timeout poll tells that in microseconds.
    """
    try:
        fd = conn.fileno()
    except Exception:
        return True
    poller = select.poll()
    poller.register(fd, _POLL_FLAGS)
    return bool(poller.poll(0))


def ping(conn: Any) -> None:
    """One round trip to the server; raises the driver's error if it fails."""
    # psycopg 3 accepts an empty query, the cheapest message the server answers.
    execute_outside_transaction(conn, "" if is_psycopg3 else "SELECT 1")


def execute_outside_transaction(conn: Any, sql: str) -> None:
    """Run one statement in autocommit mode, restoring the connection's mode.

    Switching autocommit on an idle connection costs no round trip with
    either driver; it keeps a ping from opening a transaction.
    """
    autocommit = conn.autocommit
    if not autocommit:
        conn.autocommit = True
    try:
        if is_psycopg3:
            conn.execute(sql)
        else:
            with conn.cursor() as cursor:
                cursor.execute(sql)
    finally:
        if not autocommit and not is_broken(conn):
            conn.autocommit = False
