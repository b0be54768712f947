"""The throwaway MariaDB of tests/mysqlserver.py starts, serves, restarts, dies and stops."""

from __future__ import annotations

import time

import pytest

from .mysqlserver import MariaDB, Unavailable

MySQLdb = pytest.importorskip("MySQLdb")


def test_start_restart_kill_stop() -> None:
    started = time.monotonic()
    try:
        server = MariaDB()
    except Unavailable as exc:
        pytest.skip(str(exc))
    with server:
        for unix_socket in (False, True):
            conn = MySQLdb.connect(**server.params(unix_socket=unix_socket), connect_timeout=5)
            cursor = conn.cursor()
            cursor.execute("SELECT @@port, @@character_set_server")
            assert cursor.fetchone() == (server.port, "utf8mb4")
            conn.close()

        conn = MySQLdb.connect(**server.params(), connect_timeout=5)
        server.restart()
        with pytest.raises(MySQLdb.OperationalError) as lost:
            conn.ping()
        assert lost.value.args[0] in (2006, 2013)  # server gone away / lost connection
        conn.close()

        conn = MySQLdb.connect(**server.params(), connect_timeout=5)
        server.kill()
        assert not server.is_running() and not server.greets()
        with pytest.raises(MySQLdb.OperationalError):
            conn.ping()
        conn.close()
        server.start()
        MySQLdb.connect(**server.params(), connect_timeout=5).close()
    assert not server.is_running()
    assert time.monotonic() - started < 90
