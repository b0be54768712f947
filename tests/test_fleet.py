"""The fleet view from pg_stat_activity, against the real server."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest

from django_sqla_pool.core.postgresql.params import HOSTNAME as _HOSTNAME
from django_sqla_pool.core.postgresql.params import parse_application_name
from django_sqla_pool.observe.fleet import STATES, fleet

from .conftest import backend_pid, raw_connect

pytestmark = pytest.mark.django_db(transaction=True)


def entry(view: dict[str, Any], host: str, pid: int, alias: str) -> dict[str, Any] | None:
    return next(
        (p for p in view["processes"] if (p["host"], p["pid"], p["alias"]) == (host, pid, alias)),
        None,
    )


def poll_fleet(predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = fleet("default")
        if predicate(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("sqlapool:default:web-1:42", ("default", "web-1", 42)),
        ("my app sqlapool:replica:web-1:7", ("replica", "web-1", 7)),
        ("sqlapool:odd:alias:h:9", ("odd:alias", "h", 9)),
        ("psql", None),
        ("notsqlapool:default:h:1", None),
        ("sqlapool:default:h:pid", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_application_name_finds_our_mark_after_any_prefix(name, parsed) -> None:
    assert parse_application_name(name) == parsed


def test_fleet_counts_this_process_connections_by_state_and_longest_query(make_wrapper) -> None:
    idle = make_wrapper("fleetA")
    in_tx = make_wrapper("fleetA")
    backend_pid(idle)  # checked out, no transaction: the server sees it idle
    in_tx.set_autocommit(False)
    with in_tx.cursor() as cursor:  # idle in transaction, holding a lock the third one waits for
        cursor.execute("SELECT pg_advisory_xact_lock(424242)")

    def run_blocked_query() -> None:
        db = make_wrapper("fleetA")
        try:
            with db.cursor() as cursor:
                # The literal stands for a secret in a query: it must never be shown.
                cursor.execute("SELECT 'fleet-secret-literal', pg_advisory_xact_lock(424242)")
        finally:
            db.close()

    worker = threading.Thread(target=run_blocked_query)
    worker.start()
    try:
        view = poll_fleet(
            lambda v: (
                (e := entry(v, _HOSTNAME, os.getpid(), "fleetA")) is not None
                and e["states"]["active"] == 1
                and (e["longest_query_s"] or 0) >= 0.05
            )
        )
    finally:
        in_tx.rollback()
        worker.join(10)
    mine = entry(view, _HOSTNAME, os.getpid(), "fleetA")
    assert mine is not None
    assert mine["connections"] == 3
    assert mine["states"] == {
        "active": 1,
        "idle": 1,
        "idle in transaction": 1,
        "idle in transaction (aborted)": 0,
    }
    assert mine["this_process"] is True
    assert mine["longest_query_s"] >= 0.05
    assert mine["oldest_connection_s"] >= mine["longest_query_s"]
    test_db = idle.settings_dict["NAME"]
    assert mine["databases"] == [test_db]
    text = json.dumps(view)
    assert json.loads(text) == view
    assert "fleet-secret-literal" not in text


def test_fleet_groups_other_processes_and_keeps_other_clients_out() -> None:
    marked = [
        raw_connect(application_name="billing sqlapool:fake:otherhost:4242") for _ in range(2)
    ]
    plain = raw_connect(application_name="psql")
    try:
        view = fleet("default")
    finally:
        for conn in [*marked, plain]:
            conn.close()
    other = entry(view, "otherhost", 4242, "fake")
    assert other is not None
    assert other["connections"] == 2
    assert other["this_process"] is False
    assert set(STATES) <= set(other["states"])
    assert other["longest_query_s"] is None  # both idle
    server = view["server"]
    assert server["pooled_connections"] == sum(p["connections"] for p in view["processes"])
    assert server["other_connections"] == server["connections"] - server["pooled_connections"]
    assert server["other_connections"] >= 1  # psql, and raw connections of other tests


def test_fleet_headroom_is_max_connections_minus_reserved_minus_in_use(server) -> None:
    view = fleet("default")["server"]
    max_connections, superuser_reserved, reserved = server.execute(
        "SELECT current_setting('max_connections')::int,"
        " current_setting('superuser_reserved_connections')::int,"
        " coalesce(current_setting('reserved_connections', true), '0')::int"
    ).fetchone()
    assert view["max_connections"] == max_connections
    assert view["superuser_reserved_connections"] == superuser_reserved
    assert view["reserved_connections"] == reserved
    assert view["available"] == max_connections - superuser_reserved - reserved
    assert view["headroom"] == view["available"] - view["connections"]
    assert view["connections"] >= 2  # at least the fleet query's own and the server fixture's
    assert view["hidden_connections"] == 0  # the test role is a superuser: it sees every row
