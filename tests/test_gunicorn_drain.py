"""docs/managed.md's gunicorn recipe, run as written: kill -USR2 one worker drains its pools."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .conftest import database_url
from .test_docs import blocks_of
from .workers import ROOT, running_gunicorn

pytest.importorskip("gunicorn")

PORT = 25459
WORKERS = 2


def recipe() -> str:
    """The gunicorn.conf.py block of docs/managed.md."""
    [block] = [
        b
        for b in blocks_of(ROOT / "docs" / "managed.md")
        if b.lang == "python" and "def post_worker_init" in b.code
    ]
    return block.code


def http_status(path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=10) as response:
        return int(response.status)


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def drained(stats_dir: Path) -> dict[int, int]:
    """{worker pid: connections it counted as drained}, from the workers' snapshots."""
    counts = {}
    for path in stats_dir.glob("*.json"):
        try:
            snapshot: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced
        counts[snapshot["pid"]] = sum(
            pool["counters"]["invalidations"]["drained"] for pool in snapshot["pools"]
        )
    return counts


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(recipe())
    with running_gunicorn(
        tmp_path, PORT, WORKERS, "--config", str(config), DATABASE_URL=database_url()
    ) as process:
        yield process


def test_usr2_to_a_worker_drains_its_pool_and_nothing_else(
    gunicorn: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    stats_dir = tmp_path / "stats"
    # Concurrent slow requests reach both workers; each opens its pool, and its sampler
    # thread writes the worker's snapshot within a second.
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(WORKERS) as executor:
        while len(drained(stats_dir)) < WORKERS:
            assert time.monotonic() < deadline, f"snapshots: {list(stats_dir.glob('*'))}"
            statuses = list(executor.map(lambda _: http_status("/sleep/?ms=150"), range(WORKERS)))
            assert statuses == [200] * WORKERS
    workers = children(gunicorn.pid)
    assert set(drained(stats_dir)) == workers and len(workers) == WORKERS
    victim, other = sorted(workers)

    os.kill(victim, signal.SIGUSR2)
    deadline = time.monotonic() + 15
    while drained(stats_dir).get(victim, 0) < 1:  # its idle connection closed at once
        assert time.monotonic() < deadline, f"no drain seen: {drained(stats_dir)}"
        time.sleep(0.1)
    assert drained(stats_dir)[other] == 0
    # The worker lives on (USR2's default action would have ended it), and gunicorn
    # did not re-exec: the same master with the same two workers.
    assert gunicorn.poll() is None and children(gunicorn.pid) == workers
    assert http_status("/sleep/?ms=1") == 200
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log
