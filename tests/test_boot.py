"""Fail at boot: a wrong pool setting stops Django from starting, before any request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

from django_sqla_pool.backends.postgresql.base import DatabaseWrapper
from django_sqla_pool.conf import InvalidPoolSetting

from .conftest import database_url

ROOT = Path(__file__).resolve().parents[1]


def test_building_a_wrapper_with_an_invalid_setting_raises_at_once() -> None:
    settings_dict = {**connection.settings_dict, "CONN_MAX_AGE": 600}
    with pytest.raises(InvalidPoolSetting, match=r"\['CONN_MAX_AGE'\] = 600") as info:
        DatabaseWrapper(settings_dict, alias="old_settings")
    assert info.value.check_id == "django_sqla_pool.E002"


def test_app_ready_validates_every_pooled_alias(monkeypatch) -> None:
    databases = {
        "default": connection.settings_dict,
        "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:", "CONN_MAX_AGE": 9},
        "reports": {
            **connection.settings_dict,
            "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool_size": "ten"},
        },
    }
    # Not override_settings: Django warns about overriding DATABASES.
    monkeypatch.setattr(settings, "DATABASES", databases)
    with pytest.raises(InvalidPoolSetting, match=r"DATABASES\['reports'\].*'pool_size'"):
        apps.get_app_config("django_sqla_pool").ready()


def test_pool_true_without_psycopg_pool_gives_our_e003_not_djangos_import_error(
    monkeypatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)  # as if not installed
    settings_dict = {
        **connection.settings_dict,
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool": True},
    }
    with pytest.raises(InvalidPoolSetting) as info:
        DatabaseWrapper(settings_dict, alias="double_pool")
    assert info.value.check_id == "django_sqla_pool.E003"
    assert "psycopg_pool" not in str(info.value)


def _with_query(url: str, query: str) -> str:
    # The embedded server's URL already has a query string (its socket directory).
    return f"{url}{'&' if '?' in url else '?'}{query}"


def test_a_wsgi_worker_with_a_wrong_setting_refuses_to_boot() -> None:
    # What gunicorn does when it loads the application: django.setup() runs
    # AppConfig.ready(). No database is touched.
    result = subprocess.run(
        [sys.executable, "-c", "from testproject.wsgi import application"],
        cwd=ROOT / "testproject",
        env={**os.environ, "DATABASE_URL": _with_query(database_url(), "pool_size=0")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "InvalidPoolSetting" in result.stderr
    assert "['OPTIONS']['pool_size'] = 0 is invalid" in result.stderr
