"""What the core needs from a database family, as one small table of functions.

The pool, the registry and the observers call these instead of a driver:
PostgreSQL's are in ``core/postgresql/`` (for whichever driver Django chose);
another family adds a folder beside it and a ``Family`` of its own, not
branches in the pool. Each ENGINE names its family as the class attribute
``pool_family`` of its DatabaseWrapper.

Plain functions in a frozen dataclass rather than methods on a class: the
checkout path calls several of them per request, and an attribute holding a
function costs the same as a module's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from .settings import PoolSettings


class ServerLimits(NamedTuple):
    """What ``read_limits`` returns: the server's version and connection slots."""

    version: str
    max_connections: int
    superuser_reserved: int  # MySQL: 0 (it lets one more SUPER connection in)
    reserved: int  # PostgreSQL 16+'s reserved_connections, else 0


class Backend(NamedTuple):
    """What ``read_backends`` returns a list of: one connection the server counts."""

    #: ``(alias, host, pid)`` when one of our pools opened it, else None.
    mark: tuple[str, str, int] | None
    state: str | None
    age_s: float | None  # since the connection was opened (None where not shown)
    running_s: float | None  # of the statement under way, if one is
    database: str | None
    hidden: bool  # another user's, which this one may not see


class SocketWatch(Protocol):
    def readable(self) -> bool:
        """True when an idle connection has data or end-of-file waiting (it is ending)."""
        ...


@dataclass(frozen=True)
class Family:
    name: str
    #: The exception every driver error derives from.
    Error: type[Exception]
    #: The error of a query stopped by the statement timeout (counted in the stats).
    query_canceled: type[Exception]

    # -- connecting ----------------------------------------------------------
    #: Open one physical connection from the driver parameters.
    connect: Callable[[dict[str, Any]], Any]
    #: Add the family's own parameters (marks, bounds, timeouts) to the driver
    #: parameters, in place, and return them.
    prepare_params: Callable[[dict[str, Any], str, PoolSettings], dict[str, Any]]
    #: ``alias:user@host:port/database``, for logs and stats (never a password).
    pool_name: Callable[[str, dict[str, Any]], str]
    #: True when a connect failure may heal by itself within seconds (a restart).
    is_transient: Callable[[BaseException], bool]
    #: A message for a connect refused because of a parameter a proxy rejects, else None.
    explain_refusal: Callable[[BaseException, dict[str, Any], str], str | None]
    #: The server refused the credentials (with a rotating secret, a new one may work).
    is_auth_failure: Callable[[BaseException], bool]
    #: ``host:port`` a connection reached (which one, with several hosts configured).
    server_address: Callable[[Any], str | None]

    # -- liveness ------------------------------------------------------------
    is_broken: Callable[[Any], bool]
    backend_pid: Callable[[Any], int | None]
    socket_watch: Callable[[Any], SocketWatch]
    #: Open and outside a transaction, read without a round trip.
    idle_and_open: Callable[[Any], bool]
    #: One bounded round trip; raises ``Error`` if it fails.
    ping: Callable[[Any, float], None]
    #: The session's time zone, as the server last reported it, is this one (no round trip).
    time_zone_is: Callable[[Any, str], bool]

    # -- failover ------------------------------------------------------------
    #: ``is_failover_error(conn, error)``: the server behind this connection no
    #: longer takes writes (a standby after a switchover), as opposed to an
    #: error of the application's own making.
    is_failover_error: Callable[[Any, BaseException], bool]
    #: The server takes no writes (the health probe asks; PostgreSQL answers from
    #: the server's reports without a round trip, MySQL with one).
    is_read_only: Callable[[Any], bool]

    # -- the session ---------------------------------------------------------
    #: Set (if needed) and verify the server-side timeouts on a new connection.
    verify_session: Callable[[Any, PoolSettings, str], None]
    #: The full reset of ``pool_reset_on_return="discard"``.
    discard: Callable[[Any, PoolSettings, str], None]

    # -- the server's view ---------------------------------------------------
    #: ``read_limits(cursor)``: version and connection limits.
    read_limits: Callable[[Any], ServerLimits]
    #: ``read_backends(cursor)``: one row per client connection, marked if pooled.
    read_backends: Callable[[Any], Sequence[Backend]]
    #: This host as the marks name it.
    hostname: str
    #: The server's name and where its connection list comes from, for people.
    product: str = "PostgreSQL"
    activity_source: str = "pg_stat_activity"

    # -- the OPTIONS of a DATABASES entry --------------------------------------
    #: Keys the driver or Django's backend of this family take: passed through,
    #: never "did you mean"-ed (``conf.parse_pool_settings``).
    driver_options: frozenset[str] = frozenset()
    #: ``refuse(key, value)``: why this family cannot honour an OPTIONS key of
    #: the pool (a PostgreSQL-only one on MySQL, say), or None.
    refuse: Callable[[str, Any], str | None] = field(default=lambda key, value: None)
