"""Thread affinity: a wrapper takes back the connection it returned, if nobody used it since.

The connection goes back to the pool at every close (idle, rolled back,
available to every thread); only the wrapper's next connect() prefers it,
and skips Django's connection setup when it gets it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from sqlalchemy import event

from django_sqla_pool.core import registry

from . import dialect
from .conftest import backend_pid, pool_of, run_in_child

pytestmark = pytest.mark.django_db(transaction=True)

#: Django's wrapper module of the suite's family, whose connection setup the tests count
#: (imported by name: the other family's driver need not be installed).
base = importlib.import_module(
    "django.db.backends.mysql.base" if dialect.MYSQL else "django.db.backends.postgresql.base"
)


@pytest.fixture
def setups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The aliases whose wrappers ran Django's connection setup (full connect())."""
    seen: list[str] = []
    original = base.DatabaseWrapper.init_connection_state

    def init_connection_state(self: Any) -> None:
        seen.append(self.alias)
        original(self)

    monkeypatch.setattr(base.DatabaseWrapper, "init_connection_state", init_connection_state)
    return seen


@pytest.fixture
def signals() -> Iterator[list[tuple[Any, Any]]]:
    """(sender, connection) of every connection_created signal sent."""
    seen: list[tuple[Any, Any]] = []

    def receiver(sender: Any, connection: Any, **kwargs: Any) -> None:
        seen.append((sender, connection))

    connection_created.connect(receiver)
    yield seen
    connection_created.disconnect(receiver)


def show(db: Any, setting: str) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SHOW {setting}")
        return str(cursor.fetchone()[0])


def test_a_wrapper_takes_back_its_idle_connection_without_django_setup(
    make_wrapper, setups
) -> None:
    db = make_wrapper("affinity")
    pid = backend_pid(db)
    db.close()
    pool = pool_of(db)
    assert (pool.checkedout(), pool.checkedin()) == (0, 1)  # returned: idle in the pool
    assert backend_pid(db) == pid
    assert pool.checkedout() == 1
    assert setups.count("affinity") == 1  # Django's connect() ran once
    assert (pool.stats.checkouts, pool.stats.checkins) == (2, 1)


def test_connection_created_is_sent_at_every_checkout_the_take_back_included(
    make_wrapper, setups, signals
) -> None:
    # As Django's connect() and Django's own pool do; receivers rely on it.
    db = make_wrapper("signal")
    pid = backend_pid(db)
    db.close()
    assert backend_pid(db) == pid
    assert setups.count("signal") == 1  # the second checkout was a take-back
    assert signals == [(type(db), db), (type(db), db)]


def test_a_receiver_connected_while_the_connection_was_parked_sees_the_take_back(
    make_wrapper, setups
) -> None:
    # What contrib.postgres does when installed late (modify_settings in Django's
    # postgres_tests): its receiver registers type adapters on each connection.
    # A connection set up before it was connected, parked, then taken back must
    # get them too (Django 5.2 postgres_tests.test_bulk_update failed without).
    db = make_wrapper("late_receiver")
    backend_pid(db)
    db.close()
    registered: list[Any] = []

    def register_adapters(sender: Any, connection: Any, **kwargs: Any) -> None:
        registered.append(connection.connection)

    connection_created.connect(register_adapters)
    try:
        backend_pid(db)
    finally:
        connection_created.disconnect(register_adapters)
    assert setups.count("late_receiver") == 1  # a take-back
    assert registered == [db.connection]


def test_a_connection_another_wrapper_used_since_gets_django_setup_again(
    make_wrapper, setups
) -> None:
    first = make_wrapper("used", pool_size=1, max_overflow=0)
    pid = backend_pid(first)
    first.close()
    other = make_wrapper("used", pool_size=1, max_overflow=0)
    assert backend_pid(other) == pid  # the one idle connection
    other.close()
    # Idle again, but another wrapper used it: the full path, on the same connection.
    assert backend_pid(first) == pid
    assert setups.count("used") == 3


def test_a_connection_held_by_another_wrapper_is_left_to_it(make_wrapper, setups) -> None:
    first = make_wrapper("held", pool_size=1, max_overflow=1)
    pid = backend_pid(first)
    first.close()
    other = make_wrapper("held", pool_size=1, max_overflow=1)
    assert backend_pid(other) == pid  # checked out by the other wrapper now
    assert backend_pid(first) != pid  # so this one opens the overflow connection
    assert backend_pid(other) == pid
    assert pool_of(first).checkedout() == 2


@pytest.mark.postgresql_only("reads statement_timeout with SHOW")
def test_changed_settings_take_the_full_path_to_a_new_pool(make_wrapper) -> None:
    db = make_wrapper("changed")
    pid = backend_pid(db)
    db.close()
    db.settings_dict["OPTIONS"] = {**db.settings_dict["OPTIONS"], "statement_timeout": 1234}
    assert show(db, "statement_timeout") == "1234ms"
    assert backend_pid(db) != pid
    assert len(registry.pools("changed")) == 2


@pytest.mark.postgresql_only("SET TIME ZONE and SHOW TimeZone")
def test_time_zone_set_by_a_request_gets_django_setup_again(make_wrapper, setups) -> None:
    db = make_wrapper("tz")
    pid = backend_pid(db)
    with db.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Tokyo'")
    db.close()
    # Not parked: the same idle connection, through Django's setup, which resets it.
    assert show(db, "TimeZone") == db.timezone_name
    assert backend_pid(db) == pid
    assert setups.count("tz") == 2


@pytest.mark.postgresql_only("assume_role is PostgreSQL's")
def test_assume_role_takes_the_full_path_which_sets_the_role_again(make_wrapper, setups) -> None:
    # Django sets the role at every connect(); a request may have changed it.
    db = make_wrapper("role", assume_role="pg_monitor")
    with db.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == "pg_monitor"
        cursor.execute("RESET ROLE")
    db.close()
    assert show(db, "role") == "pg_monitor"
    assert setups.count("role") == 2


@pytest.mark.postgresql_only("DISCARD ALL is refused on MySQL")
def test_discard_on_return_always_takes_the_full_path(make_wrapper, setups) -> None:
    # DISCARD ALL resets the session's time zone: Django's setup must run again.
    db = make_wrapper("discard_affinity", pool_reset_on_return="discard")
    pid = backend_pid(db)
    db.close()
    assert show(db, "TimeZone") == db.timezone_name
    assert backend_pid(db) == pid
    assert setups.count("discard_affinity") == 2


def test_connection_returned_in_a_transaction_is_not_taken_back(make_wrapper, setups) -> None:
    db = make_wrapper("autocommit_off")
    backend_pid(db)
    db.set_autocommit(False)
    db.close()  # Django's state says autocommit is off: not as the settings want it
    assert db.get_autocommit() is True  # the full path set it up again
    assert setups.count("autocommit_off") == 2


def test_a_forked_child_never_takes_back_its_parents_connection() -> None:
    parent_pid = backend_pid(connection)
    connection.close()  # idle in the pool, and this wrapper would take it back

    def child() -> int:
        pid = backend_pid(connection)
        connection.close()
        return 0 if pid != parent_pid else 3

    assert run_in_child(child) == 0
    assert backend_pid(connection) == parent_pid


def test_checkin_listeners_still_run_when_a_connection_is_returned(make_wrapper) -> None:
    # A clean return skips SQLAlchemy's checkin machinery only when nobody listens to it.
    db = make_wrapper("listened")
    backend_pid(db)
    pool = pool_of(db)
    seen: list[Any] = []
    event.listen(pool, "checkin", lambda dbapi_conn, record: seen.append(dbapi_conn))
    conn = db.connection
    db.close()
    assert seen == [conn]
    assert pool.checkedin() == 1


@pytest.mark.postgresql_only("contrib.postgres")
def test_contrib_postgres_installed_while_parked_registers_hstore_at_take_back(setups) -> None:
    # The cause of Django 5.2's order-dependent postgres_tests.test_bulk_update
    # failure ("cannot adapt type 'dict'" for an HStoreField): contrib.postgres
    # was installed (modify_settings) while the test connection was parked, its
    # ready() registers adapters only on open connections, and the take-back
    # sent no connection_created for its receiver to register them.
    from django.contrib.postgres.signals import get_citext_oids, get_hstore_oids
    from django.test.utils import modify_settings

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hstore'")
        if cursor.fetchone() is None:  # the embedded pgserver ships no contrib modules
            pytest.skip("needs the hstore extension (PostgreSQL's contrib; CI runs it on PG 15)")
        cursor.execute("CREATE EXTENSION IF NOT EXISTS hstore")
    pid = backend_pid(connection)
    connection.close()  # parked: idle in the pool, to be taken back
    get_hstore_oids.cache_clear()
    get_citext_oids.cache_clear()
    try:
        with modify_settings(INSTALLED_APPS={"append": "django.contrib.postgres"}):
            with connection.cursor() as cursor:
                cursor.execute("SELECT (%s::hstore) -> 'a'", [{"a": "1"}])
                assert cursor.fetchone()[0] == "1"
            assert backend_pid(connection) == pid
    finally:
        get_hstore_oids.cache_clear()
        get_citext_oids.cache_clear()
    assert setups.count(connection.alias) == 0  # taken back, not set up again
