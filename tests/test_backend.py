"""The ENGINE's semantics against a real PostgreSQL (or MySQL/MariaDB: make test-mysql)."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.db.utils import DatabaseError

from demo.models import Note
from django_sqla_pool import PoolConnectError, PoolTimeout
from django_sqla_pool.core import pool as pool_module
from django_sqla_pool.core import registry

from . import dialect
from .conftest import DatabaseWrapper, backend_pid, pool_of
from .dialect import server_state
from .throwaway import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_close_returns_the_connection_and_the_next_checkout_reuses_it(make_wrapper) -> None:
    db = make_wrapper("reuse")
    first = backend_pid(db)
    assert pool_of(db).checkedout() == 1
    db.close()
    assert (pool_of(db).checkedout(), pool_of(db).checkedin()) == (0, 1)
    assert backend_pid(db) == first


def test_connection_returned_inside_a_transaction_is_rolled_back(make_wrapper, server) -> None:
    db = make_wrapper("rollback")
    with db.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS rollback_probe (v int)")
    pid = backend_pid(db)
    db.set_autocommit(False)
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO rollback_probe VALUES (1)")
    assert server_state(server, pid) == "idle in transaction"
    db.close()
    assert server_state(server, pid) == "idle"
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM rollback_probe")
        assert cursor.fetchone()[0] == 0
        cursor.execute("DROP TABLE rollback_probe")


def test_close_inside_atomic_rolls_back_and_the_wrapper_never_reuses_it(server) -> None:
    pid = backend_pid(connection)
    with transaction.atomic():
        Note.objects.create(text="never committed")
        connection.close()
        assert connection.connection is None
    assert server_state(server, pid) == "idle"
    assert Note.objects.count() == 0


def test_failed_transaction_is_clean_for_the_next_user(make_wrapper) -> None:
    db = make_wrapper("failed")
    db.set_autocommit(False)
    with pytest.raises(DatabaseError), db.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    db.close()
    with db.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert db.pool_family.idle_and_open(db.connection)  # no transaction open, any driver


@pytest.mark.postgresql_only("libpq options and application_name (tests/test_mysql.py for MySQL's)")
def test_our_options_never_reach_the_driver_and_libpq_options_pass_through(make_wrapper) -> None:
    from django_sqla_pool.core.postgresql.params import HOSTNAME as _HOSTNAME

    db = make_wrapper(
        "params",
        application_name="params-probe",
        connect_timeout=5,
        statement_timeout=1234,
        lock_timeout="2s",
    )
    params = db.get_connection_params()
    assert "pool_size" not in params and "statement_timeout" not in params
    assert params["application_name"].startswith("params-probe sqlapool:params:")
    assert params["connect_timeout"] == 5
    with db.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "1234ms"
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "2s"
        cursor.execute("SELECT current_setting('application_name')")
        assert cursor.fetchone()[0] == f"params-probe sqlapool:params:{_HOSTNAME}:{os.getpid()}"


def test_statement_timeout_cancels_a_long_query_and_the_connection_stays_usable(
    make_wrapper,
) -> None:
    db = make_wrapper("stmt", statement_timeout=100)
    pid = backend_pid(db)
    started = time.monotonic()
    with (
        pytest.raises(OperationalError, match=dialect.STATEMENT_TIMEOUT_MESSAGE),
        db.cursor() as cursor,
    ):
        cursor.execute(dialect.sleep_sql(5))
    assert time.monotonic() - started < 2
    assert db.is_usable()
    db.close()
    assert pool_of(db).checkedin() == 1
    assert backend_pid(db) == pid


def test_pool_recycle_replaces_old_connections_at_checkout(make_wrapper) -> None:
    db = make_wrapper("recycle", pool_recycle=0.2)
    first = backend_pid(db)
    db.close()
    time.sleep(0.25)  # let the connection age past pool_recycle
    assert backend_pid(db) != first
    assert pool_of(db).stats.invalidations["recycle"] == 1


def test_pre_ping_survives_the_server_killing_every_idle_connection(make_wrapper, server) -> None:
    wrappers = [make_wrapper("ping") for _ in range(4)]
    pids = [backend_pid(w) for w in wrappers]
    for w in wrappers:
        w.close()
    for pid in pids:
        dialect.kill(server, pid)
    deadline = time.monotonic() + 5
    while dialect.alive(server, pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    for w in wrappers:
        assert backend_pid(w) not in pids  # every request succeeds, on a new connection
    stats = pool_of(wrappers[0]).stats
    assert stats.invalidations["pre_ping"] == 4
    assert stats.invalidations["disconnect"] == 0


def test_pre_ping_pings_connections_idle_longer_than_the_window(make_wrapper, server) -> None:
    db = make_wrapper("window", pool_pre_ping_window=0)
    pid = backend_pid(db)
    db.close()
    # A connection that looks fine on the socket but is idle past the window
    # still gets a real round trip: the ping runs and succeeds.
    assert backend_pid(db) == pid
    assert pool_of(db).stats.invalidations["pre_ping"] == 0


def test_connection_broken_during_use_is_discarded_on_return(make_wrapper, server) -> None:
    db = make_wrapper("broken")
    pid = backend_pid(db)
    dialect.kill(server, pid)
    with pytest.raises(OperationalError):
        backend_pid(db)
    db.close()
    pool = pool_of(db)
    assert pool.stats.invalidations["disconnect"] == 1
    assert backend_pid(db) != pid


def test_exhausted_pool_raises_a_clear_operational_error_and_logs_it(make_wrapper, caplog) -> None:
    holder = make_wrapper("tiny", pool_size=1, max_overflow=0, pool_timeout=0.2)
    backend_pid(holder)
    waiter = make_wrapper("tiny", pool_size=1, max_overflow=0, pool_timeout=0.2)
    caplog.set_level(logging.WARNING, logger="django_sqla_pool")
    with pytest.raises(PoolTimeout) as info:
        waiter.ensure_connection()
    assert isinstance(info.value, OperationalError)
    message = str(info.value)
    for part in ("'tiny'", "pool_size=1", "max_overflow=0", "after waiting 0.2"):
        assert part in message
    assert any(
        "no connection free" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )
    assert pool_of(holder).stats.timeouts == 1


def test_slow_wait_is_logged_at_warning(make_wrapper, caplog, monkeypatch) -> None:
    # A wait of 0.2 s is slow, while pool_timeout leaves room for a busy machine.
    monkeypatch.setattr(pool_module, "SLOW_WAIT", 0.2)
    holder = make_wrapper("slow", pool_size=1, max_overflow=0, pool_timeout=10)
    backend_pid(holder)
    pool = pool_of(holder)
    caplog.set_level(logging.WARNING, logger="django_sqla_pool")

    def release_once_the_wait_is_slow() -> None:
        wait_until(lambda: pool.waiting == 1, what="the waiter queued")
        queued = time.monotonic()  # the waiter's wait began before this
        wait_until(lambda: time.monotonic() - queued > 0.3, what="the wait to become slow")
        holder.close()

    release = threading.Thread(target=release_once_the_wait_is_slow)
    holder.inc_thread_sharing()
    release.start()
    waiter = make_wrapper("slow", pool_size=1, max_overflow=0, pool_timeout=10)
    try:
        waiter.ensure_connection()  # waits > 0.3 s: more than SLOW_WAIT
    finally:
        release.join()
        holder.dec_thread_sharing()
    assert any(
        r.levelno == logging.WARNING
        and "slow checkout" in r.getMessage()
        and "slow" in r.getMessage()
        for r in caplog.records
    )


def test_dead_server_is_a_different_clear_error_without_the_password(make_wrapper) -> None:
    settings_dict = {
        **connection.settings_dict,
        "HOST": "127.0.0.1",
        "PORT": "1",
        "PASSWORD": "s3cret-pw",
        # No grace: this test is about the error of one failed attempt.
        "OPTIONS": {"connect_timeout": 2, "connect_grace": 0},
    }
    db = DatabaseWrapper(settings_dict, alias="dead")
    try:
        with pytest.raises(PoolConnectError) as info:
            db.ensure_connection()
        message = str(info.value)
        assert "'dead'" in message and "127.0.0.1:1" in message
        assert "s3cret-pw" not in message
        assert not isinstance(info.value, PoolTimeout)
        assert pool_of(db).stats.connect_errors == 1
    finally:
        registry.close_pools("dead")


def test_changing_name_gets_a_new_pool_and_close_pool_retires_the_old_one(make_wrapper) -> None:
    db = make_wrapper("rename")
    backend_pid(db)
    db.close()
    [old] = registry.pools("rename")
    db.settings_dict["NAME"] = dialect.OTHER_DATABASE
    with db.cursor() as cursor:
        cursor.execute(dialect.CURRENT_DATABASE_SQL)
        assert cursor.fetchone()[0] == dialect.OTHER_DATABASE
    assert len(registry.pools("rename")) == 2
    db.close_pool()
    assert registry.pools("rename") == []
    assert old.retired and old.checkedin() == 0


def test_connection_checked_out_when_its_pool_is_closed_is_closed_on_return(
    make_wrapper, server
) -> None:
    db = make_wrapper("retire")
    pid = backend_pid(db)
    pool = pool_of(db)
    registry.close_pools("retire")
    assert server_state(server, pid) is not None  # still in use: not closed under the user
    db.close()
    deadline = time.monotonic() + 5
    while server_state(server, pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server_state(server, pid) is None
    assert pool.stats.connections_closed == pool.stats.connections_opened == 1


@pytest.mark.postgresql_only("DISCARD ALL; mysqlclient has no COM_RESET_CONNECTION (refused)")
def test_reset_discard_clears_session_state(make_wrapper) -> None:
    db = make_wrapper("discard", pool_reset_on_return="discard", pool_size=1, max_overflow=0)
    with db.cursor() as cursor:
        cursor.execute("SET search_path TO pg_catalog")
        cursor.execute("CREATE TEMP TABLE scratch (v int)")
        cursor.execute("SELECT pg_advisory_lock(4242)")
    pid = backend_pid(db)
    db.close()
    assert backend_pid(db) == pid
    with db.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone()[0] == '"$user", public'
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT to_regclass('pg_temp.scratch') IS NULL")
        assert cursor.fetchone()[0] is True


def test_reset_rollback_keeps_session_state_as_documented(make_wrapper) -> None:
    db = make_wrapper("keep", pool_size=1, max_overflow=0)
    with db.cursor() as cursor:
        cursor.execute(dialect.SET_SESSION_STATE_SQL)
    db.close()
    with db.cursor() as cursor:
        cursor.execute(dialect.GET_SESSION_STATE_SQL)
        assert cursor.fetchone()[0] == "sticky"


def test_waiters_are_served_first_come_first_served(make_wrapper) -> None:
    holder = make_wrapper("fifo", pool_size=1, max_overflow=0, pool_timeout=5)
    backend_pid(holder)
    order: list[int] = []
    started: list[threading.Event] = []

    def wait_turn(n: int) -> None:
        db = make_wrapper("fifo", pool_size=1, max_overflow=0, pool_timeout=5)
        started[n].set()
        db.ensure_connection()
        order.append(n)
        db.close()

    threads = []
    for n in range(4):
        started.append(threading.Event())
        t = threading.Thread(target=wait_turn, args=(n,))
        t.start()
        started[n].wait()
        deadline = time.monotonic() + 2
        while pool_of(holder).waiting < n + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        threads.append(t)
    holder.close()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3]


def test_wrapper_garbage_collected_with_a_connection_returns_it_rolled_back(
    make_wrapper, server
) -> None:
    import gc

    db = DatabaseWrapper({**connection.settings_dict}, alias="forgotten")
    db.ensure_connection()
    db.set_autocommit(False)
    pid = backend_pid(db)  # leaves a transaction open
    pool = pool_of(db)
    assert pool.checkedout() == 1
    del db
    gc.collect()
    # Noted by the finalizer, taken back (rolled back) at the pool's next checkout.
    assert len(pool._abandoned) == 1
    again = DatabaseWrapper({**connection.settings_dict}, alias="forgotten")
    assert backend_pid(again) == pid
    assert server_state(server, pid) == "idle"  # rolled back: not "idle in transaction"
    again.close()
    assert (pool.checkedout(), pool.checkedin()) == (0, 1)
    assert pool.stats.checkins == pool.stats.checkouts == 2
    assert server_state(server, pid) == "idle"
    registry.close_pools("forgotten")


def test_failed_reset_invalidates_the_connection_and_frees_its_slot(make_wrapper, caplog) -> None:
    from sqlalchemy import event

    db = make_wrapper("badreset")
    backend_pid(db)
    pool = pool_of(db)

    def fail(*args: object) -> None:
        raise RuntimeError("reset failed")

    event.listen(pool, "reset", fail)
    with caplog.at_level(logging.ERROR):
        db.close()
    assert (pool.checkedout(), pool.checkedin()) == (0, 1)
    assert pool.stats.invalidations["error"] == 1
    assert pool.stats.connections_closed == 1
    assert "reset failed pool=" in caplog.text
    event.remove(pool, "reset", fail)
    backend_pid(db)  # the slot opens a new connection
    assert pool.stats.connections_opened == 2


def test_leak_report_names_the_thread_that_took_the_connection(caplog) -> None:
    from django_sqla_pool.core import leaks
    from django_sqla_pool.core.pool import Holding

    taken, done = threading.Event(), threading.Event()
    settings_dict = {
        **connection.settings_dict,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "leak_detection_threshold": 0.01},
    }

    def hold() -> None:
        db = DatabaseWrapper(settings_dict, alias="leaky")
        db.ensure_connection()
        taken.set()
        done.wait(10)
        db.close()

    worker = threading.Thread(target=hold, name="leaky-worker")
    try:
        with caplog.at_level(logging.WARNING, logger="django_sqla_pool"):
            worker.start()
            assert taken.wait(10)
            time.sleep(0.05)
            leaks.scan(registry.pools())  # or the watcher thread already did
        [pool] = registry.pools("leaky")
        assert pool.stats.leaks_reported == 1
        assert "by thread 'leaky-worker'" in caplog.text
    finally:
        done.set()
        worker.join()
        registry.close_pools("leaky")
    assert Holding(0.0, worker.ident or 0, None).thread == f"ended thread {worker.ident}"
