"""Parsing and validation of the pool options, and the system checks built on it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from django_sqla_pool.backends.postgresql.base import DatabaseWrapper
from django_sqla_pool.checks import check_pool_settings, pool_setting_errors
from django_sqla_pool.conf import _NUMBERS, PoolSettings, parse_pool_settings
from django_sqla_pool.core.postgresql.params import startup_options

ENGINE = "django_sqla_pool.backends.postgresql"


def parse(**options: Any) -> PoolSettings:
    return parse_pool_settings("default", {"OPTIONS": options, "CONN_MAX_AGE": 0})


def test_defaults() -> None:
    settings = parse()
    assert (settings.pool_size, settings.max_overflow, settings.pool_timeout) == (5, 10, 30.0)
    assert settings.pool_pre_ping is True and settings.pool_recycle is None
    assert settings.pool_reset_on_return == "rollback"


def test_strings_from_a_database_url_are_coerced() -> None:
    settings = parse(
        pool_size="10",
        max_overflow=" 0 ",
        pool_timeout="2.5",
        pool_pre_ping="false",
        pool_use_lifo="on",
        pool_recycle="1800",
        statement_timeout="30000",
        lock_timeout="none",
        pool_reset_on_return="DISCARD",
    )
    assert settings == PoolSettings(
        pool_size=10,
        max_overflow=0,
        pool_timeout=2.5,
        pool_pre_ping=False,
        pool_use_lifo=True,
        pool_recycle=1800.0,
        statement_timeout=30000,
        lock_timeout=None,
        pool_reset_on_return="discard",
    )


@pytest.mark.parametrize(
    ("value", "milliseconds"),
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("1.5s", 1_500),
        (" 2 min ", 120_000),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
        ("2500us", 3),  # rounded to the nearest ms, as PostgreSQL does
        ("30000", 30_000),  # no unit: milliseconds, as in postgresql.conf
        ("0", 0),
    ],
)
def test_server_timeouts_accept_postgresql_units(value: str, milliseconds: int) -> None:
    settings = parse(statement_timeout=value, lock_timeout=value)
    assert settings.statement_timeout == settings.lock_timeout == milliseconds
    assert f"-c statement_timeout={milliseconds}" in startup_options(settings)


def test_recycle_minus_one_disables_it_as_in_sqlalchemy() -> None:
    assert parse(pool_recycle=-1).pool_recycle is None


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("pool_size", "ten", "whole number of connections"),
        ("pool_size", 0, "1 or more"),
        ("pool_size", True, "whole number"),
        ("pool_size", 2.5, "whole number"),
        ("max_overflow", -1, "0 or more"),
        ("pool_timeout", 0, "greater than 0"),
        ("pool_timeout", "soon", "seconds"),
        ("pool_recycle", "0", "greater than 0, or -1 or None to never recycle"),
        ("pool_pre_ping", "maybe", "true or false"),
        ("pool_reset_on_return", "truncate", "'rollback'"),
        ("statement_timeout", "thirty", "milliseconds or a duration with a unit"),
        ("statement_timeout", "30S", "units us, ms, s, min, h, d"),  # case-sensitive, as PG
        ("lock_timeout", "100us", "below 1 ms"),  # rounded to 0 it would mean "off"
        ("lock_timeout", "25d", "PostgreSQL's limit"),
        ("idle_in_transaction_session_timeout", -5, "milliseconds"),
        ("leak_detection_threshold", "0", "greater than 0"),
        ("pool_min_size", -1, "0 or more"),
        ("pool_min_size", "two", "whole number of connections"),
        ("pool_idle_timeout", 0, "greater than 0"),
        ("pool_min_size", 16, "at most pool_size + max_overflow (5 + 10 = 15)"),
    ],
)
def test_invalid_values_name_the_key_the_value_and_the_rule(
    key: str, value: Any, rule: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        parse(**{key: value})
    message = str(info.value)
    assert f"['{key}']" in message and repr(value) in message and rule in message


def test_sizing_options_defaults_and_strings() -> None:
    defaults = parse()
    assert (defaults.pool_min_size, defaults.pool_idle_timeout) == (0, 60.0)
    settings = parse(pool_min_size="3", pool_idle_timeout="300")
    assert (settings.pool_min_size, settings.pool_idle_timeout) == (3, 300.0)
    assert parse(pool_idle_timeout="none").pool_idle_timeout is None
    assert parse(pool_size=2, max_overflow=0, pool_min_size=2).pool_min_size == 2


NUMERIC_KEYS = sorted(_NUMBERS)


@pytest.mark.parametrize("key", NUMERIC_KEYS)
@pytest.mark.parametrize("value", ["nan", " NaN ", float("nan"), "inf", float("inf"), "-inf"])
def test_nan_and_infinity_are_rejected_for_every_numeric_option(key: str, value: Any) -> None:
    # NaN compares false with every bound, so it used to pass the range checks
    # (pool_pre_ping_window=nan made every checkout ping).
    with pytest.raises(ImproperlyConfigured) as info:
        parse(**{key: value})
    message = str(info.value)
    assert f"['{key}']" in message and repr(value) in message and _NUMBERS[key].rule in message


def test_unknown_pool_key_suggests_the_close_one() -> None:
    with pytest.raises(ImproperlyConfigured, match="Did you mean 'pool_size'"):
        parse(pool_sise=3)
    with pytest.raises(ImproperlyConfigured, match="Did you mean 'statement_timeout'"):
        parse(statment_timeout=3)
    with pytest.raises(ImproperlyConfigured, match="is not an option"):
        parse(pool_colour="blue")


def test_libpq_and_django_keys_pass_through() -> None:
    parse(
        connect_timeout=10,
        sslmode="disable",
        options="-c search_path=x",
        application_name="a",
        isolation_level=1,
        server_side_binding=True,
    )


def test_conn_max_age_other_than_zero_is_rejected() -> None:
    with pytest.raises(ImproperlyConfigured, match="CONN_MAX_AGE"):
        parse_pool_settings("default", {"OPTIONS": {}, "CONN_MAX_AGE": 60})
    with pytest.raises(ImproperlyConfigured, match="CONN_MAX_AGE"):
        parse_pool_settings("default", {"OPTIONS": {}, "CONN_MAX_AGE": None})


def test_djangos_own_pool_option_is_rejected() -> None:
    with pytest.raises(ImproperlyConfigured, match="Django's own psycopg pool"):
        parse(pool=True)


@pytest.mark.django_db
def test_invalid_settings_fail_when_the_wrapper_is_built_and_at_first_connection() -> None:
    settings_dict = {**connection.settings_dict, "OPTIONS": {"pool_size": "lots"}}
    with pytest.raises(ImproperlyConfigured, match="pool_size"):
        DatabaseWrapper(settings_dict, alias="broken-settings")
    settings_dict["OPTIONS"] = {}
    wrapper = DatabaseWrapper(settings_dict, alias="broken-settings")
    settings_dict["OPTIONS"]["pool_size"] = "lots"  # changed after the wrapper was built
    with pytest.raises(ImproperlyConfigured, match="pool_size"):
        wrapper.ensure_connection()
    assert wrapper.connection is None


def test_pytest_django_blocker_still_guards_our_backend() -> None:
    # Connections are taken only in get_new_connection(), so the blocker that
    # pytest-django patches onto ensure_connection() keeps working.
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        connection.ensure_connection()


def _databases(**entries: dict[str, Any]) -> dict[str, Any]:
    return {alias: {"ENGINE": ENGINE, "NAME": "x", **entry} for alias, entry in entries.items()}


@pytest.mark.parametrize(
    ("entry", "ids"),
    [
        ({"OPTIONS": {"pool_size": 3}}, []),
        ({"OPTIONS": {"pool_size": "x"}}, ["django_sqla_pool.E001"]),
        ({"OPTIONS": {"pool_sise": 3}}, ["django_sqla_pool.E001"]),
        ({"CONN_MAX_AGE": 600}, ["django_sqla_pool.E002"]),
        ({"OPTIONS": {"pool": True}}, ["django_sqla_pool.E003"]),
    ],
)
def test_system_check_ids(entry: dict[str, Any], ids: list[str]) -> None:
    other = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:", "CONN_MAX_AGE": 60}
    errors = pool_setting_errors({**_databases(default=entry), "other": other})
    assert [e.id for e in errors] == ids
    assert all(e.hint for e in errors)


def test_check_is_registered_and_runs_with_manage_py_check() -> None:
    from django.core import checks

    assert check_pool_settings in checks.registry.registry.get_checks()
    assert check_pool_settings() == []  # the test settings are valid
