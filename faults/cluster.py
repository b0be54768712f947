"""A throwaway PostgreSQL 15 cluster and PgBouncer, and the faults done to them.

Everything runs as the ``postgres`` OS user (PostgreSQL and PgBouncer refuse
or should not run as root), with data under /tmp, on the harness's ports.
The caller stops everything in a ``finally``; :func:`cleanup` also runs at
exit and on SIGINT/SIGTERM, and removes the iptables rules.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PGBOUNCER = "/usr/sbin/pgbouncer"
RUN_AS = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
IPTABLES_TAG = "django-sqla-pool-faults"


def _owner() -> tuple[int, int]:
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _run(cmd: list[str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


class Cluster:
    """initdb, pg_ctl start/stop/restart, SIGSTOP/SIGCONT, pg_terminate_backend."""

    def __init__(self, port: int, max_connections: int = 200) -> None:
        self.port = port
        self.max_connections = max_connections
        self.root = Path(tempfile.mkdtemp(prefix="sqla-pool-faults-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.stopped_pids: list[int] = []
        if RUN_AS:
            os.chown(self.root, *_owner())

    def remove_stale(self) -> None:
        """Stop and delete clusters that an earlier, killed run left running (on our port)."""
        for root in Path(tempfile.gettempdir()).glob("sqla-pool-faults-*"):
            data = root / "data"
            if root == self.root or not (data / "postmaster.pid").exists():
                continue
            _run(
                [*RUN_AS, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                check=False,
            )
            shutil.rmtree(root, ignore_errors=True)

    def conninfo(self, dbname: str = "faults", port: int | None = None) -> str:
        return f"host=127.0.0.1 port={port or self.port} user=postgres dbname={dbname}"

    def pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return _run([*RUN_AS, str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args], timeout)

    def init(self) -> None:
        _run(
            [
                *RUN_AS,
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            timeout=120,
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                f"max_connections = {self.max_connections}\n"
                "shared_buffers = 32MB\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nlog_min_messages = warning\n"
            )
        self.start()
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE faults")
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE TABLE faults_item (id bigint PRIMARY KEY, value int NOT NULL)")
            conn.execute(
                "INSERT INTO faults_item SELECT i, i * 7 + 3 FROM generate_series(1, 1000) i"
            )

    def start(self) -> None:
        self.pg_ctl("-w", "-l", str(self.log), "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-m", mode, "stop")

    def restart(self, mode: str) -> None:
        self.pg_ctl("-w", "-m", mode, "-l", str(self.log), "restart")

    def running(self) -> bool:
        status = [*RUN_AS, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"]
        return _run(status, timeout=10, check=False).returncode == 0

    def pids(self) -> list[int]:
        """The postmaster and every child of it."""
        pidfile = self.data / "postmaster.pid"
        try:
            postmaster = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        children = _run(["pgrep", "-P", str(postmaster)], check=False).stdout.split()
        return [postmaster, *map(int, children)]

    def sigstop(self) -> None:
        """Stall: every server process stops; the kernel still accepts and ACKs."""
        self.stopped_pids = self.pids()
        for pid in self.stopped_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def sigcont(self) -> None:
        for pid in self.stopped_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.stopped_pids = []

    def terminate_clients(self, prefix: str = "faults-") -> tuple[int, float, float]:
        """pg_terminate_backend() every client backend of the harness's apps.

        Returns how many, and when (time.monotonic()) the terminating query was
        sent and answered: the sessions end between the two, not when this
        method was called (opening its own connection takes a few milliseconds).
        """
        with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=3) as conn:
            sent = time.monotonic()
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE %s AND pid <> pg_backend_pid()",
                [prefix + "%"],
            ).fetchall()
            answered = time.monotonic()
        return len(rows), sent, answered

    def destroy(self) -> None:
        self.sigcont()
        if self.data.exists() and self.running():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Blackhole:
    """iptables DROP of the cluster's port on lo, both directions: a dead network path."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.rules = [
            ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port)],
            ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(port)],
        ]
        self.active = False

    def _rule(self, action: str, rule: list[str]) -> list[str]:
        chain, *match = rule
        return [
            "iptables",
            "-w",
            action,
            chain,
            *match,
            "-m",
            "comment",
            "--comment",
            IPTABLES_TAG,
            "-j",
            "DROP",
        ]

    def on(self) -> None:
        self.active = True
        for rule in self.rules:
            _run(self._rule("-I", rule))

    def off(self) -> None:
        for rule in self.rules:
            # Delete every copy (a crashed earlier run may have left one).
            while _run(self._rule("-D", rule), check=False).returncode == 0:
                pass
        self.active = False

    @staticmethod
    def available() -> bool:
        return shutil.which("iptables") is not None and os.geteuid() == 0


class PgBouncer:
    """Debian's pgbouncer in front of the cluster, as the postgres user."""

    def __init__(self, cluster: Cluster, port: int, mode: str) -> None:
        self.cluster, self.port, self.mode = cluster, port, mode
        self.dir = cluster.root / f"pgbouncer-{mode}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.dir.mkdir(exist_ok=True)
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"faults = host=127.0.0.1 port={self.cluster.port} dbname=faults\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir = {self.dir}\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'userlist.txt'}\n"
            f"pool_mode = {self.mode}\n"
            # Room for every app's pool (3 x 2 workers x 12): in session mode a client
            # holds its server connection, and clients beyond the pool queue in PgBouncer.
            "default_pool_size = 80\nmax_client_conn = 500\n"
            # What an operator adds after 'unsupported startup parameter: options':
            # the parameter is then accepted and silently dropped.
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
            "admin_users = postgres\n"
        )
        if RUN_AS:
            uid, gid = _owner()
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, uid, gid)
        self.proc = subprocess.Popen(
            [*RUN_AS, PGBOUNCER, str(self.dir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.cluster.conninfo(port=self.port), connect_timeout=2).close()
                return
            except psycopg.Error as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    log = self.dir / "pgbouncer.log"
                    tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
                    raise RuntimeError(
                        f"pgbouncer did not start ({exc}); its log ends:\n{tail}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class Prober(threading.Thread):
    """Polls the server with a fresh connection every 10 ms; records when it is up again."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.up = True
        self.went_down: float | None = None
        self.came_back: float | None = None
        self._stop = threading.Event()
        self._armed = threading.Event()

    def arm(self) -> None:
        """Call just before a fault: the next failed connect marks 'down'."""
        self.went_down = self.came_back = None
        self._armed.set()

    def run(self) -> None:
        while not self._stop.is_set():
            if not self._armed.is_set():
                self._stop.wait(0.05)
                continue
            started = time.monotonic()
            try:
                psycopg.connect(self.cluster.conninfo(), connect_timeout=2).close()
                ok = True
            except psycopg.Error:
                ok = False
            if not ok and self.went_down is None:
                self.went_down = started
            if ok and self.went_down is not None and self.came_back is None:
                self.came_back = started
            self._stop.wait(0.01)

    def disarm(self) -> None:
        self._armed.clear()

    def stop(self) -> None:
        self._stop.set()


class Sampler(threading.Thread):
    """pg_stat_activity every 100 ms: connections per app, and sessions idle in transaction."""

    def __init__(self, cluster: Cluster, apps: list[str]) -> None:
        super().__init__(daemon=True)
        self.cluster, self.apps = cluster, apps
        self.peak = dict.fromkeys(apps, 0)
        self.idle_in_tx = dict.fromkeys(apps, 0)
        self.lock = threading.Lock()
        self._stop = threading.Event()

    def reset(self) -> None:
        with self.lock:
            self.peak = dict.fromkeys(self.apps, 0)
            self.idle_in_tx = dict.fromkeys(self.apps, 0)

    def run(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(
                        self.cluster.conninfo(), autocommit=True, connect_timeout=2
                    )
                rows = conn.execute(
                    "SELECT split_part(application_name, ' ', 1), count(*), "
                    "count(*) FILTER (WHERE state LIKE 'idle in transaction%%' "
                    "AND clock_timestamp() - state_change > interval '1 second') "
                    "FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid() GROUP BY 1"
                ).fetchall()
                with self.lock:
                    for app, count, idle in rows:
                        if app in self.peak:
                            self.peak[app] = max(self.peak[app], count)
                            self.idle_in_tx[app] = max(self.idle_in_tx[app], idle)
            except psycopg.Error:
                conn = None
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
