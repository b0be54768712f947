"""The fleet view: every process's pooled connections, as the server sees them.

Each pooled connection carries ``[prefix ]sqlapool:<alias>:<host>:<pid>`` as
its application_name (see ``backends/pooled.py``), so one query on
``pg_stat_activity`` shows every process on every machine that uses this
server, and how much room the server has left. Query text is never read:
it can hold secrets.
"""

from __future__ import annotations

import os
import re
import socket
import time
from typing import Any

from .conf import APP_NAME_MARK

#: The states counted for every process, even when zero (others appear when seen).
STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")

_MARK = re.compile(rf"(?:^|\s){APP_NAME_MARK}:(?P<alias>.*):(?P<host>[^:]*):(?P<pid>\d+)$")

# One row per backend the server counts against max_connections. Rows the
# role may not see (another role's, without pg_read_all_stats) show only
# datid: those with a database are counted as client connections.
_ACTIVITY_SQL = """
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

_SETTINGS_SQL = """
SELECT
    current_setting('server_version'),
    current_setting('max_connections')::int,
    current_setting('superuser_reserved_connections')::int,
    coalesce(current_setting('reserved_connections', true), '0')::int
"""


def parse_application_name(name: str | None) -> tuple[str, str, int] | None:
    """``(alias, host, pid)`` from one of our application_names, None for anyone else's."""
    match = _MARK.search(name or "")
    if match is None:
        return None
    return match["alias"], match["host"], int(match["pid"])


def _round(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds), 3)


def fleet(alias: str = "default") -> dict[str, Any]:
    """The server's view of every pooled connection, through the connection of ``alias``.

    The keys are documented in docs/observability.md ("Fleet"); they are stable.
    """
    from django.db import connections

    with connections[alias].cursor() as cursor:
        return read_fleet(cursor, alias)


def read_fleet(cursor: Any, alias: str) -> dict[str, Any]:
    """:func:`fleet`, through any DB-API cursor on the server (the health probe's, say)."""
    from .backends.pooled import _HOSTNAME

    cursor.execute(_SETTINGS_SQL)
    version, max_connections, superuser_reserved, reserved = cursor.fetchone()
    cursor.execute(_ACTIVITY_SQL)
    rows = cursor.fetchall()

    processes: dict[tuple[str, int, str], dict[str, Any]] = {}
    hidden = 0
    for app_name, state, age, running, datname, is_hidden in rows:
        hidden += bool(is_hidden)
        ours = parse_application_name(app_name)
        if ours is None:
            continue
        pool_alias, host, pid = ours
        entry = processes.get((host, pid, pool_alias))
        if entry is None:
            entry = processes[host, pid, pool_alias] = {
                "host": host,
                "pid": pid,
                "alias": pool_alias,
                "this_process": host == _HOSTNAME and pid == os.getpid(),
                "connections": 0,
                "states": dict.fromkeys(STATES, 0),
                "oldest_connection_s": 0.0,
                "longest_query_s": None,
                "databases": [],
            }
        entry["connections"] += 1
        key = state or "unknown"
        entry["states"][key] = entry["states"].get(key, 0) + 1
        entry["oldest_connection_s"] = max(entry["oldest_connection_s"], _round(age) or 0.0)
        if running is not None:
            longest = entry["longest_query_s"]
            entry["longest_query_s"] = max(longest or 0.0, _round(running) or 0.0)
        if datname and datname not in entry["databases"]:
            entry["databases"].append(datname)

    total = len(rows)
    pooled = sum(p["connections"] for p in processes.values())
    available = max_connections - superuser_reserved - reserved
    return {
        "alias": alias,
        "time": time.time(),
        "observer": {"host": socket.gethostname(), "pid": os.getpid()},
        "server": {
            "version": version,
            "max_connections": max_connections,
            "superuser_reserved_connections": superuser_reserved,
            "reserved_connections": reserved,
            "available": available,
            "connections": total,
            "pooled_connections": pooled,
            "other_connections": total - pooled,
            "hidden_connections": hidden,
            "headroom": available - total,
        },
        "processes": sorted(processes.values(), key=lambda p: (p["host"], p["pid"], p["alias"])),
    }
