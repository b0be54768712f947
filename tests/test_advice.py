"""``poolstats --advise``: the recommendation for a known load, against a hand computation."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from django_sqla_pool.core import registry
from django_sqla_pool.observe.advice import advise, capacity_table, recommend
from django_sqla_pool.observe.snapshots import write_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def pool_entry(
    *,
    span: float,
    checkouts: int,
    held_s: float,
    peak: int,
    size: int = 5,
    overflow: int = 5,
    timeouts: int = 0,
    now: float,
) -> dict[str, Any]:
    """A pool_stats() pool entry of a process that saw this load."""
    return {
        "alias": "default",
        "name": "default:app@db:5432/app",
        "config": {"pool_size": size, "max_overflow": overflow},
        "gauges": {"checked_out": 0, "waiting": 0, "pool_size": size, "max_overflow": overflow},
        "counters": {
            "checkouts": checkouts,
            "checkins": checkouts,
            "timeouts": timeouts,
            "connections_open_peak": peak,
        },
        "timings": {"held_ms_total": held_s * 1000, "wait_ms_p99": 0.4},
        "last_timeout_at": None,
        "created_at": now - span,
    }


def report_of(*pools: dict[str, Any], now: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """A build_report() result whose workers saw these pools (and this process none)."""
    db = {
        "alias": "default",
        "fleet": None,
        "pools": [],
        "workers": [
            {"host": f"web-{i}", "pid": 100 + i, "age_s": 0.0, "pools": [pool]}
            for i, pool in enumerate(pools, start=1)
        ],
    }
    return db, {"time": now, "observer": {"host": "admin", "pid": 1}, "databases": [db]}


# The synthetic load, by hand. web-1: 36,000 checkouts in 600 s, held 1,800 s in all:
# arrival rate 60/s x mean held 50 ms = L = 3.0 in use on average. pool_size =
# ceil(3 + 2 x sqrt(3)) = ceil(6.46) = 7. Its pool had at most 9 open (limit 10, no
# timeouts): pool_size + max_overflow = max(7, 9) = 9, so max_overflow = 2.
# web-2 is quieter (12,000 checkouts, 300 s held: L = 0.5) and has the same peak of 9.
def known_load(now: float, **busiest: Any) -> list[dict[str, Any]]:
    return [
        pool_entry(
            **{"span": 600, "checkouts": 36000, "held_s": 1800, "peak": 9, "now": now, **busiest}
        ),
        pool_entry(span=600, checkouts=12000, held_s=300, peak=9, now=now),
    ]


def test_known_load_gives_the_hand_computed_sizes() -> None:
    now = time.time()
    db, report = report_of(*known_load(now), now=now)
    rec = advise(db, report)["recommendation"]
    assert (rec["pool_size"], rec["max_overflow"], rec["per_process"]) == (7, 2, 9)
    assert rec["busiest"] == "web-1:101" and rec["mean_in_use"] == 3.0
    assert rec["basis"] == "peak"
    assert rec["steps"][0].startswith("L = 60.0 checkouts/s x 50.0 ms mean held = 3.00")
    assert rec["steps"][1] == "pool_size = ceil(L + 2 x sqrt(L)) = ceil(3.00 + 2 x 1.73) = 7"


def test_a_pool_that_hit_its_limit_is_advised_half_as_much_again() -> None:
    # web-1 timed out 3 times with 10 of 10 open: demand >= 10, so max(7, ceil(1.5 x 10)) = 15.
    now = time.time()
    db, report = report_of(*known_load(now, peak=10, timeouts=3), now=now)
    rec = advise(db, report)["recommendation"]
    assert (rec["pool_size"], rec["max_overflow"], rec["basis"]) == (7, 8, "limit reached")


def test_too_little_data_gives_no_recommendation_and_says_so() -> None:
    now = time.time()
    db, report = report_of(
        pool_entry(span=600, checkouts=150, held_s=10, peak=2, now=now),
        pool_entry(span=30, checkouts=5000, held_s=10, peak=2, now=now),
        now=now,
    )
    rec = advise(db, report)["recommendation"]
    assert rec["enough_data"] is False
    assert "at least 200 checkouts over at least 60 s" in rec["reason"]
    assert recommend([])["reason"].startswith("too little data: no pool of this alias")


def test_capacity_table_marks_the_fleets_that_do_not_fit() -> None:
    table = capacity_table(9, budget=100)
    cells = {
        (row["workers"], c["connections"]): c["fits"] for row in table["rows"] for c in row["cells"]
    }
    assert cells[(1, 9)] and cells[(8, 72)] and not cells[(4, 144)]  # 4 workers x 4 hosts x 9
    assert table["most_processes"] == 11  # 100 // 9


def test_manage_py_poolstats_advise_prints_the_hand_computation(settings, tmp_path) -> None:
    settings.DJANGO_SQLA_POOL_STATS_DIR = str(tmp_path)
    settings.DJANGO_SQLA_POOL_PROCESSES = 24
    # This process's own pool is new: too young to count (see MIN_SPAN_S).
    connection.close()
    registry.close_pools("default")
    now = time.time()
    for i, pool in enumerate(known_load(now), start=1):
        write_snapshot(
            tmp_path,
            {
                "pid": 100 + i,
                "hostname": f"web-{i}",
                "time": now,
                "pools": [{**pool, "config": {**pool["config"]}}],
            },
        )
    out = io.StringIO()
    call_command("poolstats", "--advise", "--database", "default", stdout=out)
    text = out.getvalue()
    assert "L = 60.0 checkouts/s x 50.0 ms mean held = 3.00 connections in use" in text
    assert "pool_size + max_overflow = max(pool_size 7, peak 9) = 9" in text
    assert "=> pool_size 7, max_overflow 2 (9 per process)" in text
    assert "current: pool_size 5, max_overflow 5 = 10 per process" in text
    assert "fleet now: 24 processes (settings.DJANGO_SQLA_POOL_PROCESSES) x 10 = 240" in text
    lines = text.splitlines()
    [max_line] = [line for line in lines if line.startswith("server: max_connections")]
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        assert f"max_connections {cursor.fetchone()[0]} " in max_line
    # 1 worker on 1 host fits; 32 workers on 8 hosts (2,304 connections) does not.
    assert any(line.split()[:2] == ["1", "9"] for line in lines)
    assert any(line.split()[0] == "32" and line.split()[-1] == "2304*" for line in lines)

    out = io.StringIO()
    call_command("poolstats", "--advise", "--format", "json", stdout=out)
    [advice] = [a for a in json.loads(out.getvalue())["databases"] if a["alias"] == "default"]
    assert advice["recommendation"]["pool_size"] == 7
    assert advice["table"]["per_process"] == 9
