"""Warm start and idle shrink, watched from the server's side.

PostgreSQL shows each pooled connection's alias in pg_stat_activity
(application_name). MySQL/MariaDB connections carry no such mark, so there
the server's processlist is matched against the thread ids each alias's
pools opened (recorded as they connect).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from sqlalchemy.pool.base import _ConnectionRecord

from django_sqla_pool import open_pools
from django_sqla_pool.core import housekeeping, registry
from django_sqla_pool.core.pool import SqlaPool

from . import dialect
from .conftest import backend_pid, run_in_child
from .throwaway import Cluster

pytestmark = pytest.mark.django_db(transaction=True)

#: alias -> server thread ids its pools opened (MySQL/MariaDB only; see on_server()).
OPENED: dict[str, set[int]] = {}


@pytest.fixture(autouse=True)
def record_opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not dialect.MYSQL:
        yield
        return
    original = SqlaPool._on_connect

    def on_connect(pool: SqlaPool, dbapi_conn: Any, record: Any) -> None:
        original(pool, dbapi_conn, record)
        OPENED.setdefault(pool.alias, set()).add(record.info["backend_pid"])

    # Pools bind the method when created: patched before the test creates any.
    monkeypatch.setattr(SqlaPool, "_on_connect", on_connect)
    yield
    OPENED.clear()


#: Allowance for a busy machine on top of each deadline the feature promises.
GRACE = 2.0


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll until ``predicate()``; return the seconds it took, fail after ``seconds``."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < seconds, f"not within {seconds:.2f} s: {what}"
        time.sleep(0.02)
    return time.monotonic() - start


def pool_for(wrapper: Any) -> Any:
    """The pool this wrapper's next connect() would use, created now (as open_pools() does)."""
    return wrapper._pool_for(wrapper.get_connection_params())


def on_server(server: Any, alias: str) -> set[int]:
    """Backend pids of this process's pooled connections of ``alias``, as the server sees them."""
    return dialect.pooled_sessions(server, alias, OPENED.get(alias, set()))


def idle_pids(pool: Any) -> set[int]:
    return {record.info["backend_pid"] for record in list(pool._pool._items)}


def select_one(record: Any) -> None:
    cursor = record.dbapi_connection.cursor()
    cursor.execute("SELECT 1")
    cursor.fetchall()
    record.dbapi_connection.rollback()


def test_warm_start_opens_the_minimum_without_a_request(server) -> None:
    databases = settings.DATABASES
    databases["warm"] = {
        **connection.settings_dict,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool_min_size": 3},
    }
    try:
        [pool] = open_pools(["warm"])
        assert pool in registry.pools("warm")
        wait_for(lambda: pool.checkedin() == 3, 10, "three warm connections")
        counters = pool.stats.counters()
        assert (counters["connections_opened"], counters["checkouts"]) == (3, 0)
        assert on_server(server, "warm") == idle_pids(pool) and len(idle_pids(pool)) == 3
        # The first checkout takes a warm connection instead of opening one.
        record = pool.checkout()
        assert record.info["backend_pid"] in on_server(server, "warm")
        pool.checkin(record)
        assert pool.stats.connections_opened == 3
    finally:
        registry.close_pools("warm")
        del databases["warm"]
        del connections["warm"]


def test_open_pools_names_an_alias_that_is_not_pooled() -> None:
    with pytest.raises(Exception, match=r"open_pools\('nope'\).*django_sqla_pool ENGINE"):
        open_pools(["nope"])


def burst(pool: Any, count: int) -> None:
    """``count`` connections checked out at once, each running a query, then all returned."""
    records = [pool.checkout() for _ in range(count)]
    try:
        for record in records:
            select_one(record)
    finally:
        for record in records:
            pool.checkin(record)


def test_after_a_burst_and_no_traffic_the_pool_is_back_to_its_minimum(make_wrapper, server) -> None:
    timeout = 1.0
    pool = pool_for(
        make_wrapper(
            "hk_burst", pool_size=2, max_overflow=6, pool_min_size=1, pool_idle_timeout=timeout
        )
    )
    wait_for(lambda: pool.checkedin() == 1, 10, "the warm connection")
    burst(pool, 8)
    returned = time.monotonic()
    # Nothing is closed when returned, overflow connections included.
    assert len(on_server(server, "hk_burst")) == 8 and pool.checkedin() == 8
    interval = housekeeping.interval(registry.pools())
    wait_for(
        lambda: len(on_server(server, "hk_burst")) == 1,
        timeout + interval + GRACE,
        "back to pool_min_size=1 in pg_stat_activity",
    )
    took = time.monotonic() - returned
    # Not before the idle timeout (less its jitter of at most 10 %).
    assert took >= timeout * (1 - housekeeping.IDLE_JITTER) - 0.05
    assert on_server(server, "hk_burst") == idle_pids(pool)
    assert pool.stats.connections_closed_idle == 7 and pool.checkedout() == 0
    print(
        f"back to the minimum {took:.2f} s after the burst (timeout {timeout} s, "
        f"housekeeping interval {interval} s)"
    )


def test_idle_connections_close_after_the_timeout_and_the_pool_grows_back_under_load(
    make_wrapper, server
) -> None:
    pool = pool_for(
        make_wrapper("hk_grow", pool_size=2, max_overflow=4, pool_min_size=1, pool_idle_timeout=0.5)
    )
    for _ in range(2):
        burst(pool, 6)
        assert len(on_server(server, "hk_grow")) == 6
        wait_for(lambda: len(on_server(server, "hk_grow")) == 1, 0.5 + GRACE, "shrunk to 1")
    # The second burst opened five again, and they were closed again.
    assert pool.stats.connections_opened == 1 + 5 + 5
    assert pool.stats.connections_closed_idle == 10
    assert pool.stats.connections_open_peak == 6


def test_a_checked_out_connection_is_never_closed_for_being_idle(make_wrapper, server) -> None:
    pool = pool_for(make_wrapper("hk_held", pool_size=2, max_overflow=0, pool_idle_timeout=0.3))
    held, spare = pool.checkout(), pool.checkout()
    pool.checkin(spare)
    try:
        wait_for(lambda: pool.stats.connections_closed_idle == 1, 0.3 + GRACE, "spare closed")
        assert on_server(server, "hk_held") == {held.info["backend_pid"]}
        select_one(held)  # still usable
    finally:
        pool.checkin(held)
    wait_for(lambda: not on_server(server, "hk_held"), 0.3 + GRACE, "closed once returned")


def test_jitter_shortens_the_idle_timeout_by_at_most_ten_percent(make_wrapper) -> None:
    pool = pool_for(make_wrapper("hk_jitter", pool_size=4, max_overflow=0, pool_idle_timeout=100))
    burst(pool, 4)
    now = time.monotonic()
    housekeeping.tend(pool, now + 89)
    assert pool.checkedin() == 4
    factors = [record.info["idle_jitter"] for record in list(pool._pool._items)]
    assert all(0.9 <= factor <= 1.0 for factor in factors) and len(set(factors)) == 4
    housekeeping.tend(pool, now + 101)
    assert pool.checkedin() == 0


def test_a_thread_whose_parked_connection_was_closed_takes_another(make_wrapper) -> None:
    wrapper = make_wrapper("hk_parked", pool_size=2, max_overflow=0, pool_idle_timeout=5)
    first = backend_pid(wrapper)
    wrapper.close()  # parked: the wrapper would take this one back
    pool = pool_for(wrapper)
    housekeeping.tend(pool, time.monotonic() + 60)
    assert pool.checkedin() == 0
    assert backend_pid(wrapper) != first
    assert pool.stats.connections_opened == 2


def test_the_minimum_is_kept_however_long_the_connections_are_idle(make_wrapper) -> None:
    pool = pool_for(
        make_wrapper("hk_min", pool_size=3, max_overflow=0, pool_min_size=2, pool_idle_timeout=5)
    )
    burst(pool, 3)
    housekeeping.tend(pool, time.monotonic() + 3600)
    assert (pool.checkedin(), pool.stats.connections_closed_idle) == (2, 1)


def test_a_thread_left_waiting_as_an_idle_connection_closes_is_served(
    make_wrapper, monkeypatch
) -> None:
    """The waiter decided to wait (every place taken) just before the close freed one."""
    pool = pool_for(
        make_wrapper("hk_race", pool_size=1, max_overflow=0, pool_timeout=10, pool_idle_timeout=5)
    )
    burst(pool, 1)
    original_close = _ConnectionRecord.close

    def close_once_a_thread_waits(record: Any) -> None:
        wait_for(lambda: pool.waiting == 1, 10, "the waiter queued")
        original_close(record)

    monkeypatch.setattr(_ConnectionRecord, "close", close_once_a_thread_waits)
    got: list[Any] = []
    keeper = threading.Thread(target=housekeeping.tend, args=(pool, time.monotonic() + 60))
    keeper.start()
    wait_for(lambda: pool.checkedin() == 0, 10, "the idle connection taken out to close")
    waiter = threading.Thread(target=lambda: got.append(pool.checkout()))
    waiter.start()
    keeper.join(20)
    waiter.join(20)
    monkeypatch.undo()
    assert len(got) == 1, "the waiter timed out: nobody opened the freed place for it"
    select_one(got[0])
    pool.checkin(got[0])


class DownMariaDB:
    """A throwaway MariaDB (tests/mysqlserver.py), installed but not started, with the few
    methods of throwaway.Cluster the test below uses."""

    def __init__(self) -> None:
        from .mysqlserver import MariaDB, Unavailable

        try:
            self.server = MariaDB()
        except Unavailable as exc:
            pytest.skip(str(exc))
        self.server.install()

    def settings_dict(self, base: dict[str, Any], **options: Any) -> dict[str, Any]:
        where = {"HOST": "127.0.0.1", "PORT": str(self.server.port), "NAME": "mysql"}
        return {
            **base,
            **where,
            "USER": "root",
            "PASSWORD": "",
            "OPTIONS": {**base["OPTIONS"], **options},
        }

    def start(self) -> None:
        self.server.start()

    def cleanup(self) -> None:
        self.server.cleanup()


@pytest.fixture
def down_server() -> Iterator[Any]:
    """A server of the suite's family that is not running yet."""
    if dialect.MYSQL:
        server = DownMariaDB()
        try:
            yield server
        finally:
            server.cleanup()
        return
    with Cluster(25452) as cluster:
        yield cluster


def sessions_on(down_server: Any, alias: str) -> int:
    """This process's pooled sessions of ``alias`` on the down_server fixture's server."""
    if dialect.MYSQL:
        import MySQLdb

        conn = MySQLdb.connect(**down_server.server.params())
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT ID FROM information_schema.PROCESSLIST")
            return len({row[0] for row in cursor.fetchall()} & OPENED.get(alias, set()))
        finally:
            conn.close()
    rows = down_server.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
        [f"sqlapool:{alias}:%"],
    )
    return int(rows[0][0])


def test_warm_start_survives_a_down_server_and_fills_when_it_is_back(
    down_server, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(housekeeping, "RETRY_FIRST", 0.1)
    monkeypatch.setattr(housekeeping, "RETRY_MAX", 0.3)
    caplog.set_level(logging.WARNING, logger="django_sqla_pool")
    wrapper = type(connections["default"])(
        down_server.settings_dict(
            connection.settings_dict, pool_min_size=2, pool_size=2, connect_timeout=2
        ),
        alias="hk_down",
    )
    try:
        pool = pool_for(wrapper)  # nothing raised: the warm-up runs in the background
        wait_for(lambda: pool.stats.connect_errors >= 2, 10, "retried connects")
        assert housekeeping.open_count(pool) == 0 and pool.checkedout() == 0
        assert any(
            "background connect failed: pool=hk_down" in r.getMessage() for r in caplog.records
        )
        down_server.start()
        wait_for(lambda: pool.checkedin() == 2, 20, "warm once the server is back")
        assert sessions_on(down_server, "hk_down") == 2
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        wrapper.close()
        assert pool.stats.connections_opened == 2
    finally:
        registry.close_pools("hk_down")


def test_a_fork_after_warm_start_leaves_the_parents_connections_alone(make_wrapper, server) -> None:
    wrapper = make_wrapper("hk_fork", pool_size=3, max_overflow=0, pool_min_size=3)
    pool = pool_for(wrapper)
    wait_for(lambda: pool.checkedin() == 3, 10, "three warm connections")
    parent_pids = idle_pids(pool)

    def child() -> int:
        if registry.pools("hk_fork"):
            return 2  # the parent's pool must be forgotten
        own = type(wrapper)(wrapper.settings_dict, alias="hk_fork")
        child_pool = pool_for(own)  # the child warms its own
        deadline = time.monotonic() + 10
        while child_pool.checkedin() < 3:
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.02)
        if idle_pids(child_pool) & parent_pids:
            return 4
        gc.collect()  # the inherited objects go: they must not touch the sockets
        child_pool.retire()
        return 0

    assert run_in_child(child) == 0
    assert parent_pids <= on_server(server, "hk_fork")
    records = [pool.checkout() for _ in range(3)]
    try:
        for record in records:
            select_one(record)  # the sessions still answer
    finally:
        for record in records:
            pool.checkin(record)
    assert {r.info["backend_pid"] for r in records} == parent_pids
    assert sum(pool.stats.invalidations.values()) == 0 and pool.stats.connections_closed == 0


def test_shrinking_while_threads_hammer_the_pool_keeps_the_accounting_right(
    make_wrapper, server
) -> None:
    # The idle timeout is shorter than the gaps between checkouts: connections are closed
    # and opened all the time, with threads checking out and waiting in between.
    pool = pool_for(
        make_wrapper(
            "hk_stress",
            pool_size=2,
            max_overflow=2,
            pool_min_size=1,
            pool_idle_timeout=0.05,
            pool_timeout=10,
        )
    )
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(60):
                record = pool.checkout()
                try:
                    select_one(record)
                finally:
                    pool.checkin(record)
                if i % 20 == 19:
                    # All quiet at once, long enough for the housekeeper to close some.
                    pause.wait(30)
                    time.sleep(0.3)
        except BaseException as error:
            errors.append(error)

    pause = threading.Barrier(8)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    assert pool.stats.checkouts == 480 and pool.stats.connections_closed_idle >= 3
    assert pool.stats.connections_open_peak <= 4
    # Every connection the pool counts is one the server has, and it settles at the minimum.
    wait_for(lambda: len(on_server(server, "hk_stress")) == 1, GRACE, "back to 1")
    assert housekeeping.open_count(pool) == pool.checkedin() == 1
    assert on_server(server, "hk_stress") == idle_pids(pool)
