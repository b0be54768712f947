"""What the pool needs from the database driver, for whichever one Django chose.

Django's PostgreSQL backend imports psycopg 3 if it can and psycopg2
otherwise; this module follows that choice (``is_psycopg3``) instead of
probing imports of its own.
"""

from __future__ import annotations

import math
import select
import time
from typing import Any

from django.db.backends.postgresql import base as _django_pg
from django.db.backends.postgresql.psycopg_any import is_psycopg3

from ..sockets import SocketWatch as SocketWatch  # the liveness check (family-neutral)

#: The driver module Django imported (psycopg or psycopg2).
Database: Any = _django_pg.Database  # type: ignore[attr-defined]

#: The exception every driver error derives from.
DriverError: type[Exception] = Database.Error

#: SQLSTATE 57014, query_canceled: statement_timeout (or a cancel request) stopped a query.
QueryCanceled: type[Exception] = (
    Database.errors.QueryCanceled if is_psycopg3 else Database.extensions.QueryCanceledError
)


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


def idle_and_open(conn: Any) -> bool:
    """Open, and no transaction open on the server (read from libpq, no round trip)."""
    if conn is None:
        return False
    if is_psycopg3:
        # libpq reports PQTRANS_UNKNOWN for a closed or broken connection.
        return bool(conn.pgconn.transaction_status == 0)
    return not conn.closed and conn.info.transaction_status == 0


def time_zone_is(conn: Any, name: str) -> bool:
    """The session's TimeZone, as the server last reported it, is ``name`` (no round trip).

    False for a closed connection.
    """
    try:
        if is_psycopg3:
            # libpq's own copy: no ConnectionInfo built, nothing decoded.
            return bool(conn.pgconn.parameter_status(b"TimeZone") == name.encode())
        return bool(conn.info.parameter_status("TimeZone") == name)
    except DriverError:
        return False


def ping(conn: Any, timeout: float) -> None:
    """One round trip to the server; raises the driver's error if it fails.

    With psycopg 3 the wait for the answer is bounded by ``timeout``: the
    query goes out through libpq's asynchronous API and the socket is polled
    with a deadline; past it the connection is closed (it is mid-query) and
    an OperationalError raised. psycopg2 has no such API for a synchronous
    connection: its ping blocks until the server answers or the kernel gives
    up on the socket (tcp_user_timeout, keepalives).
    """
    if is_psycopg3:
        _bounded_empty_query(conn, timeout)
    else:
        execute_outside_transaction(conn, "SELECT 1")


def _bounded_empty_query(conn: Any, timeout: float) -> None:
    # An empty query is the cheapest message the server answers, and sent
    # through the PGconn it never opens a transaction, whatever autocommit is.
    pgconn = conn.pgconn
    deadline = time.monotonic() + timeout
    pgconn.send_query(b"")
    poller = None
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            conn.close()
            raise Database.OperationalError(
                f"ping: no answer from the server within {timeout:g} s (ping_timeout); "
                "connection closed"
            )
        if poller is None:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        poller.poll(max(1, math.ceil(remaining * 1000)))
    while (result := pgconn.get_result()) is not None:
        if result.error_message:
            raise Database.OperationalError(result.error_message.decode(errors="replace").strip())


def libpq_version() -> int:
    """The libpq version the driver uses, as PostgreSQL numbers it (150004 for 15.4)."""
    if is_psycopg3:
        return int(Database.pq.version())
    return int(Database.extensions.libpq_version())


def fetch_outside_transaction(conn: Any, sql: str) -> tuple[Any, ...]:
    """Run one query in autocommit mode and return its first row."""
    autocommit = conn.autocommit
    if not autocommit:
        conn.autocommit = True
    try:
        cursor = conn.cursor()
        try:
            cursor.execute(sql)
            return tuple(cursor.fetchone())
        finally:
            cursor.close()
    finally:
        if not autocommit and not is_broken(conn):
            conn.autocommit = False


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


def _parameter(conn: Any, name: str) -> str | None:
    """A setting the server reports to libpq (GUC_REPORT), read without a round trip."""
    try:
        if is_psycopg3:
            value = conn.pgconn.parameter_status(name.encode())
            return None if value is None else bytes(value).decode()
        return conn.info.parameter_status(name)
    except Exception:  # closed, broken
        return None


def is_read_only(conn: Any) -> bool:
    """The server takes no writes on this session: a hot standby, or read-only by default.

    PostgreSQL 14+ reports both settings to the client whenever they change
    (a promotion, or ``ALTER SYSTEM SET default_transaction_read_only`` and a
    reload), so this costs no round trip; older servers report neither (False).
    """
    return _parameter(conn, "in_hot_standby") == "on" or (
        _parameter(conn, "default_transaction_read_only") == "on"
    )


def sqlstate(error: BaseException) -> str | None:
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return str(code) if code else None


def is_failover_error(conn: Any, error: BaseException) -> bool:
    """This error says the server behind a pooled connection no longer takes writes.

    SQLSTATE 25006 (read_only_sql_transaction) comes from a standby, from a
    server made read-only, and from a transaction the application itself
    declared READ ONLY: the server's own report of its state tells these
    apart, without a round trip. 0A000 "... during recovery" comes only from
    a standby.
    """
    code = sqlstate(error)
    if code == "0A000":
        return "recovery" in str(error)
    if code != "25006":
        return False
    reported = _parameter(conn, "in_hot_standby"), _parameter(conn, "default_transaction_read_only")
    if reported == (None, None):
        return True  # a server before 14 reports neither: trust the error
    return "on" in reported


def server_address(conn: Any) -> str | None:
    """``host:port`` this connection reached (of a multi-host HOST, the one libpq chose)."""
    try:
        return f"{conn.info.host}:{conn.info.port}"
    except Exception:
        return None
