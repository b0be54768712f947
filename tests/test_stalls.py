"""Every wait on the server has a bound: connect, the liveness ping, reads on a dead path."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

from django_sqla_pool.backends.postgresql.base import DatabaseWrapper
from django_sqla_pool.core.errors import PoolConnectError
from django_sqla_pool.core.postgresql import driver
from django_sqla_pool.core.postgresql.params import LIBPQ_DEFAULTS

from .throwaway import Cluster, wait_until


def in_thread(body: Any) -> tuple[threading.Thread, list[Any]]:
    """Run body() in a thread; its result or exception lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(body())
        except BaseException as error:
            out.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_every_pooled_connection_gets_the_stall_bounds_unless_options_set_them() -> None:
    settings_dict = {
        **connection.settings_dict,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "keepalives_idle": 7},
    }
    params = DatabaseWrapper(settings_dict, alias="bounds").get_connection_params()
    assert params["keepalives_idle"] == 7  # the user's value wins
    for key, value in LIBPQ_DEFAULTS.items():
        if key != "keepalives_idle" and not (
            key == "tcp_user_timeout" and driver.libpq_version() < 120000
        ):
            assert params[key] == value, key


def test_connect_to_a_stopped_postmaster_fails_within_connect_timeout(
    cluster: Cluster, make_pool
) -> None:
    pool = make_pool(cluster.params(connect_timeout=2), connect_grace=0)
    with cluster.stopped_process(cluster.postmaster_pid()):
        start = time.monotonic()
        thread, out = in_thread(pool.checkout)
        thread.join(30)
        assert not thread.is_alive(), "the connect is stuck"
        assert isinstance(out[0], PoolConnectError), out
        assert "timeout expired" in str(out[0])
        assert time.monotonic() - start < 20
    record = pool.checkout()  # the postmaster runs again: the pool recovers
    pool.checkin(record)


@pytest.mark.skipif(not driver.is_psycopg3, reason="psycopg2's ping has no bound of its own")
def test_ping_of_a_stalled_backend_gives_up_after_ping_timeout_and_reconnects(
    cluster: Cluster, make_pool
) -> None:
    pool = make_pool(cluster.params(connect_timeout=2), ping_timeout=0.5, pool_pre_ping_window=0)
    record = pool.checkout()
    stalled_pid = record.info["backend_pid"]
    pool.checkin(record)
    with cluster.stopped_process(stalled_pid):
        thread, out = in_thread(pool.checkout)
        thread.join(30)
        assert not thread.is_alive(), "the ping is stuck"
    record = out[0]
    assert not isinstance(record, BaseException), record
    try:
        assert record.info["backend_pid"] != stalled_pid
        assert pool.stats.invalidations["pre_ping"] == 1
    finally:
        pool.checkin(record)


def test_a_query_on_a_black_holed_path_fails_within_tcp_user_timeout_and_the_pool_recovers(
    cluster: Cluster, make_pool
) -> None:
    pool = make_pool(
        cluster.params(connect_timeout=2, tcp_user_timeout=1000, keepalives_idle=1),
        connect_grace=0,
        ping_timeout=1,
    )
    record = pool.checkout()
    try:
        with cluster.black_holed():
            start = time.monotonic()
            thread, out = in_thread(
                lambda: driver.execute_outside_transaction(record.dbapi_connection, "SELECT 1")
            )
            thread.join(60)
            assert not thread.is_alive(), "the query is stuck"
            assert isinstance(out[0], driver.DriverError), out
            assert time.monotonic() - start < 30
            # New connections fail too (tcp_user_timeout or connect_timeout), not hang.
            thread, out = in_thread(pool.checkout)
            thread.join(60)
            assert not thread.is_alive(), "the connect is stuck"
            assert isinstance(out[0], PoolConnectError), out
    finally:
        pool.checkin(record)  # broken: invalidated, not pooled
    wait_until(lambda: pool.checkedout() == 0, what="the broken connection returned")
    record = pool.checkout()
    pool.checkin(record)


@pytest.mark.skipif(not driver.is_psycopg3, reason="psycopg2's ping has no bound of its own")
def test_checkout_timeout_bounds_the_ping_of_a_stalled_backend(cluster: Cluster, make_pool) -> None:
    pool = make_pool(cluster.params(connect_timeout=2), ping_timeout=60, pool_pre_ping_window=0)
    record = pool.checkout()
    stalled_pid = record.info["backend_pid"]
    pool.checkin(record)
    with cluster.stopped_process(stalled_pid):
        start = time.monotonic()
        thread, out = in_thread(lambda: pool.checkout(timeout=0.5))
        thread.join(30)
        assert not thread.is_alive(), "the ping is stuck"
        assert time.monotonic() - start < 30  # not ping_timeout's 60 s
    record = out[0]
    assert not isinstance(record, BaseException), record
    assert record.info["backend_pid"] != stalled_pid
    pool.checkin(record)
