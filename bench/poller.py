"""Peak number of server connections to the bench database, polled from pg_stat_activity.

A process of its own, so its polling never competes with the measured
process for the GIL. It connects to the ``postgres`` database (so it does
not count itself), prints ``ready``, polls every few milliseconds until its
stdin closes, then prints the peak.
"""

from __future__ import annotations

import json
import select
import sys

import psycopg

INTERVAL = 0.005


def main() -> None:
    conn_info = json.loads(sys.argv[1])
    conn = psycopg.connect(
        host=conn_info["host"],
        port=conn_info["port"],
        user=conn_info["user"],
        dbname="postgres",
        autocommit=True,
    )
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
    peak = 0
    print("ready", flush=True)
    while True:
        (count,) = conn.execute(query, [conn_info["dbname"]]).fetchone()  # type: ignore[misc]
        peak = max(peak, count)
        readable, _, _ = select.select([sys.stdin], [], [], INTERVAL)
        if readable and not sys.stdin.readline():
            break
    conn.close()
    print(peak, flush=True)


if __name__ == "__main__":
    main()
