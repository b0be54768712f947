"""Benchmark django-sqla-pool against what a Django user would pick instead.

    python bench/run.py                 # all variants and workloads, 5 repeats
    python bench/run.py --markdown out.md --repeats 7
    python bench/run.py --family mysql  # MariaDB/MySQL on 127.0.0.1:3306, user root

Every (variant, workload, repeat) runs in its own process (worker.py), with
a separate process polling pg_stat_activity (MySQL: information_schema.PROCESSLIST)
for the peak number of server connections (poller.py). Repeats are
interleaved so drift on a busy machine hits every variant alike. The table
shows medians of the repeats and each figure's ratio to persistent
connections and to Django's built-in pool (MySQL, which Django's pool does
not cover: to django-db-connection-pool);
then the targets, PASS or FAIL. Exit status 1 if a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "no_pool": "no pool (CONN_MAX_AGE=0)",
    "persistent": "persistent (CONN_MAX_AGE=None)",
    "django_pool": "Django's pool (OPTIONS['pool'])",
    "dbcp": "django-db-connection-pool",
    "sqla_pool": "django-sqla-pool (pre_ping on)",
}
#: Per database family: the variants run by default, the pool compared with in the ratios and
#: targets (Django's own pool covers PostgreSQL, not MySQL), and the server's defaults.
FAMILIES: dict[str, dict[str, Any]] = {
    "postgresql": {
        "variants": ("no_pool", "persistent", "django_pool", "sqla_pool"),
        "workloads": ("sequential", "concurrent", "oversubscribed", "fault"),
        "other_pool": "django_pool",
        "tail": False,
        "port": 5432,
        "user": "postgres",
    },
    "mysql": {
        "variants": ("no_pool", "persistent", "dbcp", "sqla_pool"),
        "workloads": ("sequential", "oversubscribed"),
        "other_pool": "dbcp",
        "tail": True,
        "port": 3306,
        "user": "root",
    },
}
WORKLOADS = {
    "sequential": "sequential: 1 thread",
    "concurrent": "concurrent: 16 threads, pool 10+10",
    "oversubscribed": "oversubscribed: 64 threads, 5 ms hold, pool 10+10",
    "fault": "fault: 16 threads; between rounds the server ends every idle connection",
}
METRICS = (
    ("throughput", "req/s", "{:,.0f}"),
    ("p50_us", "p50 µs", "{:,.0f}"),
    ("p99_us", "p99 µs", "{:,.0f}"),
    ("connect_us", "get conn µs", "{:,.1f}"),
    ("peak_connections", "server conns", "{:.0f}"),
    ("failed", "failed", "{:.0f}"),
)
#: Shown for the MySQL family too: QueuePool lets a newly arriving thread take a free connection
#: ahead of waiting ones, so a few requests can wait far longer than the p99 shows.
TAIL_METRICS = (("p999_us", "p99.9 µs", "{:,.0f}"), ("max_us", "max µs", "{:,.0f}"))
MAX_CONNECTIONS = 20  # pool_size + max_overflow, as configured in worker.py


def admin_connect(conn: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=conn["host"], port=conn["port"], user=conn["user"], dbname="postgres", autocommit=True
    )


def mysql_admin(conn: dict[str, Any]) -> Any:
    """A MySQLdb connection outside the bench database (so it is never counted)."""
    import MySQLdb

    return MySQLdb.connect(
        host=conn["host"], port=conn["port"], user=conn["user"], password="", autocommit=True
    )


def mysql_count_sql() -> str:
    return "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s"


def prepare_database(conn: dict[str, Any]) -> str:
    if conn["family"] == "mysql":
        admin = mysql_admin(conn)
        try:
            cursor = admin.cursor()
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{conn['dbname']}`")
            cursor.execute("SELECT VERSION()")
            return str(cursor.fetchone()[0])
        finally:
            admin.close()
    with admin_connect(conn) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [conn["dbname"]]
        ).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{conn["dbname"]}"')
        return str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]


def wait_until_no_connections(conn: dict[str, Any], timeout: float = 10.0) -> None:
    """A finished worker's backends may linger a moment; they must not count for the next."""
    deadline = time.monotonic() + timeout
    if conn["family"] == "mysql":
        admin = mysql_admin(conn)
        try:
            cursor = admin.cursor()
            while time.monotonic() < deadline:
                cursor.execute(mysql_count_sql(), [conn["dbname"]])
                if cursor.fetchone()[0] == 0:
                    return
                time.sleep(0.02)
        finally:
            admin.close()
        return
    with admin_connect(conn) as admin:
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [conn["dbname"]]
            ).fetchone()
            if row and row[0] == 0:
                return
            time.sleep(0.02)


def run_one(variant: str, workload: str, conn: dict[str, Any], scale: float) -> dict[str, Any]:
    wait_until_no_connections(conn)
    poller = subprocess.Popen(
        [sys.executable, str(HERE / "poller.py"), json.dumps(conn)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert poller.stdin is not None and poller.stdout is not None
    poller.stdout.readline()  # "ready"
    try:
        worker = subprocess.run(
            [
                sys.executable,
                str(HERE / "worker.py"),
                "--variant",
                variant,
                "--workload",
                workload,
                "--scale",
                str(scale),
                "--conn",
                json.dumps(conn),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        poller.stdin.close()
        peak = poller.stdout.readline()
        poller.wait(timeout=10)
    if worker.returncode != 0 or not worker.stdout.strip():
        raise SystemExit(f"{variant}/{workload} failed:\n{worker.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(worker.stdout.strip().splitlines()[-1])
    result["peak_connections"] = int(peak)
    return result


def median_results(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged = {
        key: statistics.median(r[key] for r in runs)
        for key, _, _ in (*METRICS, *TAIL_METRICS)
        if key in runs[0]
    }
    # Limits and failures must hold in every repeat, not only in the median one.
    merged["peak_max"] = max(r["peak_connections"] for r in runs)
    merged["failed_total"] = sum(r["failed"] for r in runs)
    merged["requests"] = statistics.median(r["requests"] for r in runs)
    merged["killed"] = statistics.median(r.get("killed", 0) for r in runs)
    merged["runs"] = runs  # in repeat order
    return merged


def ratio(value: float, reference: float | None) -> str:
    if reference is None or reference == 0:
        return "-"
    return f"{value / reference:.2f}"


def cell(
    results: dict[str, dict[str, Any]], variant: str, key: str, fmt: str, other_pool: str
) -> str:
    value = results[variant][key]
    persistent = results.get("persistent", {}).get(key)
    other = results.get(other_pool, {}).get(key)
    return f"{fmt.format(value)} ({ratio(value, persistent)} / {ratio(value, other)})"


def tables(
    all_results: dict[str, dict[str, dict[str, Any]]],
    markdown: bool,
    other_pool: str,
    tail: bool = False,
) -> str:
    metrics = (*METRICS[:3], *TAIL_METRICS, *METRICS[3:]) if tail else METRICS
    lines = []
    for workload, results in all_results.items():
        title = WORKLOADS[workload]
        rows = [
            [VARIANTS[v], *(cell(results, v, key, fmt, other_pool) for key, _, fmt in metrics)]
            for v in results
        ]
        header = ["variant", *(label for _, label, _ in metrics)]
        if markdown:
            lines.append(f"**{title}**\n")
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines.extend("| " + " | ".join(row) + " |" for row in rows)
        else:
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            lines.append(title)
            for row in [header, *rows]:
                lines.append(
                    "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                )
        lines.append("")
    return "\n".join(lines)


def targets(
    all_results: dict[str, dict[str, dict[str, Any]]], other_pool: str
) -> list[tuple[str, bool, str]]:
    def get(workload: str, variant: str) -> dict[str, Any] | None:
        return all_results.get(workload, {}).get(variant)

    def per_repeat(ours: dict[str, Any], reference: dict[str, Any], key: str) -> str:
        # Repeat i of every variant ran back to back, on the same machine
        # state: the spread of these ratios says how much of a verdict is noise.
        paired = [
            a[key] / b[key] for a, b in zip(ours["runs"], reference["runs"], strict=True) if b[key]
        ]
        return f"per repeat {min(paired):.2f}-{max(paired):.2f} x" if paired else ""

    checks: list[tuple[str, bool, str]] = []
    ours, persistent = get("sequential", "sqla_pool"), get("sequential", "persistent")
    if ours and persistent:
        r = ours["p50_us"] / persistent["p50_us"]
        detail = f"{r:.3f} x; {per_repeat(ours, persistent, 'p50_us')}"
        checks.append(("sequential p50 <= 1.10 x persistent", r <= 1.10, detail))
    other_label = "Django's pool" if other_pool == "django_pool" else VARIANTS[other_pool]
    ours, django = get("oversubscribed", "sqla_pool"), get("oversubscribed", other_pool)
    if ours and django:
        ok = ours["p99_us"] <= django["p99_us"]
        detail = (
            f"{ours['p99_us'] / 1000:.1f} ms vs {django['p99_us'] / 1000:.1f} ms "
            f"({ours['p99_us'] / django['p99_us']:.3f} x; {per_repeat(ours, django, 'p99_us')})"
        )
        checks.append((f"oversubscribed p99 <= {other_label}", ok, detail))
    ours = get("fault", "sqla_pool")
    if ours:
        detail = f"{ours['failed_total']:.0f} failed in all repeats"
        checks.append(("fault run: 0 failed requests", ours["failed_total"] == 0, detail))
    ours, django = get("concurrent", "sqla_pool"), get("concurrent", other_pool)
    if ours and django:
        r = ours["throughput"] / django["throughput"]
        detail = f"{r:.3f} x; {per_repeat(ours, django, 'throughput')}"
        checks.append((f"concurrent throughput >= 0.95 x {other_label}", r >= 0.95, detail))
    peaks = [res["sqla_pool"]["peak_max"] for res in all_results.values() if "sqla_pool" in res]
    if peaks:
        checks.append(
            (
                f"server connections <= {MAX_CONNECTIONS} (pool_size + max_overflow)",
                max(peaks) <= MAX_CONNECTIONS,
                f"peak {max(peaks)} in any run",
            )
        )
    return checks


def environment(server_version: str, family: str, loads: tuple[float, float]) -> str:
    import django
    import psycopg_pool
    import sqlalchemy

    import django_sqla_pool

    if family == "mysql":
        import MySQLdb

        try:
            from importlib.metadata import version

            dbcp = version("django-db-connection-pool")
        except Exception:
            dbcp = "not installed"
        drivers = f"mysqlclient {MySQLdb.version_info[:3]}, django-db-connection-pool {dbcp}"
        server = f"MySQL/MariaDB {server_version}"
    else:
        drivers = f"psycopg {psycopg.__version__}, psycopg_pool {psycopg_pool.__version__}"
        server = f"PostgreSQL {server_version}"

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "?"
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}\n"
        f"python {platform.python_version()}, Django {django.__version__}, {drivers}, "
        f"SQLAlchemy {sqlalchemy.__version__}, {server}, "
        f"django-sqla-pool {django_sqla_pool.__version__} ({commit}); "
        f"load average (1 min) {loads[0]:.2f} at the start, {loads[1]:.2f} at the end"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply request counts and durations"
    )
    parser.add_argument("--family", choices=sorted(FAMILIES), default="postgresql")
    parser.add_argument("--variants", help="default: the family's (see FAMILIES)")
    parser.add_argument("--workloads", help="default: the family's (see FAMILIES)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default: 5432 (PostgreSQL), 3306 (MySQL)")
    parser.add_argument("--user", help="default: postgres (PostgreSQL), root (MySQL)")
    parser.add_argument("--dbname", default="sqla_pool_bench")
    parser.add_argument("--markdown", help="also write the results as Markdown to this file")
    args = parser.parse_args()
    family = FAMILIES[args.family]
    conn = {
        "family": args.family,
        "host": args.host,
        "port": args.port or family["port"],
        "user": args.user or family["user"],
        "dbname": args.dbname,
    }
    variants = args.variants.split(",") if args.variants else list(family["variants"])
    workloads = args.workloads.split(",") if args.workloads else list(family["workloads"])
    other_pool = family["other_pool"]
    for variant in variants:
        if variant not in family["variants"]:
            parser.error(f"variant {variant!r} is not one of {args.family}'s: {family['variants']}")
    server_version = prepare_database(conn)
    command = "python bench/run.py " + " ".join(sys.argv[1:])

    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    load_at_start = os.getloadavg()[0]
    started = time.monotonic()
    for repeat in range(1, args.repeats + 1):
        for workload in workloads:
            for variant in variants:
                result = run_one(variant, workload, conn, args.scale)
                runs.setdefault((workload, variant), []).append(result)
                print(
                    f"[{time.monotonic() - started:5.0f} s] repeat {repeat} {workload:<14} "
                    f"{variant:<12} {result['throughput']:8,.0f} req/s  "
                    f"p50 {result['p50_us']:8,.0f} µs  p99 {result['p99_us']:8,.0f} µs  "
                    f"failed {result['failed']}",
                    flush=True,
                )

    all_results = {
        w: {v: median_results(runs[(w, v)]) for v in variants if (w, v) in runs} for w in workloads
    }
    env = environment(server_version, args.family, (load_at_start, os.getloadavg()[0]))
    checks = targets(all_results, other_pool)
    other_label = "Django's pool" if other_pool == "django_pool" else VARIANTS[other_pool]
    activity = "information_schema.PROCESSLIST" if args.family == "mysql" else "pg_stat_activity"
    legend = (
        f"Medians of {args.repeats} repeats. Each cell: value (ratio to persistent / "
        f"ratio to {other_label}). 'get conn µs': mean time per request spent in "
        "connect() (opening a connection, or taking one from the pool including any wait). "
        f"'server conns': peak in {activity}. Fault-run throughput and latency include "
        "the pauses."
    )
    verdicts = [f"{'PASS' if ok else 'FAIL'}  {name}: {detail}" for name, ok, detail in checks]
    print()
    print(env)
    print(f"command: {command}")
    print(legend)
    print()
    print(tables(all_results, markdown=False, other_pool=other_pool, tail=family["tail"]))
    print("Targets (django-sqla-pool, pool_pre_ping on):")
    for line in verdicts:
        print("  " + line)
    if args.markdown:
        Path(args.markdown).write_text(
            f"{env}\n\ncommand: `{command}`\n\n{legend}\n\n"
            + tables(all_results, markdown=True, other_pool=other_pool, tail=family["tail"])
            + "\nTargets (django-sqla-pool, pool_pre_ping on):\n\n"
            + "\n".join(f"- {line}" for line in verdicts)
            + "\n"
        )
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
