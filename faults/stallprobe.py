"""During a stall, this package's own bounded waits, measured in the harness process.

The web load cannot show them on a frozen server (SIGSTOP): its 12 clients
sit in queries sent before the freeze, which wait for the server by design
(docs/faults.md). So two pools of this package, with the same bounds as the
web servers, make the two bounded waits happen and time them:

- ``connect``: a pool with no connection opens one (bounded by connect_timeout);
- ``ping``: a pool whose idle connection was used before the freeze pings it
  (bounded by ping_timeout), then opens a new one (connect_timeout).

connect_grace is 0 in both, so each failure is one bounded wait, not the grace.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class StallProbe:
    def __init__(self, host: str, port: int, options: dict[str, Any] | None = None) -> None:
        from django_sqla_pool import conf
        from django_sqla_pool.core.pool import SqlaPool
        from django_sqla_pool.core.postgresql import POSTGRESQL
        from django_sqla_pool.core.postgresql.params import LIBPQ_DEFAULTS

        options = dict(options or {})
        libpq = {k: options.pop(k, v) for k, v in LIBPQ_DEFAULTS.items()}
        pool_options = {k: v for k, v in options.items() if k in ("ping_timeout",)} | {
            "connect_grace": 0,
            "pool_pre_ping_window": 0,
        }
        params = {
            "host": host,
            "port": port,
            "user": "postgres",
            "dbname": "faults",
            "application_name": "faults-stallprobe",
            **libpq,
        }
        settings = conf.parse_pool_settings("stallprobe", {"OPTIONS": pool_options})
        self.pools = {
            name: SqlaPool(
                alias="stallprobe",
                name=name,
                settings=settings,
                connect_params=params,
                family=POSTGRESQL,
            )
            for name in ("connect", "ping")
        }
        self.results: dict[str, tuple[float, str]] = {}
        self._threads: list[threading.Thread] = []

    def prepare(self) -> None:
        """Before the stall: the ping pool gets an idle connection that was used."""
        pool = self.pools["ping"]
        pool.checkin(pool.checkout())

    def start(self) -> None:
        """Right after the stall began: both checkouts, each in a thread."""
        for name, pool in self.pools.items():
            thread = threading.Thread(target=self._checkout, args=(name, pool), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _checkout(self, name: str, pool: Any) -> None:
        started = time.monotonic()
        try:
            pool.checkin(pool.checkout())
            outcome = "ok"
        except Exception as error:
            outcome = f"{type(error).__name__}: {' '.join(str(error).split())[:120]}"
        self.results[name] = (time.monotonic() - started, outcome)

    def finish(self, timeout: float) -> bool:
        """Wait for both checkouts; False if one is still waiting (unbounded)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.retire()
