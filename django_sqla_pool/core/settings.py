"""The settings of one pool: a frozen dataclass, with every default.

Parsed and validated from a DATABASES entry by ``django_sqla_pool.conf`` (the
Django side); the core only reads them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def dotted_name(provider: Callable[..., Any]) -> str:
    """``module.qualname`` of a callable, for messages and stats."""
    module = getattr(provider, "__module__", None) or "?"
    name = getattr(provider, "__qualname__", None) or type(provider).__qualname__
    return f"{module}.{name}"


#: OPTIONS keys that become server-side session timeouts, in milliseconds.
#: Each database family sends them its own way (``core/postgresql/``).
SERVER_KEYS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


@dataclass(frozen=True)
class PoolSettings:
    """Validated pool settings of one database alias (see the README's options table)."""

    #: Connections kept open in the pool.
    pool_size: int = 5
    #: Extra connections opened under load and closed when returned.
    max_overflow: int = 10
    #: Seconds a request waits for a free connection before PoolTimeout.
    pool_timeout: float = 30.0
    #: Seconds after which a connection is replaced at checkout; None disables.
    pool_recycle: float | None = None
    #: Each connection's lifetime is pool_recycle shortened by a random fraction up
    #: to this, so that connections opened together (a fleet that started
    #: together) are not all replaced together.
    pool_recycle_jitter: float = 0.25
    #: Check that a connection is alive before handing it out.
    pool_pre_ping: bool = True
    #: Connections returned less than this many seconds ago skip the ping round trip.
    pool_pre_ping_window: float = 1.0
    #: Hand out the most recently returned connection first.
    pool_use_lifo: bool = False
    #: What happens to a connection when it is returned.
    pool_reset_on_return: str = "rollback"
    #: Seconds after which a connection still checked out is reported; None disables.
    leak_detection_threshold: float | None = None
    #: PostgreSQL settings in milliseconds, sent at connect time; None keeps the server's.
    statement_timeout: int | None = None
    lock_timeout: int | None = None
    idle_in_transaction_session_timeout: int | None = None
    #: Seconds checkouts wait and retry while the server cannot be reached
    #: (a restart); 0 fails at once.
    connect_grace: float = 5.0
    #: Seconds the liveness check may wait for the server's answer.
    ping_timeout: float = 5.0
    #: How the PostgreSQL settings above are sent: "startup" or "set".
    server_settings_mode: str = "startup"
    #: Connections opened in the background when the pool is created, and kept open.
    pool_min_size: int = 0
    #: Seconds unused after which a connection beyond pool_min_size is closed; None: never.
    pool_idle_timeout: float | None = 60.0
    #: Called with the alias at each physical connect: the password, or a mapping
    #: with password, user, expires_at (``core/credentials.py``). None: PASSWORD.
    credentials: Callable[[str], Any] | None = None
    #: Seconds a secret without expires_at is reused before the provider is asked again.
    credentials_ttl: float = 300.0

    def public(self) -> dict[str, Any]:
        """Every field, JSON-able: a provider by its dotted name, never called."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.credentials is not None:
            values["credentials"] = dotted_name(self.credentials)
        return values

    @property
    def max_connections(self) -> int:
        return self.pool_size + self.max_overflow

    def server_values(self) -> dict[str, int]:
        """The PostgreSQL settings asked for, by name, in milliseconds."""
        return {key: getattr(self, key) for key in SERVER_KEYS if getattr(self, key) is not None}
