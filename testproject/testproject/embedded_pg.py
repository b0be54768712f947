"""A throwaway PostgreSQL for the demo and the tests when DATABASE_URL is not set.

First choice: the ``pgserver`` package, which ships PostgreSQL binaries in a
wheel (Python 3.12 and older); its data lives in ``.pgdata`` and the server
stops when the last process using it exits. Otherwise: the machine's own
``initdb``/``pg_ctl`` (Debian keeps them in /usr/lib/postgresql/*/bin),
with data in ``.pgdata-local``, listening on a Unix socket only, stopped
when the process that started it exits. Otherwise: a message saying how to
set DATABASE_URL.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "sqla_pool_demo"
_HOW_TO = (
    "Point DATABASE_URL at a PostgreSQL server, e.g.\n"
    "  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/sqla_pool_demo"
)


def _url(socket_dir: str) -> str:
    return f"postgres-pool://postgres@/{DB_NAME}?host={quote(socket_dir, safe='/')}"


def _with_pgserver() -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver
    except ImportError:
        return None
    data_dir = ROOT / ".pgdata"
    data_dir.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
    if "(0 rows)" in server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';"):
        server.psql(f"CREATE DATABASE {DB_NAME};")
    # Keep a reference so the server is not stopped while this process runs.
    globals()["_server"] = server
    return _url(server.get_uri().split("host=", 1)[1])


def _find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _with_local_binaries() -> str | None:
    initdb, pg_ctl, psql = (_find_binary(n) for n in ("initdb", "pg_ctl", "psql"))
    if not (initdb and pg_ctl and psql):
        return None
    data_dir = ROOT / ".pgdata-local"
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            return None
        run_as = ["runuser", "-u", "postgres", "--"]
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(exist_ok=True)
        if run_as:
            os.chown(data_dir, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [*run_as, initdb, "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
    socket_dir = str(data_dir)
    status = subprocess.run([*run_as, pg_ctl, "-D", str(data_dir), "status"], capture_output=True)
    if status.returncode != 0:
        subprocess.run(
            [
                *run_as,
                pg_ctl,
                "-D",
                str(data_dir),
                "-w",
                "-l",
                str(data_dir / "server.log"),
                "-o",
                f"-c listen_addresses='' -k {socket_dir} -p 5439",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        atexit.register(
            subprocess.run,
            [*run_as, pg_ctl, "-D", str(data_dir), "-m", "fast", "stop"],
            capture_output=True,
        )
    psql_cmd = [psql, "-h", socket_dir, "-p", "5439", "-U", "postgres", "-d", "postgres"]
    exists = subprocess.run(
        [*psql_cmd, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"],
        capture_output=True,
        text=True,
        check=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run(
            [*psql_cmd, "-c", f"CREATE DATABASE {DB_NAME}"], check=True, capture_output=True
        )
    return _url(socket_dir) + "&port=5439"


def database_url() -> str:
    """Start (or join) an embedded server and return a DATABASE_URL for it."""
    url = _with_pgserver() or _with_local_binaries()
    if url is None:
        sys.exit(
            "DATABASE_URL is not set, the embedded PostgreSQL (the 'pgserver' package, wheels "
            f"for Python 3.12 and older; this is {sys.version_info.major}."
            f"{sys.version_info.minor}) is not installed, and no initdb/pg_ctl was found. "
            + _HOW_TO
        )
    return url


def ensure_database_url() -> None:
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = database_url()
