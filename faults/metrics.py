"""From the load generator's records to the table's figures."""

from __future__ import annotations

from collections import Counter
from typing import Any

from load import Record


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def in_flight_at(records: list[Record], moment: float) -> int:
    return sum(1 for r in records if r.t0 <= moment < r.t1)


def in_flight_during(records: list[Record], kill: float | tuple[float, float]) -> int:
    """Requests running at some moment of a kill: an instant, or (sent, answered) of the
    query that ended the sessions, which end somewhere between the two."""
    start, end = kill if isinstance(kill, tuple) else (kill, kill)
    return sum(1 for r in records if r.t0 <= end and r.t1 > start)


def summarize(
    records: list[Record],
    t_fault: float | None,
    t_back: float | None,
    kills: list[float] | list[tuple[float, float]] | None = None,
    t_warm: float = 0.0,
) -> dict[str, Any]:
    """The figures of one backend in one scenario; ``t_warm``: healthy latency counts from it."""
    failed = [r for r in records if not r.ok]
    m: dict[str, Any] = {
        "total": len(records),
        "failed": len(failed),
        "wrong": sum(r.wrong for r in records),
        "protocol": sum(r.protocol_error for r in records),
        "stuck": sum(r.error == "ClientTimeout" for r in records),
        "errors": Counter(r.error for r in failed),
        "error_sample": {r.error: r.msg for r in failed},
        "max_latency": max((r.latency for r in records), default=None),
        "max_failed_latency": max((r.latency for r in failed), default=None),
    }
    healthy = [
        r.latency
        for r in records
        if r.ok and r.t0 >= t_warm and (t_fault is None or r.t1 < t_fault)
    ]
    m["healthy_p50"], m["healthy_p99"] = percentile(healthy, 0.5), percentile(healthy, 0.99)
    if t_fault is not None:
        m["in_flight"] = in_flight_at(records, t_fault)
        end = (t_back if t_back is not None else t_fault) + 1.0
        window = [r.latency for r in records if t_fault <= r.t0 <= end]
        m["fault_p50"], m["fault_p99"] = percentile(window, 0.5), percentile(window, 0.99)
        m["fault_max"] = max(window, default=None)
    if kills:
        m["in_flight"] = sum(in_flight_during(records, k) for k in kills)
    if t_back is not None:
        m["failed_after_back"] = sum(1 for r in failed if r.t0 >= t_back)
        firsts = [r.t1 for r in records if r.ok and r.t1 >= t_back]
        m["recovery"] = (min(firsts) - t_back) if firsts else None
        during = [r for r in records if t_fault is not None and t_fault <= r.t0 < t_back]
        # Time spent inside the fault, by every request that overlapped it.
        m["during_max"] = max(
            (
                r.t1 - max(r.t0, t_fault)
                for r in records
                if t_fault is not None and r.t0 < t_back and r.t1 > t_fault
            ),
            default=None,
        )
        m["during_ok"] = sum(r.ok for r in during)
        m["during_total"] = len(during)
    return m


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}" if value >= 0.0995 else f"{value * 1000:.1f}"


def errors_text(m: dict[str, Any], width: int = 60) -> str:
    text = ", ".join(f"{name} {count}" for name, count in m["errors"].most_common(3))
    return text[:width] or "-"
