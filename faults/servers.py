"""The real servers the project runs under: gunicorn, uvicorn, a Celery prefork worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from load import http_get

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

#: name -> (command after the app, threads per process the pools are sized for)
KINDS: dict[str, tuple[list[str], int]] = {
    "gthread": (["-k", "gthread", "-w", "2", "--threads", "8"], 8),
    "gthread-preload": (["-k", "gthread", "-w", "2", "--threads", "8", "--preload"], 8),
    "sync": (["-k", "sync", "-w", "3"], 1),
    "uvicorn": (["--workers", "2"], 8),
}
LABELS = {
    "gthread": "gunicorn gthread -w 2 --threads 8",
    "gthread-preload": "gunicorn gthread -w 2 --threads 8 --preload (query in the master)",
    "sync": "gunicorn sync -w 3",
    "uvicorn": "uvicorn --workers 2 (async views, async ORM)",
    "celery": "celery worker -P prefork -c 3 (query in the parent)",
}


def project_env(backend: str, db_port: int, threads: int, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(HERE),
        DJANGO_SETTINGS_MODULE="faultsite.settings",
        FAULTS_BACKEND=backend,
        FAULTS_DB_PORT=str(db_port),
        FAULTS_THREADS=str(threads),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Process:
    """A server process in its own session, stopped with its whole group."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        self._log = open(log, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=HERE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def tracebacks(self) -> int:
        """Tracebacks the process group has logged so far (a package error shows here)."""
        self._log.flush()
        try:
            return self.log.read_text(errors="replace").count("Traceback (most recent call")
        except OSError:
            return 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()


class WebServer(Process):
    def __init__(
        self,
        kind: str,
        backend: str,
        port: int,
        db_port: int,
        logdir: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        args, threads = KINDS[kind]
        if kind == "uvicorn":
            cmd = [
                str(BIN / "uvicorn"),
                "faultsite.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                *args,
            ]
        else:
            # --timeout 300: gunicorn must not hide a stuck worker by killing it.
            cmd = [
                str(BIN / "gunicorn"),
                "faultsite.wsgi:application",
                "-b",
                f"127.0.0.1:{port}",
                "--timeout",
                "300",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
                *args,
            ]
        self.port, self.kind, self.backend = port, kind, backend
        env = project_env(backend, db_port, threads, extra_env or {})
        super().__init__(f"{kind}/{backend}", cmd, env, logdir / f"{kind}-{backend}.log")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited at boot; see {self.log}")
            try:
                if http_get(self.port, "/health", 2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {timeout} s; see {self.log}")

    def worker_stats(self, pids: set[int], attempts: int = 60) -> dict[int, dict]:
        """/stats from every worker pid seen serving requests (each hit lands on one)."""
        seen: dict[int, dict] = {}
        for _ in range(attempts):
            try:
                status, data = http_get(self.port, "/stats", 5)
            except OSError:
                continue
            if status == 200:
                seen[data["pid"]] = data
            if pids <= seen.keys():
                break
        return seen


class CeleryWorker(Process):
    def __init__(self, backend: str, db_port: int, logdir: Path, redis_url: str) -> None:
        self.backend = backend
        self.queue = f"faults-{backend}"
        self.parent_file = logdir / f"celery-{backend}.parent"
        env = project_env(
            backend,
            db_port,
            1,
            {"FAULTS_REDIS_URL": redis_url, "FAULTS_PARENT_FILE": str(self.parent_file)},
        )
        cmd = [
            str(BIN / "celery"),
            "-A",
            "faultsite.tasks",
            "worker",
            "-P",
            "prefork",
            "-c",
            "3",
            "-Q",
            self.queue,
            "-n",
            f"{backend}@faults",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "warning",
        ]
        super().__init__(f"celery/{backend}", cmd, env, logdir / f"celery-{backend}.log")

    def parent(self) -> tuple[int, int] | None:
        try:
            pid, backend_pid = self.parent_file.read_text().split()
        except (OSError, ValueError):
            return None
        return int(pid), int(backend_pid)
