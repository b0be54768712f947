"""A separate Django process that uses the pool, as a gunicorn worker would."""

from __future__ import annotations

import os
import subprocess
import sys
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
