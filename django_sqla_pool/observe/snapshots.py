"""Per-process stats snapshots in a shared directory, so one process can show every worker's.

Each process that has pools writes its :func:`~django_sqla_pool.pool_stats`
snapshot to ``<dir>/<hostname>-<pid>.json`` (write a temporary file, then
``os.replace``, so readers never see half a file). The sampler thread in
``history.py`` calls :func:`maybe_write` once a second; nothing runs on the
checkout or checkin path. Readers skip files of processes that are gone and
delete them when the process ran on this host.

The directory comes from the ``DJANGO_SQLA_POOL_STATS_DIR`` Django setting,
or else the environment variable of the same name; unset or empty turns the
feature off.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from .stats import pool_stats

logger = logging.getLogger("django_sqla_pool")

#: The Django setting, and the environment variable, naming the directory.
STATS_DIR_SETTING = "DJANGO_SQLA_POOL_STATS_DIR"
#: Seconds between writes of a snapshot that has not changed (a heartbeat).
HEARTBEAT = 10.0
#: A snapshot older than this is ignored when its process cannot be checked (another host).
STALE_AFTER = 60.0

_last_written: tuple[str, float, str] | None = None  # (path, time, content without "time")
_warned = False


def stats_dir() -> Path | None:
    """The configured snapshot directory, or None when sharing is off."""
    value = getattr(settings, STATS_DIR_SETTING, None)
    if value is None:
        value = os.environ.get(STATS_DIR_SETTING)
    if not value or not str(value).strip():
        return None
    return Path(str(value).strip())


def _file_name(hostname: str, pid: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', hostname)}-{pid}.json"


def write_snapshot(directory: Path, snapshot: dict[str, Any] | None = None) -> Path:
    """Write this process's snapshot (or ``snapshot``) atomically; return the file's path."""
    snapshot = pool_stats() if snapshot is None else snapshot
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / _file_name(snapshot["hostname"], snapshot["pid"])
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(snapshot, file, separators=(",", ":"))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def maybe_write(now: float | None = None) -> Path | None:
    """Write this process's snapshot if sharing is on, it has pools, and something changed.

    An unchanged snapshot is rewritten every ``HEARTBEAT`` seconds so readers
    on other hosts can tell a quiet process from a dead one. Errors are
    logged once and never raised: the sampler thread must keep running.
    """
    global _last_written, _warned
    directory = stats_dir()
    if directory is None:
        return None
    snapshot = pool_stats()
    if not snapshot["pools"]:
        return None
    now = time.monotonic() if now is None else now
    content = json.dumps(snapshot["pools"], sort_keys=True)
    target = str(directory / _file_name(snapshot["hostname"], snapshot["pid"]))
    last = _last_written
    if last is not None and last[0] == target and last[2] == content and now - last[1] < HEARTBEAT:
        return None
    try:
        path = write_snapshot(directory, snapshot)
    except OSError as error:
        if not _warned:
            _warned = True
            logger.warning(
                "cannot write pool stats to %s=%s: %s", STATS_DIR_SETTING, directory, error
            )
        return None
    if last is None:
        atexit.register(_remove_own_file, path)
    _last_written = (target, now, content)
    return path


def _remove_own_file(path: Path) -> None:
    # Only the process that wrote the file removes it (a forked child inherits this hook).
    if path.name.endswith(f"-{os.getpid()}.json"):
        path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def read_snapshots(directory: Path | None = None) -> list[dict[str, Any]]:
    """The snapshots of live processes, oldest pid first; files of dead local processes go.

    On this host a process is live if its pid exists and its file is younger
    than ``STALE_AFTER`` seconds (pids are reused); on other hosts only the
    file's age counts. Unreadable or half-written files are skipped.
    """
    directory = stats_dir() if directory is None else directory
    if directory is None or not directory.is_dir():
        return []
    hostname = socket.gethostname()
    now = time.time()
    live = []
    for path in sorted(directory.glob("*.json")):
        try:
            with path.open() as file:
                snapshot = json.load(file)
            pid, host, written = snapshot["pid"], snapshot["hostname"], snapshot["time"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host == hostname and not _pid_alive(pid):
            path.unlink(missing_ok=True)
            continue
        if now - written > STALE_AFTER:
            continue
        snapshot["age_s"] = round(max(0.0, now - written), 3)
        live.append(snapshot)
    live.sort(key=lambda s: (s["hostname"], s["pid"]))
    return live


def _forget_after_fork() -> None:
    global _last_written
    _last_written = None


os.register_at_fork(after_in_child=_forget_after_fork)
