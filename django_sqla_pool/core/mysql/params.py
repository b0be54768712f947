"""The parameters every pooled MySQL connection gets, and how it is recognised on the server.

mysqlclient sends no connection attributes (it has no ``program_name``),
and MariaDB keeps performance_schema off by default, so a connection cannot
carry a mark the server shows to other clients, as PostgreSQL's
application_name does. Instead each process knows its own connections by
server thread id (``driver.own_connection``), and the fleet view counts the
other processes' by the processlist's user and database (``activity.py``).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from ..settings import PoolSettings

#: This host, as the marks name it.
HOSTNAME = socket.gethostname()[:20]

#: Set on every pooled connection unless OPTIONS sets it: a bound on the TCP
#: connect and the handshake, in whole seconds (the pool lowers it to the time
#: a bounded checkout has left).
DRIVER_DEFAULTS = {"connect_timeout": 5}

#: OPTIONS keys that mysqlclient or Django's MySQL backend take: passed through
#: to them, never "did you mean"-ed.
DRIVER_OPTIONS = frozenset(
    [
        "host",
        "user",
        "password",
        "passwd",
        "database",
        "db",
        "port",
        "unix_socket",
        "conv",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "compress",
        "named_pipe",
        "init_command",
        "read_default_file",
        "read_default_group",
        "cursorclass",
        "use_unicode",
        "charset",
        "collation",
        "auth_plugin",
        "sql_mode",
        "client_flag",
        "multi_statements",
        "ssl_mode",
        "ssl",
        "server_public_key_path",
        "local_infile",
        "local_infile_dir",
        "autocommit",
        "binary_prefix",
        "isolation_level",  # Django's MySQL backend
    ]
)

# (user, database) -> the alias whose pool connects with them, for the fleet view.
_aliases: dict[tuple[Any, Any], str] = {}
_lock = threading.Lock()


def endpoint(params: dict[str, Any]) -> tuple[Any, Any]:
    return (params.get("user"), params.get("database") or params.get("db"))


def alias_of(params: dict[str, Any]) -> str | None:
    return _aliases.get(endpoint(params))


def pooled_endpoints() -> dict[tuple[Any, Any], str]:
    """The (user, database) pairs this process's pools connect with, and their aliases."""
    return dict(_aliases)


def prepare(params: dict[str, Any], alias: str, settings: PoolSettings) -> dict[str, Any]:
    """Add the connect bound unless OPTIONS set one, in place; note these parameters' alias."""
    for key, value in DRIVER_DEFAULTS.items():
        if params.get(key) is None:
            params[key] = value
    with _lock:
        _aliases[endpoint(params)] = alias
    return params
