"""Shared fixtures: a real PostgreSQL (or MySQL/MariaDB), and the leak check after every test.

The database family is the one of DATABASE_URL's ENGINE (``tests/dialect.py``);
tests marked ``postgresql_only`` are skipped on MySQL/MariaDB with their reason.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection, connections

from django_sqla_pool.conf import URL_SCHEMES
from django_sqla_pool.core import registry

from . import dialect

if dialect.MYSQL:
    from django_sqla_pool.core.mysql.driver import Database
else:
    from django_sqla_pool.core.postgresql.driver import Database

# The throwaway cluster that fault tests restart, stall and cut off, and their pools.
from .throwaway import bouncer, cluster, cluster_session, make_pool  # noqa: F401

REAL_DB = {}
#: The suite's ENGINE's DatabaseWrapper (PostgreSQL's, PostGIS's or MySQL's).
DatabaseWrapper: Any = type(connections["default"])
#: The parameter that names the database, in the driver's spelling.
_DBNAME = "database" if dialect.MYSQL else "dbname"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgresql_only(reason): skipped on MySQL/MariaDB, for that reason"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not dialect.MYSQL:
        return
    for item in items:
        marker = item.get_closest_marker("postgresql_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else "PostgreSQL only"
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL only: {reason}"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After each test (and its fixtures) no pooled connection may stay checked out.

    The main thread's connections are closed first, as the end of a request
    would; anything still checked out after that was leaked by the code
    under test (a thread, a forgotten wrapper, a path that skips checkin).
    """
    result = yield
    connections.close_all()
    leaked = {repr(p): p.checkedout() for p in registry.pools() if p.checkedout()}
    if leaked:
        registry.close_pools()
        pytest.fail(f"pooled connections left checked out after {item.nodeid}: {leaked}")
    return result


@pytest.fixture(scope="session", autouse=True)
def _query_real_database_first(django_db_blocker: Any) -> None:
    """Touch the real database before pytest-django creates the test database.

    A pool keyed by alias alone would then hand the tests a connection to
    the real database; test_test_databases.py proves ours does not.
    """
    REAL_DB["params"] = {
        k: v
        for k, v in connection.get_connection_params().items()
        if k in ("host", "port", "user", "password", _DBNAME, "unix_socket")
    }
    _create_database_if_missing(REAL_DB["params"][_DBNAME])
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(dialect.CURRENT_DATABASE_SQL)
            REAL_DB["name"] = cursor.fetchone()[0]
        connection.close()


class RawConnection:
    """A driver connection outside any pool, in autocommit, for watching the server.

    It uses whichever driver Django uses, so the suite runs with psycopg2 too.
    """

    def __init__(self, **overrides: Any) -> None:
        self.conn = Database.connect(**{**REAL_DB["params"], **overrides})
        if dialect.MYSQL:
            self.conn.autocommit(True)
        else:
            self.conn.autocommit = True

    def execute(self, sql: str, params: Any = None) -> Any:
        cursor = self.conn.cursor()
        cursor.execute(sql, params)
        return cursor

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def database_url(password: str = "", port: Any = None, dbname: str | None = None) -> str:
    """A DATABASE_URL for subprocesses: the suite's server, over TCP or a Unix socket."""
    params = REAL_DB["params"]
    user = params.get("user") or "postgres"
    secret = f":{quote(password, safe='')}" if password else ""
    host = params.get("host") or "127.0.0.1"
    port = port or params.get("port") or (3306 if dialect.MYSQL else 5432)
    dbname = dbname or params[_DBNAME]
    # The scheme of the suite's own ENGINE, so subprocesses use it too (PostGIS or not).
    scheme = next(s for s, e in URL_SCHEMES.items() if e == connection.settings_dict["ENGINE"])
    if host.startswith("/"):  # the embedded server listens on a socket directory
        return f"{scheme}://{user}{secret}@/{dbname}?host={quote(host, safe='/')}&port={port}"
    return f"{scheme}://{user}{secret}@{host}:{port}/{dbname}"


def raw_connect(**overrides: Any) -> RawConnection:
    return RawConnection(**overrides)


def _create_database_if_missing(dbname: str) -> None:
    """So that DATABASE_URL may name a database that does not exist yet."""
    if dialect.MYSQL:
        with raw_connect(database="mysql") as admin:
            admin.execute(f"CREATE DATABASE IF NOT EXISTS `{dbname}` CHARACTER SET utf8mb4")
        return
    with raw_connect(dbname="postgres") as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
            admin.execute(f'CREATE DATABASE "{dbname}"')


@pytest.fixture
def server() -> Iterator[RawConnection]:
    conn = raw_connect()
    yield conn
    conn.close()


def wrapper_factory(wrapper_class: type[Any]) -> Iterator[Any]:
    """For a fixture: yields ``make(alias, **options)``, building ``wrapper_class`` wrappers
    on the test database with their own OPTIONS; closes them and their pools afterwards."""
    made: list[Any] = []

    def make(alias: str, **options: Any) -> Any:
        settings_dict = {
            **connection.settings_dict,
            "OPTIONS": {**connection.settings_dict["OPTIONS"], **options},
        }
        wrapper = wrapper_class(settings_dict, alias=alias)
        made.append(wrapper)
        return wrapper

    yield make
    try:
        for wrapper in made:
            if wrapper._thread_ident == threading.get_ident():
                wrapper.close()
    finally:
        for alias in {w.alias for w in made}:
            registry.close_pools(alias)


@pytest.fixture
def make_wrapper() -> Iterator[Any]:
    """Build extra DatabaseWrappers on the test database with their own OPTIONS."""
    yield from wrapper_factory(DatabaseWrapper)


def backend_pid(wrapper: Any) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute(dialect.BACKEND_PID_SQL)
        return int(cursor.fetchone()[0])


def pool_of(wrapper: Any) -> Any:
    [pool] = registry.pools(wrapper.alias)
    return pool


def run_in_child(body: Any) -> int:
    """Run ``body()`` in a forked child; its return value is the exit status."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
