"""A throwaway MariaDB server of the test's own, to start, stop, restart and kill.

The machine's shared server (3306) is never touched: this one gets a fresh
data folder from ``mariadb-install-db`` in a temporary folder, listens on
127.0.0.1:MYSQL_PORT and on a unix socket in that folder, and is stopped and
removed when the ``with`` block (or the fixture) ends. As root it runs as
the ``mysql`` OS user. Every wait has a deadline. Needs Debian's
mariadb-server (mariadb-install-db, mariadbd); no driver (readiness is seen
from the server's greeting packet).

    with MariaDB() as server:
        MySQLdb.connect(**server.params())
        server.restart(); server.kill(); server.start()
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

#: This helper's port range is 25406-25409.
MYSQL_PORT = 25406


class Unavailable(RuntimeError):
    """MariaDB's binaries (or the mysql OS user, as root) are not on this machine."""


def _binary(name: str, *places: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for place in places:
        path = os.path.join(place, name)
        if os.access(path, os.X_OK):
            return path
    return None


class MariaDB:
    """One throwaway MariaDB server on 127.0.0.1:``port`` and ``<base>/mysqld.sock``."""

    def __init__(self, port: int = MYSQL_PORT, base: str | None = None, **settings: Any) -> None:
        self.install_db = _binary("mariadb-install-db", "/usr/bin") or _binary("mysql_install_db")
        self.mariadbd = _binary("mariadbd", "/usr/sbin", "/usr/libexec") or _binary(
            "mysqld", "/usr/sbin"
        )
        if not self.install_db or not self.mariadbd:
            raise Unavailable(
                "mariadb-install-db / mariadbd not installed (apt-get install mariadb-server)"
            )
        self.owner = None
        if os.geteuid() == 0:
            try:
                self.owner = pwd.getpwnam("mysql")
            except KeyError as exc:
                raise Unavailable("running as root without a 'mysql' OS user") from exc
        self.port = port
        self.base = base or tempfile.mkdtemp(prefix="mysqlserver-")
        self.data = os.path.join(self.base, "data")
        self.socket = os.path.join(self.base, "mysqld.sock")
        self.log = os.path.join(self.base, "error.log")
        # Small and fast: no durability, a small buffer pool, no binary log.
        self.settings = {
            "innodb-buffer-pool-size": "32M",
            "innodb-log-file-size": "16M",
            "innodb-flush-log-at-trx-commit": "0",
            "innodb-doublewrite": "0",
            "max-connections": "60",
            "skip-name-resolve": None,
            "skip-log-bin": None,
            "character-set-server": "utf8mb4",
            **settings,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._installed = False

    # --- lifecycle ------------------------------------------------------------

    def install(self, timeout: float = 60) -> None:
        os.makedirs(self.data, exist_ok=True)
        if self.owner is not None:
            for path in (self.base, self.data):
                os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
        command = [
            self.install_db,
            "--no-defaults",
            f"--datadir={self.data}",
            # root@localhost with an empty password, usable over TCP too.
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *self._user_option(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        self._installed = True

    def _user_option(self) -> list[str]:
        return [f"--user={self.owner.pw_name}"] if self.owner is not None else []

    def command(self) -> list[str]:
        options = [
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket}",
            f"--pid-file={os.path.join(self.base, 'mysqld.pid')}",
            f"--log-error={self.log}",
            *self._user_option(),
        ]
        for key, value in self.settings.items():
            options.append(f"--{key}" if value is None else f"--{key}={value}")
        assert self.mariadbd
        return [self.mariadbd, *options]

    def start(self, timeout: float = 30) -> None:
        """Start the server and wait until it greets a client; raise after ``timeout`` s."""
        if not self._installed:
            self.install()
        if self.is_running():
            return
        deadline = time.monotonic() + timeout
        # The port is in the 254xx range, below the kernel's ephemeral ports, but
        # an earlier server of ours may still hold it for a moment: retry.
        while True:
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                self._wait_ready(deadline)
                return
            except _Exited as exc:
                self.process = None
                if "Address already in use" in exc.log_tail and time.monotonic() < deadline - 1:
                    time.sleep(0.5)
                    continue
                raise RuntimeError(f"mariadbd exited while starting:\n{exc.log_tail}") from None
            except TimeoutError:
                self.kill()
                raise

    def _wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise _Exited(self.log_tail())
            if self.greets():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"mariadbd not ready on port {self.port}:\n{self.log_tail()}")
            time.sleep(0.05)

    def greets(self, timeout: float = 1.0) -> bool:
        """True when the server sends its handshake (protocol 10) on the TCP port."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
                header = conn.recv(5)
        except OSError:
            return False
        return len(header) == 5 and header[4] == 10

    def stop(self, timeout: float = 30) -> None:
        """A clean shutdown (SIGTERM); SIGKILL if it is not done within ``timeout`` s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown; the clients see their sockets close."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self, timeout: float = 30) -> None:
        self.stop(timeout)
        self.start(timeout)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.is_running() else None  # type: ignore[union-attr]

    def cleanup(self) -> None:
        """Stop (SIGKILL: nothing is kept) and remove the data folder."""
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> MariaDB:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # --- clients --------------------------------------------------------------

    def params(self, unix_socket: bool = False, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for MySQLdb.connect()."""
        where: dict[str, Any] = (
            {"unix_socket": self.socket}
            if unix_socket
            else {"host": "127.0.0.1", "port": self.port}
        )
        return {**where, "user": "root", "password": "", **extra}

    def url(self, database: str = "test") -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log, errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return ""


class _Exited(Exception):
    def __init__(self, log_tail: str) -> None:
        super().__init__(log_tail)
        self.log_tail = log_tail
