"""A PostgreSQL cluster of the test's own, to restart, stop, stall and cut off.

The machine's shared server is never touched: fault tests run against this
one, on a port of their own (FAULT_PORT), with data in a temporary folder,
stopped when the test session ends. PostgreSQL refuses to run as root, so
as root the cluster runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import glob
import os
import pwd
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

#: This helper's port range is 25420-25429: the cluster and PgBouncer.
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
    """One throwaway PostgreSQL cluster listening on 127.0.0.1:FAULT_PORT."""

    def __init__(self, base: str, port: int = FAULT_PORT) -> None:
        initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not self.pg_ctl:
            pytest.skip("initdb/pg_ctl not installed")
        self.run_as, owner = _as_postgres()
        self.port = port
        self.data = os.path.join(base, "data")
        os.makedirs(self.data)
        if owner is not None:
            os.chown(base, owner.pw_uid, owner.pw_gid)
            os.chown(self.data, owner.pw_uid, owner.pw_gid)
        self._run([initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(
                f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{base}'\nmax_connections = 40\nfsync = off\n"
                "lc_messages = 'C'\n"
            )
        self.log = os.path.join(base, "server.log")

    def _run(self, args: list[str]) -> None:
        subprocess.run([*self.run_as, *args], check=True, capture_output=True, timeout=60)

    def params(self, **extra: Any) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": "postgres",
            "dbname": "postgres",
            **extra,
        }

    def start(self) -> None:
        # The port is inside the kernel's ephemeral range: a client socket of
        # another process may hold it for a moment, so retry a few times.
        for attempt in range(20):
            try:
                self._run([self.pg_ctl, "-D", self.data, "-l", self.log, "-w", "-t", "30", "start"])
                return
            except subprocess.CalledProcessError:
                if attempt == 19:
                    raise
                time.sleep(0.5)

    def stop(self, mode: str = "fast") -> None:
        self._run([self.pg_ctl, "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"])

    def restart(self, mode: str = "fast") -> None:
        self._run(
            [self.pg_ctl, "-D", self.data, "-l", self.log, "-m", mode, "-w", "-t", "30", "restart"]
        )

    def is_running(self) -> bool:
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def postmaster_pid(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid")) as pidfile:
            return int(pidfile.readline())

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
    base = tempfile.mkdtemp(prefix="faultcore-pg-")
    try:
        cluster = Cluster(base)
        cluster.start()
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        yield cluster
    finally:
        if cluster.is_running():
            try:
                cluster.stop("immediate")
            except subprocess.SubprocessError:
                os.kill(cluster.postmaster_pid(), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cluster(cluster_session: Cluster) -> Iterator[Cluster]:
    """The session's cluster, running at the start and at the end of each test."""
    if not cluster_session.is_running():
        cluster_session.start()
    yield cluster_session
    if not cluster_session.is_running():
        cluster_session.start()


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
