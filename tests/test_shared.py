"""Per-process snapshots in DJANGO_SQLA_POOL_STATS_DIR: written atomically, throttled, cleaned."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from django_sqla_pool import pool_stats
from django_sqla_pool.observe import history
from django_sqla_pool.observe import snapshots as shared

from .conftest import backend_pid
from .workers import start_worker, stop_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_writer() -> Iterator[None]:
    shared._last_written = None
    yield
    shared._last_written = None


def snapshot_for(pid: int, hostname: str | None = None, age: float = 0.0) -> dict[str, Any]:
    return {
        "pid": pid,
        "hostname": hostname or socket.gethostname(),
        "time": time.time() - age,
        "pools": [],
    }


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def poll(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_stats_dir_comes_from_the_setting_or_else_the_environment(
    settings, monkeypatch, tmp_path
) -> None:
    monkeypatch.delenv(shared.STATS_DIR_SETTING, raising=False)
    assert shared.stats_dir() is None
    monkeypatch.setenv(shared.STATS_DIR_SETTING, str(tmp_path / "env"))
    assert shared.stats_dir() == tmp_path / "env"
    settings.DJANGO_SQLA_POOL_STATS_DIR = str(tmp_path / "setting")
    assert shared.stats_dir() == tmp_path / "setting"
    settings.DJANGO_SQLA_POOL_STATS_DIR = ""
    assert shared.stats_dir() is None  # an empty setting turns it off, whatever the env says


def test_write_snapshot_replaces_the_file_whole_and_leaves_no_temporary(tmp_path) -> None:
    directory = tmp_path / "created-on-demand"
    first = shared.write_snapshot(directory, snapshot_for(os.getpid()))
    second = shared.write_snapshot(directory, {**snapshot_for(os.getpid()), "pools": [1]})
    assert first == second == directory / f"{socket.gethostname()}-{os.getpid()}.json"
    assert [p.name for p in directory.iterdir()] == [first.name]
    assert json.loads(first.read_text())["pools"] == [1]


def test_read_snapshots_skips_and_deletes_files_of_dead_processes(tmp_path) -> None:
    live = shared.write_snapshot(tmp_path, snapshot_for(os.getpid()))
    dead = shared.write_snapshot(tmp_path, snapshot_for(dead_pid()))
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / ".half-written.tmp").write_text("{")
    found = shared.read_snapshots(tmp_path)
    assert [s["pid"] for s in found] == [os.getpid()]
    assert found[0]["age_s"] >= 0
    assert live.exists() and not dead.exists()


def test_read_snapshots_ignores_stale_files_of_other_hosts_but_keeps_fresh_ones(tmp_path) -> None:
    shared.write_snapshot(tmp_path, snapshot_for(11, "elsewhere-a"))
    shared.write_snapshot(tmp_path, snapshot_for(12, "elsewhere-b", age=shared.STALE_AFTER + 5))
    assert [(s["hostname"], s["pid"]) for s in shared.read_snapshots(tmp_path)] == [
        ("elsewhere-a", 11)
    ]


def test_maybe_write_is_throttled_until_something_changes_or_the_heartbeat(
    settings, tmp_path, make_wrapper
) -> None:
    settings.DJANGO_SQLA_POOL_STATS_DIR = str(tmp_path)
    db = make_wrapper("shared")
    backend_pid(db)
    path = shared.maybe_write(now=100.0)
    assert path is not None and path.exists()
    assert shared.maybe_write(now=100.5) is None  # nothing changed
    db.close()  # a checkin changes the counters
    assert shared.maybe_write(now=100.6) == path
    assert shared.maybe_write(now=100.7) is None
    assert shared.maybe_write(now=100.6 + shared.HEARTBEAT) == path
    written = json.loads(path.read_text())
    assert [p["counters"] for p in written["pools"] if p["alias"] == "shared"] == [
        p["counters"] for p in pool_stats("shared")["pools"]
    ]


def test_maybe_write_does_nothing_when_off(settings, make_wrapper) -> None:
    settings.DJANGO_SQLA_POOL_STATS_DIR = None
    os.environ.pop(shared.STATS_DIR_SETTING, None)
    backend_pid(make_wrapper("off"))
    assert shared.maybe_write() is None


def test_a_worker_process_shares_its_counters_and_removes_its_file_on_exit(tmp_path) -> None:
    worker = start_worker(7, tmp_path)
    path = tmp_path / f"{socket.gethostname()}-{worker.pid}.json"
    try:
        # The worker's sampler thread writes within about a second.
        found = poll(lambda: [s for s in shared.read_snapshots(tmp_path) if s["pid"] == worker.pid])
        assert found, "the worker wrote no snapshot"
        [pool] = found[0]["pools"]
        assert pool["alias"] == "default"
        assert pool["counters"]["checkouts"] == pool["counters"]["checkins"] == 7
        assert pool["gauges"]["checked_out"] == 0
    finally:
        stop_worker(worker)
    assert not path.exists()  # removed at exit


def test_a_killed_worker_file_is_removed_by_the_next_reader(tmp_path) -> None:
    worker = start_worker(1, tmp_path)
    path = tmp_path / f"{socket.gethostname()}-{worker.pid}.json"
    try:
        assert poll(path.exists)
    finally:
        worker.kill()
        stop_worker(worker)
    assert path.exists()  # no atexit after SIGKILL
    assert [s for s in shared.read_snapshots(tmp_path) if s["pid"] == worker.pid] == []
    assert not path.exists()


def test_sampler_records_history_of_every_pool(make_wrapper) -> None:
    db = make_wrapper("hist", pool_size=2, max_overflow=2)
    backend_pid(db)
    history.sample(now=1000.0)
    db.close()
    history.sample(now=1001.0)
    [pool] = [p for p in pool_stats("hist")["pools"]]
    samples = [s for s in history.samples(pool["name"]) if s.time in (1000.0, 1001.0)]
    history.reset()  # the made-up times must not reach other tests' charts
    assert [(s.checked_out, s.capacity, s.checkouts) for s in samples] == [(1, 4, 1), (0, 4, 1)]


def test_sampler_thread_runs_once_a_pool_connects(make_wrapper) -> None:
    backend_pid(make_wrapper("thread"))
    assert history._loop._running()
    assert history._loop.pid == os.getpid()
    [pool] = pool_stats("thread")["pools"]
    assert poll(lambda: history.samples(pool["name"]), timeout=5)
