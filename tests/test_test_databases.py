"""Test databases: nothing a test run does may reach the real database.

conftest.py queries the real database before pytest-django creates the test
database, the case where alias-keyed pools hand tests the real database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from .conftest import REAL_DB, database_url, raw_connect

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
def test_pytest_django_runs_on_the_test_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        name = cursor.fetchone()[0]
    assert name == "test_" + REAL_DB["name"]


def _real_db_has_demo_table(dbname: str) -> bool:
    with raw_connect(dbname=dbname) as conn:
        return conn.execute("SELECT to_regclass('demo_note') IS NOT NULL").fetchone()[0]


def test_manage_py_test_parallel_uses_clones_and_never_the_real_database() -> None:
    dbname = f"{REAL_DB['name']}_runner_probe"[:40]  # per suite database: runs may overlap
    with raw_connect(dbname="postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        admin.execute(f'CREATE DATABASE "{dbname}"')
    try:
        env = {**os.environ, "DATABASE_URL": database_url(dbname=dbname)}
        result = subprocess.run(
            [sys.executable, "manage.py", "test", "--parallel", "2", "--noinput", "demo"],
            cwd=ROOT / "testproject",
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Ran 3 tests" in output and "OK" in output
        assert "Cloning test database" in output or "clone" in output.lower()
        # The real database was queried first, yet no test table or row landed there.
        assert not _real_db_has_demo_table(dbname)
    finally:
        with raw_connect(dbname="postgres") as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
