"""A throwaway PostgreSQL for the demo and the tests when DATABASE_URL is not set.

It uses the ``pgserver`` package, which ships PostgreSQL binaries in a wheel
(Python 3.12 and older). The data lives in ``.pgdata`` at the repository's
root and the server stops when the last process using it exits.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

DATA_DIR = Path(__file__).resolve().parents[2] / ".pgdata"
DB_NAME = "sqla_pool_demo"


def database_url() -> str:
    """Start (or join) the embedded server and return a DATABASE_URL for it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver
    except ImportError:
        sys.exit(
            "DATABASE_URL is not set and the embedded PostgreSQL (the 'pgserver' package) "
            f"is not installed for Python {sys.version_info.major}.{sys.version_info.minor}; "
            "pgserver publishes wheels for Python 3.12 and older. Point DATABASE_URL at a "
            "PostgreSQL server, e.g.\n"
            "  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/sqla_pool_demo"
        )
    DATA_DIR.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(DATA_DIR, cleanup_mode="stop")
    if server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';").count("1 row") == 0:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    # Keep a reference so the server is not stopped while this process runs.
    globals()["_server"] = server
    socket_dir = quote(server.get_uri().split("host=", 1)[1], safe="/")
    return f"postgres://postgres@/{DB_NAME}?host={socket_dir}"


def ensure_database_url() -> None:
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = database_url()
