"""Peak number of server connections to the bench database, polled from pg_stat_activity
(MySQL: information_schema.PROCESSLIST).

A process of its own, so its polling never competes with the measured
process for the GIL. It connects to the ``postgres`` database (MySQL: to no
database), so it does not count itself, prints ``ready``, polls every few
milliseconds until its stdin closes, then prints the peak.
"""

from __future__ import annotations

import json
import select
import sys
from collections.abc import Callable
from typing import Any

import psycopg

INTERVAL = 0.005


def mysql_counter(conn_info: dict[str, Any]) -> tuple[Callable[[], int], Callable[[], None]]:
    import MySQLdb

    conn = MySQLdb.connect(
        host=conn_info["host"],
        port=conn_info["port"],
        user=conn_info["user"],
        password="",
        autocommit=True,
    )
    cursor = conn.cursor()

    def count() -> int:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s",
            [conn_info["dbname"]],
        )
        return int(cursor.fetchone()[0])

    return count, conn.close


def postgresql_counter(conn_info: dict[str, Any]) -> tuple[Callable[[], int], Callable[[], None]]:
    conn = psycopg.connect(
        host=conn_info["host"],
        port=conn_info["port"],
        user=conn_info["user"],
        dbname="postgres",
        autocommit=True,
    )
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"

    def count() -> int:
        return int(conn.execute(query, [conn_info["dbname"]]).fetchone()[0])  # type: ignore[index]

    return count, conn.close


def main() -> None:
    conn_info = json.loads(sys.argv[1])
    counter = mysql_counter if conn_info.get("family") == "mysql" else postgresql_counter
    count, close = counter(conn_info)
    peak = 0
    print("ready", flush=True)
    while True:
        peak = max(peak, count())
        readable, _, _ = select.select([sys.stdin], [], [], INTERVAL)
        if readable and not sys.stdin.readline():
            break
    close()
    print(peak, flush=True)


if __name__ == "__main__":
    main()
