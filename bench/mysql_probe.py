#!/usr/bin/env python
"""What things cost on MySQL/MariaDB with mysqlclient (MySQLdb), one thread.

Groundwork for a pooled MySQL ENGINE: the price of a new connection, of the
liveness checks a pool could use (ping, a socket check with no round trip),
of a rollback on return, of reading server limits; whether the socket check
sees a connection the server killed or timed out; which error codes each
failure gives; how statement timeouts are set and reported; what the server
shows about a client.

    python bench/mysql_probe.py                       # 127.0.0.1:3306, root, db test
    python bench/mysql_probe.py --port 25406 --repeat 500 --json out.json

Times are medians (and 90th percentiles) of --repeat single timings, in µs.
Not part of the package; see docs/mysql-notes.md for results.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import MySQLdb
import MySQLdb._mysql

RESULTS: dict[str, Any] = {}


def say(key: str, value: Any) -> None:
    RESULTS[key] = value
    print(f"{key:<48} {value}", flush=True)


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return {
        "median_us": round(statistics.median(samples), 1),
        "p90_us": round(samples[int(len(samples) * 0.9) - 1], 1),
        "n": repeat,
    }


def error_code(exc: BaseException) -> Any:
    return exc.args[0] if exc.args else None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__} {exc.args!r}"


# --- the socket check -----------------------------------------------------------


def socket_state(conn: Any) -> str:
    """Without a round trip: "alive" when nothing is waiting on an idle connection.

    An idle connection in the MySQL protocol has nothing to read: the server
    speaks only when asked. Anything readable (EOF after the server closed, or
    an error packet it sent before closing, as MySQL 8 does on wait_timeout
    with 4031) means the connection is not usable.
    """
    fd = conn.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    events = poller.poll(0)
    if not events:
        return "alive"
    # Look without consuming: a socket object on a duplicate of the descriptor.
    dup = socket.socket(fileno=os.dup(fd))
    try:
        data = dup.recv(256, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return f"readable events {events[0][1]:#x} but nothing to read"
    except OSError as exc:
        return f"dead (recv: {exc})"
    finally:
        dup.close()  # closes the duplicate only
    if not data:
        return "dead (EOF)"
    return f"dead (unread packet: {packet_summary(data)})"


def socket_alive(conn: Any) -> bool:
    """The fast path only: poll(0) on the descriptor; True when nothing is readable."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return not poller.poll(0)


def packet_summary(data: bytes) -> str:
    if len(data) >= 5 and data[4] == 0xFF:
        code = struct.unpack("<H", data[5:7])[0]
        message = data[7:].lstrip(b"#")[5:] if data[7:8] == b"#" else data[7:]
        return f"error packet {code} {message.decode(errors='replace')!r}"
    return f"{len(data)} bytes {data[:16].hex()}"


# --- the probes -------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="")
    parser.add_argument("--db", default="test")
    parser.add_argument("--unix-socket", help="connect through this socket instead of TCP")
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    params: dict[str, Any] = {"user": args.user, "password": args.password, "database": args.db}
    if args.unix_socket:
        params["unix_socket"] = args.unix_socket
    else:
        params.update(host=args.host, port=args.port)

    def connect(**extra: Any) -> Any:
        return MySQLdb.connect(**params, **extra)

    n = args.repeat
    conn = connect(autocommit=True)
    admin = connect(autocommit=True)
    cursor = conn.cursor()

    def scalar(c: Any, sql: str) -> Any:
        cur = c.cursor()
        cur.execute(sql)
        row = cur.fetchone()
        cur.close()
        return row[0] if row and len(row) == 1 else row

    say("mysqlclient", ".".join(map(str, MySQLdb.version_info[:3])))
    say("client library", MySQLdb._mysql.get_client_info())
    say("server", conn.get_server_info())
    say("python", sys.version.split()[0])
    say("connection", conn.get_host_info())

    # (a) a new connection (connect alone; close measured apart).
    say("a. new connection (connect)", timed(lambda: connections.append(connect()), n // 3))
    say("a. close", timed(lambda: connections.pop().close(), n // 3 - 5, warmup=0))
    for c in connections:
        c.close()
    connections.clear()
    say(
        "a. connect + autocommit=True (Django's way)",
        timed(lambda: connect(autocommit=True).close(), n // 3),
    )

    # (d) SELECT 1, the round trip (cursor and the low-level query API).
    def select1() -> None:
        cursor.execute("SELECT 1")
        cursor.fetchall()

    def select1_raw() -> None:
        conn.query("SELECT 1")
        conn.store_result().fetch_row()

    say("d. SELECT 1 (cursor)", timed(select1, n))
    say("d. SELECT 1 (conn.query + store_result)", timed(select1_raw, n))

    # (b) ping.
    say("b. conn.ping()", timed(conn.ping, n))

    # (c) the socket check, no round trip.
    say("c. socket check poll(0) on conn.fileno()", timed(lambda: socket_alive(conn), n))
    say("c. fileno()", conn.fileno())
    say("c. socket check on a live connection", socket_state(conn))

    # (e) rollback on an idle connection: a round trip? Count statements on the server.
    def com(c: Any, name: str) -> int:
        cur = c.cursor()
        cur.execute(f"SHOW SESSION STATUS LIKE '{name}'")
        value = int(cur.fetchone()[1])
        cur.close()
        return value

    before = com(conn, "Com_rollback"), com(conn, "Questions")
    for _ in range(10):
        conn.rollback()
    after = com(conn, "Com_rollback"), com(conn, "Questions")
    say(
        "e. 10 rollbacks, idle, autocommit on: Com_rollback/Questions +",
        f"{after[0] - before[0]}/{after[1] - before[1] - 1}",
    )
    say("e. conn.rollback() idle, autocommit on", timed(conn.rollback, n))
    tx = connect(autocommit=False)
    say("e. conn.rollback() idle, autocommit off", timed(tx.rollback, n))
    say("e. conn.commit() idle, autocommit off", timed(tx.commit, n))
    tx.close()

    # (f) COM_RESET_CONNECTION.
    say(
        "f. reset_connection in MySQLdb",
        {
            "Connection.reset_connection": hasattr(conn, "reset_connection"),
            "_mysql.connection.reset_connection": hasattr(
                MySQLdb._mysql.connection, "reset_connection"
            ),
            "change_user (COM_CHANGE_USER)": hasattr(conn, "change_user"),
        },
    )
    cu = connect(autocommit=True)
    cu.query("SET @probe = 42")
    cu.query("CREATE TEMPORARY TABLE probe_tmp (x int)")
    cu.change_user(args.user, args.password, args.db)
    survived = scalar(cu, "SELECT @probe")
    try:
        scalar(cu, "SELECT COUNT(*) FROM probe_tmp")
        tmp = "kept"
    except MySQLdb.Error as exc:
        tmp = f"dropped ({error_code(exc)})"
    say(
        "f. change_user: user variable / temp table after", f"@probe={survived!r}, temp table {tmp}"
    )
    say(
        "f. change_user() (re-authenticates)",
        timed(lambda: cu.change_user(args.user, args.password, args.db), n // 3),
    )
    say("f. autocommit after change_user", scalar(cu, "SELECT @@autocommit"))
    cu.close()

    # (g) reading server limits.
    limits = "SELECT @@wait_timeout, @@max_connections, @@max_statement_time"
    try:
        say(
            "g. limits",
            dict(
                zip(
                    ("wait_timeout", "max_connections", "max_statement_time"),
                    scalar(conn, limits),
                    strict=False,
                )
            ),
        )
        say(
            "g. SELECT @@wait_timeout, @@max_connections, @@max_statement_time",
            timed(lambda: scalar(conn, limits), n),
        )
    except MySQLdb.Error as exc:  # MySQL has no max_statement_time (max_execution_time, ms)
        say("g. limits", describe(exc))

    # Statement timeouts set at connect.
    init = "SET SESSION max_statement_time=0.2, innodb_lock_wait_timeout=3"
    say(
        "t. connect with init_command (one SET)",
        timed(lambda: connect(init_command=init).close(), n // 3),
    )
    st = connect(init_command=init, autocommit=True)
    say(
        "t. after init_command",
        scalar(st, "SELECT @@max_statement_time, @@innodb_lock_wait_timeout"),
    )
    for sql in (
        "SELECT SLEEP(1)",
        "SELECT BENCHMARK(200000000, MD5('x'))",
        # MariaDB's Sequence engine; SUM(seq) alone is answered without scanning.
        "SELECT COUNT(*) FROM seq_1_to_20000000 WHERE MD5(seq) = 'x'",
    ):
        start = time.perf_counter()
        try:
            outcome = repr(scalar(st, sql))
        except MySQLdb.Error as exc:
            outcome = describe(exc)
        warnings = st.show_warnings() if st.warning_count() else ()
        say(
            f"t. {sql} under max_statement_time=0.2",
            f"{outcome} after {time.perf_counter() - start:.2f} s; warnings {warnings!r}",
        )
    start = time.perf_counter()
    try:
        outcome = repr(
            scalar(
                conn,
                "SET STATEMENT max_statement_time=0.1 FOR SELECT BENCHMARK(200000000, MD5('x'))",
            )
        )
    except MySQLdb.Error as exc:
        outcome = describe(exc)
    say(
        "t. SET STATEMENT max_statement_time=0.1 FOR ...",
        f"{outcome} after {time.perf_counter() - start:.2f} s",
    )
    # innodb_lock_wait_timeout: a row lock held by another connection.
    conn.query("CREATE TABLE IF NOT EXISTS probe_lock (id int primary key) ENGINE=InnoDB")
    conn.query("INSERT IGNORE INTO probe_lock VALUES (1)")
    holder = connect(autocommit=False)
    holder.query("SELECT * FROM probe_lock WHERE id = 1 FOR UPDATE")
    holder.store_result()
    waiter = connect(autocommit=False, init_command="SET SESSION innodb_lock_wait_timeout=1")
    start = time.perf_counter()
    try:
        waiter.query("UPDATE probe_lock SET id = 1 WHERE id = 1")
        outcome = "no wait"
    except MySQLdb.Error as exc:
        outcome = describe(exc)
    say(
        "t. lock wait, innodb_lock_wait_timeout=1",
        f"{outcome} after {time.perf_counter() - start:.2f} s",
    )
    waiter.close()
    holder.close()
    conn.query("DROP TABLE probe_lock")
    st.close()

    # What the server shows about a client (performance_schema is off by default in MariaDB).
    say("p. @@performance_schema", scalar(conn, "SELECT @@performance_schema"))
    row = scalar(
        conn,
        "SELECT ID, USER, HOST, DB, COMMAND FROM information_schema.PROCESSLIST"
        " WHERE ID = CONNECTION_ID()",
    )
    local = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        say("p. information_schema.PROCESSLIST row", row)
        say("p. the client socket's local address", local.getsockname())
    finally:
        local.close()
    try:
        attrs = scalar(conn, "SELECT COUNT(*) FROM performance_schema.session_connect_attrs")
        say("p. performance_schema.session_connect_attrs rows", attrs)
    except MySQLdb.Error as exc:
        say("p. performance_schema.session_connect_attrs", describe(exc))
    try:
        connect(program_name="probe").close()
        say("p. connect(program_name=...)", "accepted")
    except TypeError as exc:
        say("p. connect(program_name=...)", f"TypeError: {exc}")

    # Killed by the server: does the socket check see it, and what do ping / a query raise?
    for how in ("KILL", "KILL (ping)", "wait_timeout"):
        victim = connect(autocommit=True)
        if how == "wait_timeout":
            victim.query("SET SESSION wait_timeout = 1")
            time.sleep(2.5)
        else:
            admin.query(f"KILL {victim.thread_id()}")
            time.sleep(0.05)
        say(f"k. {how}: socket check", socket_state(victim))
        try:
            if how == "KILL (ping)":
                victim.ping()
            else:
                scalar(victim, "SELECT 1")
            outcome = "worked"
        except MySQLdb.Error as exc:
            outcome = describe(exc)
        say(f"k. {how}: then {'ping()' if 'ping' in how else 'SELECT 1'}", outcome)
        try:
            victim.ping()
            outcome = "worked"
        except MySQLdb.Error as exc:
            outcome = describe(exc)
        say(f"k. {how}: ping() after that", outcome)
        victim.close()

    # Killed while running a statement.
    # (thread_id() is read first: mysqlclient 2.3 locks a connection while a
    # statement runs on it, so another thread's thread_id() would wait for it.)
    victim = connect(autocommit=True)
    victim_id = victim.thread_id()
    timer = threading.Timer(0.3, lambda: admin.query(f"KILL {victim_id}"))
    timer.start()
    start = time.perf_counter()
    try:
        scalar(victim, "SELECT SLEEP(3)")
        outcome = "returned"
    except MySQLdb.Error as exc:
        outcome = describe(exc)
    timer.join()
    say("k. KILL during SELECT SLEEP(3)", f"{outcome} after {time.perf_counter() - start:.2f} s")
    victim.close()
    victim = connect(autocommit=True)
    victim_id = victim.thread_id()
    timer = threading.Timer(0.3, lambda: admin.query(f"KILL QUERY {victim_id}"))
    timer.start()
    try:
        outcome = repr(
            scalar(victim, "SELECT COUNT(*) FROM seq_1_to_20000000 WHERE MD5(seq) = 'x'")
        )
    except MySQLdb.Error as exc:
        outcome = describe(exc)
    timer.join()
    say("k. KILL QUERY during a long SELECT", f"{outcome}; connection then: {socket_state(victim)}")
    victim.close()

    # A server restart or crash is the same from the socket's side (EOF); not done here.
    cursor.close()
    conn.close()
    admin.close()
    if args.json:
        with open(args.json, "w") as out:
            json.dump(RESULTS, out, indent=1, default=str)
    return 0


connections: list[Any] = []

if __name__ == "__main__":
    sys.exit(main())
