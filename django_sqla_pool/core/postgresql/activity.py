"""What the server says about its connections: limits, and who holds each client backend.

The fleet view and the capacity check read these through the family
(``core/family.py``); query text is never read, since it can hold secrets.
"""

from __future__ import annotations

from typing import Any

from ..family import Backend, ServerLimits
from .params import parse_application_name

_LIMITS_SQL = """
SELECT
    current_setting('server_version'),
    current_setting('max_connections')::int,
    current_setting('superuser_reserved_connections')::int,
    coalesce(current_setting('reserved_connections', true), '0')::int
"""

# One row per backend the server counts against max_connections. Rows the
# role may not see (another role's, without pg_read_all_stats) show only
# datid: those with a database are counted as client connections.
_BACKENDS_SQL = """
SELECT
    application_name,
    state,
    extract(epoch FROM clock_timestamp() - backend_start),
    CASE WHEN state = 'active' AND pid <> pg_backend_pid()
         THEN extract(epoch FROM clock_timestamp() - query_start) END,
    datname,
    backend_type IS NULL
FROM pg_stat_activity
WHERE backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL)
"""


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def read_limits(cursor: Any) -> ServerLimits:
    cursor.execute(_LIMITS_SQL)
    version, max_connections, superuser_reserved, reserved = cursor.fetchone()
    return ServerLimits(str(version), int(max_connections), int(superuser_reserved), int(reserved))


def read_backends(cursor: Any) -> list[Backend]:
    cursor.execute(_BACKENDS_SQL)
    return [
        Backend(
            parse_application_name(app_name),
            state,
            _seconds(age),
            _seconds(running),
            datname,
            bool(hidden),
        )
        for app_name, state, age, running, datname, hidden in cursor.fetchall()
    ]
