"""Where the sequential gap to persistent connections goes: the package with parts switched off.

    python bench/breakdown.py            # 3 rounds, under a minute
    python bench/breakdown.py --rounds 5 --requests 3000

One thread sends requests through Django's WSGIHandler (one ``SELECT 1``
each), as the sequential workload of run.py does, in a process per
configuration and round; rounds are interleaved. Each figure is the median
over the rounds of the best of 5 batches, in microseconds per request, wall
time and CPU time. The configurations with a part switched off are
measurement aids only, never a way to run the package:

- ``socket check off``: the zero-timeout poll at take-back answers "nothing
  waiting" without asking the kernel;
- ``stats off``: the counters, wait and hold timings, leak tracking and debug
  logging of a checkout and checkin do nothing;
- ``pool work off``: the wrapper keeps its driver connection between
  requests; Django's ``close()`` and ``connect()`` entry points still run,
  so this is the floor a pool returning its connection could reach.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CONFIGS = {
    "persistent": ("persistent", "persistent (CONN_MAX_AGE=None)"),
    "package": ("sqla_pool", "django-sqla-pool"),
    "no_socket_check": ("sqla_pool", "django-sqla-pool, socket check off"),
    "no_stats": ("sqla_pool", "django-sqla-pool, stats off"),
    "no_pool_work": ("sqla_pool", "django-sqla-pool, pool work off"),
}


def switch_off(config: str) -> None:
    """Replace one part of the package with nothing, in this process only."""
    from django_sqla_pool.backends.postgresql import base
    from django_sqla_pool.core import pool
    from django_sqla_pool.core.postgresql import driver

    if config == "no_socket_check":
        driver.SocketWatch.readable = lambda self: False  # type: ignore[method-assign]
    elif config == "no_stats":
        pool.SqlaPool._handed_out = lambda self, record, start, now: None  # type: ignore[method-assign]
        pool.SqlaPool._taken_in = lambda self, record, now: None  # type: ignore[method-assign]
    elif config == "no_pool_work":
        wrapper_class = base.DatabaseWrapper
        close, connect = wrapper_class._close, wrapper_class.connect

        def keep(wrapper: Any) -> None:
            if wrapper._lease.record is None:
                close(wrapper)
                return
            wrapper._kept = wrapper.connection
            wrapper.connection = None

        def restore(wrapper: Any) -> None:
            kept = getattr(wrapper, "_kept", None)
            if kept is None:
                connect(wrapper)
                return
            wrapper._kept = None
            wrapper.connection = kept
            wrapper.health_check_done = True

        wrapper_class._close = keep  # type: ignore[method-assign,assignment]
        wrapper_class.connect = restore  # type: ignore[method-assign,assignment]


def child(config: str, conn: dict[str, Any], requests: int) -> dict[str, float]:
    import worker

    worker.setup_django(CONFIGS[config][0], conn)
    switch_off(config)
    client = worker.Client(time_connect=False)
    for _ in range(300):
        client.get("/select1/")
    batches = []
    for _ in range(5):
        wall, cpu = time.perf_counter(), time.process_time()
        failed = sum(not client.get("/select1/")[0] for _ in range(requests))
        if failed:
            raise SystemExit(f"{config}: {failed} requests failed")
        batches.append(
            ((time.perf_counter() - wall) / requests, (time.process_time() - cpu) / requests)
        )
    from django.db import connections

    connections.close_all()
    return {"wall_us": min(b[0] for b in batches) * 1e6, "cpu_us": min(b[1] for b in batches) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000, help="per batch")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--dbname", default="sqla_pool_bench")
    parser.add_argument("--child", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--conn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.conn), args.requests)))
        return

    import run

    conn = {"host": args.host, "port": args.port, "user": args.user, "dbname": args.dbname}
    run.prepare_database(conn)
    results: dict[str, list[dict[str, float]]] = {config: [] for config in CONFIGS}
    for round_ in range(1, args.rounds + 1):
        for config in CONFIGS:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    config,
                    "--conn",
                    json.dumps(conn),
                    "--requests",
                    str(args.requests),
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
            results[config].append(json.loads(out.stdout.splitlines()[-1]))
            figures = results[config][-1]
            print(
                f"round {round_} {config:16} {figures['wall_us']:7.1f} µs  "
                f"cpu {figures['cpu_us']:6.1f} µs",
                file=sys.stderr,
            )

    def median(config: str, key: str) -> float:
        return statistics.median(r[key] for r in results[config])

    persistent, package = median("persistent", "wall_us"), median("package", "wall_us")
    print(f"\nper request, median of {args.rounds} rounds of the best of 5 x {args.requests}")
    print(f"{'':38} {'wall µs':>8} {'cpu µs':>7} {'x persistent':>13} {'part costs µs':>14}")
    for config, (_, label) in CONFIGS.items():
        wall = median(config, "wall_us")
        part = "" if config in ("persistent", "package") else f"{package - wall:14.1f}"
        print(
            f"{label:38} {wall:8.1f} {median(config, 'cpu_us'):7.1f} "
            f"{wall / persistent:13.3f} {part}"
        )


if __name__ == "__main__":
    main()
