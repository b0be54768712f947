"""A separate Django process that uses the pool, as a gunicorn worker would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
django.setup()
from django.db import connection
from django_sqla_pool import release_connections
for _ in range(int(sys.argv[1])):
    with release_connections():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
print("ready", flush=True)
sys.stdin.read()  # until the test closes stdin
"""


def start_worker(checkouts: int, stats_dir: Path, **env: str) -> subprocess.Popen[str]:
    """Start a process that makes ``checkouts`` checkouts and then idles until stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(checkouts)],
        cwd=ROOT / "testproject",
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "testproject"),
            "DJANGO_SQLA_POOL_STATS_DIR": str(stats_dir),
            **env,
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def stop_worker(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    process.wait(30)
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def running_gunicorn(
    tmp_path: Path, port: int, workers: int, *args: str, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn serving the test project on 127.0.0.1:``port`` until the block ends.

    Every worker shares ``tmp_path/stats`` as DJANGO_SQLA_POOL_STATS_DIR; ``args``
    are more gunicorn options, ``env`` more environment variables. Waits (60 s at
    most) until ``/health/live/`` answers; the log is ``tmp_path/gunicorn.log``.
    """
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "testproject.wsgi:application",
            *args,
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "30",
        ],
        cwd=ROOT / "testproject",
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "testproject"),
            "DJANGO_SQLA_POOL_STATS_DIR": str(tmp_path / "stats"),
            "DEBUG": "false",
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live/", timeout=2):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
