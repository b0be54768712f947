"""What the MySQL/MariaDB family does that PostgreSQL's does not (make test-mysql)."""

from __future__ import annotations

import gc
import time

import pytest
from django.core.checks import run_checks
from django.db import OperationalError, connection

from django_sqla_pool.conf import InvalidPoolSetting, parse_pool_settings

from . import dialect
from .conftest import backend_pid, pool_of, run_in_child

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not dialect.MYSQL, reason="MySQL/MariaDB only (DATABASE_URL=mysql-pool://)"),
]


def settings_with(**options: object) -> dict[str, object]:
    return {**connection.settings_dict, "OPTIONS": options}


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("idle_in_transaction_session_timeout", 1000, "no MySQL/MariaDB counterpart"),
        ("server_settings_mode", "set", "SET SESSION after connecting"),
        ("pool_reset_on_return", "discard", "COM_RESET_CONNECTION"),
    ],
)
def test_postgresql_only_options_are_refused_with_the_reason(key, value, words) -> None:
    with pytest.raises(InvalidPoolSetting, match=words):
        parse_pool_settings("default", settings_with(**{key: value}))


def test_mysql_driver_options_pass_through_and_typos_are_caught() -> None:
    parse_pool_settings("default", settings_with(init_command="SET @x = 1", charset="utf8mb4"))
    with pytest.raises(InvalidPoolSetting, match="Did you mean 'pool_size'"):
        parse_pool_settings("default", settings_with(pool_sise=3))


def test_statement_and_lock_timeouts_are_set_and_verified(make_wrapper) -> None:
    db = make_wrapper("my_timeouts", statement_timeout=1500, lock_timeout=200)
    with db.cursor() as cursor:
        cursor.execute("SELECT @@max_statement_time, @@innodb_lock_wait_timeout")
        # MariaDB: seconds; the lock wait rounds up to whole seconds.
        assert cursor.fetchone() == (1.5, 1)


def test_the_users_init_command_still_runs(make_wrapper) -> None:
    db = make_wrapper("my_init", init_command="SET @marker = 42", statement_timeout=1000)
    with db.cursor() as cursor:
        cursor.execute("SELECT @marker, @@max_statement_time")
        assert cursor.fetchone() == (42, 1.0)


def test_a_password_set_then_cleared_leaves_new_connections_working(make_wrapper) -> None:
    # Django's suite (5.2, --parallel 2) ran a test that set PASSWORD before others that left
    # it empty: the pool kept password=None, which mysqlclient refuses (TypeError).
    db = make_wrapper("my_password")
    backend_pid(db)
    db.close()
    db.settings_dict["PASSWORD"] = "used-by-new-connections-only"
    backend_pid(db)  # the idle connection again: nothing sent
    db.close()
    db.settings_dict["PASSWORD"] = ""
    other = make_wrapper("my_password")
    first = backend_pid(db)
    assert backend_pid(other) != first  # a new connection, with no password


def test_a_connection_the_server_closed_for_wait_timeout_is_replaced(make_wrapper) -> None:
    db = make_wrapper("my_wait", pool_pre_ping_window=60)
    with db.cursor() as cursor:
        cursor.execute("SET SESSION wait_timeout = 1")
    first = backend_pid(db)
    db.close()
    deadline = time.monotonic() + 10
    with DialectServer() as server:
        while dialect.alive(server, [first]) and time.monotonic() < deadline:
            time.sleep(0.1)
    # Within the ping window: the socket check alone finds it closed; no request fails.
    assert backend_pid(db) != first
    assert pool_of(db).stats.invalidations["pre_ping"] == 1


def test_idle_limit_warning_w012_when_idle_connections_may_outlive_wait_timeout(
    monkeypatch,
) -> None:
    assert "django_sqla_pool.W012" not in check_ids()  # 60 s against the server's 28800
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "pool_idle_timeout", None)
    assert "django_sqla_pool.W012" in check_ids()


def check_ids() -> list[str]:
    return [m.id for m in run_checks(databases=["default"], tags=["database"])]


def test_a_statement_stopped_by_max_statement_time_is_counted(make_wrapper) -> None:
    db = make_wrapper("my_stmt", statement_timeout=50)
    with pytest.raises(OperationalError, match="max_statement_time"), db.cursor() as cursor:
        cursor.execute("SELECT SLEEP(3)")
    assert pool_of(db).stats.statement_timeouts == 1


def test_a_child_dropping_inherited_connections_leaves_the_parents_session_alone(
    make_wrapper,
) -> None:
    db = make_wrapper("my_fork")
    pid = backend_pid(db)
    db.close()  # idle in the pool when the child is forked

    def child() -> int:
        from django_sqla_pool.core import registry

        registry.close_pools()
        gc.collect()  # mysqlclient would send COM_QUIT here on the parent's socket
        return 0

    assert run_in_child(child) == 0
    assert backend_pid(db) == pid  # the same session, still alive
    assert pool_of(db).stats.invalidations["pre_ping"] == 0


class DialectServer:
    def __enter__(self):  # type: ignore[no-untyped-def]
        from .conftest import raw_connect

        self.conn = raw_connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
