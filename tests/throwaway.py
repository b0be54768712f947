"""PostgreSQL clusters of the tests' own, to configure, restart, stop, stall and cut off.

The machine's shared server is never touched: each cluster has a port of its
own (fault tests share one session cluster on FAULT_PORT), its data in a
temporary folder, and is stopped and deleted by ``destroy()``. PostgreSQL
refuses to run as root, so as root the cluster runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from django_sqla_pool.conf import parse_pool_settings
from django_sqla_pool.core.pool import SqlaPool
from django_sqla_pool.core.postgresql import POSTGRESQL
from django_sqla_pool.core.postgresql.driver import Database

#: This helper's port range is 25420-25429: the session cluster and PgBouncer.
#: Modules with a cluster of their own use 25450-25459.
FAULT_PORT = 25420
BOUNCER_PORT = 25421


def _binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres() -> tuple[list[str], Any]:
    if os.geteuid() != 0:
        return [], None
    try:
        return ["runuser", "-u", "postgres", "--"], pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root without a 'postgres' OS user")


class Cluster:
    """``initdb`` on creation; ``start()``, ``stop()``, ``restart()`` at will; ``destroy()`` at
    the end (or use it as a context manager). Listens on 127.0.0.1:``port``."""

    def __init__(self, port: int = FAULT_PORT) -> None:
        initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not self.pg_ctl:
            pytest.skip("initdb/pg_ctl not installed")
        self.run_as, owner = _as_postgres()
        self.port = port
        self.password: str | None = None
        # Not pytest's tmp_path: the postgres user cannot enter root's folder there.
        self.dir = tempfile.mkdtemp(prefix=f"sqla-pool-pg-{port}-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        args = ["-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        try:
            self._run([initdb, *args])
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(
                f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\nmax_connections = 40\nfsync = off\n"
                "lc_messages = 'C'\n"
            )

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.destroy()

    def _run(self, args: list[str]) -> None:
        subprocess.run([*self.run_as, *args], check=True, capture_output=True, timeout=90)

    def params(self, **extra: Any) -> dict[str, Any]:
        """Driver connection parameters for this server, over TCP."""
        password = {"password": self.password} if self.password is not None else {}
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": "postgres",
            "dbname": "postgres",
            **password,
            **extra,
        }

    def settings_dict(self, base: dict[str, Any], **options: Any) -> dict[str, Any]:
        """A copy of a DATABASES entry pointing at this server, with these OPTIONS added."""
        return {
            **base,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "NAME": "postgres",
            "USER": "postgres",
            "PASSWORD": self.password or "",
            "OPTIONS": {**base.get("OPTIONS", {}), **options},
        }

    def start(self, *, password: str | None = None, **settings: Any) -> None:
        """Start the server with these server parameters (``postgres -c name=value``).

        With ``password``, TCP clients must give it for the ``postgres`` role
        (scram-sha-256); without, they are trusted. The Unix socket, which only
        ``execute()`` uses, is always trusted. ``restart()`` keeps both.
        """
        method = "trust" if password is None else "scram-sha-256"
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as hba:
            hba.write(f"local all all trust\nhost all all 127.0.0.1/32 {method}\n")
        command = [self.pg_ctl, "-D", self.data, "-l", self.log, "-w", "-t", "30"]
        if settings:
            flags = (f"-c {shlex.quote(f'{key}={value}')}" for key, value in settings.items())
            command += ["-o", " ".join(flags)]
        self._run([*command, "start"])
        self.password = password
        if password is not None:
            literal = password.replace("'", "''")
            # READ WRITE: also when started with default_transaction_read_only=on.
            self.execute(
                "BEGIN READ WRITE; SET LOCAL password_encryption = 'scram-sha-256'; "
                f"ALTER ROLE postgres PASSWORD '{literal}'; COMMIT"
            )

    def stop(self, mode: str = "fast") -> None:
        self._run([self.pg_ctl, "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"])

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again, with the server parameters of the last start."""
        self._run(
            [self.pg_ctl, "-D", self.data, "-l", self.log, "-m", mode, "-w", "-t", "30", "restart"]
        )

    def destroy(self) -> None:
        if self.is_running():
            try:
                self.stop("immediate")
            except subprocess.SubprocessError:
                os.kill(self.postmaster_pid(), signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def is_running(self) -> bool:
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def postmaster_pid(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid")) as pidfile:
            return int(pidfile.readline())

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run SQL on a connection of its own over the Unix socket, outside any pool."""
        conn = Database.connect(host=self.dir, port=self.port, user="postgres", dbname="postgres")
        try:
            conn.autocommit = True
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()

    @contextmanager
    def stopped_process(self, pid: int) -> Iterator[None]:
        """SIGSTOP a server process (the postmaster or a backend); SIGCONT on the way out."""
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    @contextmanager
    def black_holed(self) -> Iterator[None]:
        """Drop every packet sent to the cluster's port on loopback (iptables).

        One direction is enough: nothing reaches the server, so nothing is
        acknowledged or answered. (Dropping by source port too could hit an
        unrelated client socket that happens to use this port number.)
        """
        if not shutil.which("iptables"):
            pytest.skip("iptables not installed")
        rules = [["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(self.port), "-j", "DROP"]]
        added = []
        try:
            for rule in rules:
                result = subprocess.run(
                    ["iptables", "-I", *rule], capture_output=True, text=True, timeout=10
                )
                if result.returncode != 0:
                    pytest.skip(f"iptables unusable here: {result.stderr.strip()}")
                added.append(rule)
            yield
        finally:
            for rule in added:
                subprocess.run(["iptables", "-D", *rule], capture_output=True, timeout=10)


@pytest.fixture(scope="session")
def cluster_session() -> Iterator[Cluster]:
    with Cluster() as cluster:
        cluster.start()
        yield cluster


@pytest.fixture
def cluster(cluster_session: Cluster) -> Iterator[Cluster]:
    """The session's cluster, running at the start and at the end of each test."""
    if not cluster_session.is_running():
        cluster_session.start()
    yield cluster_session
    if not cluster_session.is_running():
        cluster_session.start()


@pytest.fixture
def make_pool() -> Iterator[Any]:
    """A factory: ``make_pool(connect_params, **options)`` builds a bare SqlaPool (no Django
    wrapper, not in the registry); each is retired after the test."""
    made: list[SqlaPool] = []

    def make(params: dict[str, Any], **options: Any) -> SqlaPool:
        # Every idle connection is pinged: these tests are about the server going
        # away, not about how soon a dropped idle connection is noticed.
        options.setdefault("pool_pre_ping_window", 0)
        settings = parse_pool_settings("throwaway", {"OPTIONS": options})
        pool = SqlaPool(
            alias="throwaway",
            name="throwaway",
            settings=settings,
            connect_params=params,
            family=POSTGRESQL,
        )
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.retire()


def wait_until(condition: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition()`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class Bouncer:
    """Debian's PgBouncer on 127.0.0.1:BOUNCER_PORT, in front of a throwaway cluster."""

    def __init__(self, base: str, cluster: Cluster, pool_mode: str, ignore: str) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            pytest.skip("pgbouncer not installed")
        self.port = BOUNCER_PORT
        os.makedirs(base, exist_ok=True)
        users = os.path.join(base, "users.txt")
        with open(users, "w") as file:
            file.write('"postgres" ""\n')
        config = os.path.join(base, "pgbouncer.ini")
        with open(config, "w") as file:
            file.write(
                "[databases]\n"
                f"postgres = host=127.0.0.1 port={cluster.port} dbname=postgres\n"
                "[pgbouncer]\n"
                f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
                f"auth_type = trust\nauth_file = {users}\npool_mode = {pool_mode}\n"
                f"ignore_startup_parameters = {ignore}\n"
                f"logfile = {base}/pgbouncer.log\n"
            )
        _, owner = _as_postgres()
        if owner is not None:
            for path in (base, users, config):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        # PgBouncer refuses to run as root.
        self.process = subprocess.Popen(
            [binary, config],
            user=owner.pw_uid if owner is not None else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._listening, what="pgbouncer listening")

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"pgbouncer exited with {self.process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def bouncer(cluster: Cluster) -> Iterator[Any]:
    """A factory: bouncer(pool_mode, ignore_startup_parameters) starts one PgBouncer."""
    started: list[Bouncer] = []
    # Not pytest's tmp_path: the postgres user cannot enter root's folder there.
    base = tempfile.mkdtemp(prefix="faultcore-bouncer-")

    def start(pool_mode: str, ignore: str = "extra_float_digits") -> Bouncer:
        assert not started, "one PgBouncer per test"
        started.append(Bouncer(base, cluster, pool_mode, ignore))
        return started[0]

    try:
        yield start
    finally:
        for running in started:
            running.stop()
        shutil.rmtree(base, ignore_errors=True)
