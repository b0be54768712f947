"""Which PostgreSQL connect failures are transient: a server restarting, full, or away.

The outage grace (``core/outage.py``) retries only these; anything else (a
wrong password, a missing database, a bad parameter) fails at once.
"""

from __future__ import annotations

#: SQLSTATE classes and codes of a server that is there but not taking
#: connections yet (or any more): 08 connection exception, 57P01
#: admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 53300
#: too_many_connections.
TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")

# Neither driver gives the SQLSTATE of an error the server sent while the
# connection was being set up (psycopg 3 sets ``sqlstate`` and psycopg2
# ``pgcode`` to None; only the message carries it), so those are told
# apart by libpq's message: a server error starts with its severity
# ("FATAL:  "), and these are the messages of the codes above. A server
# whose lc_messages is not English sends them translated: they are then
# treated as permanent and fail at once, as without a grace.
_SERVER_SEVERITIES = ("FATAL:", "ERROR:", "PANIC:")
_TRANSIENT_SERVER_MESSAGES = (
    "the database system is starting up",  # 57P03
    "the database system is shutting down",  # 57P03
    "the database system is in recovery mode",  # 57P03
    "the database system is not yet accepting connections",  # 57P03
    "the database system is not accepting connections",  # 57P03
    "sorry, too many clients already",  # 53300
    "remaining connection slots are reserved",  # 53300
    "too many connections for",  # 53300 (role or database limit)
    "terminating connection due to administrator command",  # 57P01
    "terminating connection because of crash of another server process",  # 57P02
    # PgBouncer in front of a server that is away:
    "pgbouncer cannot connect to server",
    "server login has been failing",
    "no more connections allowed",
)
# libpq's own refusals of a server that is up but not what target_session_attrs
# asks for: during a switchover the writer comes back, so these are retried.
_TRANSIENT_SESSION_MESSAGES = (
    "session is read-only",  # target_session_attrs=read-write found no writer
    "server is in hot standby mode",  # read-write or primary
    "server is not in hot standby mode",  # standby
    "session is not read-only",  # read-only
)
# libpq's own failures (no server message) are network failures (refused,
# timed out, reset, no route, host name not resolved, socket file missing)
# except these, which are the client's configuration and will not heal.
_PERMANENT_CLIENT_MESSAGES = (
    "invalid",  # invalid connection option / integer value / sslmode value
    "fe_sendauth",  # no password supplied
    "password",
    "certificate",
    "unsupported",
    "not supported",
    "authentication method",
    "require_auth",
)


def is_transient(error: BaseException) -> bool:
    """True when this connect failure may heal by itself within seconds."""
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if sqlstate:
        return str(sqlstate).startswith(TRANSIENT_SQLSTATES)
    if type(error).__name__ != "OperationalError":
        return False  # ProgrammingError, InterfaceError: a bad parameter or a bug
    message = str(error)
    if any(text in message for text in _TRANSIENT_SESSION_MESSAGES):
        return True
    if any(severity in message for severity in _SERVER_SEVERITIES):
        return any(text in message for text in _TRANSIENT_SERVER_MESSAGES)
    lowered = message.lower()
    return not any(text in lowered for text in _PERMANENT_CLIENT_MESSAGES)


#: Authentication refused: 28P01 invalid_password, 28000 invalid_authorization_specification.
_AUTH_MESSAGES = (
    "password authentication failed",
    "PAM authentication failed",  # RDS IAM
    "authentication failed for user",
    "no pg_hba.conf entry",
)


def is_auth_failure(error: BaseException) -> bool:
    """The server refused the credentials: with a rotating secret, a new one may work."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if code:
        return str(code) in ("28P01", "28000")
    message = str(error)
    return any(text in message for text in _AUTH_MESSAGES)
