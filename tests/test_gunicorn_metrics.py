"""A real gunicorn with 3 workers: one scrape of /metrics/ shows every worker's pools."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import database_url
from .workers import running_gunicorn

pytest.importorskip("gunicorn")
pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

PORT = 25443  # observe's range
TOKEN = "gunicorn-token-0123456789abcdef"
WORKERS = 3


def http_get(path: str, token: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def processes_in_scrape() -> dict[int, set[str]]:
    """{worker pid: pool names} in one scrape, from db_client_connection_max."""
    status, body = http_get("/metrics/", TOKEN)
    assert status == 200, body
    found: dict[int, set[str]] = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "db_client_connection_max":
            for sample in family.samples:
                pid = int(sample.labels["process"].rsplit(":", 1)[1])
                found.setdefault(pid, set()).add(sample.labels["pool_name"])
    return found


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    url = database_url()  # the suite's server and its real database
    with running_gunicorn(
        tmp_path, PORT, WORKERS, DATABASE_URL=url, METRICS_TOKEN=TOKEN
    ) as process:
        yield process


def test_one_scrape_shows_all_three_workers_and_drops_a_dead_one(
    gunicorn: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    stats_dir = tmp_path / "stats"
    # Concurrent slow requests land on different workers; each opens its pool
    # and its sampler thread writes the worker's snapshot within a second.
    deadline = time.monotonic() + 90
    with ThreadPoolExecutor(WORKERS) as executor:
        while len(list(stats_dir.glob("*.json"))) < WORKERS:
            assert time.monotonic() < deadline, f"snapshots: {list(stats_dir.glob('*'))}"
            statuses = list(executor.map(lambda _: http_get("/sleep/?ms=150")[0], range(WORKERS)))
            assert statuses == [200] * WORKERS
    # One scrape, whichever worker answers it.
    found = processes_in_scrape()
    assert len(found) == WORKERS
    assert {parent_pid(pid) for pid in found} == {gunicorn.pid}  # all gunicorn's workers
    for pools in found.values():
        assert len(pools) == 1 and next(iter(pools)).startswith("default:")

    # A worker killed outright (no atexit): gunicorn replaces it, and the
    # scrape drops its series and its file once the process is gone.
    victim = min(found)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while victim in processes_in_scrape():
        assert time.monotonic() < deadline, "the dead worker is still scraped"
        time.sleep(0.1)
    assert not (stats_dir / f"{socket.gethostname()}-{victim}.json").exists()
    assert gunicorn.poll() is None
