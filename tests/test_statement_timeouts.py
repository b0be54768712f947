"""The statement_timeouts counter: queries cancelled by statement_timeout.

PostgreSQL: SQLSTATE 57014; MariaDB: error 1969 (max_statement_time), MySQL 3024.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, OperationalError

from django_sqla_pool import pool_stats

from . import dialect
from .test_admin import stats_on_page

pytestmark = pytest.mark.django_db(transaction=True)


def statement_timeouts(alias: str) -> int:
    [pool] = pool_stats(alias)["pools"]
    return int(pool["counters"]["statement_timeouts"])


def test_a_query_cancelled_by_statement_timeout_is_counted_once(make_wrapper) -> None:
    db = make_wrapper("stmt", statement_timeout=50)
    with db.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert statement_timeouts("stmt") == 0
    with (
        pytest.raises(OperationalError, match=dialect.STATEMENT_TIMEOUT_MESSAGE),
        db.cursor() as cursor,
    ):
        cursor.execute(dialect.sleep_sql(5))
    assert statement_timeouts("stmt") == 1
    # The connection stays usable, and successful queries count nothing.
    with db.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)
    assert statement_timeouts("stmt") == 1


def test_other_errors_are_not_counted(make_wrapper) -> None:
    db = make_wrapper("stmt", statement_timeout=5000, lock_timeout=50)
    with pytest.raises(DatabaseError), db.cursor() as cursor:
        cursor.execute("SELECT 1 / 0" if not dialect.MYSQL else "SIGNAL SQLSTATE '22012'")
    with pytest.raises(DatabaseError), db.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_here")
    assert statement_timeouts("stmt") == 0


def test_each_pool_counts_its_own(make_wrapper) -> None:
    slow = make_wrapper("stmt_a", statement_timeout=20)
    other = make_wrapper("stmt_b", statement_timeout=20)
    for _ in range(2):
        with pytest.raises(OperationalError), slow.cursor() as cursor:
            cursor.execute(dialect.sleep_sql(5))
    with other.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert statement_timeouts("stmt_a") == 2
    assert statement_timeouts("stmt_b") == 0


def test_poolstats_shows_the_count_in_text_and_json(make_wrapper) -> None:
    # Alias "default" (poolstats takes DATABASES aliases), its own pool: pool_size 7 marks it.
    db = make_wrapper("default", statement_timeout=20, pool_size=7)
    with pytest.raises(OperationalError), db.cursor() as cursor:
        cursor.execute(dialect.sleep_sql(5))
    db.close()
    out = StringIO()
    call_command("poolstats", "--format", "json", "--min-headroom", "0", stdout=out)
    [database] = json.loads(out.getvalue())["databases"]
    [pool] = [p for p in database["pools"] if p["config"]["pool_size"] == 7]
    assert pool["counters"]["statement_timeouts"] == 1
    out = StringIO()
    call_command("poolstats", "--min-headroom", "0", stdout=out)
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if "STMT-TIMEOUTS" in line).split()
    row = next(line for line in lines if "(this)" in line and "0/12" in line).split()
    row.remove("(this)")  # the PROCESS cell is two words
    assert row[header.index("STMT-TIMEOUTS")] == "1"


def test_admin_page_shows_the_count(admin_client, make_wrapper) -> None:
    db = make_wrapper("stmt", statement_timeout=20)
    with pytest.raises(OperationalError), db.cursor() as cursor:
        cursor.execute(dialect.sleep_sql(5))
    db.close()
    response = admin_client.get("/admin/django_sqla_pool/poolstats/")
    [pool] = pool_stats("stmt")["pools"]
    values = stats_on_page(response.content.decode())
    assert values[pool["name"], "counters.statement_timeouts"] == "1"
