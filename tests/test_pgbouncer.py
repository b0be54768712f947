"""statement_timeout & co. behind PgBouncer: refused or dropped is an error, never silent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection

from django_sqla_pool.backends.postgresql.base import DatabaseWrapper
from django_sqla_pool.core import registry
from django_sqla_pool.core.errors import ServerSettingsError

from .throwaway import Bouncer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def through() -> Iterator[Any]:
    """Build a pooled wrapper that connects through a PgBouncer."""
    made: list[DatabaseWrapper] = []

    def make(bouncer: Bouncer, **options: Any) -> DatabaseWrapper:
        settings_dict = {
            **connection.settings_dict,
            "HOST": "127.0.0.1",
            "PORT": bouncer.port,
            "NAME": "postgres",
            "USER": "postgres",
            "PASSWORD": "",
            "OPTIONS": {"connect_grace": 0, **options},
        }
        wrapper = DatabaseWrapper(settings_dict, alias="bounced")
        made.append(wrapper)
        return wrapper

    yield make
    for wrapper in made:
        wrapper.close()
    registry.close_pools("bounced")


def assert_names_cause_and_fixes(message: str) -> None:
    assert "PgBouncer" in message
    assert "ALTER ROLE" in message and "query_timeout" in message
    assert "server_settings_mode" in message and "TRANSACTION-mode" in message


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_refused_options_startup_parameter_is_a_clear_error(
    bouncer, through, pool_mode: str
) -> None:
    db = through(bouncer(pool_mode), statement_timeout=200)
    with pytest.raises(ServerSettingsError) as info:
        db.ensure_connection()
    message = str(info.value)
    assert "refused libpq's 'options' startup parameter" in message
    assert "unsupported startup parameter: options" in message
    assert_names_cause_and_fixes(message)


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_options_dropped_by_ignore_startup_parameters_are_detected(
    bouncer, through, pool_mode: str
) -> None:
    db = through(
        bouncer(pool_mode, ignore="extra_float_digits,options"),
        statement_timeout=200,
        lock_timeout=300,
    )
    with pytest.raises(ServerSettingsError) as info:
        db.ensure_connection()
    message = str(info.value)
    assert "statement_timeout=200 ms" in message and "lock_timeout=300 ms" in message
    assert "ignore_startup_parameters" in message
    assert_names_cause_and_fixes(message)


def test_session_mode_pooler_enforces_the_timeout_with_set_mode(bouncer, through) -> None:
    db = through(bouncer("session"), statement_timeout=200, server_settings_mode="set")
    with db.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "200ms"
        with pytest.raises(OperationalError, match="statement timeout"):
            cursor.execute("SELECT pg_sleep(1)")
    db.close()
    # The connection stays usable once the cancelled transaction is rolled back.
    with db.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_without_server_settings_nothing_is_sent_or_checked(bouncer, through) -> None:
    db = through(bouncer("transaction"))
    with db.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
