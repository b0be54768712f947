"""The fleet view: every process's pooled connections, as the server sees them.

Each pooled connection carries a mark naming its alias, host and process
(on PostgreSQL ``[prefix ]sqlapool:<alias>:<host>:<pid>`` as its
application_name), so one read of the server's connection list (through the
alias's family, ``core/family.py``) shows every process on every machine that
uses this server, and how much room the server has left. Query text is never
read: it can hold secrets.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from django.db import connections

from ..core.family import Family

#: The states counted for every process, even when zero (others appear when seen).
STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")


def _round(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds), 3)


def fleet(alias: str = "default") -> dict[str, Any]:
    """The server's view of every pooled connection, through the connection of ``alias``.

    The keys are documented in docs/observability.md ("Fleet"); they are stable.
    """
    wrapper: Any = connections[alias]
    with wrapper.cursor() as cursor:
        return read_fleet(cursor, alias, wrapper.pool_family)


def read_fleet(cursor: Any, alias: str, family: Family) -> dict[str, Any]:
    """:func:`fleet`, through any DB-API cursor on the server (the health probe's, say)."""
    version, max_connections, superuser_reserved, reserved = family.read_limits(cursor)
    rows = family.read_backends(cursor)

    processes: dict[tuple[str, int, str], dict[str, Any]] = {}
    hidden = 0
    for row in rows:
        hidden += row.hidden
        ours = row.mark
        if ours is None:
            continue
        pool_alias, host, pid = ours
        entry = processes.get((host, pid, pool_alias))
        if entry is None:
            entry = processes[host, pid, pool_alias] = {
                "host": host,
                "pid": pid,
                "alias": pool_alias,
                "this_process": host == family.hostname and pid == os.getpid(),
                "connections": 0,
                "states": dict.fromkeys(STATES, 0),
                "oldest_connection_s": 0.0,
                "longest_query_s": None,
                "databases": [],
            }
        entry["connections"] += 1
        key = row.state or "unknown"
        entry["states"][key] = entry["states"].get(key, 0) + 1
        entry["oldest_connection_s"] = max(entry["oldest_connection_s"], _round(row.age_s) or 0.0)
        if row.running_s is not None:
            longest = entry["longest_query_s"]
            entry["longest_query_s"] = max(longest or 0.0, _round(row.running_s) or 0.0)
        if row.database and row.database not in entry["databases"]:
            entry["databases"].append(row.database)

    total = len(rows)
    pooled = sum(p["connections"] for p in processes.values())
    available = max_connections - superuser_reserved - reserved
    return {
        "alias": alias,
        "time": time.time(),
        "observer": {"host": socket.gethostname(), "pid": os.getpid()},
        "server": {
            "product": family.product,
            "source": family.activity_source,
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
