"""One report of everything known about the pools, and what is wrong with them.

``manage.py poolstats`` prints it and the admin page shows it; both judge a
pool saturated, or the server short of connections, by the rules here.
The structure is documented in docs/observability.md ("poolstats JSON").
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from ..conf import is_pooled
from .fleet import fleet
from .snapshots import read_snapshots, stats_dir
from .stats import pool_stats

#: Version of the report's structure; raised only when a key changes meaning or goes.
SCHEMA_VERSION = 1

#: Exit statuses of ``manage.py poolstats`` (2 is argparse's usage error).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_SATURATED = 3
EXIT_LOW_HEADROOM = 4
EXIT_SATURATED_AND_LOW_HEADROOM = 5


def pooled_aliases() -> list[str]:
    """The DATABASES aliases that use one of this package's ENGINEs."""
    return [alias for alias, db in settings.DATABASES.items() if is_pooled(db)]


def saturation(pool: dict[str, Any], now: float, window: float) -> list[str]:
    """Why one pool entry of a stats snapshot counts as saturated (empty: it does not).

    ``waiting``: threads are queued for a connection; ``full``: every
    connection (pool_size + max_overflow) is checked out; ``timeouts``: a
    checkout timed out in the last ``window`` seconds.
    """
    gauges = pool["gauges"]
    reasons = []
    if gauges["waiting"] > 0:
        reasons.append("waiting")
    if gauges["checked_out"] >= gauges["pool_size"] + gauges["max_overflow"]:
        reasons.append("full")
    last_timeout = pool.get("last_timeout_at")
    if last_timeout is not None and now - last_timeout <= window:
        reasons.append("timeouts")
    return reasons


def connect_trouble(
    pool: dict[str, Any], now: float, window: float, unreachable: bool = False
) -> list[str]:
    """Why one pool entry counts as unable to reach its server (empty: it can).

    ``unreachable``: the fleet query for its alias failed in this report;
    ``connect_errors``: opening a connection failed in the last ``window`` seconds.
    """
    reasons = ["unreachable"] if unreachable else []
    last_error = pool.get("last_connect_error_at")
    if last_error is not None and now - last_error <= window:
        reasons.append("connect_errors")
    return reasons


def _judged(
    pools: Iterable[dict[str, Any]], now: float, window: float, unreachable: bool = False
) -> list[dict[str, Any]]:
    return [
        {
            **pool,
            "saturation": saturation(pool, now, window),
            "errors": connect_trouble(pool, now, window, unreachable),
        }
        for pool in pools
    ]


def build_report(
    aliases: Iterable[str] | None = None,
    *,
    min_headroom: int = 1,
    window: float = 60.0,
) -> dict[str, Any]:
    """Fleet, this process's pools and (when configured) every worker's, judged.

    ``min_headroom``: fewer free server slots than this is a problem.
    ``window``: seconds a checkout timeout keeps its pool "saturated".
    """
    now = time.time()
    aliases = pooled_aliases() if aliases is None else list(aliases)
    directory = stats_dir()
    snapshots = read_snapshots(directory) if directory is not None else None
    fleets: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
    for alias in aliases:
        if alias not in settings.DATABASES:
            fleets[alias] = (None, None)  # pools built by hand: no connection to ask with
            continue
        try:
            fleets[alias] = (fleet(alias), None)
        except DatabaseError as error:
            fleets[alias] = (None, f"{type(error).__name__}: {error}".strip())
    own = pool_stats()  # after the fleet queries, which may have created this process's pool
    problems: list[dict[str, Any]] = []
    databases = []
    for alias in aliases:
        fleet_view, fleet_error = fleets[alias]
        down = fleet_error is not None
        pools = _judged((p for p in own["pools"] if p["alias"] == alias), now, window, down)
        where = f"{own['hostname']}:{own['pid']}"
        for pool in pools:
            if pool["saturation"]:
                problems.append(_saturated(alias, where, pool))
            if "connect_errors" in pool["errors"]:
                problems.append(_connect_errors(alias, where, pool))
        workers = None
        if snapshots is not None:
            workers = []
            for snapshot in snapshots:
                if snapshot["pid"] == own["pid"] and snapshot["hostname"] == own["hostname"]:
                    continue  # this process: shown live under "pools"
                mine = _judged(
                    (p for p in snapshot["pools"] if p["alias"] == alias), now, window, down
                )
                if not mine:
                    continue
                workers.append(
                    {
                        "host": snapshot["hostname"],
                        "pid": snapshot["pid"],
                        "age_s": snapshot["age_s"],
                        "pools": mine,
                    }
                )
                for pool in mine:
                    where = f"{snapshot['hostname']}:{snapshot['pid']}"
                    if pool["saturation"]:
                        problems.append(_saturated(alias, where, pool))
                    if "connect_errors" in pool["errors"]:
                        problems.append(_connect_errors(alias, where, pool))
        if fleet_view is not None and fleet_view["server"]["headroom"] < min_headroom:
            server = fleet_view["server"]
            problems.append(
                {
                    "kind": "low_headroom",
                    "alias": alias,
                    "where": "server",
                    "detail": f"{server['headroom']} free connection slots "
                    f"({server['connections']} of {server['available']} in use), "
                    f"fewer than {min_headroom}",
                }
            )
        databases.append(
            {
                "alias": alias,
                "fleet": fleet_view,
                "fleet_error": fleet_error,
                "pools": pools,
                "workers": workers,
            }
        )
    errors = any(db["fleet_error"] for db in databases) or any(
        p["kind"] == "connect_errors" for p in problems
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "time": now,
        "observer": {"host": socket.gethostname(), "pid": os.getpid()},
        "stats_dir": str(directory) if directory is not None else None,
        "min_headroom": min_headroom,
        "window_s": window,
        "databases": databases,
        "problems": problems,
        "exit_status": exit_status(problems, errors=errors),
    }


def _saturated(alias: str, where: str, pool: dict[str, Any]) -> dict[str, Any]:
    gauges = pool["gauges"]
    return {
        "kind": "saturated",
        "alias": alias,
        "where": where,
        "detail": f"pool {pool['name']}: {', '.join(pool['saturation'])} "
        f"({gauges['checked_out']}/{gauges['pool_size'] + gauges['max_overflow']} "
        f"checked out, {gauges['waiting']} waiting)",
    }


def _connect_errors(alias: str, where: str, pool: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "connect_errors",
        "alias": alias,
        "where": where,
        "detail": f"pool {pool['name']}: could not open a connection "
        f"({pool['counters']['connect_errors']} failed attempts since the pool was created)",
    }


def exit_status(problems: list[dict[str, Any]], *, errors: bool = False) -> int:
    """The documented exit status for these problems."""
    if errors:
        return EXIT_ERROR
    kinds = {p["kind"] for p in problems}
    if kinds == {"saturated", "low_headroom"}:
        return EXIT_SATURATED_AND_LOW_HEADROOM
    if "saturated" in kinds:
        return EXIT_SATURATED
    if "low_headroom" in kinds:
        return EXIT_LOW_HEADROOM
    return EXIT_OK
