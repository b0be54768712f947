"""``manage.py poolstats``: the fleet, the pools and every worker's counters.

Exit statuses (also in docs/observability.md): 0 all well, 1 the server
could not be queried, 2 bad arguments, 3 a pool is saturated, 4 the
server's headroom is below ``--min-headroom``, 5 both 3 and 4.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...observe.advice import advise, format_advice
from ...observe.fleet import STATES
from ...observe.report import EXIT_OK, build_report, pooled_aliases
from ...observe.snapshots import STATS_DIR_SETTING, stats_dir
from ...observe.tables import duration, table
from ...operations import drain, request_drain
from ...release import release_connections


def _pool_rows(where: str, pools: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for pool in pools:
        gauges, counters, timings = pool["gauges"], pool["counters"], pool["timings"]
        rows.append(
            [
                where,
                pool["name"],
                f"{gauges['checked_out']}/{gauges['pool_size'] + gauges['max_overflow']}",
                gauges["idle"],
                gauges["overflow"],
                gauges["waiting"],
                counters["checkouts"],
                counters["timeouts"],
                sum(counters["invalidations"].values()),
                counters["connect_errors"],
                counters.get("statement_timeouts", 0),  # absent in an older worker's snapshot
                f"{timings['wait_ms_p99']:.1f}ms",
                f"{timings['held_ms_p99']:.1f}ms",
                ",".join(pool["saturation"] + pool["errors"]) or "ok",
            ]
        )
    return rows


_POOL_HEADER = [
    "PROCESS",
    "POOL",
    "OUT/MAX",
    "IDLE",
    "OVERFLOW",
    "WAITING",
    "CHECKOUTS",
    "TIMEOUTS",
    "INVALIDATED",
    "CONNECT-ERR",
    "STMT-TIMEOUTS",
    "WAIT-P99",
    "HELD-P99",
    "STATUS",
]


def format_text(report: dict[str, Any]) -> str:
    """The report as the readable tables ``poolstats`` prints by default."""
    when = datetime.fromtimestamp(report["time"], tz=timezone.utc)
    observer = report["observer"]
    lines = [f"poolstats {when:%Y-%m-%d %H:%M:%S} UTC on {observer['host']} pid {observer['pid']}"]
    if report["stats_dir"] is None:
        lines.append(f"stats dir: not configured (set {STATS_DIR_SETTING} to see every worker)")
    else:
        lines.append(f"stats dir: {report['stats_dir']}")
    for db in report["databases"]:
        lines.append("")
        fleet_view = db["fleet"]
        if fleet_view is None and db["fleet_error"] is None:
            lines.append(f"== {db['alias']}: not in DATABASES, no fleet view")
        elif fleet_view is None:
            lines.append(f"== {db['alias']}: server not reachable: {db['fleet_error']}")
        else:
            server = fleet_view["server"]
            lines.append(f"== {db['alias']}: {server['product']} {server['version']}")
            lines.append(
                f"server: max_connections {server['max_connections']}, reserved "
                f"{server['superuser_reserved_connections'] + server['reserved_connections']}, "
                f"in use {server['connections']} (pooled {server['pooled_connections']}, "
                f"other {server['other_connections']}), headroom {server['headroom']}"
            )
            lines.append(f"fleet (pooled connections by process, from {server['source']}):")
            rows = [
                [
                    p["host"],
                    p["pid"],
                    p["alias"],
                    p["connections"],
                    *(p["states"].get(state, 0) for state in STATES[:3]),
                    p["connections"] - sum(p["states"].get(state, 0) for state in STATES[:3]),
                    duration(p["oldest_connection_s"]),
                    duration(p["longest_query_s"]),
                ]
                for p in fleet_view["processes"]
            ]
            header = ["HOST", "PID", "ALIAS", "CONNECTIONS", "ACTIVE", "IDLE", "IDLE-IN-TX"]
            header += ["OTHER", "OLDEST", "LONGEST-QUERY"]
            lines.extend(table(header, rows) if rows else ["  (none)"])
        rows = _pool_rows(f"{observer['host']}:{observer['pid']} (this)", db["pools"])
        for worker in db["workers"] or []:
            rows += _pool_rows(f"{worker['host']}:{worker['pid']}", worker["pools"])
        title = "pools (this process"
        if db["workers"] is not None:
            title += ", workers from the stats dir"
        lines.append(f"{title}):")
        lines.extend(table(_POOL_HEADER, rows) if rows else ["  (none)"])
        for pool in db["pools"]:
            # Which server each connection reached: with several hosts in HOST
            # (libpq's comma list), the one target_session_attrs chose.
            servers = pool.get("servers") or {}
            failovers = pool["counters"].get("failovers", 0)
            if len(servers) > 1 or "," in pool["name"] or failovers:
                reached = ", ".join(f"{s} x{n}" for s, n in sorted(servers.items())) or "none"
                lines.append(f"  {pool['name']}: connected to {reached}; failovers {failovers}")
    lines.append("")
    for problem in report["problems"]:
        lines.append(
            f"PROBLEM {problem['kind']} {problem['alias']} {problem['where']}: {problem['detail']}"
        )
    lines.append(f"exit status {report['exit_status']}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Show the connection pools: the server's view of every process's connections, "
        "this process's pools and (with DJANGO_SQLA_POOL_STATS_DIR) every worker's. "
        "Exit status: 0 ok, 1 server not reachable, 3 a pool is saturated, "
        "4 server headroom below --min-headroom, 5 both."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            help="Only this alias (default: every alias using django_sqla_pool).",
        )
        parser.add_argument("--format", choices=("text", "json"), default="text")
        parser.add_argument(
            "--watch", action="store_true", help="Print a report every --interval seconds."
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=2.0,
            help="Seconds between reports with --watch (default 2).",
        )
        parser.add_argument(
            "--count",
            type=int,
            default=0,
            help="With --watch, stop after this many reports (default 0: until interrupted).",
        )
        parser.add_argument(
            "--min-headroom",
            type=int,
            default=1,
            help="Exit status 4 when fewer free server connection slots remain (default 1).",
        )
        parser.add_argument(
            "--window",
            type=float,
            default=60.0,
            help="A checkout timeout within this many seconds marks its pool saturated "
            "(default 60).",
        )
        parser.add_argument(
            "--drain",
            action="store_true",
            help="Replace every pooled connection (of --database, or all): in this process "
            "at once and, when DJANGO_SQLA_POOL_STATS_DIR is set, in every process sharing "
            "that directory within about a second. No request fails.",
        )
        parser.add_argument(
            "--advise",
            action="store_true",
            help="Recommend pool_size and max_overflow per process from the observed load, "
            "and print the capacity table for the server (README, 'Sizing').",
        )

    def _advise(self, aliases: list[str], output: str) -> None:
        with release_connections():
            report = build_report(aliases)
        advice = [advise(db, report) for db in report["databases"]]
        if output == "json":
            self.stdout.write(json.dumps({"time": report["time"], "databases": advice}, indent=2))
        else:
            self.stdout.write("\n\n".join(format_advice(a) for a in advice))

    def _drain(self, alias: str | None) -> None:
        drained = drain(alias)
        what = f"alias {alias!r}" if alias else "every pooled alias"
        self.stdout.write(
            f"drained {what} in this process (pid {os.getpid()}): "
            + (", ".join(f"{name} ({n} idle closed)" for name, n in drained.items()) or "no pools")
        )
        directory = stats_dir()
        if directory is None:
            self.stdout.write(
                f"other processes are not affected: set {STATS_DIR_SETTING} in every worker "
                "to drain them all from here, or signal each worker (docs/managed.md)"
            )
            return
        path = request_drain(directory, alias)
        self.stdout.write(
            f"asked every process sharing {directory} to drain ({path.name}); their stats "
            "threads act on it within about a second"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        if alias is not None and alias not in settings.DATABASES:
            raise CommandError(
                f"--database {alias!r} is not in DATABASES; choose one of "
                f"{', '.join(settings.DATABASES)}."
            )
        if options["interval"] <= 0 or options["window"] < 0 or options["count"] < 0:
            raise CommandError("--interval must be > 0, --window and --count >= 0.")
        aliases = [alias] if alias is not None else pooled_aliases()
        if options["drain"]:
            self._drain(alias)
            return
        if options["advise"]:
            self._advise(aliases, options["format"])
            return
        reports = options["count"] if options["watch"] else 1
        status = EXIT_OK
        shown = 0
        while True:
            # Return the fleet query's connection every time: --watch runs for hours.
            with release_connections():
                report = build_report(
                    aliases, min_headroom=options["min_headroom"], window=options["window"]
                )
            status = report["exit_status"]
            if options["format"] == "json":
                indent = None if options["watch"] else 2
                self.stdout.write(json.dumps(report, indent=indent))
            else:
                self.stdout.write(format_text(report))
            shown += 1
            if reports and shown >= reports:
                break
            self.stdout.flush()
            time.sleep(options["interval"])
            if options["format"] == "text":
                self.stdout.write("")
        if status != EXIT_OK:
            problems = (
                "; ".join(f"{p['kind']} {p['alias']} {p['where']}" for p in report["problems"])
                or "the server could not be queried"
            )
            raise CommandError(f"poolstats: {problems}", returncode=status)
