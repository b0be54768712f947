"""What the pool needs from mysqlclient (MySQLdb), the driver Django's MySQL backend uses.

Django's MySQL backend supports mysqlclient only; this module takes the
driver module from it rather than importing one of its own.
"""

from __future__ import annotations

import ctypes
import os
import select
import time
import weakref
from typing import Any

from django.db.backends.mysql import base as _django_mysql

# The connection class of the driver Django imported (MySQLdb.connect() is a
# function that imports it lazily).
from MySQLdb.connections import Connection as _DriverConnection

from ..sockets import SocketWatch as SocketWatch  # the liveness check (family-neutral)

#: The driver module Django imported (MySQLdb).
Database: Any = _django_mysql.Database  # type: ignore[attr-defined]

#: The exception every driver error derives from.
DriverError: type[Exception] = Database.Error

#: Client error codes of a connection that is gone: 2006 server has gone away,
#: 2013 lost connection during a query, 2055 lost connection at a read or write
#: (the socket closed under it), 4031 MySQL 8's "disconnected by the server
#: because of inactivity" (wait_timeout), 1927 MariaDB's "connection was killed".
LOST = frozenset({2006, 2013, 2055, 4031, 1927})

#: The codes of a statement stopped by the statement timeout: MariaDB's
#: max_statement_time (1969) and MySQL's max_execution_time (3024).
STATEMENT_TIMEOUT_CODES = frozenset({1969, 3024})


class _QueryCanceledType(type):
    # MySQLdb raises the same OperationalError for a timed-out statement as for
    # a lost connection; only its code (args[0]) tells them apart. The family
    # table asks for an exception *type* (isinstance), so this type answers
    # isinstance() by the code, as abc.ABC answers it by registration.
    def __instancecheck__(cls, instance: Any) -> bool:
        return (
            isinstance(instance, Database.OperationalError)
            and bool(instance.args)
            and instance.args[0] in STATEMENT_TIMEOUT_CODES
        )


class QueryCanceled(Exception, metaclass=_QueryCanceledType):
    """isinstance(error, QueryCanceled): stopped by max_statement_time or max_execution_time."""


class Connection(_DriverConnection):
    """mysqlclient's connection, made safe to drop in a forked child.

    mysqlclient closes an open connection when the object is garbage-collected,
    and closing sends COM_QUIT: in a forked child that ends the parent's
    session on the shared socket (measured: the parent's next query fails with
    2013). Here, in any process other than the one that opened it, the socket
    is first replaced by /dev/null (dup2 on the same descriptor number), so the
    COM_QUIT goes nowhere and the parent's socket stays open.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sqlapool_pid = os.getpid()
        self._sqlapool_alias: str | None = None
        self._sqlapool_status: int | None = _native_pointer(self)

    def __del__(self) -> None:
        opener = getattr(self, "_sqlapool_pid", None)  # None: the connect failed
        if opener is not None and opener != os.getpid():
            detach(self)


def detach(conn: Any) -> None:
    """In a forked child: point the connection's descriptor at /dev/null, closing nothing."""
    try:
        if not conn.open:
            return
        fd = conn.fileno()
    except Exception:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


#: This process's open connections by server thread id, for the fleet view.
_opened: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def connect(params: dict[str, Any], alias: str | None = None) -> Any:
    """A new connection, remembered (weakly) under its server thread id with its alias."""
    conn = Connection(**params)
    conn._sqlapool_alias = alias
    _opened[conn.thread_id()] = conn
    return conn


def own_connection(thread_id: int) -> Any:
    """This process's open connection with this server thread id, or None."""
    conn = _opened.get(thread_id)
    if conn is None or conn._sqlapool_pid != os.getpid() or not conn.open:
        return None
    return conn


def _forget_after_fork() -> None:
    _opened.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


# -- the transaction status, read without a round trip --------------------------
# mysqlclient does not expose the server status flags the server sends with
# every reply; MariaDB's Connector/C (libmariadb, which mysqlclient links on
# Debian) has mariadb_get_infov(MARIADB_CONNECTION_SERVER_STATUS) for them.
# With MySQL's libmysqlclient this is unavailable and every connection is
# treated as possibly in a transaction (rolled back on return, never parked).

_SERVER_STATUS = ctypes.c_int(30)  # MARIADB_CONNECTION_SERVER_STATUS in enum mariadb_value
_IN_TRANS = 0x0001  # SERVER_STATUS_IN_TRANS
_CAPSULE = b"_mysql.connection.native_connection"


def _load_get_info() -> Any:
    try:
        lib = ctypes.PyDLL(Database._mysql.__file__)  # its dependencies are searched too
        get_info = lib.mariadb_get_infov
        capsule = ctypes.pythonapi.PyCapsule_GetPointer
    except (OSError, AttributeError):
        return None
    get_info.restype = ctypes.c_char
    capsule.restype = ctypes.c_void_p
    capsule.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_info, capsule


_get_info = _load_get_info()


def _native_pointer(conn: Any) -> int | None:
    """The MYSQL* inside the connection object (valid as long as the object lives)."""
    if _get_info is None:
        return None
    try:
        return int(_get_info[1](conn._get_native_connection(), _CAPSULE))
    except Exception:
        return None


def in_transaction(conn: Any) -> bool | None:
    """True/False from the status flags of the server's last reply; None when unknown."""
    pointer = getattr(conn, "_sqlapool_status", None)
    if pointer is None or _get_info is None:
        return None
    status = ctypes.c_uint(0)
    if _get_info[0](ctypes.c_void_p(pointer), _SERVER_STATUS, ctypes.byref(status)) != b"\x00":
        return None
    return bool(status.value & _IN_TRANS)


def is_broken(conn: Any) -> bool:
    """True when the connection to the server is lost (not merely after a failed statement).

    mysqlclient keeps ``open`` true after the server went away. The code of
    the connection's last error tells, unless a later call (a cursor's
    close() reading further results) replaced it; then the socket does: the
    server sends nothing unasked, so anything readable on a connection not
    running a statement is its end (EOF, a reset, or an error packet). No
    round trip either way.
    """
    try:
        return not conn.open or conn.errno() in LOST or SocketWatch(conn).readable()
    except Exception:
        return True


def backend_pid(conn: Any) -> int | None:
    """The server's id of this connection (CONNECTION_ID()), without a round trip."""
    try:
        return int(conn.thread_id())
    except Exception:
        return None


def idle_and_open(conn: Any) -> bool:
    """Open, and no transaction open on the server (no round trip; False when unknown)."""
    if conn is None or is_broken(conn):
        return False
    return in_transaction(conn) is False


def time_zone_is(conn: Any, name: str) -> bool:
    # Django's MySQL backend converts datetimes itself and never sets the
    # session's time_zone, so no session state depends on it.
    return True


def ping(conn: Any, timeout: float) -> None:
    """One round trip to the server, bounded by ``timeout``; raises the driver's error.

    mysqlclient's ping() (COM_PING) blocks until the server answers or the
    kernel gives up on the socket. This sends ``DO 0`` (no result set, opens
    no transaction) with the low-level send_query(), waits on the socket with
    a deadline, and reads the answer; past the deadline the connection is
    closed (it is mid-statement) and an OperationalError raised.
    """
    conn.send_query(b"DO 0")
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    while not poller.poll(max(1, int((deadline - time.monotonic()) * 1000) + 1)):
        if time.monotonic() >= deadline:
            conn.close()
            raise Database.OperationalError(
                2013,
                f"ping: no answer from the server within {timeout:g} s (ping_timeout); "
                "connection closed",
            )
    conn.read_query_result()


def execute(conn: Any, sql: str) -> None:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def fetch_one(conn: Any, sql: str) -> tuple[Any, ...]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return tuple(cursor.fetchone())
    finally:
        cursor.close()


#: 1290 ER_OPTION_PREVENTS_STATEMENT ("... is running with the --read-only option",
#: also --super-read-only: a replica, or an Aurora MySQL writer demoted by a failover);
#: 1792 ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION (the application's own READ ONLY).
_READ_ONLY_SERVER = 1290


def is_failover_error(conn: Any, error: BaseException) -> bool:
    """The server refuses writes because it runs read-only (a replica after a switchover).

    1792 comes from a transaction the application declared READ ONLY: not a failover.
    """
    code = error.args[0] if getattr(error, "args", None) else None
    return code == _READ_ONLY_SERVER and "read-only" in str(error).lower()


def is_read_only(conn: Any) -> bool:
    """The server runs read-only (``@@read_only``): one round trip, in the health probe only."""
    try:
        return bool(int(fetch_one(conn, "SELECT @@global.read_only")[0]))
    except Exception:
        return False


def server_address(conn: Any) -> str | None:
    """The server this connection reached, as mysqlclient describes it (no round trip)."""
    try:
        return str(conn.get_host_info()).split(" via ", 1)[0]
    except Exception:
        return None
