"""One benchmark run: one variant, one workload, in a process of its own.

Django's settings are process-wide, so ``run.py`` starts this module once per
(variant, workload, repeat) and reads one JSON line from its stdout.
Requests go through Django's WSGIHandler, so request_started and
request_finished fire (and return connections) as under a real server.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

sys.path.insert(0, str(Path(__file__).resolve().parent))

POOL_SIZE = 10
MAX_OVERFLOW = 10


def mysql_settings(variant: str, base: dict[str, Any]) -> dict[str, Any]:
    """The MySQL family's variants: Django's backend, django-db-connection-pool's, ours."""
    base = {**base, "PASSWORD": ""}
    if variant == "no_pool":
        return {**base, "ENGINE": "django.db.backends.mysql"}
    if variant == "persistent":
        return {**base, "ENGINE": "django.db.backends.mysql", "CONN_MAX_AGE": None}
    if variant == "dbcp":
        # Its own settings key; pre_ping (on by default there) as ours.
        pool = {"POOL_SIZE": POOL_SIZE, "MAX_OVERFLOW": MAX_OVERFLOW, "TIMEOUT": 30}
        return {**base, "ENGINE": "dj_db_conn_pool.backends.mysql", "POOL_OPTIONS": pool}
    if variant == "sqla_pool":
        options = {
            "pool_size": POOL_SIZE,
            "max_overflow": MAX_OVERFLOW,
            "pool_timeout": 30,
            "pool_pre_ping": True,
        }
        return {**base, "ENGINE": "django_sqla_pool.backends.mysql", "OPTIONS": options}
    raise SystemExit(f"unknown MySQL variant {variant!r}")


def database_settings(variant: str, conn: dict[str, Any]) -> dict[str, Any]:
    base = {
        "NAME": conn["dbname"],
        "USER": conn["user"],
        "HOST": conn["host"],
        "PORT": conn["port"],
        "CONN_MAX_AGE": 0,
        "OPTIONS": {},
    }
    if conn.get("family") == "mysql":
        return mysql_settings(variant, base)
    if variant == "no_pool":
        return {**base, "ENGINE": "django.db.backends.postgresql"}
    if variant == "persistent":
        return {**base, "ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": None}
    if variant == "django_pool":
        pool = {"min_size": POOL_SIZE, "max_size": POOL_SIZE + MAX_OVERFLOW, "timeout": 30}
        return {**base, "ENGINE": "django.db.backends.postgresql", "OPTIONS": {"pool": pool}}
    if variant == "sqla_pool":
        options = {
            "pool_size": POOL_SIZE,
            "max_overflow": MAX_OVERFLOW,
            "pool_timeout": 30,
            "pool_pre_ping": True,
        }
        return {**base, "ENGINE": "django_sqla_pool.backends.postgresql", "OPTIONS": options}
    raise SystemExit(f"unknown variant {variant!r}")


def setup_django(variant: str, conn: dict[str, Any]) -> None:
    import django
    from django.conf import settings

    apps = ["django_sqla_pool"] if variant == "sqla_pool" else []
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="benchapp",
        INSTALLED_APPS=apps,
        MIDDLEWARE=[],
        DATABASES={"default": database_settings(variant, conn)},
        USE_TZ=True,
        TIME_ZONE="UTC",
        # A failed request is counted by its status; its traceback is not news.
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "loggers": {"django.request": {"level": "CRITICAL"}},
        },
    )
    django.setup()


class Client:
    """Sends GETs through one WSGIHandler and records latency and connect time."""

    def __init__(self, time_connect: bool = True) -> None:
        from django.core.handlers.wsgi import WSGIHandler
        from django.db import connections

        self.handler = WSGIHandler()
        self.local = threading.local()
        self.local.connect_seconds = 0.0
        if time_connect:
            self._time_connect(type(connections["default"]))

    def _time_connect(self, wrapper_class: Any) -> None:
        # Time spent in connect(): opening a connection (no pool), or taking
        # one from a pool, including any wait for a free one.
        original = wrapper_class.connect
        local = self.local

        def connect(wrapper: Any) -> None:
            start = time.perf_counter()
            try:
                original(wrapper)
            finally:
                local.connect_seconds += time.perf_counter() - start

        wrapper_class.connect = connect

    def get(self, path: str, query: str = "") -> tuple[bool, float, float]:
        """One request: (succeeded, seconds, seconds spent getting a connection)."""
        environ = {"PATH_INFO": path, "QUERY_STRING": query}
        setup_testing_defaults(environ)  # the rest of a minimal WSGI environ
        status: list[str] = []
        self.local.connect_seconds = 0.0
        start = time.perf_counter()
        try:
            response = self.handler(environ, lambda s, h, e=None: status.append(s))
            try:
                b"".join(response)
            finally:
                response.close()
            ok = bool(status) and status[0].startswith("200")
        except Exception:
            ok = False
        return ok, time.perf_counter() - start, self.local.connect_seconds


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.connect: list[float] = []
        self.failed = 0

    def add(self, ok: bool, seconds: float, connect_seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.connect.append(connect_seconds)
            if not ok:
                self.failed += 1


def run_threads(
    client: Client,
    threads: int,
    warmup: int,
    requests_per_thread: int,
    seconds: float,
    query: str = "",
    between: Any = None,
) -> tuple[Recorder, float]:
    """Each thread sends ``warmup`` unmeasured requests, then (all together) up to
    ``requests_per_thread`` measured ones, stopping at the deadline.

    The same threads warm up and measure, as a server's worker threads would:
    persistent connections are per thread, so new threads would open new ones.
    """
    recorder = Recorder()
    warmed = threading.Barrier(threads + 1)
    start_line = threading.Barrier(threads + 1)
    box: dict[str, float] = {}

    def work() -> None:
        for _ in range(warmup):
            client.get("/select1/", query)
        warmed.wait()
        start_line.wait()
        deadline = box["deadline"]
        for i in range(requests_per_thread):
            if time.monotonic() >= deadline:
                break
            recorder.add(*client.get("/select1/", query))
            if between is not None:
                between(i)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    warmed.wait()
    box["deadline"] = time.monotonic() + seconds
    begin = time.perf_counter()
    start_line.wait()
    for worker in workers:
        worker.join()
    return recorder, time.perf_counter() - begin


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summarize(recorder: Recorder, elapsed: float, extra: dict[str, Any]) -> dict[str, Any]:
    n = len(recorder.latencies)
    return {
        "requests": n,
        "throughput": n / elapsed if elapsed else 0.0,
        "p50_us": percentile(recorder.latencies, 0.50) * 1e6,
        "p99_us": percentile(recorder.latencies, 0.99) * 1e6,
        "p999_us": percentile(recorder.latencies, 0.999) * 1e6,
        "max_us": max(recorder.latencies, default=float("nan")) * 1e6,
        "connect_us": statistics.fmean(recorder.connect) * 1e6 if n else 0.0,
        "failed": recorder.failed,
        **extra,
    }


def sequential(client: Client, scale: float) -> dict[str, Any]:
    recorder, elapsed = run_threads(client, 1, 200, int(2000 * scale), 3.0 * scale)
    return summarize(recorder, elapsed, {})


def concurrent(client: Client, scale: float) -> dict[str, Any]:
    recorder, elapsed = run_threads(client, 16, 20, int(300 * scale), 3.0 * scale)
    return summarize(recorder, elapsed, {})


def oversubscribed(client: Client, scale: float) -> dict[str, Any]:
    # 9,600 requests: the p99 is the 96th slowest, not one of a handful of stragglers.
    recorder, elapsed = run_threads(client, 64, 3, int(150 * scale), 8.0 * scale, query="hold=5")
    return summarize(recorder, elapsed, {})


def fault(client: Client, scale: float, conn: dict[str, Any]) -> dict[str, Any]:
    """Rounds of requests; between rounds, the server ends every idle connection."""
    import psycopg

    threads, per_round, rounds = 16, 10, max(2, int(5 * scale))
    killed: list[int] = []
    admin = psycopg.connect(
        host=conn["host"], port=conn["port"], user=conn["user"], dbname="postgres", autocommit=True
    )

    def kill_idle() -> None:
        # Runs in the last thread to reach the barrier, while all others wait.
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity "
            "WHERE datname = %s AND state = 'idle' AND pid <> pg_backend_pid()",
            [conn["dbname"]],
        ).fetchall()
        killed.append(len(rows))
        time.sleep(0.05)

    pause = threading.Barrier(threads, action=kill_idle, timeout=60)

    def between(i: int) -> None:
        if (i + 1) % per_round == 0 and i + 1 < per_round * rounds:
            pause.wait()

    try:
        recorder, elapsed = run_threads(
            client, threads, 10, per_round * rounds, 60.0, between=between
        )
    finally:
        admin.close()
    # Throughput and latency here include the pauses; only failures count.
    return summarize(recorder, elapsed, {"killed": sum(killed), "rounds": rounds})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--conn", required=True, help="JSON: family, host, port, user, dbname")
    args = parser.parse_args()
    conn = json.loads(args.conn)
    setup_django(args.variant, conn)
    client = Client()
    if args.workload == "fault":
        result = fault(client, args.scale, conn)
    else:
        workloads = {
            "sequential": sequential,
            "concurrent": concurrent,
            "oversubscribed": oversubscribed,
        }
        result = workloads[args.workload](client, args.scale)
    from django.db import connections

    connections.close_all()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
