"""Sizing advice: ``pool_size`` and ``max_overflow`` per process from what the pools saw.

The recommendation rests on two observations of the busiest process (README, "Sizing"):

- **Little's law**: connections in use on average ``L = arrival rate x mean
  held time`` (checkouts / seconds the pool has lived, times held time /
  checkins). ``pool_size = ceil(L + 2 x sqrt(L))``: the mean plus room for
  its random fluctuation (square-root staffing: with Poisson arrivals a
  request then rarely finds every connection busy);
- **the peak**: the most connections a pool had open at once. A pool opens
  one only when none is idle, so this is the peak demand, unless the pool hit
  its limit (or a checkout timed out): then demand was at least the limit,
  and the advice is the limit plus half.

``pool_size + max_overflow = max(pool_size, peak)``, or ``max(pool_size,
ceil(1.5 x limit))`` when the limit was hit. With fewer than
``MIN_CHECKOUTS`` checkouts or ``MIN_SPAN_S`` seconds in every process there
is too little data, and nothing is recommended.

The capacity table multiplies workers per host x hosts x connections per
process and marks the fleets the server has no room for.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..conf import parse_pool_settings
from .capacity import configured_processes
from .tables import table as columns

#: Less than this in the busiest process is too little data to advise on.
MIN_CHECKOUTS = 200
MIN_SPAN_S = 60.0
#: Square-root staffing: pool_size = ceil(L + SPREAD x sqrt(L)).
SPREAD = 2.0
#: When a pool hit its limit, advise this multiple of the limit.
GROWTH = 1.5
#: Rows and columns of the capacity table.
WORKERS = (1, 2, 4, 8, 16, 32)
HOSTS = (1, 2, 4, 8)


def _observations(db: dict[str, Any], report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per process with a pool of this alias: rate, held time, L, peak, limit."""
    observer = report["observer"]
    entries = [(f"{observer['host']}:{observer['pid']}", report["time"], p) for p in db["pools"]]
    for worker in db["workers"] or []:
        when = report["time"] - worker["age_s"]
        entries += [(f"{worker['host']}:{worker['pid']}", when, p) for p in worker["pools"]]
    rows = []
    for where, when, pool in entries:
        created = pool.get("created_at")
        if created is None:
            continue  # a snapshot from a version that did not record it
        counters, timings, config = pool["counters"], pool["timings"], pool["config"]
        span = max(0.0, when - created)
        checkouts, checkins = counters["checkouts"], counters["checkins"]
        rate = checkouts / span if span > 0 else 0.0
        mean_held = timings["held_ms_total"] / 1000 / checkins if checkins else 0.0
        limit = config["pool_size"] + config["max_overflow"]
        peak = counters.get("connections_open_peak", 0)
        rows.append(
            {
                "where": where,
                "span_s": round(span, 1),
                "checkouts": checkouts,
                "arrival_per_s": round(rate, 3),
                "mean_held_ms": round(mean_held * 1000, 3),
                "mean_in_use": round(rate * mean_held, 3),
                "peak_open": peak,
                "limit": limit,
                "timeouts": counters["timeouts"],
                "wait_ms_p99": timings["wait_ms_p99"],
                "saturated": counters["timeouts"] > 0 or peak >= limit,
                "enough": checkouts >= MIN_CHECKOUTS and span >= MIN_SPAN_S,
            }
        )
    return rows


def recommend(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The recommendation from the observed rows, with each step of the arithmetic."""
    usable = [row for row in rows if row["enough"]]
    if not usable:
        most = max(rows, key=lambda r: r["checkouts"], default=None)
        seen = (
            f"the busiest process saw {most['checkouts']} checkouts over {most['span_s']} s"
            if most
            else "no pool of this alias has recorded anything yet"
        )
        return {
            "enough_data": False,
            "reason": f"too little data: {seen}; advice needs at least {MIN_CHECKOUTS} "
            f"checkouts over at least {MIN_SPAN_S:.0f} s in one process. Run it during "
            "representative load, with DJANGO_SQLA_POOL_STATS_DIR set so it sees every worker.",
        }
    busiest = max(usable, key=lambda r: r["mean_in_use"])
    load = busiest["mean_in_use"]
    steady = max(1, math.ceil(load + SPREAD * math.sqrt(load)))
    peak = max(row["peak_open"] for row in usable)
    limit = max(row["limit"] for row in usable)
    saturated = [row for row in usable if row["saturated"]]
    steps = [
        f"L = {busiest['arrival_per_s']:.1f} checkouts/s x {busiest['mean_held_ms']:.1f} ms "
        f"mean held = {load:.2f} connections in use on average ({busiest['where']}, "
        "Little's law)",
        f"pool_size = ceil(L + {SPREAD:g} x sqrt(L)) = ceil({load:.2f} + {SPREAD:g} x "
        f"{math.sqrt(load):.2f}) = {steady}",
    ]
    if saturated:
        grown = math.ceil(GROWTH * limit)
        total = max(steady, grown)
        timeouts = sum(row["timeouts"] for row in saturated)
        steps.append(
            f"the limit was reached (peak {peak} of {limit}, {timeouts} timeouts): demand was "
            f"at least that, so pool_size + max_overflow = max({steady}, ceil({GROWTH:g} x "
            f"{limit})) = {total}; run --advise again after the change"
        )
        basis = "limit reached"
    else:
        total = max(steady, peak)
        steps.append(f"pool_size + max_overflow = max(pool_size {steady}, peak {peak}) = {total}")
        basis = "peak" if peak > steady else "little"
    return {
        "enough_data": True,
        "basis": basis,
        "busiest": busiest["where"],
        "mean_in_use": load,
        "peak_open": peak,
        "limit": limit,
        "pool_size": steady,
        "max_overflow": total - steady,
        "per_process": total,
        "steps": steps,
    }


def capacity_table(per_process: int, budget: int | None) -> dict[str, Any]:
    """workers per host x hosts x ``per_process``, each marked whether it fits in ``budget``."""
    return {
        "per_process": per_process,
        "budget": budget,
        "hosts": list(HOSTS),
        "rows": [
            {
                "workers": workers,
                "cells": [
                    {
                        "connections": workers * hosts * per_process,
                        "fits": budget is None or workers * hosts * per_process <= budget,
                    }
                    for hosts in HOSTS
                ],
            }
            for workers in WORKERS
        ],
        "most_processes": None if budget is None else max(0, budget) // max(1, per_process),
    }


def _current(alias: str, db: dict[str, Any]) -> dict[str, int] | None:
    if alias in settings.DATABASES:
        try:
            pool_settings = parse_pool_settings(alias, settings.DATABASES[alias])
        except ImproperlyConfigured:
            pool_settings = None
        if pool_settings is not None:
            return {
                "pool_size": pool_settings.pool_size,
                "max_overflow": pool_settings.max_overflow,
                "per_process": pool_settings.max_connections,
            }
    for pool in db["pools"]:
        config = pool["config"]
        size, overflow = config["pool_size"], config["max_overflow"]
        return {"pool_size": size, "max_overflow": overflow, "per_process": size + overflow}
    return None


def advise(db: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """The advice for one database entry of a ``report.build_report()`` result."""
    alias = db["alias"]
    rows = _observations(db, report)
    recommendation = recommend(rows)
    current = _current(alias, db)
    server = None
    fleet_view = db["fleet"]
    if fleet_view is not None:
        numbers = fleet_view["server"]
        seen = {(p["host"], p["pid"]) for p in fleet_view["processes"]}
        server = {
            "max_connections": numbers["max_connections"],
            "reserved": numbers["superuser_reserved_connections"] + numbers["reserved_connections"],
            "other": numbers["other_connections"],
            "budget": numbers["available"] - numbers["other_connections"],
            "processes_seen": len(seen),
        }
    processes: dict[str, Any] | None
    try:
        configured = configured_processes()
        processes = {"count": configured.count, "source": configured.source} if configured else None
    except ImproperlyConfigured as error:
        processes = {"count": None, "source": str(error)}
    if (processes is None or processes["count"] is None) and server is not None:
        processes = {
            "count": max(1, server["processes_seen"]),
            "source": "processes holding pooled connections now",
        }
    per_process = (
        recommendation["per_process"]
        if recommendation["enough_data"]
        else (current or {}).get("per_process")
    )
    table = None
    if per_process:
        table = capacity_table(per_process, server["budget"] if server else None)
    fleet_demand = None
    if processes and processes["count"] and current:
        fleet_demand = processes["count"] * current["per_process"]
    return {
        "alias": alias,
        "observed": rows,
        "recommendation": recommendation,
        "current": current,
        "server": server,
        "processes": processes,
        "fleet_demand": fleet_demand,
        "table": table,
    }


def format_advice(advice: dict[str, Any]) -> str:
    """The advice as text, as ``poolstats --advise`` prints it."""
    lines = [f"== {advice['alias']}: sizing advice"]
    rows = advice["observed"]
    if rows:
        lines.append("observed per process (since each pool was created):")
        header = ["PROCESS", "SPAN", "CHECKOUTS", "RATE/S", "MEAN-HELD", "IN-USE (L)"]
        header += ["PEAK", "LIMIT", "TIMEOUTS", "WAIT-P99"]
        lines += columns(
            header,
            [
                [
                    r["where"],
                    f"{r['span_s']:.0f}s",
                    r["checkouts"],
                    f"{r['arrival_per_s']:.1f}",
                    f"{r['mean_held_ms']:.1f}ms",
                    f"{r['mean_in_use']:.2f}",
                    r["peak_open"],
                    r["limit"],
                    r["timeouts"],
                    f"{r['wait_ms_p99']:.1f}ms",
                ]
                for r in rows
            ],
        )
    current = advice["current"]
    if current:
        lines.append(
            f"current: pool_size {current['pool_size']}, max_overflow {current['max_overflow']} "
            f"= {current['per_process']} per process"
        )
    rec = advice["recommendation"]
    if rec["enough_data"]:
        lines.append("recommendation per process:")
        lines += [f"  {step}" for step in rec["steps"]]
        lines.append(
            f"  => pool_size {rec['pool_size']}, max_overflow {rec['max_overflow']} "
            f"({rec['per_process']} per process)"
        )
    else:
        lines.append(f"no recommendation: {rec['reason']}")
    server, processes = advice["server"], advice["processes"]
    if server:
        lines.append(
            f"server: max_connections {server['max_connections']} - {server['reserved']} "
            f"reserved - {server['other']} held by other clients now = room for "
            f"{server['budget']}"
        )
    if processes and advice["fleet_demand"] is not None and current:
        verdict = ""
        if server:
            fits = advice["fleet_demand"] <= server["budget"]
            verdict = " fits" if fits else " DOES NOT FIT"
        lines.append(
            f"fleet now: {processes['count']} processes ({processes['source']}) x "
            f"{current['per_process']} = {advice['fleet_demand']}{verdict}"
        )
    table = advice["table"]
    if table:
        budget = table["budget"]
        mark = f" (* = more than the room for {budget})" if budget is not None else ""
        lines.append(
            f"capacity: workers per host x hosts x {table['per_process']} connections{mark}:"
        )
        header = ["WORKERS/HOST", *(f"{h} HOST{'S' if h > 1 else ''}" for h in table["hosts"])]
        lines += columns(
            header,
            [
                [
                    row["workers"],
                    *(
                        f"{cell['connections']}{'' if cell['fits'] else '*'}"
                        for cell in row["cells"]
                    ),
                ]
                for row in table["rows"]
            ],
        )
        if table["most_processes"] is not None:
            lines.append(
                f"at most {table['most_processes']} processes of {table['per_process']} fit"
            )
    return "\n".join(lines)
