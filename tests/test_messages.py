"""Errors and log lines read as a user needs them: counts in good English, links that work."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest

from django_sqla_pool import PoolTimeout
from django_sqla_pool.checks import HOME_URL, pool_setting_errors

from .conftest import backend_pid, pool_of

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


@pytest.mark.django_db(transaction=True)
def test_timeout_message_counts_the_other_waiting_threads_in_good_english(make_wrapper) -> None:
    holder = make_wrapper("plural", pool_size=1, max_overflow=0, pool_timeout=30)
    backend_pid(holder)  # holds the only connection
    pool = pool_of(holder)
    served = threading.Event()
    done = threading.Event()

    def wait_to_be_served() -> None:  # within pool_timeout: the holder's checkin ends the wait
        record = pool.checkout()
        served.set()
        done.wait(15)
        pool.checkin(record)

    other = threading.Thread(target=wait_to_be_served)
    other.start()
    try:
        wait_for(lambda: pool.waiting == 1)
        # The first to time out leaves the other waiter behind; the second, once that one
        # is served, none.
        with pytest.raises(PoolTimeout) as first:
            pool.checkout(timeout=0.1)
        holder.close()
        assert served.wait(15)
        with pytest.raises(PoolTimeout) as second:
            pool.checkout(timeout=0.1)
    finally:
        holder.close()
        done.set()
        other.join(15)
    assert "all 1 in use, 1 other thread waiting)" in str(first.value)
    assert "all 1 in use, 0 other threads waiting)" in str(second.value)


def test_e001_hint_links_the_readmes_options_table() -> None:
    [error] = pool_setting_errors(
        {
            "default": {
                "ENGINE": "django_sqla_pool.backends.postgresql",
                "OPTIONS": {"pool_sise": 3},
            }
        }
    )
    assert error.id == "django_sqla_pool.E001"
    assert f"{HOME_URL}#options" in error.hint
    pyproject = (ROOT / "pyproject.toml").read_text()  # no tomllib on Python 3.10
    assert re.search(rf'^Homepage = "{re.escape(HOME_URL)}"$', pyproject, re.MULTILINE)
    # GitHub's anchor for the heading "### Options" is #options.
    assert "\n### Options\n" in (ROOT / "README.md").read_text()


def documented_debug_events() -> set[str]:
    """The events of the DEBUG row of docs/observability.md's logging table."""
    text = (ROOT / "docs" / "observability.md").read_text()
    [row] = [line for line in text.splitlines() if line.startswith("| DEBUG |")]
    when = row.split("|")[2]
    return set(re.findall(r"`(\w+)`", when))


@pytest.mark.django_db(transaction=True)
def test_package_logger_says_only_the_documented_lines_and_sqlalchemys_stay_its_own(
    make_wrapper, caplog
) -> None:
    from django_sqla_pool.core import registry

    # SQLAlchemy sets its own loggers to WARNING when imported: quiet unless turned on.
    assert logging.getLogger("sqlalchemy.pool").getEffectiveLevel() == logging.WARNING
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.pool")
    caplog.set_level(logging.DEBUG, logger="django_sqla_pool")  # the test settings say WARNING
    db = make_wrapper("chatty")
    backend_pid(db)
    db.close()
    pool = pool_of(db)
    registry.close_pools("chatty")  # closes the idle connection and disposes the pool
    ours = [r for r in caplog.records if r.name.split(".")[0] == "django_sqla_pool"]
    assert {r.name for r in ours} == {"django_sqla_pool"}  # no child loggers
    events = {r.getMessage().split()[0] for r in ours}
    assert events <= documented_debug_events(), events
    assert {"connect", "checkout", "checkin", "close"} <= events
    assert {r.levelno for r in ours} == {logging.DEBUG}
    sqlalchemy = [
        r.getMessage()
        for r in caplog.records
        if r.name == f"sqlalchemy.pool.impl.QueuePool.{pool.name}"
    ]
    assert any(m.startswith("Created new connection") for m in sqlalchemy), sqlalchemy
    assert any(m.startswith("Pool disposed") for m in sqlalchemy), sqlalchemy
