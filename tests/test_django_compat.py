"""What Django's own test suite (djangosuite/) showed the ENGINE must accept.

Django's tests, and users of other pooling packages, set OPTIONS["pool"] to
False to keep Django's own pool off: that is accepted (as are the strings an
env file gives) and never reaches Django or the driver; only a value that
turns Django's pool on is refused (E003).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from django_sqla_pool.checks import pool_setting_errors
from django_sqla_pool.conf import parse_pool_settings

from .conftest import backend_pid, pool_of

ENGINE = "django_sqla_pool.backends.postgresql"
OFF = [False, None, 0, "false", "False", "0", "none", "off", "no", " OFF ", ""]
ON = [True, 1, {"min_size": 2}, "true", "1", "on", "yes"]


@pytest.mark.parametrize("value", OFF)
def test_pool_option_that_leaves_djangos_pool_off_is_accepted(value: Any) -> None:
    entry = {"ENGINE": ENGINE, "NAME": "x", "OPTIONS": {"pool": value, "pool_size": 3}}
    assert parse_pool_settings("default", entry).pool_size == 3
    assert pool_setting_errors({"default": entry}) == []


@pytest.mark.parametrize("value", ON)
def test_pool_option_that_turns_djangos_pool_on_is_refused_with_e003(value: Any) -> None:
    entry = {"ENGINE": ENGINE, "NAME": "x", "OPTIONS": {"pool": value}}
    with pytest.raises(ImproperlyConfigured, match="Django's own psycopg pool") as info:
        parse_pool_settings("default", entry)
    assert repr(value) in str(info.value)
    assert [e.id for e in pool_setting_errors({"default": entry})] == ["django_sqla_pool.E003"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("value", [False, "false", "off"])
def test_a_connection_with_pool_off_is_pooled_by_us_and_django_never_sees_the_key(
    make_wrapper, value: Any
) -> None:
    # "false" is a true value to Django: it would build its psycopg pool (and
    # refuse it under psycopg2) if the key reached it.
    db = make_wrapper("pool_off", pool=value)
    assert "pool" not in db.get_connection_params()
    assert db.pool is None
    backend_pid(db)
    assert pool_of(db).checkedout() == 1  # our pool, not Django's
    assert db.settings_dict["OPTIONS"]["pool"] == value  # the settings are left as given


@pytest.mark.django_db(transaction=True)
def test_djangos_no_pool_connection_helper_works() -> None:
    # Django's backends.postgresql tests copy the connection this way.
    new_connection = connection.copy()
    new_connection.settings_dict = copy.deepcopy(connection.settings_dict)
    new_connection.settings_dict["OPTIONS"]["pool"] = False
    try:
        with new_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone()[0] == 1
    finally:
        new_connection.close()


@pytest.mark.django_db(transaction=True)
def test_close_pool_closes_our_pools_even_when_djangos_part_raises(make_wrapper) -> None:
    # Django's test_connect_pool_with_timezone: a connection with the pool off,
    # then OPTIONS["pool"] = True (refused) and close_pool(). The idle connection
    # left in our pool made the serial run's DROP DATABASE fail.
    from django_sqla_pool.core import registry

    db = make_wrapper("close_pool_raises", pool=False)
    backend_pid(db)
    db.close()
    assert pool_of(db).checkedin() == 1
    db.settings_dict["OPTIONS"]["pool"] = True
    # E003 under psycopg 3; under psycopg2 Django's "Error loading psycopg_pool" first.
    with pytest.raises(ImproperlyConfigured):
        db.close_pool()
    assert registry.pools("close_pool_raises") == []
