"""Round trips to the server, counted in the driver (libpq's protocol trace).

A pool earns its keep by costing nothing per request: a request that runs
one query in autocommit on a recently used connection must cost exactly one
round trip. These tests keep later changes from adding hidden ones (a ping,
a rollback, a SET, a version check) to the checkout or checkin path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import is_psycopg3

from django_sqla_pool.core import registry

from .conftest import pool_of
from .helpers import wsgi_get

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not is_psycopg3, reason="counts libpq protocol messages through psycopg 3's pgconn.trace()"
    ),
]

# Each round trip ends with one of these frontend messages: a simple-protocol
# Query, or the Sync that closes an extended-protocol exchange.
_ROUND_TRIP_ENDS = ("Query", "Sync")


@contextmanager
def traced(dbapi_conn: Any, path: Path) -> Iterator[list[str]]:
    """Collect the frontend messages this driver connection sends inside the block."""
    from psycopg import pq

    messages: list[str] = []
    with path.open("w") as trace_file:
        dbapi_conn.pgconn.trace(trace_file.fileno())
        dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield messages
        finally:
            dbapi_conn.pgconn.untrace()  # flushes libpq's buffer
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0] == "F":
            messages.append(" ".join(f.strip() for f in fields[2:]).strip())


def round_trips(messages: list[str]) -> int:
    return sum(1 for m in messages if m.split(" ", 1)[0] in _ROUND_TRIP_ENDS)


def fresh_pooled_connection() -> Any:
    """Start from an empty pool, open one connection and return it to the pool, set up."""
    connection.close()
    registry.close_pools("default")
    status, _ = wsgi_get("/sleep/", "ms=0")
    assert status == 200
    [pool] = registry.pools("default")
    assert (pool.checkedout(), pool.checkedin()) == (0, 1)
    connection.ensure_connection()
    dbapi_conn = connection.connection
    connection.close()
    return dbapi_conn


def test_request_with_one_query_on_a_recently_used_connection_is_one_round_trip(
    tmp_path: Path,
) -> None:
    dbapi_conn = fresh_pooled_connection()
    with traced(dbapi_conn, tmp_path / "trace") as messages:
        # Checkout (liveness check within pool_pre_ping_window), Django's
        # connection setup, the view's SELECT 1, checkin and reset.
        status, _ = wsgi_get("/sleep/", "ms=0")
    assert status == 200
    assert round_trips(messages) == 1, messages
    assert messages == ['Query "SELECT 1"']


def test_connection_idle_longer_than_the_window_is_pinged_once(
    make_wrapper: Any, tmp_path: Path
) -> None:
    # The counterpart, proving the trace sees what the pool sends at checkout.
    db = make_wrapper("rt_ping", pool_pre_ping_window=0)
    db.ensure_connection()
    dbapi_conn = db.connection
    db.close()
    assert pool_of(db).checkedin() == 1
    with traced(dbapi_conn, tmp_path / "trace") as messages:
        with db.cursor() as cursor:
            cursor.execute("SELECT 1")
        db.close()
    assert round_trips(messages) == 2, messages
