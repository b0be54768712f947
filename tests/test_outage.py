"""connect_grace: checkouts ride out a short outage, one thread retrying; beyond it, fail fast."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from django_sqla_pool.core.errors import PoolConnectError
from django_sqla_pool.core.pool import SqlaPool
from django_sqla_pool.core.postgresql import driver
from django_sqla_pool.core.postgresql import transient as pg_errors

from .tcpproxy import TcpProxy
from .throwaway import Cluster, wait_until

Database = driver.Database

#: The proxy of the tests that need an attempt held under way (the fault harness's range).
PROXY_PORT = 25438


def use(pool: SqlaPool, **kwargs: Any) -> int:
    """Check out, run a query, check in; the backend pid."""
    record = pool.checkout(**kwargs)
    try:
        return int(record.info["backend_pid"])
    finally:
        pool.checkin(record)


def checkout_in_thread(pool: SqlaPool, results: list[Any]) -> threading.Thread:
    def body() -> None:
        try:
            results.append(use(pool))
        except Exception as error:
            results.append(error)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_checkout_waits_through_an_outage_shorter_than_connect_grace(
    cluster: Cluster, make_pool
) -> None:
    pool = make_pool(cluster.params(connect_timeout=2), connect_grace=30)
    use(pool)
    cluster.stop()
    results: list[Any] = []
    waiters = [checkout_in_thread(pool, results) for _ in range(4)]
    wait_until(lambda: pool.stats.server_waits == 4, what="4 checkouts waiting for the server")
    assert results == []  # nobody failed while the server was away
    cluster.start()
    for thread in waiters:
        thread.join(30)
    assert len(results) == 4 and all(isinstance(r, int) for r in results), results
    assert pool.stats.server_unreachable_errors == 0
    assert pool._outage.since is None


def test_one_thread_at_a_time_attempts_to_connect_during_an_outage(
    cluster: Cluster, make_pool, monkeypatch
) -> None:
    in_flight = 0
    most = 0
    attempts = 0
    lock = threading.Lock()
    real_connect = driver.connect

    def counting_connect(params: dict[str, Any]) -> Any:
        nonlocal in_flight, most, attempts
        with lock:
            in_flight += 1
            attempts += 1
            most = max(most, in_flight)
        try:
            time.sleep(0.02)  # widen the window in which a second attempt would overlap
            return real_connect(params)
        finally:
            with lock:
                in_flight -= 1

    pool = make_pool(cluster.params(connect_timeout=2), connect_grace=30)
    cluster.stop()
    monkeypatch.setattr(pool, "family", dataclasses.replace(pool.family, connect=counting_connect))
    results: list[Any] = []
    # Attempts already under way when the server went away each fail once;
    # from the first failure on, the pool knows, and one thread retries.
    waiters = [checkout_in_thread(pool, results)]
    wait_until(lambda: pool.stats.server_waits == 1, what="the first failure")
    waiters += [checkout_in_thread(pool, results) for _ in range(7)]
    wait_until(lambda: pool.stats.server_waits == 8, what="8 checkouts waiting")
    wait_until(lambda: attempts >= 6, what="several reconnect attempts")
    assert most == 1, f"{most} connection attempts overlapped"
    cluster.start()
    for thread in waiters:
        thread.join(30)
    assert len(results) == 8 and all(isinstance(r, int) for r in results), results


def test_beyond_connect_grace_checkouts_fail_fast_then_recover_at_once(
    cluster: Cluster, make_pool
) -> None:
    pool = make_pool(cluster.params(connect_timeout=2, password="pw-hidden-91"), connect_grace=1)
    use(pool)
    cluster.stop()
    with pytest.raises(PoolConnectError) as first:
        use(pool)
    message = str(first.value)
    assert "unreachable for" in message and "connect_grace=1 s is over" in message
    assert "Connection refused" in message and "pw-hidden-91" not in message
    # The grace is counted from the start of the outage: later checkouts do not wait it again.
    start = time.monotonic()
    with pytest.raises(PoolConnectError, match="unreachable for"):
        use(pool)
    assert time.monotonic() - start < 0.9
    assert pool.stats.server_unreachable_errors == 2
    cluster.start()
    use(pool)  # the first checkout after the server returns succeeds
    assert pool._outage.since is None


def test_the_checkout_timeout_bounds_the_wait_for_the_server(cluster: Cluster, make_pool) -> None:
    pool = make_pool(cluster.params(connect_timeout=2), connect_grace=60)
    cluster.stop()
    start = time.monotonic()
    with pytest.raises(PoolConnectError, match=r"this checkout's bound of 0\.30 s is over"):
        use(pool, timeout=0.3)
    assert time.monotonic() - start < 30


def test_permanent_connect_errors_fail_at_once_without_waiting(cluster: Cluster, make_pool) -> None:
    pool = make_pool(cluster.params(dbname="no_such_database"), connect_grace=60)
    with pytest.raises(PoolConnectError, match="does not exist"):
        use(pool)
    assert pool.stats.server_waits == 0 and pool._outage.since is None


def test_connect_grace_0_fails_at_the_first_refused_connection(cluster: Cluster, make_pool) -> None:
    pool = make_pool(cluster.params(connect_timeout=2), connect_grace=0)
    cluster.stop()
    with pytest.raises(PoolConnectError, match="Connection refused"):
        use(pool)
    assert pool.stats.server_waits == 0 and pool.stats.connect_errors == 1


def test_checkouts_do_not_fail_across_a_fast_restart_under_load(
    cluster: Cluster, make_pool
) -> None:
    pool = make_pool(cluster.params(connect_timeout=2), pool_size=4, connect_grace=10)
    stop = threading.Event()
    checkout_errors: list[BaseException] = []
    done = [0]

    def client() -> None:
        while not stop.is_set():
            try:
                record = pool.checkout()
            except Exception as error:
                checkout_errors.append(error)
                continue
            try:
                driver.execute_outside_transaction(record.dbapi_connection, "SELECT 1")
                done[0] += 1
            except driver.DriverError:
                pass  # in flight when the server went down: not the pool's to hide
            finally:
                pool.checkin(record)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: done[0] > 20, what="load before the restart")
        cluster.restart("fast")
        before = done[0]
        wait_until(lambda: done[0] > before + 20, timeout=20, what="load after the restart")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert checkout_errors == []


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ('connection to server at "h", port 5 failed: Connection refused', True),
        ('connection to server at "h", port 5 failed: timeout expired', True),
        ('connection to server on socket "/s/.s.PGSQL.5" failed: No such file or directory', True),
        ("server closed the connection unexpectedly", True),
        ('could not translate host name "db" to address: Name or service not known', True),
        ("... failed: FATAL:  the database system is starting up", True),
        ("... failed: FATAL:  the database system is shutting down", True),
        ("... failed: FATAL:  sorry, too many clients already", True),
        ("... failed: FATAL:  remaining connection slots are reserved for superuser", True),
        ('... failed: FATAL:  database "x" does not exist', False),
        ('... failed: FATAL:  password authentication failed for user "u"', False),
        ('... failed: FATAL:  role "u" does not exist', False),
        ("... failed: FATAL:  unsupported startup parameter: options", False),
        ("fe_sendauth: no password supplied", False),
        ('invalid integer value "abc" for connection option "port"', False),
        ('invalid sslmode value: "bogus"', False),
    ],
)
def test_which_connect_failures_are_transient(message: str, transient: bool) -> None:
    # Both drivers raise OperationalError without a SQLSTATE here: the message decides.
    assert pg_errors.is_transient(Database.OperationalError(message)) is transient


def test_a_bad_parameter_is_never_transient() -> None:
    assert not pg_errors.is_transient(Database.ProgrammingError('invalid connection option "x"'))


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A proxy in front of the suite's server, which it never stops or reconfigures."""
    from django.db import connection

    host = connection.settings_dict["HOST"] or "127.0.0.1"
    port = int(connection.settings_dict["PORT"] or 5432)
    tcp = TcpProxy(PROXY_PORT, (host, port))
    yield tcp
    tcp.close()


def proxied_params(proxy: TcpProxy) -> dict[str, Any]:
    from django.db import connection

    return {
        "host": "127.0.0.1",
        "port": proxy.port,
        "user": connection.settings_dict["USER"] or "postgres",
        "dbname": "postgres",
        "connect_timeout": 5,
    }


def start_late_attempt(
    make_pool: Any, proxy: TcpProxy
) -> tuple[SqlaPool, threading.Thread, list[Any]]:
    """Past the grace: one checkout's connection attempt, held by the proxy.

    The pool (connect_grace 0.2 s), the attempting thread, and the list its result lands in.
    """
    pool = make_pool(proxied_params(proxy), connect_grace=0.2)
    results: list[Any] = []
    with pytest.raises(PoolConnectError, match=r"connect_grace=0\.2 s is over"):
        use(pool)  # the outage begins, and its grace runs out
    proxy.hold()
    attempter = checkout_in_thread(pool, results)
    wait_until(lambda: proxy.held == 1, what="the attempt under way")
    return pool, attempter, results


def test_past_the_grace_a_checkout_waits_for_the_attempt_under_way(
    proxy: TcpProxy, make_pool
) -> None:
    # Before: a checkout arriving while another thread's attempt was under way
    # failed at once, even when that attempt was about to succeed (the harness
    # saw 8-9 failures 40-190 ms after a 10 s outage ended).
    pool, attempter, first = start_late_attempt(make_pool, proxy)
    waiter_results: list[Any] = []
    waiter = checkout_in_thread(pool, waiter_results)
    wait_until(lambda: pool.stats.server_waits == 3, what="the second checkout waiting")
    waiter.join(0.5)
    assert waiter_results == [] and waiter.is_alive(), "gave up while an attempt was under way"
    proxy.release()  # the server answers the attempt
    attempter.join(10)
    waiter.join(10)
    assert [type(r) for r in first + waiter_results] == [int, int], first + waiter_results
    assert pool.stats.server_unreachable_errors == 1  # only the checkout that began it
    assert pool._outage.since is None


def test_past_the_grace_a_failed_attempt_fails_its_waiters_without_attempts_of_their_own(
    proxy: TcpProxy, make_pool
) -> None:
    pool, attempter, first = start_late_attempt(make_pool, proxy)
    accepted = proxy.accepted
    waiters_results: list[Any] = []
    waiters = [checkout_in_thread(pool, waiters_results) for _ in range(3)]
    wait_until(lambda: pool.stats.server_waits == 5, what="3 checkouts waiting")
    proxy.drop_held()  # the attempt fails: the server closed the connection
    for thread in [attempter, *waiters]:
        thread.join(10)
    assert len(first + waiters_results) == 4
    assert all(isinstance(r, PoolConnectError) for r in first + waiters_results)
    assert proxy.accepted == accepted, "a waiter made an attempt of its own"
    assert pool._outage.since is not None and pool._outage._attempter is None
    proxy.forward()
    use(pool)  # the next checkout attempts, and the server answers
