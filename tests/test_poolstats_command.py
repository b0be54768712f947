"""manage.py poolstats: text, JSON schema, exit statuses, --watch, and no secrets."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from django_sqla_pool import PoolTimeout, pool_stats
from django_sqla_pool.conf import PoolSettings
from django_sqla_pool.core.postgresql.params import HOSTNAME as _HOSTNAME

from .conftest import backend_pid, database_url
from .workers import ROOT, start_worker, stop_worker

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = (int, float)
NULLABLE_NUMBER = (int, float, type(None))
CONFIG_TYPES = {
    "int": int,
    "int | None": (int, type(None)),
    "float": NUMBER,
    "float | None": NULLABLE_NUMBER,
    "bool": bool,
    "str": str,
    # The credentials provider, shown by its dotted name (never called, never its secret).
    "Callable[[str], Any] | None": (str, type(None)),
}

# The documented schema (docs/observability.md), as key -> type or nested schema.
SERVER = {
    "product": str,
    "source": str,
    "version": str,
    "max_connections": int,
    "superuser_reserved_connections": int,
    "reserved_connections": int,
    "available": int,
    "connections": int,
    "pooled_connections": int,
    "other_connections": int,
    "hidden_connections": int,
    "headroom": int,
}
PROCESS = {
    "host": str,
    "pid": int,
    "alias": str,
    "this_process": bool,
    "connections": int,
    "states": dict,
    "oldest_connection_s": NUMBER,
    "longest_query_s": NULLABLE_NUMBER,
    "databases": list,
}
FLEET = {
    "alias": str,
    "time": float,
    "observer": {"host": str, "pid": int},
    "server": SERVER,
    "processes": [PROCESS],
}
POOL = {
    "alias": str,
    "name": str,
    # Every field of PoolSettings, typed as annotated: the one list of settings.
    "config": {f.name: CONFIG_TYPES[str(f.type)] for f in dataclasses.fields(PoolSettings)},
    "gauges": dict.fromkeys(
        ("pool_size", "max_overflow", "checked_out", "idle", "overflow", "waiting"), int
    ),
    "counters": {
        **dict.fromkeys(
            (
                "connections_opened",
                "connections_closed",
                "connect_errors",
                "checkouts",
                "checkins",
                "timeouts",
                "leaks_reported",
                "statement_timeouts",
                "server_waits",
                "server_unreachable_errors",
                "connections_closed_idle",
                "connections_open_peak",
                "failovers",
            ),
            int,
        ),
        "invalidations": dict.fromkeys(
            ("pre_ping", "disconnect", "recycle", "error", "drained", "failover"), int
        ),
    },
    "timings": {
        **{f"{k}_ms_{s}": NUMBER for k in ("wait", "held") for s in ("total", "max", "p50", "p99")},
        "connect_ms_total": NUMBER,
        "connect_ms_max": NUMBER,
    },
    "histograms": {
        key: {"le": list, "counts": list, "count": int, "sum": NUMBER}
        for key in ("wait_s", "held_s", "connect_s")
    },
    "last_timeout_at": NULLABLE_NUMBER,
    "created_at": float,
    "last_connect_error_at": NULLABLE_NUMBER,
    "servers": dict,
    "credentials": {"provider": (str, None), "calls": int, "errors": int},
    "saturation": list,
    "errors": list,
}
WORKER = {"host": str, "pid": int, "age_s": NUMBER, "pools": [POOL]}
DATABASE = {
    "alias": str,
    "fleet": (FLEET, None),
    "fleet_error": (str, None),
    "pools": [POOL],
    "workers": ([WORKER], None),
}
REPORT = {
    "schema_version": int,
    "time": float,
    "observer": {"host": str, "pid": int},
    "stats_dir": (str, None),
    "min_headroom": int,
    "window_s": NUMBER,
    "databases": [DATABASE],
    "problems": [{"kind": str, "alias": str, "where": str, "detail": str}],
    "exit_status": int,
}


def check(value: Any, schema: Any, where: str = "report") -> None:
    """Fail unless ``value`` has exactly the keys and types ``schema`` describes."""
    if isinstance(schema, tuple) and any(isinstance(s, (dict, list)) for s in schema):
        errors = []
        for option in schema:
            try:
                if option is None:
                    assert value is None, f"{where}: not None"
                else:
                    check(value, option, where)
                return
            except AssertionError as error:
                errors.append(str(error))
        raise AssertionError("; ".join(errors))
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        assert set(value) == set(schema), f"{where}: keys {sorted(value)} != {sorted(schema)}"
        for key, sub in schema.items():
            check(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        for i, item in enumerate(value):
            check(item, schema[0], f"{where}[{i}]")
    else:
        types = (
            tuple(type(None) if s is None else s for s in schema)
            if isinstance(schema, tuple)
            else schema
        )
        assert isinstance(value, types), f"{where}: {value!r} is not {schema}"
        if types in (int, NUMBER):
            assert not isinstance(value, bool), f"{where}: {value!r} is a bool"


def poolstats(*args: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("poolstats", *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), error.returncode
    return out.getvalue(), 0


def test_json_report_follows_the_documented_schema_and_matches_the_stats_api(
    make_wrapper,
) -> None:
    db = make_wrapper("default", pool_size=3, max_overflow=1)
    for _ in range(4):
        backend_pid(db)
        db.close()
    output, status = poolstats("--format", "json", "--min-headroom", "0")
    report = json.loads(output)
    check(report, REPORT)
    assert status == report["exit_status"] == 0
    assert report["schema_version"] == 1 and report["problems"] == []
    [database] = report["databases"]
    assert database["alias"] == "default" and database["workers"] is None
    [probe] = [p for p in database["pools"] if p["config"]["pool_size"] == 3]
    [expected] = [p for p in pool_stats("default")["pools"] if p["config"]["pool_size"] == 3]
    assert probe["counters"] == expected["counters"]
    assert probe["counters"]["checkouts"] == 4
    assert probe["saturation"] == []
    mine = [p for p in database["fleet"]["processes"] if p["this_process"]]
    assert mine and all(p["pid"] == os.getpid() and p["host"] == _HOSTNAME for p in mine)


def test_text_report_is_a_readable_table(make_wrapper) -> None:
    backend_pid(make_wrapper("default", pool_size=3, max_overflow=1))
    output, status = poolstats("--min-headroom", "0")
    assert status == 0
    lines = output.splitlines()
    assert lines[0].startswith("poolstats ") and f"pid {os.getpid()}" in lines[0]
    assert f"== default: {connection.pool_family.product} " in output
    assert any(line.startswith("server: max_connections ") and "headroom" in line for line in lines)
    header = next(line for line in lines if line.split()[:2] == ["HOST", "PID"])
    assert "IDLE-IN-TX" in header and "LONGEST-QUERY" in header
    assert any(line.split()[:2] == [_HOSTNAME, str(os.getpid())] for line in lines)
    row = next(line for line in lines if "(this)" in line and "1/4" in line)
    assert row.split()[-1] == "ok"
    assert lines[-1] == "exit status 0"


def test_a_full_pool_exits_3_and_says_which_pool(make_wrapper) -> None:
    holder = make_wrapper("default", pool_size=1, max_overflow=0)
    backend_pid(holder)
    output, status = poolstats("--format", "json", "--min-headroom", "0")
    assert status == 3
    report = json.loads(output)
    [problem] = report["problems"]
    assert problem["kind"] == "saturated"
    assert problem["where"] == f"{socket.gethostname()}:{os.getpid()}"
    assert "full" in problem["detail"] and "1/1 checked out" in problem["detail"]
    holder.close()
    assert poolstats("--min-headroom", "0")[1] == 0


def test_a_recent_timeout_exits_3_within_the_window_only(make_wrapper) -> None:
    holder = make_wrapper("default", pool_size=1, max_overflow=0, pool_timeout=0.05)
    backend_pid(holder)
    with pytest.raises(PoolTimeout):
        make_wrapper("default", pool_size=1, max_overflow=0, pool_timeout=0.05).ensure_connection()
    holder.close()
    output, status = poolstats("--min-headroom", "0")
    assert status == 3 and "saturated" in output and "timeouts" in output
    assert poolstats("--min-headroom", "0", "--window", "0")[1] == 0


def test_low_headroom_exits_4_and_both_problems_exit_5(make_wrapper) -> None:
    output, status = poolstats("--min-headroom", "100000")
    assert status == 4
    assert "PROBLEM low_headroom default server" in output
    holder = make_wrapper("default", pool_size=1, max_overflow=0)
    backend_pid(holder)
    assert poolstats("--min-headroom", "100000")[1] == 5


def test_watch_prints_count_reports_and_stops() -> None:
    output, status = poolstats(
        "--watch", "--count", "3", "--interval", "0.01", "--format", "json", "--min-headroom", "0"
    )
    reports = [json.loads(line) for line in output.splitlines()]
    assert status == 0 and len(reports) == 3
    assert reports[0]["time"] < reports[1]["time"] < reports[2]["time"]


def test_unknown_alias_and_bad_numbers_are_command_errors() -> None:
    with pytest.raises(CommandError, match="not in DATABASES"):
        call_command("poolstats", "--database", "nope")
    with pytest.raises(CommandError, match="--interval"):
        call_command("poolstats", "--interval", "0")


def run_manage_py(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "poolstats", *args],
        cwd=ROOT / "testproject",
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.postgresql_only("passes a password that trust authentication ignores")
def test_manage_py_shows_every_worker_and_never_the_password(tmp_path) -> None:
    # Trust authentication ignores the password, so it rides along in every connection.
    password = "pw-that-must-never-show-9f3c"
    env = {"DATABASE_URL": database_url(password), "DJANGO_SQLA_POOL_STATS_DIR": str(tmp_path)}
    worker = start_worker(5, tmp_path, **env)
    try:
        name = tmp_path / f"{socket.gethostname()}-{worker.pid}.json"
        deadline = time.monotonic() + 15
        while not name.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        text = run_manage_py("--min-headroom", "0", env=env)
        as_json = run_manage_py("--format", "json", "--min-headroom", "0", env=env)
        low = run_manage_py("--min-headroom", "100000", env=env)
    finally:
        stop_worker(worker)
    for result in (text, as_json, low):
        assert password not in result.stdout + result.stderr
    assert text.returncode == 0, text.stderr
    assert f"{socket.gethostname()}:{worker.pid}" in text.stdout
    report = json.loads(as_json.stdout)
    check(report, REPORT)
    [workers] = [db["workers"] for db in report["databases"]]
    [shared] = [w for w in workers if w["pid"] == worker.pid]
    assert shared["pools"][0]["counters"]["checkouts"] == 5
    assert any(p["pid"] == worker.pid for p in report["databases"][0]["fleet"]["processes"])
    assert low.returncode == 4
    assert "CommandError: poolstats: low_headroom default server" in low.stderr


def test_manage_py_exits_1_when_the_server_cannot_be_reached() -> None:
    password = "pw-unreachable-7e1a"
    result = run_manage_py("--format", "json", env={"DATABASE_URL": database_url(password, 1)})
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    check(report, REPORT)
    assert report["databases"][0]["fleet"] is None
    assert "could not open a connection" in report["databases"][0]["fleet_error"]
    assert password not in result.stdout + result.stderr


def test_a_pool_whose_server_is_down_is_not_ok_in_the_status_column() -> None:
    result = run_manage_py(env={"DATABASE_URL": database_url("", 1)})  # nothing listens on 1
    assert result.returncode == 1, result.stdout + result.stderr
    [row] = [line for line in result.stdout.splitlines() if "(this)" in line]
    # The fleet query failed, and so did the pool's attempt to connect.
    assert row.split()[-1] == "unreachable,connect_errors", row
    assert "PROBLEM connect_errors default" in result.stdout


def test_a_recent_connect_error_is_a_problem_within_the_window_only() -> None:
    from django.db import connection

    from django_sqla_pool import PoolConnectError
    from django_sqla_pool.backends.postgresql.base import DatabaseWrapper
    from django_sqla_pool.core import registry
    from django_sqla_pool.observe.report import build_report

    dead = DatabaseWrapper(
        {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "1"}, alias="down"
    )
    try:
        with pytest.raises(PoolConnectError):
            dead.ensure_connection()
        # "down" is not in DATABASES: no fleet query, only the pool's own record.
        report = build_report(["down"], min_headroom=0)
        [pool] = report["databases"][0]["pools"]
        assert pool["errors"] == ["connect_errors"]
        assert [p["kind"] for p in report["problems"]] == ["connect_errors"]
        assert report["exit_status"] == 1
        quiet = build_report(["down"], min_headroom=0, window=0)
        assert quiet["databases"][0]["pools"][0]["errors"] == []
        assert quiet["exit_status"] == 0
    finally:
        registry.close_pools("down")
