"""A throwaway PostgreSQL of the test's own, to stop, start and configure (never the shared one).

initdb and pg_ctl from the machine's PostgreSQL, run as the postgres user
when the tests run as root; data in a temporary directory, removed on stop.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from typing import Any

from django_sqla_pool.core.postgresql.driver import Database


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> bool:
    return bool(_binary("initdb") and _binary("pg_ctl"))


class Cluster:
    """``initdb`` on creation; ``start()``/``stop()`` at will; ``destroy()`` at the end."""

    def __init__(self, port: int, **server_settings: Any) -> None:
        self.port = port
        self.settings = server_settings
        self.dir = tempfile.mkdtemp(prefix=f"sqla-pool-pg-{port}-")
        self.data = os.path.join(self.dir, "data")
        self._run_as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self._pg_ctl = _binary("pg_ctl") or "pg_ctl"
        initdb = _binary("initdb") or "initdb"
        subprocess.run(
            [*self._run_as, initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def params(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres", "dbname": "postgres"}

    def settings_dict(self, base: dict[str, Any], **options: Any) -> dict[str, Any]:
        """A copy of a DATABASES entry pointing at this server, with these OPTIONS added."""
        return {
            **base,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "NAME": "postgres",
            "USER": "postgres",
            "PASSWORD": "",
            "OPTIONS": {**base.get("OPTIONS", {}), **options},
        }

    def start(self) -> None:
        flags = (
            f"-c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} -p {self.port}"
        )
        flags += "".join(f" -c {key}={value}" for key, value in self.settings.items())
        log = os.path.join(self.dir, "server.log")
        command = [self._pg_ctl, "-D", self.data, "-w", "-t", "60", "-l", log, "-o", flags, "start"]
        subprocess.run(
            [*self._run_as, *command],
            check=True,
            capture_output=True,
            timeout=90,
        )

    def stop(self) -> None:
        subprocess.run(
            [*self._run_as, self._pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement on a connection of its own, outside any pool."""
        conn = Database.connect(**self.params)
        try:
            conn.autocommit = True
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()
