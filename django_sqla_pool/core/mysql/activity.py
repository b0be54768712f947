"""What the server says about its connections: limits, and who holds each one.

The processlist (information_schema.PROCESSLIST) shows every client thread
to a user with the PROCESS privilege (only the user's own otherwise); it
carries no mark of ours (see ``params.py``). A row is marked as this
process's when its thread id is one of this process's open connections,
and as another process's pooled connection (pid 0: unknown) when it uses
the user and database of one of this process's pools. Query text is never read.
"idle in transaction" comes from information_schema.INNODB_TRX, which InnoDB
refreshes at most every 0.1 s.
"""

from __future__ import annotations

import os
from typing import Any

from ..family import Backend, ServerLimits
from . import driver, params

_BACKENDS_SQL = """
SELECT p.ID, p.USER, p.HOST, p.DB, p.COMMAND, p.TIME, t.trx_id IS NOT NULL
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID')
  AND p.USER NOT IN ('system user', 'event_scheduler')
"""


def read_limits(cursor: Any) -> ServerLimits:
    cursor.execute("SELECT @@version, @@max_connections")
    version, max_connections = cursor.fetchone()
    return ServerLimits(str(version), int(max_connections), 0, 0)


def _state(command: str, in_transaction: bool) -> str:
    if command == "Sleep":
        return "idle in transaction" if in_transaction else "idle"
    return "active"


def read_backends(cursor: Any) -> list[Backend]:
    cursor.execute(_BACKENDS_SQL)
    endpoints = params.pooled_endpoints()
    this_pid = os.getpid()
    rows = []
    for thread_id, user, host, db, command, seconds, in_trx in cursor.fetchall():
        own = driver.own_connection(int(thread_id))
        mark: tuple[str, str, int] | None = None
        if own is not None and own._sqlapool_alias is not None:
            mark = (own._sqlapool_alias, params.HOSTNAME, this_pid)
        elif (user, db) in endpoints:
            client = str(host or "").rsplit(":", 1)[0] or "localhost"
            mark = (endpoints[user, db], client, 0)
        state = _state(str(command), bool(in_trx))
        running = float(seconds) if state == "active" and own is None and seconds else None
        rows.append(Backend(mark, state, None, running, db, False))
    return rows
