"""The libpq parameters every pooled PostgreSQL connection gets: its mark, bounds, timeouts.

The mark, ``[prefix ]sqlapool:<alias>:<host>:<pid>`` as application_name,
tells the server (and the fleet view) which process holds each connection.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

from ..settings import SERVER_KEYS, PoolSettings
from . import driver

#: Marks our connections' application_name: ``[prefix ]sqlapool:<alias>:<host>:<pid>``.
APP_NAME_MARK = "sqlapool"
#: This host, as the mark names it (application_name holds 63 bytes).
HOSTNAME = socket.gethostname()[:20]

_MARK = re.compile(rf"(?:^|\s){APP_NAME_MARK}:(?P<alias>.*):(?P<host>[^:]*):(?P<pid>\d+)$")

#: libpq parameters set on every pooled connection unless OPTIONS sets them:
#: every wait on the server has a bound. connect_timeout covers the TCP
#: connect, the startup and authentication (libpq treats less than 2 as 2);
#: the keepalives find a dead idle peer in about keepalives_idle +
#: tcp_user_timeout seconds, and tcp_user_timeout (milliseconds, Linux)
#: fails a connection whose sent data stays unacknowledged that long.
LIBPQ_DEFAULTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30000,
}

#: OPTIONS keys that libpq, psycopg or Django's PostgreSQL backend take: passed
#: through to them, never "did you mean"-ed.
DRIVER_OPTIONS = frozenset(
    [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "sslnegotiation",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "min_protocol_version",
        "max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
        "isolation_level",
        "assume_role",
        "server_side_binding",
        "prepare_threshold",
        "cursor_factory",
        "context",
        "autocommit",
        "row_factory",
    ]
)


def application_name(alias: str, prefix: str | None) -> str:
    """``[prefix ]sqlapool:<alias>:<host>:<pid>``, within PostgreSQL's 63 bytes.

    The user's own application_name stays in front.
    """
    suffix = f"{APP_NAME_MARK}:{alias[:16]}:{HOSTNAME}:{os.getpid()}"
    if not prefix:
        return suffix
    room = 63 - len(suffix.encode()) - 1
    return f"{prefix.encode()[: max(room, 0)].decode(errors='ignore')} {suffix}".lstrip()


def parse_application_name(name: str | None) -> tuple[str, str, int] | None:
    """``(alias, host, pid)`` from one of our application_names, None for anyone else's."""
    match = _MARK.search(name or "")
    if match is None:
        return None
    return match["alias"], match["host"], int(match["pid"])


def startup_options(settings: PoolSettings) -> str:
    """The ``-c name=value`` flags for libpq's ``options`` parameter."""
    values = ((key, getattr(settings, key)) for key in SERVER_KEYS)
    return " ".join(f"-c {key}={value}" for key, value in values if value is not None)


def prepare(params: dict[str, Any], alias: str, settings: PoolSettings) -> dict[str, Any]:
    """Add the mark, the libpq bounds and (in "startup" mode) the server settings, in place."""
    params["application_name"] = application_name(alias, params.get("application_name"))
    if driver.libpq_version() >= 120000:  # tcp_user_timeout is libpq 12+
        defaults = LIBPQ_DEFAULTS
    else:
        defaults = {k: v for k, v in LIBPQ_DEFAULTS.items() if k != "tcp_user_timeout"}
    for key, value in defaults.items():
        if params.get(key) is None:  # the user's own value wins
            params[key] = value
    options = startup_options(settings)
    if options and settings.server_settings_mode == "startup":
        # Sent in the startup packet: no round trip, survives DISCARD ALL.
        params["options"] = f"{params.get('options') or ''} {options}".strip()
    return params
