"""The SQL the tests send to watch the server, per database family of the suite's ENGINE.

The suite runs on PostgreSQL by default and on MySQL/MariaDB with
``DATABASE_URL=mysql-pool://...`` (``make test-mysql``); tests call these
instead of writing either dialect. Tests that only mean something on
PostgreSQL are marked ``@pytest.mark.postgresql_only("why")`` (conftest.py
skips them on MySQL with that reason).
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.db import connection

MYSQL = connection.settings_dict["ENGINE"] == "django_sqla_pool.backends.mysql"

#: The server's id of the session a query runs in.
BACKEND_PID_SQL = "SELECT CONNECTION_ID()" if MYSQL else "SELECT pg_backend_pid()"
CURRENT_DATABASE_SQL = "SELECT DATABASE()" if MYSQL else "SELECT current_database()"
#: A database that exists on every server of the family, besides the test one.
OTHER_DATABASE = "mysql" if MYSQL else "postgres"
#: True (1) when the table named by the parameter does not exist.
TABLE_MISSING_SQL = (
    "SELECT COUNT(*) = 0 FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s"
    if MYSQL
    else "SELECT to_regclass(%s) IS NULL"
)
#: max_connections minus the slots reserved for superusers (MySQL reserves none).
AVAILABLE_CONNECTIONS_SQL = (
    "SELECT @@max_connections"
    if MYSQL
    else "SELECT current_setting('max_connections')::int"
    " - current_setting('superuser_reserved_connections')::int"
)
#: What the driver's message of a statement stopped by statement_timeout says.
STATEMENT_TIMEOUT_MESSAGE = (
    "max_statement_time|maximum statement execution time" if MYSQL else "statement timeout"
)
#: Session state a rollback on return keeps: set it, then read it back.
SET_SESSION_STATE_SQL = "SET @sticky = 'sticky'" if MYSQL else "SET application_name TO 'sticky'"
GET_SESSION_STATE_SQL = "SELECT @sticky" if MYSQL else "SELECT current_setting('application_name')"


def sleep_sql(seconds: float) -> str:
    return f"SELECT SLEEP({seconds})" if MYSQL else f"SELECT pg_sleep({seconds})"


def kill(server: Any, pid: int) -> None:
    """End one session from another (the server closes it)."""
    if MYSQL:
        server.execute(f"KILL {int(pid)}")
    else:
        server.execute("SELECT pg_terminate_backend(%s)", [pid])


def alive(server: Any, pids: list[int]) -> int:
    """How many of these sessions the server still has."""
    if not pids:
        return 0
    listed = ", ".join(str(int(p)) for p in pids)
    if MYSQL:
        sql = f"SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID IN ({listed})"
    else:
        sql = f"SELECT count(*) FROM pg_stat_activity WHERE pid IN ({listed})"
    return int(server.execute(sql).fetchone()[0])


def server_state(server: Any, pid: int) -> str | None:
    """'idle', 'idle in transaction' or 'active' as the server sees the session; None if gone."""
    if MYSQL:
        # InnoDB refreshes information_schema.INNODB_TRX from a cache at most
        # every 0.1 s: a transaction ended just now may still be listed.
        time.sleep(0.12)
        row = server.execute(
            "SELECT p.COMMAND, t.trx_id IS NOT NULL FROM information_schema.PROCESSLIST p "
            "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID "
            "WHERE p.ID = %s",
            [pid],
        ).fetchone()
        if row is None:
            return None
        if row[0] == "Sleep":
            return "idle in transaction" if row[1] else "idle"
        return "active"
    row = server.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return row[0] if row else None


def connections_to(server: Any, database: str) -> int:
    """Client sessions connected to this database now."""
    if MYSQL:
        sql = "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = %s"
    else:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
    return int(server.execute(sql, [database]).fetchone()[0])


def pooled_sessions(server: Any, alias: str, opened: set[int]) -> set[int]:
    """Server ids of this process's pooled sessions of ``alias`` that the server still has.

    PostgreSQL finds them by application_name, which names the alias and the
    pid. MySQL connections carry no such mark (no connection attributes in
    mysqlclient): there, the processlist's ids among ``opened``, the ids the
    alias's pools opened (a test records them as they connect).
    """
    if MYSQL:
        rows = server.execute("SELECT ID FROM information_schema.PROCESSLIST").fetchall()
        return {row[0] for row in rows} & opened
    rows = server.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
        [f"%sqlapool:{alias}:%:{os.getpid()}"],
    ).fetchall()
    return {row[0] for row in rows}
