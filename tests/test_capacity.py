"""The capacity check: processes x (pool_size + max_overflow) against the server's room."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection

from django_sqla_pool.backends.postgresql.base import DatabaseWrapper
from django_sqla_pool.core import registry
from django_sqla_pool.core.postgresql.driver import Database
from django_sqla_pool.observe.capacity import (
    PROCESSES_SETTING,
    Processes,
    capacity_messages,
    configured_processes,
)

from .throwaway import Cluster

pytestmark = pytest.mark.django_db(transaction=True)

ENV = (PROCESSES_SETTING, "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")


@pytest.fixture(autouse=True)
def _no_process_count_from_the_environment(monkeypatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def small_server() -> Iterator[Cluster]:
    """A server of the test's own with max_connections 20 (3 of them reserved)."""
    with Cluster(25450) as cluster:
        cluster.start(max_connections=20, superuser_reserved_connections=3)
        yield cluster


@pytest.fixture
def small(small_server) -> Iterator[DatabaseWrapper]:
    wrapper = DatabaseWrapper(
        small_server.settings_dict(connection.settings_dict, pool_size=5, max_overflow=5),
        alias="capacity",
    )
    yield wrapper
    wrapper.close()
    registry.close_pools("capacity")


def check(wrapper: DatabaseWrapper, processes: Processes | None) -> list[Any]:
    return capacity_messages(
        {"capacity": wrapper.settings_dict}, ["capacity"], lambda alias: wrapper, processes
    )


def test_twelve_processes_of_ten_connections_do_not_fit_and_the_warning_says_why(small) -> None:
    [warning] = check(small, Processes(12, "the test"))
    assert warning.id == "django_sqla_pool.W010"
    assert "12 processes x 10 connections" in warning.msg
    assert (
        "'capacity' 5 + 5" in warning.msg
        and "= 120 may be opened on 127.0.0.1:25450" in warning.msg
    )
    assert "room for 17: max_connections 20 - 3 reserved - 0 held by other clients now" in (
        warning.msg
    )
    assert "Process count: the test." in warning.msg
    assert "At most 1 connections per process fit (17 // 12)" in warning.hint
    assert "poolstats --advise" in warning.hint


def test_a_fleet_that_fits_is_silent(small) -> None:
    assert check(small, Processes(1, "the test")) == []


def test_connections_of_other_clients_shrink_the_room(small, small_server) -> None:
    others = [Database.connect(**small_server.params()) for _ in range(8)]
    try:
        [warning] = check(small, Processes(1, "the test"))
    finally:
        for other in others:
            other.close()
    assert "room for 9: max_connections 20 - 3 reserved - 8 held by other clients now" in (
        warning.msg
    )


def test_without_a_configured_count_the_processes_seen_on_the_server_count(small) -> None:
    # Only this process holds pooled connections there: 1 x 10 fits in 17.
    assert check(small, None) == []


def test_an_unreachable_server_is_a_warning_not_a_crash() -> None:
    wrapper = DatabaseWrapper(
        {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "25451"}, alias="nowhere"
    )
    try:
        [warning] = check(wrapper, Processes(1, "the test"))
    finally:
        registry.close_pools("nowhere")
    assert warning.id == "django_sqla_pool.W011" and "127.0.0.1:25451" in warning.msg


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {PROCESSES_SETTING: "24", "WEB_CONCURRENCY": "4"},
            Processes(24, f"the environment variable {PROCESSES_SETTING}"),
        ),
        ({"WEB_CONCURRENCY": "4"}, Processes(4, "WEB_CONCURRENCY (one host)")),
        (
            {"GUNICORN_CMD_ARGS": "--bind :8000 --workers 6"},
            Processes(6, "GUNICORN_CMD_ARGS --workers (one host)"),
        ),
        (
            {"GUNICORN_CMD_ARGS": "-w3 --threads 8"},
            Processes(3, "GUNICORN_CMD_ARGS --workers (one host)"),
        ),
        ({"GUNICORN_CMD_ARGS": "--threads 8"}, None),
        ({}, None),
    ],
)
def test_where_the_process_count_comes_from(monkeypatch, env, expected) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert configured_processes() == expected


def test_the_setting_wins_over_the_environment(settings, monkeypatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    settings.DJANGO_SQLA_POOL_PROCESSES = "12"
    assert configured_processes() == Processes(12, f"settings.{PROCESSES_SETTING}")


@pytest.mark.parametrize("value", ["0", "many", "-2", True])
def test_a_bad_process_count_names_the_source_the_value_and_the_rule(settings, value) -> None:
    settings.DJANGO_SQLA_POOL_PROCESSES = value
    with pytest.raises(ImproperlyConfigured) as error:
        configured_processes()
    message = str(error.value)
    assert f"settings.{PROCESSES_SETTING} = {value!r} is invalid" in message
    assert "whole number of processes, 1 or more" in message
    [failure] = run_checks(databases=["default"], tags=["database"])
    assert failure.id == "django_sqla_pool.E010"


def test_manage_py_check_runs_it_only_with_database(settings) -> None:
    settings.DJANGO_SQLA_POOL_PROCESSES = 1000  # 1000 x (5 + 5) on a server of 400
    # Under the PostGIS ENGINE, Django warns about GDAL older than 3.9 (Debian 12 has 3.6):
    # not what this test is about.
    settings.SILENCED_SYSTEM_CHECKS = [*settings.SILENCED_SYSTEM_CHECKS, "gis.W001"]
    call_command("check", fail_level="WARNING")  # not run: nothing to fail on
    with pytest.raises(SystemCheckError, match=r"django_sqla_pool\.W010"):
        call_command("check", databases=["default"], fail_level="WARNING")
